"""Tuning numbers of curve units from orientation x curvature grids.

All functions take plain numpy arrays (one channel, or channels first) so they can
be tested on synthetic tuning curves; :func:`layer_tuning` applies them to a results
dataset.

Convention:
    - Orientations in degrees, counter-clockwise as seen on screen, on a uniform
      grid; a grid whose span plus one step is 360 degrees is treated as circular
      (wraps around), anything else as an open interval.
    - Curvature in 1/px, rows ordered from straight (0) to tight.
    - Shape numbers (preferred orientation, FWHM, echo index) are computed on the
      **post-ReLU activation** (baseline 0 = not firing), so they do not depend on
      which statistics are used; only ``peak_sigma`` is in sigma.
    - **Preferred orientation = fitted peak**: the argmax of the tuning curve at the
      unit's best curvature, refined by a parabola through the peak sample and its
      two neighbours (sub-step accuracy). The response-weighted circular mean of
      the same curve is reported alongside (``circular_mean_orientation``); it is
      pulled toward echoes and skewed lobes, so it is not the headline number.
    - **Best curvature**: the curvature row (excluding curvature 0, where
      orientations theta and theta + 180 draw the same line) with the largest
      response; its orientation tuning curve is "the" tuning curve of the unit.
    - **FWHM**: width in degrees of the contiguous range around the row's peak where
      the response is >= half the row's peak (linear interpolation at the crossings);
      360 if it never drops below half, NaN if the row never fires.
    - **Echo index**: the largest response within +-``window`` degrees of
      ``preferred + 180`` divided by the peak response (0 = no echo, 1 = as strong).
    - **Invariance score**: Pearson correlation of a unit's heatmap in one run (fill,
      colour, ...) with its heatmap in the plain-curve run, over common grid cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from .arrays import channel_dim, grid
from .sigma import to_sigma

PREFERRED_METHOD = (
    "fitted peak: argmax of the post-ReLU orientation tuning curve at the unit's best non-zero "
    "curvature, refined by a parabola through the peak and its two neighbours"
)


def wrap180(angle: np.ndarray | float) -> np.ndarray | float:
    """Wrap degrees into ``[-180, 180)``."""
    return (np.asarray(angle) + 180.0) % 360.0 - 180.0


def is_circular(orientations: np.ndarray) -> bool:
    """True if ``orientations`` is a uniform grid covering the full circle."""
    o = np.asarray(orientations, dtype=np.float64)
    if o.size < 3:
        return False
    step = np.diff(o)
    return bool(np.allclose(step, step[0], atol=1e-3) and abs(o[-1] - o[0] + step[0] - 360.0) < 1e-3)


def _check_curve(orientations: np.ndarray, curve: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(orientations, dtype=np.float64)
    c = np.asarray(curve, dtype=np.float64)
    if o.ndim != 1 or c.shape != o.shape:
        raise ValueError(f"tuning curve: expected orientations (N,) and responses (N,), got {o.shape} and {c.shape}")
    return o, c


def fitted_peak(orientations: np.ndarray, curve: np.ndarray) -> float:
    """Preferred orientation in degrees ``[0, 360)``: argmax refined by a parabola (NaN if the curve is flat or all NaN)."""
    o, c = _check_curve(orientations, curve)
    if not np.isfinite(c).any():
        return math.nan
    c = np.nan_to_num(c, nan=-np.inf)
    if np.nanmax(c) == np.nanmin(np.where(np.isfinite(c), c, np.inf)):
        return math.nan  # flat (e.g. never fires): no preferred orientation
    i = int(np.argmax(c))
    n = o.size
    circ = is_circular(o)
    if n < 3 or (not circ and i in (0, n - 1)):
        return float(o[i] % 360.0)
    left, right = c[(i - 1) % n], c[(i + 1) % n]
    step = (o[1] - o[0]) if circ else (o[min(i + 1, n - 1)] - o[max(i - 1, 0)]) / 2
    with np.errstate(over="ignore", invalid="ignore"):  # an inf activation: no parabola, the argmax stands
        denom = left - 2 * c[i] + right
        delta = 0.0
        if np.isfinite(denom) and denom < 0:
            delta = float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
    return float((o[i] + delta * step) % 360.0)


def circular_mean(orientations: np.ndarray, weights: np.ndarray) -> float:
    """Weighted circular mean in degrees ``[0, 360)`` (negative weights count as 0; NaN if all are 0)."""
    o, w = _check_curve(orientations, weights)
    w = np.clip(np.nan_to_num(w), 0, None)
    z = np.sum(w * np.exp(1j * np.deg2rad(o)))
    if abs(z) < 1e-12 * max(w.sum(), 1e-300) or w.sum() == 0:
        return math.nan
    return float(np.rad2deg(np.angle(z)) % 360.0)


def fwhm(orientations: np.ndarray, curve: np.ndarray) -> float:
    """Full width at half maximum (degrees) of the lobe around the curve's peak; baseline is 0."""
    o, c = _check_curve(orientations, curve)
    c = np.nan_to_num(c, nan=0.0)
    i = int(np.argmax(c))
    peak = c[i]
    if not peak > 0:
        return math.nan
    half = peak / 2.0
    n = o.size
    circ = is_circular(o)
    step = (o[-1] - o[0]) / (n - 1) if n > 1 else 0.0

    def reach(direction: int) -> float | None:
        # Distance (degrees) from the peak to the half-max crossing, or None if never crossed.
        for k in range(1, n):
            j = i + direction * k
            if not circ and not 0 <= j < n:
                return None
            j %= n
            if c[j] < half:
                prev = c[(j - direction) % n]
                frac = (prev - half) / (prev - c[j])
                return (k - 1 + frac) * step
        return None

    left, right = reach(-1), reach(+1)
    if circ and (left is None or right is None):
        return 360.0
    if left is None:
        left = (i - 0) * step
    if right is None:
        right = (n - 1 - i) * step
    return float(min(left + right, 360.0))


