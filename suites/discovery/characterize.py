"""``curvebench characterize DIR``: the article's claims about curve detectors, as numbers, for a discovered family.

For every member of a ``curvebench discover`` family (one layer), at its preferred
orientation and peak curvature, on the run's own stimulus positions, sweep and sigma
(:mod:`suites.analysis.sigma`), this module measures one value per claim and a family
summary with a 95% interval (percentile bootstrap over members, 2000 draws, seed 0):

* **fill** (article: "Curves are invariant to fill."): ``fill_ratio`` = filled / plain
  response at the preferred stimulus (``fill=1``, ``fill_mode="article"``), and
  ``fill_heatmap_r``: Pearson correlation of the filled and plain orientation x
  curvature heatmaps (position-averaged, black on white);
* **colour** (article: "invariant to cosmetic properties such as brightness, texture,
  and color"): ``colour_ratio_<pair>`` = response to the arc drawn in one hue on
  another / black on white, for red/green, green/red, blue/yellow, yellow/blue;
* **contrast polarity** (same statement): ``polarity_ratio`` = peak white-on-black /
  peak black-on-white of the discover sweep;
* **rounding** (article: "Each step we see the maximum activation for each neuron
  increase" as angles round into curves): responses at ``rounding`` 0, 0.25, 0.5,
  0.75, 1; ``rounding_rises`` when every step increases it, ``curve_angle_ratio`` =
  rounding 1 / rounding 0 (curve vs the sharp angle);
* **combing** (article: "a weak preference for small perpendicular lines"):
  ``combing_ratio`` = arc with 8 ticks (6 px, both sides) / plain arc;
  ``combing_helps`` when > 1.

Ratios are of sigma values (above the run's baseline); a member whose plain response
is not positive gets NaN ratios. Results: ``characterize.json``, ``characterize.nc``
(dim ``unit``) and ``characterize.png``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from probes.weights_spec import RANDOM_TEXT
from suites.discovery.responses import DiscoverError
from suites.file_kinds import CHARACTERIZE_KIND

__all__ = ["CLAIMS", "HUE_PAIRS", "ROUNDINGS", "load_discover_output", "characterize", "characterize_summary"]

HUE_PAIRS = {"red_on_green": ((1.0, 0.0, 0.0), (0.0, 0.6, 0.0)), "green_on_red": ((0.0, 0.6, 0.0), (1.0, 0.0, 0.0)),
             "blue_on_yellow": ((0.0, 0.0, 1.0), (1.0, 1.0, 0.0)), "yellow_on_blue": ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))}
ROUNDINGS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: claim -> (the article's statement, per-unit variables summarised)
CLAIMS = {
    "fill": ("Curves are invariant to fill.", ("fill_ratio", "fill_heatmap_r")),
    "colour": ("Curve neurons are invariant to cosmetic properties such as brightness, texture, and color.",
               tuple(f"colour_ratio_{p}" for p in HUE_PAIRS)),
    "polarity": ("largely invariant to cosmetic attributes like color, brightness, and texture",
                 ("polarity_ratio",)),
    "rounding": ("Each step we see the maximum activation for each neuron increase [as angles round into curves].",
                 ("rounding_rises", "curve_angle_ratio")),
    "combing": ("a weak preference for small perpendicular lines (\u201ccombing\u201d)", ("combing_ratio", "combing_helps")),
}
_BLACK_ON_WHITE = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


@dataclass
class DiscoverOutput:
    """A discover output folder, read: its family, its responses and the layer characterised."""

    folder: Path
    family: xr.Dataset
    responses: xr.Dataset
    layer: str


def load_discover_output(folder: str | Path, layer: str | None = None) -> DiscoverOutput:
    """Read ``family.nc`` and ``responses.nc`` of a discover output; one-line errors for anything else."""
    from suites.analysis.curve_family import FAMILY_KIND
    from suites.discovery.responses import RESPONSES_KIND
    from suites.errors import ResultsFileError
    from suites.results.attributes import file_kind
    from suites.results.files import open_file

    folder = Path(folder)
    if not folder.is_dir():
        raise DiscoverError(f"characterize: {folder} is not a folder (give a curvebench discover output folder)")
    data = {}
    for name, kind in (("family", FAMILY_KIND), ("responses", RESPONSES_KIND)):
        path = folder / f"{name}.nc"
        try:
            data[name] = open_file(path, option="characterize")
        except (OSError, ResultsFileError):
            raise DiscoverError(f"characterize: {folder} is not a discover output (no readable {name}.nc)") from None
        if file_kind(data[name].attrs) != kind:
            raise DiscoverError(f"characterize: {path} is not a discover {name} file "
                                f"(file_kind={file_kind(data[name].attrs)!r})")
    layers = list(dict.fromkeys(str(x) for x in data["family"].layer.values))
    layer = layer or layers[0]
    if layer not in layers:
        raise DiscoverError(f"characterize: layer {layer!r} is not in {folder}; layers: {', '.join(layers)}")
    return DiscoverOutput(folder, data["family"], data["responses"], layer)


def _members(out: DiscoverOutput) -> list[dict]:
    from suites.analysis.curve_family import layer_summary

    members = layer_summary(out.family, out.layer)["family"]
    if not members:
        raise DiscoverError(f"characterize: the family of {out.layer!r} in {out.folder} is empty; nothing to characterise")
    return members


class _Probe:
    """Renders stimuli at the run's positions and returns the layer's sigma, averaged over positions."""

    def __init__(self, model, out: DiscoverOutput) -> None:
        from suites.discovery.responses import Sweep, _where

        r = out.responses
        self.model, self.layer = model, out.layer
        self.sweep = Sweep(length=float(r.attrs["length"]), width=float(r.attrs["width"]), size=int(r.attrs["size"]),
                           positions=1)
        self.where = _where(model, [out.layer], self.sweep)
        cx, cy = self.where[1]
        # where the run drew each stimulus relative to the unit it read (files before read_unit: the offsets)
        px, py = ("phase_dx", "phase_dy") if "phase_dx" in r.coords else ("position_dx", "position_dy")
        dx = r[px].values if px in r.coords else np.zeros(1)
        dy = r[py].values if py in r.coords else np.zeros(1)
        self.positions = [(cx + a, cy + b) for a, b in zip(dx, dy)]
        base = r[f"{out.layer}_mean"].values if r.attrs.get("sigma_baseline") == "mean" else \
            r[f"{out.layer}_blank"].sel(polarity="black_on_white").values
        self.base = np.asarray(base, dtype=np.float64)
        std = np.asarray(r[f"{out.layer}_std"].values, dtype=np.float64)
        self.std = np.where(std > 0, std, np.nan)

    def sigma(self, kind: str, params: dict[str, np.ndarray], **common) -> np.ndarray:
        """``(stimuli, channels)`` sigma, mean over positions, for per-stimulus ``params`` (equal-length arrays)."""
        from suites.discovery.responses import _activation, _probe_all, _render_batches

        acc = 0.0
        for pos in self.positions:
            c = {"length": self.sweep.length, "width": self.sweep.width, "position": pos, **common}
            it = _render_batches(kind, params, c, self.where[0], 8, self.model.device)
            raw = _probe_all(self.model, [self.layer], it, self.where[2], self.where[3])
            act, _, _ = _activation(raw[self.layer], raw.get(f"{self.layer}_pre_relu"))
            acc = acc + (act - self.base) / self.std
        return acc / len(self.positions)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / b, np.nan)


def _measure(probe: _Probe, out: DiscoverOutput, members: list[dict]) -> dict[str, np.ndarray]:
    """Per-member values of every claim (module docstring)."""
    ch = np.array([m["channel"] for m in members])
    o = np.array([m["preferred_orientation"] for m in members], dtype=np.float64)
    k = np.array([m.get("peak_curvature", m["preferred_curvature"]) for m in members], dtype=np.float64)
    idx = np.arange(len(members))
    pref = {"orientation": o, "curvature": k}
    fg, bg = _BLACK_ON_WHITE
    plain = probe.sigma("curve", pref, fg=fg, bg=bg)[idx, ch]
    vals: dict[str, np.ndarray] = {"plain_sigma": plain}
    vals["fill_ratio"] = _ratio(probe.sigma("curve", pref, fill=1.0, fg=fg, bg=bg)[idx, ch], plain)
    vals["fill_heatmap_r"] = _fill_heatmap_r(probe, out, ch)
    for name, (f, b) in HUE_PAIRS.items():
        vals[f"colour_ratio_{name}"] = _ratio(probe.sigma("curve", pref, fg=f, bg=b)[idx, ch], plain)
    fam = out.family.isel(unit=np.flatnonzero(out.family.layer.values == out.layer))
    by_ch = {int(c): i for i, c in enumerate(fam.channel.values)}
    rows = [by_ch[int(c)] for c in ch]
    vals["polarity_ratio"] = _ratio(fam["peak_sigma_white_on_black"].values[rows], fam["peak_sigma"].values[rows])
    rnd = np.stack([probe.sigma("curve", pref, rounding=float(r), fg=fg, bg=bg)[idx, ch] for r in ROUNDINGS], axis=1)
    vals["rounding_sigma"] = rnd
    vals["rounding_rises"] = np.all(np.diff(rnd, axis=1) > 0, axis=1)
    vals["curve_angle_ratio"] = _ratio(rnd[:, -1], rnd[:, 0])
    comb = probe.sigma("curve", pref, ticks=8.0, tick_length=6.0, tick_side="both", fg=fg, bg=bg)[idx, ch]
    vals["combing_ratio"] = _ratio(comb, plain)
    vals["combing_helps"] = vals["combing_ratio"] > 1
    return vals


def _fill_heatmap_r(probe: _Probe, out: DiscoverOutput, ch: np.ndarray) -> np.ndarray:
    """Pearson r of each member's filled and plain (curvature, orientation) heatmaps (black on white)."""
    from suites.analysis.curve_family import sigma_responses

    r = out.responses
    o, k = r.orientation.values.astype(float), r.curvature.values.astype(float)
    go, gk = np.meshgrid(o, k)
    filled = probe.sigma("curve", {"orientation": go.ravel(), "curvature": gk.ravel()}, fill=1.0,
                         fg=_BLACK_ON_WHITE[0], bg=_BLACK_ON_WHITE[1])          # (K*O, C)
    plain = sigma_responses(r, out.layer)["curve"][:, 0].reshape(len(r[f"{out.layer}_channel"]), -1)  # (C, K*O)
    out_r = []
    for c in ch:
        a, b = filled[:, c], plain[c]
        ok = np.isfinite(a) & np.isfinite(b)
        out_r.append(float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 and a[ok].std() > 0 and b[ok].std() > 0
                     else math.nan)
    return np.asarray(out_r)


