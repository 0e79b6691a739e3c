"""Which channels are curve detectors: the selection test of ``curvebench discover``.

Works on the responses dataset of :mod:`suites.discovery.responses` (no model, no
rendering), or on plain sigma arrays (:func:`classify_arrays`, e.g. a sweep results
file's own data).

The test (every number a field of :class:`Criteria`, a ``curvebench discover`` flag):

1. **Strength.** Responses are in sigma (:mod:`suites.analysis.sigma`, stated in the
   outputs): ``(activation - baseline) / std``, by default the baseline the channel's
   dataset mean and ``std`` its standard deviation over the padding-free positions of
   natural images (``--sigma-baseline blank``: above the blank image of that
   polarity; ``--sigma-positions all``). The peak over curvatures
   ``>= min_curvature`` is ``>= min_sigma``.
2. **Curve, not line.** That peak is ``>= min_line_ratio`` times the best straight-line
   (curvature 0) response, over all orientations (a line that does not excite the
   unit passes any ratio).
3. **Unimodal orientation tuning**, at the peak's curvature (responses clipped at 0):
   a main lobe no wider than ``max_tuning_width`` degrees at half its height (FWHM)
   and no narrower than ``min_tuning_width`` (a one-sample spike, typical of random
   weights, is not a tuning curve), circular variance ``<= max_circular_variance``
   (1 = not used by default: a 180 degree echo inflates it) and every other local
   maximum at least ``second_peak_distance`` degrees from the peak is
   ``<= max_second_peak`` of it.
4. **Both contrast polarities**: 1-3 hold for black on white and for white on black,
   and the two preferred orientations differ by ``<= max_polarity_diff`` degrees.
5. **Position robustness.** 1-4 are applied at every stimulus position of the sweep
   (a grid over one stride cell around the receptive-field centre); ``stability`` is
   the fraction of positions where they hold and must be ``>= min_stability``.
6. **Controls** (black on white, responses averaged over positions), flagged and not
   counted: ``corner`` when the best of the article's sharp angles (arms along the end
   tangents of arcs turning 45, 90, 135 degrees) gives ``> max_angle_ratio`` times the
   best curve; ``end_stop`` when the best ray (a straight half-length line ending at
   the centre) gives ``> max_endpoint_ratio`` times it; ``spot`` when a small dot or a
   closed ring centred on the position gives ``> max_spot_ratio`` times it.

A channel passing 5 without a flag is a **curve detector**. Its preferred orientation
(fitted peak: argmax refined by a parabola; degrees, curvebench's convention:
counter-clockwise on screen toward the side the curve opens), tuning width (FWHM,
degrees) and peak sigma come from the black-on-white sweep **averaged over positions**
(the mean sigma heatmap); its preferred curvature (1/px) is the peak of that heatmap
over the **whole** sweep (a straight line included, refined by a parabola along
curvature): ``min_curvature`` only decides what counts as a curve. The layer's family
is the set of detectors, its orientation coverage the largest circular gap between
consecutive preferred orientations, and ``detectors_ci`` a 95% percentile bootstrap
interval of the family size over positions (positions resampled with replacement,
2000 draws, seed 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import xarray as xr

from suites.file_kinds import CURVE_FAMILY_KIND

from .tuning import fitted_peak, fwhm, wrap180

__all__ = ["Criteria", "sigma_responses", "classify", "classify_all", "classify_arrays", "largest_gap",
           "layer_summary", "summary", "summary_line", "detectors_interval", "FAMILY_KIND", "FLAGS"]

FAMILY_KIND = CURVE_FAMILY_KIND
#: flags that keep a unit out of the family
FLAGS = ("corner", "end_stop", "spot")
BOOTSTRAP_DRAWS = 2000


@dataclass(frozen=True)
class Criteria:
    """Thresholds of the selection test (see the module docstring). Defaults: measured, docs/discover.md."""

    min_sigma: float = 2.0
    min_curvature: float = 0.02
    min_line_ratio: float = 2.0
    max_tuning_width: float = 180.0
    min_tuning_width: float = 12.0
    max_circular_variance: float = 1.0
    max_second_peak: float = 0.5
    second_peak_distance: float = 90.0
    max_polarity_diff: float = 30.0
    min_stability: float = 0.8
    max_angle_ratio: float = 1.0
    max_endpoint_ratio: float = 1.0
    max_spot_ratio: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
                raise ValueError(f"criteria: {f.name} must be a finite number >= 0, got {v!r}")
        if self.min_stability > 1:
            raise ValueError(f"criteria: min_stability must be a fraction in [0, 1], got {self.min_stability!r}")

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def describe(self) -> str:
        """The test in one paragraph (stored in every output)."""
        c = self
        return (
            f"curve sweep in both contrast polarities at several stimulus positions over one stride cell (which unit "
            f"reads each: see 'read_unit'), responses in sigma (see 'sigma'); at each "
            f"position, in each polarity: peak at curvature >= {c.min_curvature:g}/px >= {c.min_sigma:g} sigma, "
            f">= {c.min_line_ratio:g}x the best straight-line response, unimodal orientation tuning at the peak "
            f"curvature (one lobe: {c.min_tuning_width:g} deg <= FWHM <= {c.max_tuning_width:g} deg, circular "
            f"variance <= {c.max_circular_variance:g}, any other peak >= {c.second_peak_distance:g} deg away <= "
            f"{c.max_second_peak:g} of the peak); preferred orientations of the two polarities within "
            f"{c.max_polarity_diff:g} deg; a detector passes at >= {c.min_stability:g} of the positions "
            f"(stability); preferences from the position-averaged sweep; flagged and not counted (position-averaged "
            f"controls): best of the article's sharp angles > {c.max_angle_ratio:g}x the best curve (corner), best "
            f"ray ending at the centre > {c.max_endpoint_ratio:g}x (end_stop), a dot or a closed ring at the centre "
            f"> {c.max_spot_ratio:g}x (spot)"
        )


def _with_positions(da: xr.DataArray) -> xr.DataArray:
    """``da`` with a ``position`` dimension (files from before positions: one position)."""
    return da if "position" in da.dims else da.expand_dims(position=[0])


def sigma_responses(resp: xr.Dataset, layer: str) -> dict[str, np.ndarray]:
    """Sigma arrays of one layer, channel first: ``(activation - baseline) / <L>_std``.

    The baseline is the responses' ``sigma_baseline`` attribute: ``"mean"`` (the dataset
    mean, :data:`suites.analysis.sigma.DEFAULT_SIGMA`) or ``"blank"`` (the blank image of
    the stimulus's polarity; files without the attribute).

    Returns ``curve`` (channel, polarity, curvature, orientation) averaged over positions,
    ``curve_positions`` (channel, position, polarity, curvature, orientation), ``angle``
    (channel, position, angle_turn, orientation), ``ray`` (channel, position,
    orientation) and, where measured, ``spot`` (channel, position, spot).
    """
    need = [f"{layer}_{v}" for v in ("curve", "angle", "ray", "blank", "std")]
    missing = [n for n in need if n not in resp]
    if missing:
        have = sorted({str(v)[: -len("_curve")] for v in resp.data_vars if str(v).endswith("_curve")})
        raise ValueError(f"layer {layer!r}: not in the discover responses (layers: {', '.join(have)}); missing {missing[0]!r}")
    c = f"{layer}_channel"
    std = np.asarray(resp[f"{layer}_std"].values, dtype=np.float64)
    std = np.where(std > 0, std, np.nan)
    blank = resp[f"{layer}_blank"].transpose(c, "polarity").values.astype(np.float64)  # (C, P)
    if resp.attrs.get("sigma_baseline", "blank") == "mean" and f"{layer}_mean" in resp:
        blank = np.repeat(np.asarray(resp[f"{layer}_mean"].values, dtype=np.float64)[:, None], blank.shape[1], axis=1)
    curve = _with_positions(resp[f"{layer}_curve"]).transpose(c, "position", "polarity", "curvature", "orientation")
    curve = (curve.values.astype(np.float64) - blank[:, None, :, None, None]) / std[:, None, None, None, None]
    out = {"curve_positions": curve, "curve": curve.mean(axis=1)}
    b0 = blank[:, 0]
    tdim = "angle_turn" if "angle_turn" in resp[f"{layer}_angle"].dims else "angle_curvature"
    for name, dims in (("angle", (tdim, "orientation")), ("ray", ("orientation",)), ("spot", ("spot",))):
        if f"{layer}_{name}" not in resp:
            continue
        v = _with_positions(resp[f"{layer}_{name}"]).transpose(c, "position", *dims).values.astype(np.float64)
        shape = (-1,) + (1,) * (v.ndim - 1)
        out[name] = (v - b0.reshape(shape)) / std.reshape(shape)
    return out


def circular_variance(orientations: np.ndarray, curve: np.ndarray) -> float:
    """``1 - |sum w e^{i theta}| / sum w`` with ``w = max(curve, 0)`` (1: flat or no response)."""
    w = np.clip(np.nan_to_num(np.asarray(curve, dtype=np.float64)), 0, None)
    if w.sum() <= 0:
        return 1.0
    z = np.sum(w * np.exp(1j * np.deg2rad(orientations)))
    return float(1.0 - abs(z) / w.sum())


def second_peak(orientations: np.ndarray, curve: np.ndarray, preferred: float, distance: float) -> float:
    """Largest local maximum at least ``distance`` degrees from ``preferred``, over the peak (0 if none)."""
    c = np.clip(np.nan_to_num(np.asarray(curve, dtype=np.float64)), 0, None)
    peak = c.max(initial=0.0)
    if peak <= 0 or not math.isfinite(preferred):
        return 0.0
    left, right = np.roll(c, 1), np.roll(c, -1)
    local = (c >= left) & (c >= right) & ((c > left) | (c > right)) & (c > 0)
    far = np.abs(wrap180(np.asarray(orientations) - preferred)) >= distance
    cand = c[local & far]
    return float(cand.max() / peak) if cand.size else 0.0


def _nanmax(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.nanmax(a)) if a.size and np.isfinite(a).any() else math.nan


def _polarity_numbers(o: np.ndarray, k: np.ndarray, heat: np.ndarray, crit: Criteria) -> dict[str, float]:
    """Numbers of one polarity's (curvature, orientation) sigma grid."""
    h = np.nan_to_num(heat, nan=-np.inf)
    curved = k >= crit.min_curvature - 1e-12
    if not curved.any():
        raise ValueError(f"criteria: no swept curvature >= min_curvature {crit.min_curvature:g} (max {k.max():g})")
    sub = np.where(curved[:, None], h, -np.inf)
    i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
    peak = float(sub[i, j])
    line = float(np.max(h[np.abs(k) < 1e-12])) if (np.abs(k) < 1e-12).any() else -math.inf
    ratio = math.inf if line <= 0 else peak / line
    row = np.clip(np.where(np.isfinite(h[i]), h[i], 0.0), 0, None)
    pref = fitted_peak(o, row) if peak > 0 else math.nan
    return {
        "peak_sigma": peak if math.isfinite(peak) else math.nan,
        "curvature": float(k[i]),
        "orientation": pref,
        "line_sigma": line if math.isfinite(line) else math.nan,
        "line_ratio": ratio if peak > 0 else 0.0,
        "circular_variance": circular_variance(o, row),
        "second_peak": second_peak(o, row, pref, crit.second_peak_distance),
        "fwhm": fwhm(o, row) if peak > 0 else math.nan,
    }


def _passes(n: dict[str, float], crit: Criteria) -> bool:
    return bool(
        n["peak_sigma"] >= crit.min_sigma
        and n["line_ratio"] >= crit.min_line_ratio
        and n["circular_variance"] <= crit.max_circular_variance
        and math.isfinite(n["fwhm"]) and crit.min_tuning_width <= n["fwhm"] <= crit.max_tuning_width
        and n["second_peak"] <= crit.max_second_peak
    )


def _polarity_diff(a: dict, b: dict) -> float:
    if math.isfinite(a["orientation"]) and math.isfinite(b["orientation"]):
        return abs(float(wrap180(a["orientation"] - b["orientation"])))
    return math.nan


def whole_sweep_curvature(k: np.ndarray, heat: np.ndarray) -> float:
    """Curvature (1/px) of the peak of a (curvature, orientation) grid over the whole sweep, parabola-refined."""
    h = np.nan_to_num(np.asarray(heat, dtype=np.float64), nan=-np.inf)
    if not np.isfinite(h).any() or np.max(h) <= 0:
        return math.nan
    i, j = np.unravel_index(int(np.argmax(h)), h.shape)
    if 0 < i < k.size - 1 and np.isfinite(h[i - 1:i + 2, j]).all():
        y0, y1, y2 = h[i - 1, j], h[i, j], h[i + 1, j]
        den = y0 - 2 * y1 + y2
        if den < 0:
            step = (k[i + 1] - k[i - 1]) / 2
            return float(k[i] + np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5) * step)
    return float(k[i])


