"""The stimulus strip drawn above heatmaps: a few stimuli of the sweep, rendered again.

Tiles are rendered with :func:`stimuli.render` using the run's own suite (kind and
fixed parameters, stored in the results file) and, for every other swept parameter,
the value of the stimulus row nearest to the tile's (orientation, curvature).

Convention:
    Tile column ``j`` of ``columns`` is rendered at the orientation at the centre of
    the ``j``-th equal slice of the heatmap's x range, so the strip lines up with the
    heatmap; tile rows go from the straightest (top) to the tightest curvature.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import xarray as xr

from .arrays import swept_parameters

SUITE_ATTRS = ("suite", "suite_text", "suite_toml")


def suite_of(ds: xr.Dataset):
    """The :class:`suites.spec.Suite` stored in a results file's attributes, or ``None``."""
    from suites.spec import parse_suite

    for key in SUITE_ATTRS:
        text = ds.attrs.get(key)
        if isinstance(text, str) and "kind" in text and "\n" in text:
            try:
                return parse_suite(text)
            except ValueError:
                return None
    return None


def tile_params(
    ds: xr.Dataset, orientation: float, curvature: float, fixed: Mapping[str, float] | None = None, column: int | None = None
) -> dict[str, float]:
    """Swept parameter values of the stimulus row nearest to ``(orientation, curvature)``, overridden by ``fixed``.

    With ``column``, every other swept parameter (e.g. ``fg_hue``) cycles through its
    values along the strip, so the strip shows what the heatmap averages over.
    """
    params = swept_parameters(ds)
    cycle = {n: v for n, v in params.items() if n not in ("orientation", "curvature") and n not in (fixed or {})}
    if column is not None and cycle:
        fixed = {**(fixed or {}), **{n: float(v[column % v.size]) for n, v in cycle.items()}}
    o = np.asarray(ds.coords["orientation"].values, dtype=np.float64)
    k = np.asarray(ds.coords["curvature"].values, dtype=np.float64)
    kscale = max(float(np.ptp(k)), 1e-12)
    d = np.abs(((o - orientation + 180.0) % 360.0) - 180.0) / 360.0 + np.abs(k - curvature) / kscale
    for name, value in (fixed or {}).items():
        if name in ds.coords:
            d = d + 1e3 * np.abs(np.asarray(ds.coords[name].values, dtype=np.float64) - value)
    row = int(np.argmin(d))
    out = {name: float(ds.coords[name].values[row]) for name in params}
    # orientation: the tile's own (continuous) value; curvature: the nearest row's stored value,
    # which the renderer accepted (the grid's rounded value may sit just past a closed circle).
    out.update(orientation=float(orientation), curvature=float(k[row]))
    out.update({k_: float(v) for k_, v in (fixed or {}).items()})
    return out


def stimulus_strip(
    ds: xr.Dataset,
    orientations: np.ndarray,
    curvatures: np.ndarray,
    *,
    fixed: Mapping[str, float] | None = None,
    columns: int = 36,
    rows: int = 4,
    tile: int = 40,
) -> np.ndarray | None:
    """An ``(rows * tile, columns * tile, 3)`` float image in [0, 1], or ``None`` if it cannot be rendered.

    ``None`` (with a warning naming the reason) when the results carry no suite text or
    the renderer is unavailable; figures are then drawn without a strip.
    """
    suite = suite_of(ds)
    if suite is None:
        warnings.warn("stimulus strip: the results file has no suite text; drawing heatmaps without a strip", stacklevel=2)
        return None
    try:
        import torch
        import torch.nn.functional as F

        import stimuli
    except ImportError as exc:  # pragma: no cover - the renderer is part of the package
        warnings.warn(f"stimulus strip: renderer not importable ({exc}); drawing heatmaps without a strip", stacklevel=2)
        return None
    o = np.asarray(orientations, dtype=np.float64)
    k = np.asarray(curvatures, dtype=np.float64)
    do = (o[-1] - o[0]) / max(o.size - 1, 1) if o.size > 1 else 360.0
    lo, hi = o[0] - do / 2, o[-1] + do / 2
    tile_o = lo + (np.arange(columns) + 0.5) * (hi - lo) / columns
    tile_k = np.linspace(k.min(), k.max(), rows)
    per_tile = [tile_params(ds, to, tk, fixed, column=j) for tk in tile_k for j, to in enumerate(tile_o)]
    from suites.render_args import render_kwargs

    params = {name: np.array([p[name] for p in per_tile]) for name in per_tile[0]}
    from .orientation_axis import axis_of, from_axis

    params["orientation"] = from_axis(params["orientation"], axis_of(ds))  # the renderer's own axis
    kwargs = render_kwargs(params, suite.fixed, len(per_tile))
    length = float(np.max(params["length"])) if "length" in params else float(suite.fixed.get("length", 64))
    size = int(min(max(32, round(1.5 * length)), 256))
    with torch.no_grad():
        images = stimuli.render(suite.kind, size=size, **kwargs)
        small = F.interpolate(images, size=(tile, tile), mode="bilinear", antialias=True, align_corners=False)
    small = small.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    small[:, :1, :, :] = 1.0  # thin white gutters between tiles
    small[:, :, :1, :] = 1.0
    strip = small.reshape(rows, columns, tile, tile, 3).transpose(0, 2, 1, 3, 4).reshape(rows * tile, columns * tile, 3)
    return strip
