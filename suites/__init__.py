"""curvebench's runner and results layer: suites (TOML), parameter grids, the streaming
runner and xarray-readable HDF5 results.

Public API::

    suite = suites.load_suite("curves")            # or a TOML path; SuiteError if invalid
    opts = suites.RunOptions(model="groundtruth", layers=("curves",), limit=1000)
    result = suites.run_suite(suite, opts)     # the options override the suite's settings
    ds = suites.open_results(result.path)          # xarray.Dataset, committed rows only
    grid = suites.unstack_grid(ds)                 # (orientation, curvature, <layer>_channel)

See ``docs/results.md`` for the file layout and resume semantics. The names are loaded
on first use (PEP 562), so the ``curvebench`` parser does not import numpy, torch or
xarray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from suites.specs.builtin import builtin_names
    from suites.results.reading import open_results, unstack_grid
    from suites.specs.options import RunOptions
    from suites.running.runner import run_suite
    from suites.specs.suite import Suite, SuiteError, load_suite, parse_suite

# public name -> submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("Suite", "SuiteError", "load_suite", "parse_suite"), "specs.suite"),
    "run_suite": "running.runner",
    "RunOptions": "specs.options",
    **dict.fromkeys(("open_results", "unstack_grid"), "results.reading"),
    "builtin_names": "specs.builtin",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
