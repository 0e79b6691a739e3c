"""The stimulus strip drawn above heatmaps: which stimuli its tiles show, and how tiles are laid out.

This module only works on the dataset: it picks, for each tile, the parameters of the
stimulus row nearest to the tile's (orientation, curvature) (:func:`strip_tile_params`)
and lays rendered tiles out as one image (:func:`assemble_strip`). Rendering them is
the runner side's job (:func:`suites.stimulus_strips.stimulus_strip`, which re-renders the run's
own suite); plotting functions take such a renderer as their ``strip`` argument
(:data:`StripRenderer`), so the analysis layer never renders.

Convention:
    Tile column ``j`` of ``columns`` is rendered at the orientation at the centre of
    the ``j``-th equal slice of the heatmap's x range, so the strip lines up with the
    heatmap; tile rows go from the straightest (top) to the tightest curvature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr

from .arrays import swept_parameters

#: ``strip(ds, orientations, curvatures, fixed, columns) -> (H, W, 3) image in [0, 1] or None``:
#: draws the stimulus strip above a heatmap whose axes are ``orientations`` x ``curvatures``;
#: ``fixed`` pins further swept parameters (a series column), ``columns`` is the tile count.
StripRenderer = Callable[[xr.Dataset, np.ndarray, np.ndarray, "Mapping[str, float] | None", int], "np.ndarray | None"]


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


def strip_tile_params(
    ds: xr.Dataset, orientations: np.ndarray, curvatures: np.ndarray, *, fixed: Mapping[str, float] | None = None,
    columns: int = 36, rows: int = 4,
) -> dict[str, np.ndarray]:
    """Parameters of the ``rows * columns`` tiles (row-major), as arrays by parameter name.

    Tile column ``j`` sits at the orientation at the centre of the ``j``-th equal slice of
    the heatmap's x range, tile rows go from the straightest to the tightest curvature.
    """
    o = np.asarray(orientations, dtype=np.float64)
    k = np.asarray(curvatures, dtype=np.float64)
    do = (o[-1] - o[0]) / max(o.size - 1, 1) if o.size > 1 else 360.0
    lo, hi = o[0] - do / 2, o[-1] + do / 2
    tile_o = lo + (np.arange(columns) + 0.5) * (hi - lo) / columns
    tile_k = np.linspace(k.min(), k.max(), rows)
    per_tile = [tile_params(ds, to, tk, fixed, column=j) for tk in tile_k for j, to in enumerate(tile_o)]
    params = {name: np.array([p[name] for p in per_tile]) for name in per_tile[0]}
    from .orientation_axis import axis_of, from_axis

    params["orientation"] = from_axis(params["orientation"], axis_of(ds))  # the renderer's own axis
    return params


def assemble_strip(tiles: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Lay ``(rows * columns, t, t, 3)`` tiles (row-major) out as one ``(rows * t, columns * t, 3)`` image.

    A thin white gutter (one pixel on each tile's top and left edge) separates the tiles.
    """
    tiles = np.array(tiles, dtype=np.float64, copy=True)
    t = tiles.shape[1]
    tiles[:, :1, :, :] = 1.0
    tiles[:, :, :1, :] = 1.0
    return tiles.reshape(rows, columns, t, t, 3).transpose(0, 2, 1, 3, 4).reshape(rows * t, columns * t, 3)
