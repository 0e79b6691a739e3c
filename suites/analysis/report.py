"""``curvebench report``: one self-contained, interactive HTML page for one or more results.

The page holds every shown channel's orientation x curvature heatmap in sigma (the
article's layout and colour scale, channels sorted by preferred orientation), a
stimulus inspector (hover a cell: the stimulus of that cell, with its activation; the
page draws outlines computed by ``stimuli`` in Python and passed in as
``ReportOptions.shapes``, :func:`suites.report_stimuli.page_shapes`, since the analysis
renders nothing), the radial tuning plot of the family
(hover a curve: that unit alone; click: its heatmap), the tuning table and the
provenance (both sortable), and, for several files, the families side by side.

Everything is inlined (styles, script, data): the page needs no network and no
folder beside it. Activations are stored once, as float32 post-ReLU cell means in
base64; the page computes sigma from each channel's mean and std.

Kinds of file: a loader per kind (:data:`KINDS`) turns a dataset into the page's
JSON. Adding a kind is one function ``(name, ds, options) -> dict`` plus a detector,
registered with :func:`register_kind`.

Safety: every text from a file (attributes, suite text, names) reaches the page only
as JSON inside ``<script type="application/json">`` (with ``<``, ``>``, ``&`` and the
JS line separators escaped) and is inserted by the script with ``textContent``; the
page title goes through :func:`html.escape`.

Convention (as :mod:`suites.analysis.plots`):
    x = orientation (degrees, counter-clockwise on screen, 0 = the curve opens toward
    +x), y = curvature (1/px), straight line at the top; colour = post-ReLU sigma on
    0..``vmax`` (turbo), <= 0 black, no value dark grey. Radial plots: angle =
    orientation (0 = right, counter-clockwise), radius = post-ReLU sigma at each unit's
    best curvature (below 0 drawn at 0).
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from suites.errors import ResultsFileError
from suites.file_kinds import DISCOVER_RESPONSES_KIND, OPTIMIZE_KIND
from suites.results.attributes import file_kind, stimulus_kind
from suites.specs.channel_selection import ChannelSelection

from .arrays import STIMULUS_DIM, channel_dim, grid, layer_names, select, series_values, swept_parameters
from .sigma import channel_stats
from .tuning import PREFERRED_METHOD, layer_tuning
from .tuning_report import jsonable

__all__ = ["ReportOptions", "KINDS", "register_kind", "report_kind", "report_data", "report_html", "write_report"]

MAX_SERIES = 8
DEFAULT_VMAX = 25.0
DEFAULT_MAX_CHANNELS = 16
#: Attributes that are bulky or only duplicate the grid (not shown in the provenance table).
_HIDDEN_ATTRS = ("grid_axis_",)


@dataclass
class ReportOptions:
    """What the page shows.

    Attributes:
        stats: dataset statistics (``curvebench stats``) for sigma; ``None`` = each
            sweep's own statistics, labelled as such on the page.
        channels: whose heatmaps are shown: a :class:`~suites.specs.channel_selection.ChannelSelection`
            or channel ids; default ``auto`` (sweeps: :mod:`suites.analysis.channel_choice`,
            the page says how they were chosen; discover output: its detectors; optimize
            results: all). The tuning table always lists every channel.
        layers: layers to show (default: all in the file).
        max_channels: cap of the default channel choice.
        vmax: top of the colour scale in sigma (the article's 25).
        shapes: ``shapes(page) -> {key: outline}``, the stimuli the page draws, computed outside
            the analysis (:func:`suites.report_stimuli.page_shapes`); None: no stimulus drawings.
    """

    stats: xr.Dataset | None = None
    channels: ChannelSelection | Sequence[int] | None = None
    layers: Sequence[str] | None = None
    max_channels: int = DEFAULT_MAX_CHANNELS
    vmax: float = DEFAULT_VMAX
    families: Mapping[str, Sequence[int]] | None = field(default=None)
    shapes: Callable[[Mapping[str, Any]], dict] | None = None


# -- kinds -----------------------------------------------------------------------------
Detector = Callable[[xr.Dataset], bool]
Builder = Callable[[str, xr.Dataset, ReportOptions], dict]
#: kind name -> (detector, builder), tried in order.
KINDS: dict[str, tuple[Detector, Builder]] = {}


def register_kind(name: str, detect: Detector, build: Builder) -> None:
    """Teach the report a kind of file: ``detect(ds)`` says if it is one, ``build(name, ds, options)`` gives its page data."""
    KINDS[name] = (detect, build)


def report_kind(ds: xr.Dataset) -> str:
    """The kind of ``ds`` the report can show, or :class:`~suites.errors.ResultsFileError` naming what is missing."""
    for name, (detect, _) in KINDS.items():
        if detect(ds):
            return name
    have = sorted(str(c) for c in ds.coords if ds.coords[c].dims == (STIMULUS_DIM,))
    raise ResultsFileError(
        "the report cannot show this kind of result: it shows sweeps with per-stimulus activations over "
        f"orientation and curvature (curves, fill, colour, angles, rounding, families); this file has stimulus "
        f"parameters {have or 'none'} and layers {layer_names(ds) or 'none'}"
        + (f" (file_kind {str(file_kind(ds.attrs))[:40]!r})" if file_kind(ds.attrs) else "")
    )


# -- encoding --------------------------------------------------------------------------
def _b64_float32(values: np.ndarray) -> str:
    """Little-endian float32 bytes of ``values`` (C order) in base64."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def _num(x: Any) -> float | None:
    """JSON number (NaN/inf -> None)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def provenance_rows(ds: xr.Dataset, statistics: str) -> list[list[str]]:
    """``[key, value]`` rows: every scalar attribute of the file (as text) plus the sigma source."""
    rows = [["sigma source", statistics]]
    for key, value in ds.attrs.items():
        if str(key).startswith(_HIDDEN_ATTRS):
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist() if value.size <= 8 else f"array of {value.size} values"
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        rows.append([str(key), str(value)])
    return rows


def _stimulus_spec(ds: xr.Dataset) -> dict:
    """What the page needs to draw a stimulus: kind, fixed parameters, image size and position (px)."""
    try:
        fixed = json.loads(str(ds.attrs.get("fixed", "{}")))
    except ValueError:
        fixed = {}
    if not isinstance(fixed, dict):
        fixed = {}
    if not fixed:  # files without the attribute: the [fixed] table of the stored suite text
        import tomllib

        try:
            table = tomllib.loads(str(ds.attrs.get("suite", ""))).get("fixed", {})
        except tomllib.TOMLDecodeError:
            table = {}
        fixed = table if isinstance(table, dict) else {}
    kind = stimulus_kind(ds.attrs) or "curve"  # the kinds are stimuli's (suites.report_stimuli draws them)
    size = _num(ds.attrs.get("input_size"))
    pos = np.asarray(ds.attrs.get("stimulus_position_xy", []), dtype=np.float64).reshape(-1)
    length = _num(fixed.get("length")) or 64.0
    if size is None:
        size = float(min(max(32, round(1.5 * length)), 256))
    return {
        "kind": kind,
        "fixed": jsonable(fixed),
        "size": int(size),
        "position": [float(pos[0]), float(pos[1])] if pos.size == 2 else [size / 2.0, size / 2.0],
    }


def _explicit_ids(channels: ChannelSelection | Sequence[int] | None, ids: Sequence[int]) -> list[int] | None:
    """Channel ids a selection names for a page that is not a sweep (``all``: every one).

    None for ``auto``, ``family`` and family files: they choose among a sweep's channels;
    a discover page then shows its own detectors, an optimize page every channel.
    """
    if not isinstance(channels, ChannelSelection):
        return None if channels is None else [int(c) for c in channels]
    return list(channels.ids) if channels.mode == "ids" else list(ids) if channels.mode == "all" else None


def _pick_channels(peak_sigma: Mapping[int, float], ids: Sequence[int], family: Sequence[int] | None,
                   options: ReportOptions) -> list[int]:
    """Shown channels of a discover page: explicit ids (or all), else the detectors, else the strongest."""
    sel = _explicit_ids(options.channels, ids)
    if sel is not None:
        bad = [c for c in sel if int(c) not in ids]
        if bad:
            raise ValueError(f"--channels: {bad} not in the results (available: {list(ids)[:20]}{'...' if len(ids) > 20 else ''})")
        return [int(c) for c in sel]
    if family:
        present = [int(c) for c in family if int(c) in ids]
        if present:
            return present
    if len(ids) <= options.max_channels:
        return list(ids)
    ranked = sorted(ids, key=lambda c: -(peak_sigma.get(c) if peak_sigma.get(c) is not None and math.isfinite(peak_sigma[c]) else -math.inf))
    return sorted(ranked[: options.max_channels])


def _layer_page(ds: xr.Dataset, layer: str, options: ReportOptions) -> dict:
    """One layer: tuning of every channel, grids of the shown channels (whole sweep and per series value)."""
    from .family_channels import family_channels

    from .channel_choice import ChosenChannels, NoChannels, choose_channels
    from .sigma import to_sigma

    fam = (options.families or {}).get(layer) if options.families is not None else family_channels(ds, layer)
    families = {f"{layer} curve family": fam} if fam else None
    tuned = layer_tuning(ds, layer, options.stats, families=families)
    ids = [int(c) for c in tuned["channels"]]
    try:
        chosen = choose_channels(ds, layer, grid(ds, to_sigma(ds, layer, options.stats)), options.channels, known=fam,
                                 max_channels=options.max_channels)
    except NoChannels as exc:  # the page still lists every channel's tuning, and says why no heatmap is shown
        chosen = ChosenChannels([], f"none ({exc})", "none")
    prefs = {c: tuned["channels"][c]["preferred_orientation"] for c in chosen.channels}
    order = sorted(chosen.channels, key=lambda c: prefs[c] if math.isfinite(prefs[c]) else 1e9)
    cdim = channel_dim(ds, layer)
    sub = ds[[layer] if layer in ds.data_vars else [f"{layer}_pre_relu"]].sel({cdim: order})
    cs = channel_stats(ds, layer, options.stats)
    all_ids = [int(c) for c in ds.coords[cdim].values] if cdim in ds.coords else list(range(ds.sizes[cdim]))
    take = [all_ids.index(c) for c in order]
    post = grid(sub, layer=layer)
    grids = {"": _b64_float32(post.values)}
    for param, values in series_values(ds).items():
        if values.size > MAX_SERIES:
            continue
        for v in values:
            part = select(sub, **{param: float(v)})
            g = grid(part, layer=layer).reindex(
                {"orientation": post.coords["orientation"].values, "curvature": post.coords["curvature"].values},
                method="nearest", tolerance=1e-6,
            )
            grids[f"{param}={float(v):.6g}"] = _b64_float32(g.values)
    channels = []
    for c in ids:
        u = tuned["channels"][c]
        channels.append({"channel": c, **{k: _num(v) for k, v in u.items() if not isinstance(v, dict)}})
    fam_summary = [{"name": n, **jsonable(f)} for n, f in tuned["families"].items()]
    return {
        "name": layer,
        "channel_dim": cdim,
        "shown": order,
        "family": [int(c) for c in fam] if fam else None,
        "mean": [_num(cs.mean[i]) for i in take],
        "std": [_num(cs.std[i]) for i in take],
        "grids": grids,
        "tuning": channels,
        "families": fam_summary,
        "statistics": tuned["statistics"],
        "chosen": chosen.how,
    }


def _is_sweep(ds: xr.Dataset) -> bool:
    params = swept_parameters(ds) if STIMULUS_DIM in ds.dims else {}
    return "orientation" in params and "curvature" in params and bool(layer_names(ds))


def sweep_page(name: str, ds: xr.Dataset, options: ReportOptions) -> dict:
    """Page data of a sweep (curves, fill, colour, angles, rounding, families, ...)."""
    have = layer_names(ds)
    layers = list(options.layers) if options.layers else have
    bad = [l for l in layers if l not in have]
    if bad:
        raise ValueError(f"--layers: {bad} not in {name}; available: {', '.join(have)}")
    ds = ds.load()
    params = swept_parameters(ds)
    series = {k: [float(x) for x in v] for k, v in series_values(ds).items() if v.size <= MAX_SERIES}
    averaged = [k for k in series_values(ds) if k not in series]
    pages = [_layer_page(ds, layer, options) for layer in layers]
    statistics = pages[0]["statistics"] if pages else ""
    done = int(ds.sizes.get(STIMULUS_DIM, 0))
    total = int(_num(ds.attrs.get("rows_total", done)) or done)
    return {
        "kind": "sweep",
        "name": name,
        "title": str(ds.attrs.get("suite_name") or ds.attrs.get("title") or name),
        "description": str(ds.attrs.get("description", "")),
        "model": str(ds.attrs.get("model", "")),
        "weights_sha256": str(ds.attrs.get("weights_sha256", "")),
        "statistics": statistics,
        "rows": done,
        "rows_total": total,
        "orientation": [float(x) for x in params["orientation"]],
        "curvature": [float(x) for x in params["curvature"]],
        "series": series,
        "averaged": {k: [float(x) for x in series_values(ds)[k][:3]] for k in averaged},
        "stimulus": _stimulus_spec(ds),
        "layers": pages,
        "provenance": provenance_rows(ds, statistics),
        "suite_text": str(ds.attrs.get("suite", "")),
    }


register_kind("sweep", _is_sweep, sweep_page)


# -- optimize results (``curvebench optimize``) ------------------------------------------
_OPTIMUM_COLUMNS = ("orientation", "curvature", "length", "width", "dx", "dy", "rounding", "fill", "activation",
                    "activation_relu", "activation_sigma", "sweep_max", "sweep_max_sigma", "steps", "converged")


def _is_optimum(ds: xr.Dataset) -> bool:
    return file_kind(ds.attrs) == OPTIMIZE_KIND and "channel" in ds.dims and "orientation" in ds.data_vars


def optimum_page(name: str, ds: xr.Dataset, options: ReportOptions) -> dict:
    """Page data of an optimize result: each channel's optimal stimulus (parameters) and activations.

    The page draws every optimum from its parameters on the receptive-field crop the unit
    saw (``crop_size`` px; midpoint at ``(x, y)`` minus ``crop_origin_xy``).
    """
    ds = ds.load()
    size = int(_num(ds.attrs.get("crop_size")) or _num(ds.attrs.get("input_size")) or 224)
    origin = np.asarray(ds.attrs.get("crop_origin_xy", [0, 0]), dtype=np.float64).reshape(-1)[:2]
    ids = [int(c) for c in ds.coords["channel"].values]
    explicit = _explicit_ids(options.channels, ids)
    if explicit is not None:
        bad = [c for c in explicit if int(c) not in ids]
        if bad:
            raise ValueError(f"--channels: {bad} not in the optimize result (it has {ids[:20]})")
    rows = []
    for i, c in enumerate(ids):
        row: dict[str, Any] = {"channel": c}
        for key in _OPTIMUM_COLUMNS:
            if key in ds.data_vars and ds[key].dims == ("channel",):
                row[key] = _num(ds[key].values[i])
        for side in ("fg", "bg"):
            if side in ds.data_vars:
                row[side] = [float(v) for v in np.asarray(ds[side].values[i], dtype=np.float64).reshape(-1)[:3]]
        if "x" in ds.data_vars and "y" in ds.data_vars:
            row["position"] = [float(ds["x"].values[i]) - float(origin[0]), float(ds["y"].values[i]) - float(origin[1])]
        rows.append(row)
    shown = explicit if explicit is not None else ids
    statistics = str(ds.attrs.get("statistics", ""))
    return {
        "kind": "optimum",
        "name": name,
        "title": f"optimal stimuli of {ds.attrs.get('layer', '?')}",
        "description": "",
        "model": str(ds.attrs.get("model", "")),
        "weights_sha256": str(ds.attrs.get("weights_sha256", "")),
        "statistics": statistics,
        "layer": str(ds.attrs.get("layer", "")),
        "stimulus": {"kind": "curve", "fixed": {}, "size": size, "position": [size / 2.0, size / 2.0]},
        "channels": rows,
        "shown": shown,
        "provenance": provenance_rows(ds, statistics),
        "suite_text": "",
    }


register_kind("optimum", _is_optimum, optimum_page)


# -- discover results (``curvebench discover``: responses.nc, family.nc) -----------------
#: ``file_kind`` of the two files ``curvebench discover`` writes (suites.discovery.responses).
_POLARITY_COLOURS = {"black_on_white": ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]), "white_on_black": ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])}
_FAMILY_COLUMNS = (("detector", "detector", 0, False), ("stability", "stability", 2, False),
                   ("curve_line_ratio", "curve/line", 2, False),
                   ("polarity_diff_deg", "polarity diff (deg)", 1, False), ("flags", "flags", 0, True))


def _is_discover(ds: xr.Dataset) -> bool:
    return file_kind(ds.attrs) == DISCOVER_RESPONSES_KIND and "polarity" in ds.dims


def _discover_position(ds: xr.Dataset) -> tuple[int, list[float]]:
    """Input size (px) and stimulus midpoint (x, y) of a discover run, from its attributes."""
    import re

    text = str(ds.attrs.get("stimulus_position", ""))
    m = re.search(r"\(\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*\)\s*px on the (\d+) px input", text)
    if m:
        return int(m.group(3)), [float(m.group(1)), float(m.group(2))]
    size = int(_num(ds.attrs.get("size")) or 224)
    return size, [size / 2.0, size / 2.0]


def _family_verdict(ds: xr.Dataset, layer: str, ids: Sequence[int]) -> tuple[dict[int, dict], list[int] | None]:
    """The joined family file's columns per channel of ``layer``, and its detectors (None without a family file)."""
    verdict: dict[int, dict] = {}
    if "family_detector" not in ds.data_vars:
        return verdict, None
    rows = np.flatnonzero(np.asarray(ds["family_layer"].values).astype(str) == layer)
    for r in rows:
        c = int(ds["family_channel"].values[r])
        verdict[c] = {key: (str(ds[f"family_{key}"].values[r]) if text else _num(ds[f"family_{key}"].values[r]))
                      for key, _, _, text in _FAMILY_COLUMNS if f"family_{key}" in ds.data_vars}
    return verdict, [c for c in ids if verdict.get(c, {}).get("detector")]


def _discover_layer(ds: xr.Dataset, layer: str, options: ReportOptions, statistics: str) -> dict:
    """One layer's part of :func:`discover_page`: heatmaps per polarity, tuning table, the family's coverage."""
    from .tuning import best_curvature_index, family_coverage, unit_tuning

    o = np.asarray(ds.coords["orientation"].values, dtype=np.float64)
    k = np.asarray(ds.coords["curvature"].values, dtype=np.float64)
    polarities = [str(p) for p in ds.coords["polarity"].values]
    cdim = f"{layer}_channel"
    cur = ds[f"{layer}_curve"]
    if "position" in cur.dims:  # discover's position grid: the position-averaged sweep, as the test reports it
        cur = cur.mean("position")
    cur = cur.transpose("polarity", cdim, "curvature", "orientation")
    ids = [int(c) for c in cur.coords[cdim].values]
    mean = np.asarray(ds[f"{layer}_mean"].values, dtype=np.float64)
    std = np.asarray(ds[f"{layer}_std"].values, dtype=np.float64)
    post = np.asarray(cur.sel(polarity=polarities[0]).values, dtype=np.float64)  # (C, K, O)
    # discover's sigma (suites.analysis.curve_family): above the dataset mean, or above the blank image of the
    # same polarity for runs made with --sigma-baseline blank (and files from before the attribute)
    by_blank = f"{layer}_blank" in ds.data_vars and ds.attrs.get("sigma_baseline", "blank") == "blank"
    blank = (np.asarray(ds[f"{layer}_blank"].transpose(cdim, "polarity").values, dtype=np.float64)
             if by_blank else np.repeat(mean[:, None], len(polarities), axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        sig = (post - blank[:, 0, None, None]) / np.where(std > 0, std, np.nan)[:, None, None]
    tuned = {c: unit_tuning(o, k, post[i], sig[i]) for i, c in enumerate(ids)}
    verdict, fam = _family_verdict(ds, layer, ids)
    shown = _pick_channels({c: tuned[c]["peak_sigma"] for c in ids}, ids, fam, options)
    order = sorted(shown, key=lambda c: tuned[c]["preferred_orientation"] if math.isfinite(tuned[c]["preferred_orientation"]) else 1e9)
    take = [ids.index(c) for c in order]
    grids = {"": _b64_float32(np.asarray(cur.values, dtype=np.float64)[:, take].mean(axis=0))}
    for p in polarities:
        grids[f"polarity={p}"] = _b64_float32(np.asarray(cur.sel(polarity=p).values)[take])
    table = [{"channel": c, **{key: _num(v) for key, v in tuned[c].items() if not isinstance(v, dict)}, **verdict.get(c, {})}
             for c in ids]
    families = []
    if fam:
        curves = np.stack([post[ids.index(c)][best_curvature_index(k, post[ids.index(c)])] for c in fam])
        summary = family_coverage(o, curves, [tuned[c]["preferred_orientation"] for c in fam])
        families.append({"name": f"{layer} curve detectors ({len(fam)} of {len(ids)} channels)", **jsonable(summary),
                         "channels": fam})
    return {
        "name": layer, "channel_dim": cdim, "shown": order, "family": fam,
        "mean": [_num(blank[i].mean()) for i in take], "std": [_num(std[i]) for i in take],
        "mean_by_series": {f"polarity={p}": [_num(blank[i, j]) for i in take] for j, p in enumerate(polarities)},
        "grids": grids, "tuning": table, "families": families, "statistics": statistics,
        "extra_columns": [{"key": key, "label": label, "digits": digits, "text": text}
                          for key, label, digits, text in _FAMILY_COLUMNS if verdict],
    }


def discover_page(name: str, ds: xr.Dataset, options: ReportOptions) -> dict:
    """Page data of discover responses: the curve sweep in both polarities, family detectors shown.

    Heatmaps show one polarity at a time (black on white first); sigma uses the run's own
    dataset statistics (``<layer>_mean``/``<layer>_std``); the tuning numbers are those of
    :func:`suites.analysis.tuning.unit_tuning` on the black-on-white sweep, with the family
    file's verdict (detector, curve/line ratio, polarity difference, flags) when present.
    """
    ds = ds.load()
    have = [l for l in str(ds.attrs.get("layers", "")).split() if f"{l}_curve" in ds.data_vars]
    layers = list(options.layers) if options.layers else have
    bad = [l for l in layers if l not in have]
    if bad:
        raise ValueError(f"--layers: {bad} not in {name}; available: {', '.join(have)}")
    o = np.asarray(ds.coords["orientation"].values, dtype=np.float64)
    k = np.asarray(ds.coords["curvature"].values, dtype=np.float64)
    polarities = [str(p) for p in ds.coords["polarity"].values]
    statistics = (str(ds.attrs.get("sigma", "discover's sigma above blank: (response - blank) / std")) + "; "
                  + str(ds.attrs.get("statistics", "the run's dataset statistics")))
    pages = [_discover_layer(ds, layer, options, statistics) for layer in layers]
    size, position = _discover_position(ds)
    fixed = {"length": _num(ds.attrs.get("length")) or 64.0, "width": _num(ds.attrs.get("width")) or 3.0}
    return {
        "kind": "sweep",
        "name": name,
        "title": f"discover: {ds.attrs.get('model', '?')} " + ", ".join(layers),
        "description": str(ds.attrs.get("family_test", "")),
        "model": str(ds.attrs.get("model", "")),
        "weights_sha256": str(ds.attrs.get("weights_sha256", "")),
        "statistics": statistics,
        "rows": int(o.size * k.size * len(polarities)),
        "rows_total": int(o.size * k.size * len(polarities)),
        "orientation": [float(x) for x in o],
        "curvature": [float(x) for x in k],
        "series": {"polarity": polarities},
        "series_params": {f"polarity={p}": dict(zip(("fg", "bg"), _POLARITY_COLOURS[p])) for p in polarities if p in _POLARITY_COLOURS},
        "default_series": f"polarity={polarities[0]}",
        "averaged": {},
        "stimulus": {"kind": "curve", "fixed": fixed, "size": size, "position": position},
        "layers": pages,
        "provenance": provenance_rows(ds, statistics),
        "suite_text": "",
    }


register_kind("discover", _is_discover, discover_page)


# -- page ------------------------------------------------------------------------------
def _colormap(n: int = 256) -> list[list[int]]:
    """The heatmaps' colour scale (turbo, as :func:`suites.analysis.plots.article_cmap`) as ``n`` RGB bytes."""
    import matplotlib

    rgba = matplotlib.colormaps["turbo"](np.linspace(0.0, 1.0, n))
    return (np.round(rgba[:, :3] * 255)).astype(int).tolist()


def report_data(runs: Sequence[tuple[str, xr.Dataset]], options: ReportOptions | None = None) -> dict:
    """The page's JSON-able data for ``(name, dataset)`` pairs (one section each; several = also side by side)."""
    options = options or ReportOptions()
    if not (isinstance(options.vmax, (int, float)) and math.isfinite(options.vmax) and options.vmax > 0):
        raise ValueError(f"vmax: top of the colour scale must be a positive number of sigma, got {options.vmax!r}")
    if not runs:
        raise ValueError("report: no results given")
    pages = []
    for name, ds in runs:
        kind = report_kind(ds)
        page = KINDS[kind][1](name, ds, options)
        page["stimulus"]["shapes"] = options.shapes(page) if options.shapes is not None else {}
        pages.append(page)
    return {
        "vmax": float(options.vmax),
        "colormap": _colormap(),
        "preferred_method": PREFERRED_METHOD,
        "runs": pages,
    }


def script_json(data: Any) -> str:
    """``json.dumps`` safe inside ``<script>``: ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\uXXXX``."""
    text = json.dumps(jsonable(data), separators=(",", ":"), allow_nan=False)
    for ch in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def _asset(name: str) -> str:
    return resources.files("suites.analysis").joinpath("report_assets", name).read_text(encoding="utf-8")


def report_html(data: Mapping[str, Any], title: str = "curvebench report") -> str:
    """The whole page as one HTML string (styles, script and data inlined)."""
    page = _asset("report.html")
    js = _asset("report.js")
    css = _asset("report.css")
    if "</script" in js.lower() or "</style" in css.lower():  # pragma: no cover - a packaging mistake
        raise RuntimeError("report assets must not close their own <script>/<style> element")
    parts = {
        "__TITLE__": html.escape(title, quote=True),
        "/*__CSS__*/": css,
        "__DATA__": script_json(data),
        "/*__JS__*/": js,
    }
    out = []
    rest = page
    # Replace placeholders in order, one pass each, so inserted text is never searched again.
    for key in ("__TITLE__", "/*__CSS__*/", "__DATA__", "/*__JS__*/"):
        before, sep, rest = rest.partition(key)
        if not sep:
            raise RuntimeError(f"report template lacks {key}")  # pragma: no cover
        out += [before, parts[key]]
    out.append(rest)
    return "".join(out)


def write_report(runs: Sequence[tuple[str, xr.Dataset]], out: str | Path, options: ReportOptions | None = None,
                 title: str | None = None) -> Path:
    """Write the report of ``runs`` to ``out`` (one HTML file); returns the path.

    Example::

        from suites.results.reading import open_results
        from suites.analysis.report import write_report
        write_report([("curves", open_results("curves.h5"))], "report.html")
    """
    data = report_data(runs, options)
    if title is None:
        title = "curvebench report: " + ", ".join(str(r["title"]) for r in data["runs"])
    from suites.atomic import output_file

    out = Path(out)
    html = report_html(data, title)
    with output_file(out, "--out") as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