def _spread(prefs: list[float], centre: float) -> float:
    """Largest |difference| (degrees) of the per-position preferred orientations from ``centre``."""
    d = [abs(float(wrap180(p - centre))) for p in prefs if math.isfinite(p)]
    return max(d) if d and math.isfinite(centre) else math.nan


def _unit(o, k, cpos: np.ndarray, ctrl: dict[str, np.ndarray], crit: Criteria) -> dict:
    """All numbers of one unit: ``cpos`` (position, polarity, curvature, orientation) sigma, controls (position, ...)."""
    per = []
    for n in range(cpos.shape[0]):
        a, b = _polarity_numbers(o, k, cpos[n, 0], crit), _polarity_numbers(o, k, cpos[n, 1], crit)
        d = _polarity_diff(a, b)
        per.append((a, bool(_passes(a, crit) and _passes(b, crit) and math.isfinite(d) and d <= crit.max_polarity_diff)))
    mean = cpos.mean(axis=0)
    a, b = _polarity_numbers(o, k, mean[0], crit), _polarity_numbers(o, k, mean[1], crit)
    diff = _polarity_diff(a, b)
    denom = a["peak_sigma"]
    ratio = {name: (_nanmax(v.mean(axis=0)) / denom if denom > 0 and v.size else math.nan) for name, v in ctrl.items()}
    limit = {"angle": crit.max_angle_ratio, "ray": crit.max_endpoint_ratio, "spot": crit.max_spot_ratio}
    flag = {f: bool(math.isfinite(ratio.get(src, math.nan)) and ratio[src] > limit[src])
            for f, src in (("corner", "angle"), ("end_stop", "ray"), ("spot", "spot"))}
    passes = np.array([p for _, p in per])
    stability = float(passes.mean())
    return {
        "preferred_orientation": a["orientation"], "preferred_curvature": whole_sweep_curvature(k, mean[0]),
        "peak_curvature": a["curvature"], "peak_sigma": a["peak_sigma"], "line_sigma": a["line_sigma"],
        "curve_line_ratio": a["line_ratio"], "tuning_width_deg": a["fwhm"],
        "circular_variance": a["circular_variance"], "second_peak": a["second_peak"],
        "preferred_orientation_white_on_black": b["orientation"], "peak_sigma_white_on_black": b["peak_sigma"],
        "curve_line_ratio_white_on_black": b["line_ratio"], "tuning_width_deg_white_on_black": b["fwhm"],
        "polarity_diff_deg": diff, "orientation_spread_deg": _spread([p["orientation"] for p, _ in per], a["orientation"]),
        "passes_black_on_white": _passes(a, crit), "passes_white_on_black": _passes(b, crit),
        "polarity_agreement": bool(math.isfinite(diff) and diff <= crit.max_polarity_diff),
        "stability": stability, "passes_at_position": passes,
        "angle_ratio": ratio.get("angle", math.nan), "endpoint_ratio": ratio.get("ray", math.nan),
        "spot_ratio": ratio.get("spot", math.nan),
        **{f"flag_{f}": v for f, v in flag.items()},
        "flags": ",".join(f for f in FLAGS if flag[f]),
        "detector": bool(stability >= crit.min_stability - 1e-12 and passes.any() and not any(flag.values())),
    }


