"""Analysis of curvebench results: sigma normalisation, tuning numbers, figures, validation.

Works on :class:`xarray.Dataset` objects laid out like a results file (dimension
``stimulus``, one coordinate per stimulus parameter, ``<layer>`` and
``<layer>_pre_relu`` variables with dims ``(stimulus, <layer>_channel)``).

Modules (one job each):
    grid       reshape rows into (channel, curvature, orientation) grids
    sigma      dataset / sweep statistics and sigma values
    tuning     preferred orientation, FWHM, echo index, invariance, family coverage
    families   which channels form a layer's curve family (from probes.families)
    validate   compare a family's orientations with the article's
    plots      heatmaps (article style), series side by side, radial and layer figures
    strip      the stimulus strip drawn above heatmaps
    datastats  `curvebench stats`: per-channel statistics over natural images
    images     image folders and the built-in proxy photographs
    distribution  pre-ReLU histograms, exponential tail fits, the distribution figure
    rotate     `curvebench rotate-tuning`: rotated natural-image crops
    synthetic  results datasets with known tuning (tests, demos)
"""

from .grid import grid, layer_names, select, swept_parameters
from .sigma import SWEEP_LABEL, load_stats, to_sigma
from .tuning import layer_tuning

__all__ = ["SWEEP_LABEL", "grid", "layer_names", "layer_tuning", "load_stats", "select", "swept_parameters", "to_sigma"]