def echo_index(orientations: np.ndarray, curve: np.ndarray, preferred: float, window: float = 30.0) -> float:
    """Largest response within ``window`` degrees of ``preferred + 180``, divided by the peak response."""
    o, c = _check_curve(orientations, curve)
    c = np.clip(np.nan_to_num(c, nan=0.0), 0, None)
    peak = c.max(initial=0.0)
    if not peak > 0 or not math.isfinite(preferred):
        return math.nan
    near = np.abs(wrap180(o - (preferred + 180.0))) <= window
    if not near.any():
        return math.nan
    return float(c[near].max() / peak)


def best_curvature_index(curvatures: np.ndarray, heat: np.ndarray) -> int:
    """Row of ``heat`` (curvature, orientation) with the largest response, skipping curvature 0 if others exist."""
    k = np.asarray(curvatures, dtype=np.float64)
    h = np.asarray(heat, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] != k.size:
        raise ValueError(f"heatmap: expected shape (len(curvatures)={k.size}, orientations), got {h.shape}")
    row_max = np.nanmax(np.where(np.isfinite(h), h, -np.inf), axis=1)
    allowed = np.abs(k) > 1e-12
    if not allowed.any():
        allowed[:] = True
    row_max = np.where(allowed, row_max, -np.inf)
    return int(np.argmax(row_max))


