"""Analysis of curvebench results: sigma normalisation, tuning numbers, figures, validation.

Works on :class:`xarray.Dataset` objects laid out like a results file (dimension
``stimulus``, one coordinate per stimulus parameter, ``<layer>`` and
``<layer>_pre_relu`` variables with dims ``(stimulus, <layer>_channel)``).

Modules (one job each):
    arrays     pick layers/channels and reshape rows into (channel, curvature, orientation) grids
    sigma      dataset / sweep statistics and sigma values (statistics files are opened by
               suites.results.files.load_stats: the analysis opens no file)
    tuning     preferred orientation, FWHM, echo index, invariance, family coverage
    family_channels  which channels form a layer's curve family (from probes.article_families)
    validate   compare a family's tuning curves with the article's published ones
    reference_curves  the article's radial tuning curves (package data) / designed peaks
    validate_calibration  pass/fail rates of validate on simulated families
    plots      heatmaps (article style), series side by side, radial and layer figures
    strip_layout  the stimulus strip drawn above heatmaps
    distribution  pre-ReLU histograms, exponential tail fits, the distribution figure
    rotate     `curvebench rotate-tuning`: rotated natural-image crops
    synthetic  results datasets with known tuning (tests, demos)

The names below are loaded on first use (PEP 562), so the ``curvebench`` parser can
be built without importing xarray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .arrays import grid, layer_names, select, swept_parameters
    from .sigma import SWEEP_LABEL, to_sigma
    from .tuning import layer_tuning

# public name -> submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("grid", "layer_names", "select", "swept_parameters"), "arrays"),
    **dict.fromkeys(("SWEEP_LABEL", "to_sigma"), "sigma"),
    "layer_tuning": "tuning",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value