def classify_arrays(orientations: Sequence[float], curvatures: Sequence[float], curve: np.ndarray, *,
                    controls: dict[str, np.ndarray] | None = None, criteria: Criteria | None = None,
                    channels: Sequence[int] | None = None, layer: str = "layer",
                    clipped_fraction: np.ndarray | None = None) -> xr.Dataset:
    """The test on plain arrays (no model, no responses file): one row per channel (dim ``unit``).

    Args:
        orientations: degrees (curvebench's convention), the last axis of ``curve``.
        curvatures: 1/px, including 0 (a straight line) for the curve/line test.
        curve: sigma responses ``(channel, polarity, curvature, orientation)`` or
            ``(channel, position, polarity, curvature, orientation)``; polarity 0 is black
            on white, 1 white on black (give the same array twice for one polarity).
        controls: optional sigma arrays ``{"angle": (C, N, T, O), "ray": (C, N, O),
            "spot": (C, N, S)}`` (N positions; a missing control raises no flag).
        criteria: thresholds (:class:`Criteria`).
        channels: channel numbers (default ``0..C-1``).
        layer: the ``layer`` coordinate.
        clipped_fraction: per channel, the fraction of the sweep a clipping activation
            (ReLU6) flattened (stored as ``clipped_fraction``; ``saturated`` when > 0).

    Returns:
        The family dataset of :func:`classify`.
    """
    crit = criteria or Criteria()
    o = np.asarray(orientations, dtype=np.float64)
    k = np.asarray(curvatures, dtype=np.float64)
    cur = np.asarray(curve, dtype=np.float64)
    if cur.ndim == 4:
        cur = cur[:, None]
    if cur.ndim != 5 or cur.shape[2] != 2 or cur.shape[3:] != (k.size, o.size):
        raise ValueError(f"curve: expected (channel, [position,] 2 polarities, {k.size} curvatures, {o.size} "
                         f"orientations), got shape {np.shape(curve)}")
    ctrl = {n: np.asarray(v, dtype=np.float64) for n, v in (controls or {}).items()}
    rows = [_unit(o, k, cur[ci], {n: v[ci] for n, v in ctrl.items()}, crit) for ci in range(cur.shape[0])]
    n = len(rows)
    ch = np.arange(n) if channels is None else np.asarray(channels)
    data = {name: (("unit",), np.asarray([r[name] for r in rows]))
            for name in rows[0] if name != "passes_at_position"} if rows else {}
    if rows:
        data["flags"] = (("unit",), np.asarray([r["flags"] for r in rows], dtype=object).astype(str))
        data["passes_at_position"] = (("unit", "position"), np.stack([r["passes_at_position"] for r in rows]))
    frac = np.zeros(n) if clipped_fraction is None else np.asarray(clipped_fraction, dtype=np.float64)
    data["clipped_fraction"] = (("unit",), frac)
    data["saturated"] = (("unit",), frac > 0)
    out = xr.Dataset(data, coords={"layer": (("unit",), np.array([layer] * n, dtype=str)),
                                   "channel": (("unit",), ch.astype(np.int64))})
    out.attrs.update(file_kind=FAMILY_KIND, test=crit.describe(), **{f"criterion_{k_}": v for k_, v in crit.as_dict().items()})
    return out


