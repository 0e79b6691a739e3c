"""Which channels are curve detectors: the selection test of ``curvebench discover``.

Works on the responses dataset of :mod:`suites.discovery.responses` (no model, no rendering).

The test (every number a field of :class:`Criteria`, a ``curvebench discover`` flag):

1. **Strength.** Responses are in sigma above the blank image:
   ``(activation - activation(blank of that polarity)) / std``, ``std`` the channel's
   post-ReLU standard deviation over natural images. The peak over curvatures
   ``>= min_curvature`` is ``>= min_sigma``.
2. **Curve, not line.** That peak is ``>= min_line_ratio`` times the best straight-line
   (curvature 0) response, over all orientations (a line that does not excite the
   unit passes any ratio).
3. **Unimodal orientation tuning**, at the peak's curvature (responses clipped at 0):
   a main lobe no wider than ``max_tuning_width`` degrees at half its height (FWHM)
   and no narrower than ``min_tuning_width`` (a one-sample spike, typical of random
   weights, is not a tuning curve),
   circular variance ``<= max_circular_variance`` (1 = not used by default: a 180
   degree echo inflates it) and every other local maximum at
   least ``second_peak_distance`` degrees from the peak is ``<= max_second_peak`` of it.
4. **Both contrast polarities**: 1-3 hold for black on white and for white on black,
   and the two preferred orientations differ by ``<= max_polarity_diff`` degrees.
5. **Controls** (black on white). ``corner``: the best sharp angle (arms along a matched
   arc's end tangents) gives ``> max_angle_ratio`` times the best curve;
   ``end_stop``: the best ray (a straight half-length line ending at the centre) gives
   ``> max_endpoint_ratio`` times the best curve. Flagged units are reported, not
   counted.

A channel passing 1-4 without a flag is a **curve detector**. Its preferred orientation
(fitted peak, degrees, curvebench's convention: counter-clockwise on screen toward the
side the curve opens), preferred curvature (1/px) and tuning width (FWHM, degrees) are
those of the black-on-white sweep; the layer's family is the set of detectors, and its
orientation coverage is the largest circular gap between consecutive preferred
orientations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import xarray as xr

from suites.file_kinds import CURVE_FAMILY_KIND

from .tuning import fitted_peak, fwhm, wrap180

__all__ = ["Criteria", "sigma_responses", "classify", "classify_all", "largest_gap", "layer_summary", "summary",
           "summary_line", "FAMILY_KIND"]

FAMILY_KIND = CURVE_FAMILY_KIND
FLAGS = ("corner", "end_stop")


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
    max_angle_ratio: float = 1.0
    max_endpoint_ratio: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
                raise ValueError(f"criteria: {f.name} must be a finite number >= 0, got {v!r}")

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def describe(self) -> str:
        """The test in one paragraph (stored in every output)."""
        c = self
        return (
            f"curve sweep in both contrast polarities at the centre unit, responses in sigma above the blank image "
            f"(post-ReLU std over natural images); in each polarity: peak at curvature >= {c.min_curvature:g}/px "
            f">= {c.min_sigma:g} sigma, >= {c.min_line_ratio:g}x the best straight-line response, unimodal "
            f"orientation tuning at the peak curvature (one lobe: {c.min_tuning_width:g} deg <= FWHM <= "
            f"{c.max_tuning_width:g} deg, circular variance "
            f"<= {c.max_circular_variance:g}, any other "
            f"peak >= {c.second_peak_distance:g} deg away <= {c.max_second_peak:g} of the peak); preferred "
            f"orientations of the two polarities within {c.max_polarity_diff:g} deg; flagged and not counted: "
            f"best sharp angle > {c.max_angle_ratio:g}x the best curve (corner), best ray ending at the centre "
            f"> {c.max_endpoint_ratio:g}x the best curve (end_stop)"
        )


def sigma_responses(resp: xr.Dataset, layer: str) -> dict[str, np.ndarray]:
    """Sigma-above-blank arrays of one layer, channel first.

    Returns ``curve`` (channel, polarity, curvature, orientation), ``angle`` (channel,
    angle_curvature, orientation) and ``ray`` (channel, orientation).
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
    curve = resp[f"{layer}_curve"].transpose(c, "polarity", "curvature", "orientation").values.astype(np.float64)
    curve = (curve - blank[:, :, None, None]) / std[:, None, None, None]
    b0 = blank[:, 0]
    angle = resp[f"{layer}_angle"].transpose(c, "angle_curvature", "orientation").values.astype(np.float64)
    angle = (angle - b0[:, None, None]) / std[:, None, None]
    ray = resp[f"{layer}_ray"].transpose(c, "orientation").values.astype(np.float64)
    ray = (ray - b0[:, None]) / std[:, None]
    return {"curve": curve, "angle": angle, "ray": ray}


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
    return float(np.nanmax(a)) if np.isfinite(a).any() else math.nan


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


