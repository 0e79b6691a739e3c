"""Rendering the stimulus strip above a results figure: the run's own stimuli, drawn again.

Tiles are rendered with :func:`stimuli.render` using the run's suite (kind and fixed
parameters, stored in the results file) and, for every other swept parameter, the value of
the stimulus row nearest to the tile (:func:`suites.analysis.strip_layout.strip_tile_params`).
:func:`stimulus_strip` is a :data:`suites.analysis.strip_layout.StripRenderer`: pass it as the
``strip`` argument of the plotting functions in :mod:`suites.analysis.plots`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import xarray as xr

from suites.analysis.strip_layout import assemble_strip, strip_tile_params
from suites.specs.suite import Suite, parse_suite

__all__ = ["stimulus_strip", "suite_of"]

SUITE_ATTRS = ("suite", "suite_text", "suite_toml")


def suite_of(ds: xr.Dataset) -> Suite | None:
    """The :class:`suites.specs.suite.Suite` stored in a results file's attributes, or ``None``."""
    for key in SUITE_ATTRS:
        text = ds.attrs.get(key)
        if isinstance(text, str) and "kind" in text and "\n" in text:
            try:
                return parse_suite(text)
            except ValueError:
                return None
    return None


def stimulus_strip(
    ds: xr.Dataset,
    orientations: np.ndarray,
    curvatures: np.ndarray,
    fixed: Mapping[str, float] | None = None,
    columns: int = 36,
    *,
    rows: int = 4,
    tile: int = 40,
) -> np.ndarray | None:
    """An ``(rows * tile, columns * tile, 3)`` float image in [0, 1], or ``None`` if it cannot be rendered.

    ``None`` (with a warning naming the reason) when the results carry no suite text;
    figures are then drawn without a strip.
    """
    import torch
    import torch.nn.functional as F

    import stimuli
    from suites.specs.render_args import render_kwargs

    suite = suite_of(ds)
    if suite is None:
        warnings.warn("stimulus strip: the results file has no suite text; drawing heatmaps without a strip", stacklevel=2)
        return None
    params = strip_tile_params(ds, orientations, curvatures, fixed=fixed, columns=columns, rows=rows)
    n = rows * columns
    kwargs = render_kwargs(params, suite.fixed, n)
    length = float(np.max(params["length"])) if "length" in params else float(suite.fixed.get("length", 64))
    size = int(min(max(32, round(1.5 * length)), 256))
    with torch.no_grad():
        images = stimuli.render(suite.kind, size=size, **kwargs)
        small = F.interpolate(images, size=(tile, tile), mode="bilinear", antialias=True, align_corners=False)
    return assemble_strip(small.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy(), rows, columns)