def classify(resp: xr.Dataset, layer: str, criteria: Criteria | None = None) -> xr.Dataset:
    """The test's numbers, verdicts and flags for every channel of ``layer`` (dim ``unit``).

    Variables (per unit): ``preferred_orientation`` (deg), ``preferred_curvature`` (1/px,
    whole sweep), ``peak_curvature`` (1/px, the curve peak the test uses), ``peak_sigma``,
    ``line_sigma``, ``curve_line_ratio``, ``tuning_width_deg`` (FWHM), ``circular_variance``,
    ``second_peak``, the white-on-black ``preferred_orientation``/``peak_sigma``/
    ``curve_line_ratio``/``tuning_width_deg``, ``polarity_diff_deg``, ``polarity_agreement``,
    ``orientation_spread_deg`` (largest distance of a position's preference from the
    reported one), ``passes_black_on_white``/``passes_white_on_black`` (position-averaged),
    ``stability`` and ``passes_at_position`` (unit, position), ``angle_ratio``,
    ``endpoint_ratio``, ``spot_ratio``, ``flag_corner``, ``flag_end_stop``, ``flag_spot``,
    ``flags`` (text), ``clipped_fraction``, ``saturated``, ``detector``; coords ``layer``,
    ``channel``; the position offsets as ``position_dx``/``position_dy`` (and, from a run that
    reads the nearest unit, ``phase_dx``/``phase_dy`` and ``unit_dx``/``unit_dy``).
    """
    s = sigma_responses(resp, layer)
    ctrl = {n: s[n] for n in ("angle", "ray", "spot") if n in s}
    frac = resp[f"{layer}_clipped_fraction"].values if f"{layer}_clipped_fraction" in resp else None
    out = classify_arrays(resp.coords["orientation"].values, resp.coords["curvature"].values, s["curve_positions"],
                          controls=ctrl, criteria=criteria, channels=resp.coords[f"{layer}_channel"].values,
                          layer=layer, clipped_fraction=frac)
    for name in ("position_dx", "position_dy", "phase_dx", "phase_dy", "unit_dx", "unit_dy"):
        if name in resp.coords:
            out = out.assign_coords({name: (("position",), resp[name].values)})
    test = out.attrs["test"]
    out.attrs.update(_provenance(resp))
    out.attrs["test"] = test
    acts = resp[f"{layer}_curve"].attrs.get("activation")
    if acts:
        out.attrs[f"activation_{layer}"] = str(acts)
    return out