def classify(resp: xr.Dataset, layer: str, criteria: Criteria | None = None) -> xr.Dataset:
    """The test's numbers, verdicts and flags for every channel of ``layer`` (dim ``unit``).

    Variables (per unit): ``preferred_orientation`` (deg), ``preferred_curvature`` (1/px),
    ``peak_sigma``, ``line_sigma``, ``curve_line_ratio``, ``tuning_width_deg`` (FWHM),
    ``circular_variance``, ``second_peak``, the same with suffix ``_white_on_black``,
    ``polarity_diff_deg``, ``polarity_agreement`` (bool), ``passes_black_on_white``,
    ``passes_white_on_black``, ``angle_ratio``, ``endpoint_ratio``, ``flag_corner``,
    ``flag_end_stop``, ``flags`` (text), ``detector`` (bool); coords ``layer``, ``channel``.
    """
    crit = criteria or Criteria()
    s = sigma_responses(resp, layer)
    o = np.asarray(resp.coords["orientation"].values, dtype=np.float64)
    k = np.asarray(resp.coords["curvature"].values, dtype=np.float64)
    ka = np.asarray(resp.coords["angle_curvature"].values, dtype=np.float64)
    channels = np.asarray(resp.coords[f"{layer}_channel"].values)
    rows: dict[str, list] = {}

    def put(name: str, value) -> None:
        rows.setdefault(name, []).append(value)

    for ci in range(len(channels)):
        a = _polarity_numbers(o, k, s["curve"][ci, 0], crit)
        b = _polarity_numbers(o, k, s["curve"][ci, 1], crit)
        diff = abs(float(wrap180(a["orientation"] - b["orientation"]))) if math.isfinite(a["orientation"]) and math.isfinite(b["orientation"]) else math.nan
        agree = bool(math.isfinite(diff) and diff <= crit.max_polarity_diff)
        ang = s["angle"][ci][ka >= crit.min_curvature - 1e-12]
        best_angle = _nanmax(ang)
        best_ray = _nanmax(s["ray"][ci])
        denom = a["peak_sigma"]
        angle_ratio = best_angle / denom if denom > 0 else math.nan
        end_ratio = best_ray / denom if denom > 0 else math.nan
        corner = bool(math.isfinite(angle_ratio) and angle_ratio > crit.max_angle_ratio)
        end_stop = bool(math.isfinite(end_ratio) and end_ratio > crit.max_endpoint_ratio)
        pa, pb = _passes(a, crit), _passes(b, crit)
        put("preferred_orientation", a["orientation"])
        put("preferred_curvature", a["curvature"])
        put("peak_sigma", a["peak_sigma"])
        put("line_sigma", a["line_sigma"])
        put("curve_line_ratio", a["line_ratio"])
        put("tuning_width_deg", a["fwhm"])
        put("circular_variance", a["circular_variance"])
        put("second_peak", a["second_peak"])
        for key, name in (("orientation", "preferred_orientation"), ("curvature", "preferred_curvature"),
                          ("peak_sigma", "peak_sigma"), ("line_ratio", "curve_line_ratio"),
                          ("circular_variance", "circular_variance"), ("second_peak", "second_peak")):
            put(f"{name}_white_on_black", b[key])
        put("polarity_diff_deg", diff)
        put("polarity_agreement", agree)
        put("passes_black_on_white", pa)
        put("passes_white_on_black", pb)
        put("angle_ratio", angle_ratio)
        put("endpoint_ratio", end_ratio)
        put("flag_corner", corner)
        put("flag_end_stop", end_stop)
        put("flags", ",".join(f for f, on in (("corner", corner), ("end_stop", end_stop)) if on))
        put("detector", bool(pa and pb and agree and not corner and not end_stop))
    n = len(channels)
    data = {}
    for name, values in rows.items():
        arr = np.asarray(values, dtype=object if name == "flags" else None)
        if name == "flags":
            arr = arr.astype(str)
        data[name] = (("unit",), arr)
    out = xr.Dataset(data, coords={"layer": (("unit",), np.array([layer] * n, dtype=str)),
                                   "channel": (("unit",), channels.astype(np.int64))})
    out.attrs.update(_provenance(resp))
    out.attrs.update(file_kind=FAMILY_KIND, test=crit.describe(), **{f"criterion_{k_}": v for k_, v in crit.as_dict().items()})
    return out