def invariance_score(test: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation of two heatmaps of one unit over the cells finite in both (NaN if constant)."""
    a = np.asarray(test, dtype=np.float64).ravel()
    b = np.asarray(reference, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"invariance: heatmaps differ in shape: {np.shape(test)} vs {np.shape(reference)}")
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else math.nan


def family_coverage(orientations: np.ndarray, curves: np.ndarray, preferred: Sequence[float]) -> dict:
    """How a family of units tiles the circle.

    Args:
        orientations: (N,) degrees.
        curves: (units, N) non-negative tuning curves (one per unit, at its best curvature).
        preferred: preferred orientation per unit (degrees).

    Returns:
        ``coverage``: fraction of the swept orientations at which at least one unit is
        at >= half its own peak (``orientations_swept`` of them, spanning ``orientation_range_deg``:
        a sweep of part of the circle gives the coverage of that part only); ``largest_gap_deg``: the largest circular gap between
        consecutive preferred orientations; ``largest_uncovered_deg``: the longest run
        of uncovered orientations (degrees).
    """
    o = np.asarray(orientations, dtype=np.float64)
    c = np.clip(np.nan_to_num(np.asarray(curves, dtype=np.float64)), 0, None)
    if c.ndim != 2 or c.shape[1] != o.size:
        raise ValueError(f"family: expected curves (units, {o.size}), got {c.shape}")
    peaks = c.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        covered = ((c / np.where(peaks > 0, peaks, np.nan)) >= 0.5).any(axis=0)
    prefs = np.sort(np.asarray([p for p in preferred if math.isfinite(p)], dtype=np.float64) % 360.0)
    if prefs.size == 0:
        gap = math.nan
    elif prefs.size == 1:
        gap = 360.0
    else:
        gap = float(np.max(np.diff(np.concatenate([prefs, prefs[:1] + 360.0]))))
    step = 360.0 / o.size if is_circular(o) else (np.ptp(o) / max(o.size - 1, 1))
    run = longest = 0
    seq = np.concatenate([covered, covered]) if is_circular(o) else covered
    for v in seq:
        run = 0 if v else run + 1
        longest = max(longest, run)
    longest = min(longest, o.size)
    return {
        "coverage": float(covered.mean()),
        "orientations_swept": int(o.size),
        "orientation_range_deg": [float(np.min(o)), float(np.max(o))] if o.size else [math.nan, math.nan],
        "largest_gap_deg": gap,
        "largest_uncovered_deg": float(longest * step),
    }


def unit_tuning(orientations: np.ndarray, curvatures: np.ndarray, post: np.ndarray, sigma: np.ndarray | None = None) -> dict:
    """All tuning numbers of one unit from its (curvature, orientation) post-ReLU grid.

    ``sigma`` (same shape, post-ReLU sigma) only feeds ``peak_sigma``.
    """
    o = np.asarray(orientations, dtype=np.float64)
    k = np.asarray(curvatures, dtype=np.float64)
    h = np.asarray(post, dtype=np.float64)
    if h.shape != (k.size, o.size):
        raise ValueError(f"unit grid: expected shape ({k.size}, {o.size}), got {h.shape}")
    b = best_curvature_index(k, h)
    curve = h[b]
    pref = fitted_peak(o, curve)
    out = {
        "preferred_orientation": pref,
        "circular_mean_orientation": circular_mean(o, curve),
        "best_curvature": float(k[b]),
        "peak_activation": float(np.nanmax(h)) if np.isfinite(h).any() else math.nan,
        "fwhm_deg": fwhm(o, curve),
        "fwhm_by_curvature": {f"{kk:.6g}": fwhm(o, row) for kk, row in zip(k, h)},
        "echo_index": echo_index(o, curve, pref),
    }
    if sigma is not None:
        s = np.asarray(sigma, dtype=np.float64)
        if np.isfinite(s).any():
            i = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(s), s, -np.inf))), s.shape)
            out.update(peak_sigma=float(s[i]), peak_sigma_curvature=float(k[i[0]]), peak_sigma_orientation=float(o[i[1]]))
        else:
            out.update(peak_sigma=math.nan, peak_sigma_curvature=math.nan, peak_sigma_orientation=math.nan)
    return out


def layer_tuning(
    ds: xr.Dataset,
    layer: str,
    stats: xr.Dataset | None = None,
    *,
    channels: Sequence[int] | None = None,
    families: Mapping[str, Sequence[int]] | None = None,
    reference: xr.Dataset | None = None,
) -> dict:
    """Tuning numbers for every (or the given) channel of ``layer`` in a curves-style results dataset.

    Args:
        ds: results with ``orientation`` and ``curvature`` coordinates.
        stats: dataset statistics for ``peak_sigma`` (None: the sweep's own, labelled).
        channels: channel ids to report (default: all in the file).
        families: name -> channel ids; each family present in the file gets a
            coverage summary.
        reference: plain-curve results of the same layer; if given, each channel gets
            an ``invariance_score`` (this run's heatmap vs the reference's).

    Returns:
        ``{"statistics": label, "channels": {id: {...}}, "families": {name: {...}}}``.
    """
    post = grid(ds, layer=layer)
    sig = grid(ds, to_sigma(ds, layer, stats))
    cdim = channel_dim(ds, layer)
    ids = [int(c) for c in post.coords[cdim].values]
    if channels is not None:
        missing = [c for c in channels if c not in ids]
        if missing:
            raise ValueError(f"channels: {missing} not in layer {layer!r} of the results (it has {len(ids)} channels)")
        ids = [int(c) for c in channels]
    o = post.coords["orientation"].values
    k = post.coords["curvature"].values
    ref_grid = None
    if reference is not None:
        ref_grid = grid(reference, layer=layer)
        common_o = np.intersect1d(o, ref_grid.coords["orientation"].values)
        common_k = np.intersect1d(k, ref_grid.coords["curvature"].values)
        if common_o.size < 2 or common_k.size < 1:
            raise ValueError("reference: its orientation x curvature grid shares fewer than 2 cells with the results")
    result: dict = {"statistics": sig.attrs.get("statistics", ""), "channels": {}, "families": {}}
    curves = {}
    for c in ids:
        u = unit_tuning(o, k, post.sel({cdim: c}).values, sig.sel({cdim: c}).values)
        if ref_grid is not None:
            a = post.sel({cdim: c, "orientation": common_o, "curvature": common_k}).values
            b = ref_grid.sel({cdim: c, "orientation": common_o, "curvature": common_k}).values
            u["invariance_score"] = invariance_score(a, b)
        result["channels"][c] = u
        curves[c] = post.sel({cdim: c}).values[best_curvature_index(k, post.sel({cdim: c}).values)]
    for name, members in (families or {}).items():
        present = [int(m) for m in members if int(m) in result["channels"]]
        if not present:
            continue
        summary = family_coverage(o, np.stack([curves[m] for m in present]), [result["channels"][m]["preferred_orientation"] for m in present])
        summary["channels"] = present
        result["families"][name] = summary
    return result