def _provenance(resp: xr.Dataset) -> dict:
    keys = ("model", "weights", "weights_sha256", "random_weights", "fingerprint", "statistics", "statistics_proxy",
            "sigma", "sweep", "probe_input", "positions", "read_unit", "stride", "orientation_convention", "controls",
            "activation", "activations")
    return {k: resp.attrs[k] for k in keys if k in resp.attrs}


def classify_all(resp: xr.Dataset, criteria: Criteria | None = None, layers: Sequence[str] | None = None) -> xr.Dataset:
    """:func:`classify` for every layer of the responses (or ``layers``), concatenated along ``unit``."""
    layers = list(layers) if layers else str(resp.attrs.get("layers", "")).split()
    if not layers:
        raise ValueError("discover responses: no layers (attribute 'layers' is empty)")
    parts = [classify(resp, l, criteria) for l in layers]
    attrs = {}
    for p in parts:
        attrs.update(p.attrs)
    out = xr.concat(parts, dim="unit", data_vars="all", coords="different", compat="equals") if len(parts) > 1 else parts[0]
    out.attrs = attrs
    out.attrs["layers"] = " ".join(layers)
    return out


def largest_gap(orientations: Sequence[float]) -> float:
    """Largest circular gap (degrees) between consecutive orientations; 360 for one, NaN for none."""
    p = np.sort(np.asarray([x for x in orientations if math.isfinite(x)], dtype=np.float64) % 360.0)
    if p.size == 0:
        return math.nan
    if p.size == 1:
        return 360.0
    return float(np.max(np.diff(np.concatenate([p, p[:1] + 360.0]))))