def _provenance(resp: xr.Dataset) -> dict:
    keys = ("model", "weights", "weights_sha256", "random_weights", "fingerprint", "statistics", "statistics_proxy",
            "sweep", "probe_input", "orientation_convention", "controls", "activation")
    return {k: resp.attrs[k] for k in keys if k in resp.attrs}


def classify_all(resp: xr.Dataset, criteria: Criteria | None = None, layers: Sequence[str] | None = None) -> xr.Dataset:
    """:func:`classify` for every layer of the responses (or ``layers``), concatenated along ``unit``."""
    layers = list(layers) if layers else str(resp.attrs.get("layers", "")).split()
    if not layers:
        raise ValueError("discover responses: no layers (attribute 'layers' is empty)")
    parts = [classify(resp, l, criteria) for l in layers]
    out = xr.concat(parts, dim="unit") if len(parts) > 1 else parts[0]
    out.attrs = dict(parts[0].attrs)
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


def layer_summary(family: xr.Dataset, layer: str) -> dict:
    """``{"channels_tested", "detectors", "largest_gap_deg", "flagged", "family": [...]}`` of one layer."""
    sub = family.where(family.layer == layer, drop=True)
    det = sub.where(sub.detector.astype(bool), drop=True) if int(sub.detector.sum()) else None
    members = []
    if det is not None:
        order = np.argsort(det.preferred_orientation.values)
        for i in order:
            members.append({
                "channel": int(det.channel.values[i]),
                "preferred_orientation": _num(det.preferred_orientation.values[i]),
                "preferred_curvature": _num(det.preferred_curvature.values[i]),
                "peak_sigma": _num(det.peak_sigma.values[i]),
                "curve_line_ratio": _num(min(float(det.curve_line_ratio.values[i]), 1e6)),
                "tuning_width_deg": _num(det.tuning_width_deg.values[i]),
                "polarity_diff_deg": _num(det.polarity_diff_deg.values[i]),
                "preferred_orientation_white_on_black": _num(det.preferred_orientation_white_on_black.values[i]),
                "angle_ratio": _num(det.angle_ratio.values[i]),
                "endpoint_ratio": _num(det.endpoint_ratio.values[i]),
            })
    prefs = [m["preferred_orientation"] for m in members if m["preferred_orientation"] is not None]
    gap = largest_gap(prefs)
    passing = (sub.passes_black_on_white.astype(bool) & sub.passes_white_on_black.astype(bool)
               & sub.polarity_agreement.astype(bool))
    return {
        "channels_tested": int(sub.sizes["unit"]),
        "detectors": len(members),
        "largest_gap_deg": _num(gap),
        "flagged": {"corner": int((passing & sub.flag_corner.astype(bool)).sum()),
                    "end_stop": int((passing & sub.flag_end_stop.astype(bool)).sum())},
        "passes_one_polarity": int((sub.passes_black_on_white.astype(bool) | sub.passes_white_on_black.astype(bool)).sum()),
        "median_tuning_width_deg": _num(np.median([m["tuning_width_deg"] for m in members if m["tuning_width_deg"] is not None]))
        if members else None,
        "median_preferred_curvature": _num(np.median([m["preferred_curvature"] for m in members])) if members else None,
        "family": members,
    }


def summary(family: xr.Dataset, control: xr.Dataset | None = None) -> dict:
    """The JSON summary of ``curvebench discover`` (see docs/discover.md).

    ``{"model", "weights", "statistics", "test", "criteria", "layers": {LAYER: {...}}}``
    plus ``"control"`` of the same shape for the random-weights control.
    """
    def one(ds: xr.Dataset) -> dict:
        layers = list(dict.fromkeys(str(x) for x in ds.layer.values))
        return {
            "model": ds.attrs.get("model"),
            "weights": ds.attrs.get("weights") or None,
            "weights_sha256": ds.attrs.get("weights_sha256") or None,
            "random_weights": bool(int(ds.attrs.get("random_weights", 0))),
            "statistics": ds.attrs.get("statistics"),
            "probe_input": ds.attrs.get("probe_input"),
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
    """``"N curve detectors in LAYER, orientations cover the circle with largest gap G deg; random-weights control: M"``."""
    s = summ["layers"][layer]
    gap = s["largest_gap_deg"]
    text = (f"{s['detectors']} curve detectors in {layer}, orientations cover the circle with largest gap "
            f"{'n/a' if gap is None else f'{gap:.0f}'} deg")
    if "control" in summ and layer in summ["control"]["layers"]:
        text += f"; random-weights control: {summ['control']['layers'][layer]['detectors']}"
    return text
