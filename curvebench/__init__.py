"""curvebench: the Python API (what a notebook imports) and the ``curvebench`` command line.

The libraries are ``stimuli`` (parameters -> images), ``probes`` (images -> activations)
and ``suites`` (sweeps -> results datasets -> analysis and figures). This package imports
them; none of them imports this package (``docs/architecture.md``). Its seven names are
the library functions the command line calls, one per step of the work::

    import curvebench

    images = curvebench.render("curve", orientation=[0.0, 45.0], curvature=0.05, size=64)  # (2, 3, 64, 64) in [0, 1]
    model = curvebench.load_model("groundtruth")                 # or "inceptionv1", "efficientnet-lite0"
    run = curvebench.run_suite("demo", out="demo.h5")            # a sweep -> a results file
    ds = curvebench.open_results("demo.h5")                      # any file curvebench writes, by its file_kind
    found = curvebench.discover("groundtruth", ["curves"])       # the curve family of a layer (DiscoverOptions)
    best = curvebench.optimize(model, "curves", [0, 1])          # each channel's preferred stimulus
    curvebench.report([("demo", ds)], "report.html")             # one interactive HTML page

===============  ==============================================  =============================
name             is                                              returns
===============  ==============================================  =============================
``render``       :func:`stimuli.draw.render`                     ``(B, 3, H, W)`` tensor
``load_model``   :func:`probes.registry.load_model`              a ``probes.ProbeModel``
``run_suite``    :func:`suites.running.runner.run_suite`         :class:`~suites.running.runner.RunResult`
``open_results`` :func:`suites.results.files.open_file`          ``xarray.Dataset``
``discover``     :func:`suites.discovery.pipeline.discover`      :class:`~suites.discovery.pipeline.DiscoverResult`
``optimize``     :func:`suites.optimization.ascent.optimize`     ``xarray.Dataset``
``report``       :func:`suites.report_stimuli.write_report`      path of the HTML page
===============  ==============================================  =============================

The names are loaded on first use (PEP 562): ``import curvebench`` imports neither torch
nor xarray, so the command line starts fast. Each name's docstring is the function's own
(``help(curvebench.optimize)``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.registry import load_model
    from stimuli.draw import render
    from suites.report_stimuli import write_report as report
    from suites.discovery.pipeline import discover
    from suites.optimization.ascent import optimize
    from suites.results.files import open_file as open_results
    from suites.running.runner import run_suite

# public name -> (module, attribute) that defines it
_EXPORTS: dict[str, tuple[str, str]] = {
    "render": ("stimuli.draw", "render"),
    "load_model": ("probes.registry", "load_model"),
    "run_suite": ("suites.running.runner", "run_suite"),
    "open_results": ("suites.results.files", "open_file"),
    "discover": ("suites.discovery.pipeline", "discover"),
    "optimize": ("suites.optimization.ascent", "optimize"),
    "report": ("suites.report_stimuli", "write_report"),
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