def _num(v) -> float | None:
    v = float(v)
    return round(v, 4) if math.isfinite(v) else None


def detectors_interval(passes: np.ndarray, eligible: np.ndarray, min_stability: float, *,
                       draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> tuple[int, int]:
    """95% percentile bootstrap interval of the family size over positions.

    ``passes`` (unit, position) bool: tests 1-4 at each position; ``eligible`` (unit,)
    bool: not flagged. Positions are resampled with replacement ``draws`` times (numpy
    generator ``seed``); each draw counts eligible units whose pass fraction is
    ``>= min_stability``. One position gives ``(n, n)``.
    """
    passes = np.asarray(passes, dtype=bool)
    eligible = np.asarray(eligible, dtype=bool)
    if passes.ndim != 2 or passes.shape[0] == 0:
        return 0, 0
    npos = passes.shape[1]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, npos, size=(draws, npos))
    frac = passes[:, idx].mean(axis=2)  # (unit, draws)
    counts = ((frac >= min_stability - 1e-12) & passes[:, idx].any(axis=2) & eligible[:, None]).sum(axis=0)
    lo, hi = np.percentile(counts, [2.5, 97.5])
    return int(math.floor(lo)), int(math.ceil(hi))


_MEMBER_KEYS = ("preferred_orientation", "preferred_curvature", "peak_curvature", "peak_sigma", "curve_line_ratio",
                "tuning_width_deg", "stability", "orientation_spread_deg", "polarity_diff_deg",
                "preferred_orientation_white_on_black", "angle_ratio", "endpoint_ratio", "spot_ratio",
                "clipped_fraction")