def _interval(v: np.ndarray, stat, draws: int = 2000, seed: int = 0) -> list[float | None]:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [None, None]
    rng = np.random.default_rng(seed)
    boots = np.array([stat(v[rng.integers(0, v.size, v.size)]) for _ in range(draws)])
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def characterize_summary(values: dict[str, np.ndarray]) -> dict:
    """Per claim: the article's statement and, per variable, the family median (fractions for yes/no values) with a 95% CI."""
    out = {}
    for claim, (statement, names) in CLAIMS.items():
        part = {"article": statement}
        for n in names:
            v = np.asarray(values[n])
            if v.dtype == bool:
                part[n] = {"fraction": round(float(v.mean()), 4), "count": int(v.sum()), "of": int(v.size),
                           "ci95": _interval(v.astype(float), np.mean)}
            else:
                fin = v[np.isfinite(v)]
                part[n] = {"median": round(float(np.median(fin)), 4) if fin.size else None, "n": int(fin.size),
                           "ci95": _interval(v, np.median)}
        out[claim] = part
    return out


def characterize(folder: str | Path, layer: str | None = None, *, device: str = "cpu") -> tuple[xr.Dataset, dict]:
    """Measure every claim for the family of ``layer`` (default: the first) of a discover output folder.

    Returns the per-unit dataset (dim ``unit``, coordinate ``channel``; ``rounding_sigma``
    has dim ``rounding``) and the JSON summary (``model``, ``layer``, ``members``,
    ``sigma``, ``claims``).
    """
    out = load_discover_output(folder, layer)
    members = _members(out)
    from suites.discovery.responses import load_network

    weights = out.responses.attrs.get("weights") or None
    if weights and str(weights).startswith(RANDOM_TEXT):
        raise DiscoverError("characterize: the folder holds a random-weights run; characterise a trained family")
    model = load_network(str(out.responses.attrs["model"]), weights if weights and Path(str(weights)).exists() else None,
                         device=device)
    values = _measure(_Probe(model, out), out, members)
    ds = xr.Dataset({n: (("unit", "rounding") if v.ndim == 2 else ("unit",), v) for n, v in values.items()},
                    coords={"channel": (("unit",), [m["channel"] for m in members]), "rounding": list(ROUNDINGS)})
    ds.attrs.update(file_kind=CHARACTERIZE_KIND, model=str(out.responses.attrs.get("model")), layer=out.layer,
                    sigma=str(out.responses.attrs.get("sigma", "sigma above the blank")),
                    positions=str(out.responses.attrs.get("positions", "")), source=str(out.folder))
    summ = {"model": ds.attrs["model"], "layer": out.layer, "members": len(members), "sigma": ds.attrs["sigma"],
            "positions": ds.attrs["positions"], "claims": characterize_summary(values)}
    return ds, summ
