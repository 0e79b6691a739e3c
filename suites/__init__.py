"""curvebench's runner and results layer: suites (TOML), parameter grids, the streaming
runner and xarray-readable HDF5 results.

Public API::

    suite = suites.load_suite("curves")            # or a TOML path; SuiteError if invalid
    result = suites.run_suite(suite, model="groundtruth", layers=["curves"], limit=1000)
    ds = suites.open_results(result.path)          # xarray.Dataset, committed rows only
    grid = suites.unstack_grid(ds)                 # (orientation, curvature, <layer>_channel)

See ``docs/results.md`` for the file layout and resume semantics. Heavy modules (torch,
xarray) are imported on first use of the functions that need them.
"""

from __future__ import annotations

from typing import Any

from suites.spec import Suite, SuiteError, load_suite, parse_suite

__all__ = [
    "Suite",
    "SuiteError",
    "load_suite",
    "parse_suite",
    "run_suite",
    "open_results",
    "unstack_grid",
    "builtin_names",
]


def run_suite(*args: Any, **kwargs: Any):  # noqa: ANN201 - see suites.runner.run_suite
    """Run (or resume) a suite into a results file; see :func:`suites.runner.run_suite`."""
    from suites.runner import run_suite as _run

    return _run(*args, **kwargs)


def open_results(path: Any):  # noqa: ANN201 - see suites.results.open_results
    """Open a results file with only its committed rows; see :func:`suites.results.open_results`."""
    from suites.results import open_results as _open

    return _open(path)


def unstack_grid(ds: Any):  # noqa: ANN201 - see suites.results.unstack_grid
    """Reshape a grid sweep to one dimension per swept parameter; see :func:`suites.results.unstack_grid`."""
    from suites.results import unstack_grid as _unstack

    return _unstack(ds)


def builtin_names() -> list[str]:
    """Names of the built-in suites."""
    from suites.builtin import builtin_names as _names

    return _names()