def _members(det: xr.Dataset) -> list[dict]:
    out = []
    for i in np.argsort(det.preferred_orientation.values, kind="stable"):
        m = {"channel": int(det.channel.values[i])}
        for key in _MEMBER_KEYS:
            if key in det:
                v = float(det[key].values[i])
                m[key] = _num(min(v, 1e6) if key == "curve_line_ratio" else v)
        m["saturated"] = bool(det.saturated.values[i]) if "saturated" in det else False
        out.append(m)
    return out


def layer_summary(family: xr.Dataset, layer: str) -> dict:
    """One layer of the JSON summary: counts, ``detectors_ci``, coverage, medians and the members.

    ``{"channels_tested", "positions", "detectors", "detectors_ci": [lo, hi], "largest_gap_deg",
    "flagged": {"corner", "end_stop", "spot"}, "saturated", "passes_one_polarity",
    "median_tuning_width_deg", "median_preferred_curvature", "median_stability", "family": [...]}``;
    members sorted by preferred orientation, each with ``stability``.
    """
    sub = family.isel(unit=np.flatnonzero(family.layer.values == layer))
    det = sub.isel(unit=np.flatnonzero(sub.detector.values.astype(bool)))
    members = _members(det)
    prefs = [m["preferred_orientation"] for m in members if m["preferred_orientation"] is not None]
    stab = sub.stability.values if "stability" in sub else np.where(sub.detector.values, 1.0, 0.0)
    passing = stab >= float(sub.attrs.get("criterion_min_stability", 0.0)) - 1e-12
    if "passes_at_position" in sub:
        passing &= sub.passes_at_position.values.any(axis=1)
    flags = {f: sub[f"flag_{f}"].values.astype(bool) if f"flag_{f}" in sub else np.zeros(sub.sizes["unit"], bool)
             for f in FLAGS}
    eligible = ~np.any(np.stack(list(flags.values())), axis=0) if sub.sizes["unit"] else np.zeros(0, bool)
    if "passes_at_position" in sub:
        ci = detectors_interval(sub.passes_at_position.values, eligible,
                                float(sub.attrs.get("criterion_min_stability", 0.0)))
    else:
        ci = (len(members), len(members))
    widths = [m["tuning_width_deg"] for m in members if m.get("tuning_width_deg") is not None]
    curv = [m["preferred_curvature"] for m in members if m.get("preferred_curvature") is not None]
    return {
        "channels_tested": int(sub.sizes["unit"]),
        "positions": int(sub.sizes.get("position", 1)),
        "detectors": len(members),
        "detectors_ci": [ci[0], ci[1]],
        "largest_gap_deg": _num(largest_gap(prefs)),
        "flagged": {f: int((passing & v).sum()) for f, v in flags.items()},
        "saturated": int(sum(m["saturated"] for m in members)),
        "passes_one_polarity": int((sub.passes_black_on_white.values.astype(bool)
                                    | sub.passes_white_on_black.values.astype(bool)).sum()),
        "median_tuning_width_deg": _num(np.median(widths)) if widths else None,
        "median_preferred_curvature": _num(np.median(curv)) if curv else None,
        "median_stability": _num(np.median([m["stability"] for m in members])) if members and "stability" in sub else None,
        "family": members,
    }


def summary(family: xr.Dataset, control: xr.Dataset | None = None) -> dict:
    """The JSON summary of ``curvebench discover`` (see docs/discover.md).

    ``{"model", "weights", "statistics", "sigma", "positions", "activations", "test", "criteria",
    "layers": {LAYER: {...}}}`` plus ``"control"`` of the same shape for the random-weights control.
    """
    def one(ds: xr.Dataset) -> dict:
        layers = list(dict.fromkeys(str(x) for x in ds.layer.values))
        return {
            "model": ds.attrs.get("model"),
            "weights": ds.attrs.get("weights") or None,
            "weights_sha256": ds.attrs.get("weights_sha256") or None,
            "random_weights": bool(int(ds.attrs.get("random_weights", 0))),
            "statistics": ds.attrs.get("statistics"),
            "sigma": ds.attrs.get("sigma"),
            "probe_input": ds.attrs.get("probe_input"),
            "positions": ds.attrs.get("positions"),
            "read_unit": ds.attrs.get("read_unit"),
            "activations": ds.attrs.get("activations"),
            "sweep": ds.attrs.get("sweep"),
            "orientation_convention": ds.attrs.get("orientation_convention"),
            "test": ds.attrs.get("test"),
            "criteria": {k[len("criterion_"):]: float(v) for k, v in ds.attrs.items() if k.startswith("criterion_")},
            "layers": {l: layer_summary(ds, l) for l in layers},
        }

    out = one(family)
    if control is not None:
        out["control"] = one(control)
    return out


def summary_line(summ: dict, layer: str) -> str:
    """``"N curve detectors (95% CI lo-hi) in LAYER, orientations cover the circle with largest gap G deg; random-weights control: M"``."""
    s = summ["layers"][layer]
    gap = s["largest_gap_deg"]
    ci = s.get("detectors_ci")
    ci_text = f" (95% CI {ci[0]}-{ci[1]} over positions)" if ci and s.get("positions", 1) > 1 else ""
    text = (f"{s['detectors']} curve detectors{ci_text} in {layer}, orientations cover the circle with largest gap "
            f"{'n/a' if gap is None else f'{gap:.0f}'} deg")
    if "control" in summ and layer in summ["control"]["layers"]:
        text += f"; random-weights control: {summ['control']['layers'][layer]['detectors']}"
    return text

