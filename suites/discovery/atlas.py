"""``curvebench atlas``: the curve-family test over many taps of several models, resumable.

One call runs :mod:`suites.discovery.responses` (all taps of one model from one forward
pass per batch) and the curve-family test on every chosen layer of every model, and of
the same architectures with random weights (``control``)::

    from suites.discovery.atlas import AtlasOptions, run_atlas
    atlas = run_atlas(AtlasOptions(models=("efficientnet-lite0", "efficientnet-lite1"), control=True), "results/atlas")
    atlas["models"]["efficientnet-lite0"]["best_layer"]

Output folder (every file written as soon as it is complete, so an interrupted atlas
continues where it stopped, per model and layer)::

    settings.json                         what was asked (refused on resume when it differs)
    atlas.json                            {"models": {M: {"layers": {L: {...}}, "best_layer": L}}, "control": {...}}
    <model>/<trained|control>/responses.nc   the raw responses of every layer of that model
    <model>/<trained|control>/<layer>/family.nc, layer.json   the test's result for one layer
    atlas-depth.png, atlas-best-radial.png   the figures (:mod:`suites.discovery.atlas_figures`)

Conventions: ``depth`` is the tap's position among the model's spatial taps, 0 (stem) to
1 (head); ``stride`` and ``rf_size`` in px at the sweep's input size; orientations in
degrees (:mod:`suites.discovery.responses`), curvature in 1/px.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from probes.weights_spec import RANDOM
from suites.atomic import check_folder, output_file, unstaged
from suites.discovery.responses import DEFAULT_SWEEP, DiscoverError, Sweep, discover_responses, load_network

__all__ = ["AtlasOptions", "AtlasError", "run_atlas", "auto_layers", "AUTO_STAGES", "ATLAS_KIND", "atlas_rows",
           "read_atlas", "best_layer_files", "LAYER_NUMBERS"]

ATLAS_KIND = "curvebench-atlas"
SETTINGS_KIND = "curvebench-atlas-settings"
#: the stages whose block outputs and depthwise activations ``--layers auto`` tests: where curve
#: families live in EfficientNet-Lite (strides 8 to 16; measured in docs/atlas.md)
AUTO_STAGES: tuple[int, ...] = (2, 3, 4)
_AUTO_TAP = re.compile(r"blocks\.(\d+)\.\d+(\.depthwise)?")
WEIGHTS_KINDS = ("trained", "control")


class AtlasError(DiscoverError):
    """Bad input to the atlas (models, layers, an output folder holding another atlas)."""


@dataclass(frozen=True)
class AtlasOptions:
    """What one atlas measures.

    Attributes:
        models: registry ids (``probes.list_models()``).
        layers: tap names tested in every model, or None for :func:`auto_layers` of each.
        control: also test each architecture with random weights (torch seed ``seed``).
        seed: seed of the random initialisation.
        sweep: stimuli (:class:`~suites.discovery.responses.Sweep`).
        criteria: the test's thresholds (:class:`suites.analysis.curve_family.Criteria`), None = defaults.
        images: ``"builtin"`` or a folder, for the sigma statistics.
        cache_dir: statistics cache (None: none).
        device: torch device.
        figures: write the two PNGs.
        progress: progress bars on stderr.
    """

    models: tuple[str, ...]
    layers: tuple[str, ...] | None = None
    control: bool = False
    seed: int = 0
    sweep: Sweep = DEFAULT_SWEEP
    criteria: Any = None
    images: str = "builtin"
    cache_dir: str | Path | None = "results/cache"
    device: str = "cpu"
    figures: bool = True
    progress: bool = False


def auto_layers(model: str) -> list[str]:
    """Every block output and depthwise activation (``blocks.S.I``, ``blocks.S.I.depthwise``) of :data:`AUTO_STAGES`.

    Raises :class:`AtlasError` when the model has none (it is not built of such blocks).
    """
    from probes.registry import get_entry

    layers = [l for l in get_entry(model).layers
              if (m := _AUTO_TAP.fullmatch(l)) is not None and int(m.group(1)) in AUTO_STAGES]
    if not layers:
        raise AtlasError(f"layers: model {model!r} has no taps in the auto range (block outputs blocks.S.I and "
                         f"depthwise activations blocks.S.I.depthwise of stages {', '.join(map(str, AUTO_STAGES))}); "
                         f"give --layers A,B")
    return layers


def _model_layers(opts: AtlasOptions) -> dict[str, list[str]]:
    """``{model: layers}`` after checking every model and layer name (one-line :class:`AtlasError`)."""
    from probes.registry import get_entry, list_models

    known = [m["name"] for m in list_models()]
    if not opts.models:
        raise AtlasError(f"models: name at least one; allowed: {', '.join(known)}")
    out = {}
    for model in dict.fromkeys(opts.models):
        if model not in known:
            raise AtlasError(f"models: unknown model {model!r}; allowed: {', '.join(known)}")
        entry = get_entry(model)
        if opts.control and entry.weights is None:
            raise AtlasError(f"control: model {model!r} is built from code and has no random initialisation; "
                             f"drop --control or that model")
        if opts.layers is None:
            out[model] = auto_layers(model)
            continue
        spatial = [l for l in entry.layers if entry.geometry is None or l in entry.geometry.layers]
        bad = [l for l in opts.layers if l not in spatial]
        if bad:
            raise AtlasError(f"layers: unknown layer {bad[0]!r} for model {model!r}; allowed: {', '.join(spatial)}")
        out[model] = list(dict.fromkeys(opts.layers))
    return out


def _settings(opts: AtlasOptions, layers: dict[str, list[str]]) -> dict:
    """The JSON-able record an atlas folder is resumed against."""
    from probes.registry import get_entry
    from suites.analysis.curve_family import Criteria

    crit = opts.criteria or Criteria()
    models = {}
    for m, ls in layers.items():
        w = get_entry(m).weights
        models[m] = {"layers": ls, "weights_sha256": w.sha256 if w is not None else None}
    settings = {"file_kind": SETTINGS_KIND, "models": models, "control": bool(opts.control), "seed": int(opts.seed),
                "sweep": asdict(opts.sweep), "criteria": crit.as_dict(), "images": str(opts.images)}
    return json.loads(json.dumps(settings))  # as read back from settings.json (tuples are lists)


def _check_resume(out: Path, settings: dict) -> None:
    """Refuse an output folder that holds something else, or an atlas asked with other settings."""
    path = out / "settings.json"
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise AtlasError(f"--out {out}: the folder is not empty and holds no atlas (no settings.json); "
                             f"give a new or empty folder")
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AtlasError(f"--out {out}: settings.json is unreadable ({exc}); give another folder") from None
    diff = _first_difference(old, settings)
    if diff is not None:
        where, there, asked = diff
        raise AtlasError(f"--out {out} holds an atlas with other {where} ({_short(there)} there, {_short(asked)} "
                         f"asked); resume it with the same settings or give another --out")


def _first_difference(old: Any, new: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """``(dotted key, old value, new value)`` of the first difference of two JSON values, or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in dict.fromkeys([*new, *old]):
            diff = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if diff is not None:
                return diff
        return None
    return None if old == new else (path, old, new)


def _short(value: Any, n: int = 100) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= n else text[:n] + "..."


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with unstaged(), output_file(path) as tmp:  # progress of a resumable run: committed now, kept on failure
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_nc(path: Path, ds: xr.Dataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with unstaged(), output_file(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


#: the numbers of :func:`suites.analysis.curve_family.layer_summary` an atlas layer keeps
LAYER_NUMBERS = ("channels_tested", "detectors", "detectors_ci", "largest_gap_deg", "median_tuning_width_deg",
                 "median_preferred_curvature", "median_stability", "positions", "flagged", "saturated")


def _test_layer(resp: xr.Dataset, layer: str, criteria: Any) -> tuple[xr.Dataset, dict]:
    """The position-robust curve-family test of one layer (:mod:`suites.analysis.curve_family`): its family
    dataset and the atlas numbers (``detectors_ci``: 95% bootstrap over the stimulus positions)."""
    from suites.analysis.curve_family import classify, layer_summary

    family = classify(resp, layer, criteria)
    s = layer_summary(family, layer)
    return family, {k: s[k] for k in LAYER_NUMBERS if k in s}


def _layer_geometry(model, layers: Sequence[str], size: int) -> dict[str, dict]:
    """``{layer: {"depth", "stride", "rf_size"}}``: relative position among the spatial taps, px at ``size``."""
    spatial = [l for l in model.layers if model.geometry is None or l in model.geometry.layers]
    out = {}
    for l in layers:
        rf = model.receptive_field(l, size)
        out[l] = {"depth": round(spatial.index(l) / max(len(spatial) - 1, 1), 4), "stride": int(rf.stride),
                  "rf_size": int(rf.size)}
    return out


def _responses(net, layers: list[str], folder: Path, opts: AtlasOptions) -> xr.Dataset:
    """Responses of ``layers``: read from ``responses.nc`` where a run measured them, the rest measured now (one pass)."""
    from suites.file_kinds import DISCOVER_RESPONSES_KIND
    from suites.results.files import open_file

    path = folder / "responses.nc"
    old = None
    if path.is_file():
        old = open_file(path, DISCOVER_RESPONSES_KIND, option="--out")
        if old.attrs.get("fingerprint") != _fingerprint(net):
            raise AtlasError(f"{path}: measured with other weights than {net.name}'s now; give another --out")
    have = set(str(old.attrs.get("layers", "")).split()) if old is not None else set()
    missing = [l for l in layers if l not in have]
    if not missing:
        return old
    new = discover_responses(net, missing, opts.sweep, images=opts.images, cache_dir=opts.cache_dir,
                             progress=opts.progress)
    if old is not None:
        new = xr.merge([old, new], compat="override", combine_attrs="override")
        new.attrs["layers"] = " ".join([*str(old.attrs["layers"]).split(), *missing])
    _write_nc(path, new)
    return new


def _fingerprint(net) -> str:
    from suites.discovery.responses import model_fingerprint

    return model_fingerprint(net)


def _run_one(model: str, which: str, layers: list[str], out: Path, opts: AtlasOptions) -> dict:
    """Test ``layers`` of one model (trained or control); returns ``{"layers": {...}, "best_layer"}``."""
    folder = out / model / which
    done = {l: folder / _safe(l) / "layer.json" for l in layers}
    todo = [l for l, p in done.items() if not p.is_file()]
    if todo:
        t = time.perf_counter()
        net = load_network(model, RANDOM.text() if which == "control" else None, seed=opts.seed, device=opts.device)
        resp = _responses(net, todo, folder, opts)
        t = _record_seconds(folder, t)
        if which == "control":
            resp.attrs["weights"] = f"random (torch seed {opts.seed})"
        geometry = _layer_geometry(net, todo, opts.sweep.size)
        for l in todo:
            family, numbers = _test_layer(resp, l, opts.criteria)
            _write_nc(folder / _safe(l) / "family.nc", family)
            entry = {**geometry[l], **numbers, "family_file": str(Path(model, which, _safe(l), "family.nc"))}
            _write_json(done[l], entry)
            t = _record_seconds(folder, t)
    results = {l: json.loads(done[l].read_text(encoding="utf-8")) for l in layers}
    return {"layers": results, "best_layer": _best(results)}


def _spent_seconds(folder: Path) -> float:
    """Wall seconds spent on one part (model, trained or control) over every run so far (``seconds.json``)."""
    path = folder / "seconds.json"
    return float(json.loads(path.read_text(encoding="utf-8"))["seconds"]) if path.is_file() else 0.0


def _record_seconds(folder: Path, since: float) -> float:
    """Add the wall time since ``since`` (``time.perf_counter``) to the part's ``seconds.json``; returns now."""
    now = time.perf_counter()
    _write_json(folder / "seconds.json", {"seconds": round(_spent_seconds(folder) + now - since, 1)})
    return now


def _safe(layer: str) -> str:
    return layer.replace("/", "_")


def _best(layers: dict[str, dict]) -> str | None:
    """The layer with most detectors (ties: the higher lower bound, then the shallower); None when all have 0."""
    ranked = sorted(layers.items(), key=lambda kv: (-kv[1]["detectors"], -kv[1]["detectors_ci"][0], kv[1]["depth"]))
    return ranked[0][0] if ranked and ranked[0][1]["detectors"] > 0 else None


def run_atlas(opts: AtlasOptions, out_dir: str | Path) -> dict:
    """Run (or continue) an atlas into ``out_dir``; returns the ``atlas.json`` content.

    Raises :class:`AtlasError` for an unknown model or layer (naming the allowed ones), a
    model without taps in the auto range, or an ``out_dir`` that holds an atlas asked
    with other models, layers, weights, sweep, criteria, images or seed.
    """
    t0 = time.perf_counter()
    layers = _model_layers(opts)
    settings = _settings(opts, layers)
    out = check_folder(out_dir, "--out")
    _check_resume(out, settings)
    _write_json(out / "settings.json", settings)
    atlas: dict[str, Any] = {"file_kind": ATLAS_KIND, "models": {}}
    if opts.control:
        atlas["control"] = {"models": {}}
    seconds: dict[str, float] = {}
    for model, ls in layers.items():
        for which in WEIGHTS_KINDS if opts.control else WEIGHTS_KINDS[:1]:
            part = _run_one(model, which, ls, out, opts)
            seconds[f"{model} {which}"] = _spent_seconds(out / model / which)
            (atlas if which == "trained" else atlas["control"])["models"][model] = part
    atlas.update(_provenance(out, layers, opts))
    # per part: wall seconds measuring and testing it, summed over every run that worked on it (resumes included)
    atlas["seconds"] = {"total": round(sum(seconds.values()), 1), "this_run": round(time.perf_counter() - t0, 1),
                        **seconds}
    atlas = json.loads(json.dumps(atlas))  # as read back from atlas.json
    _write_json(out / "atlas.json", atlas)  # the folder's own files: a resumed atlas replaces them
    if opts.figures:
        from suites.discovery.atlas_figures import best_radial_figure, depth_figure

        with unstaged():
            depth_figure(atlas, out / "atlas-depth.png")
            best_radial_figure(atlas, out, out / "atlas-best-radial.png")
    return atlas


def _provenance(out: Path, layers: dict[str, list[str]], opts: AtlasOptions) -> dict:
    """Test, sweep, statistics and interval of the atlas (read from the first family file)."""
    from suites.results.files import read_attrs

    first = next(iter(layers))
    attrs = read_attrs(out / first / "trained" / _safe(layers[first][0]) / "family.nc", "--out")
    return {"test": attrs.get("test"), "sweep": asdict(opts.sweep), "statistics": attrs.get("statistics"),
            "sigma": attrs.get("sigma"), "positions": attrs.get("positions"),
            "probe_input": "exact receptive-field crop of the deepest tap where one exists, else the full input",
            "detectors_ci": "95% percentile bootstrap over the stimulus positions (suites.analysis.curve_family."
                            "detectors_interval)", "depth": "position among the model's spatial taps, stem 0, head 1",
            "control_weights": f"random (torch seed {opts.seed})" if opts.control else None}


def read_atlas(path: str | Path) -> dict:
    """``atlas.json`` of an atlas folder (or the file itself); :class:`AtlasError` when it is not one."""
    p = Path(path)
    p = p / "atlas.json" if p.is_dir() else p
    try:
        atlas = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AtlasError(f"{p} is not a readable atlas ({exc})") from None
    if not isinstance(atlas, dict) or atlas.get("file_kind") != ATLAS_KIND:
        raise AtlasError(f"{p} is not an atlas.json (file_kind {ATLAS_KIND!r})")
    return atlas


def atlas_rows(atlas: dict) -> list[dict]:
    """One row per model and layer (and per control layer), for :func:`suites.analysis.plots.compare_figure`."""
    rows = []
    for part, control in ((atlas.get("models", {}), False), (atlas.get("control", {}).get("models", {}), True)):
        for model, m in part.items():
            for layer, s in m["layers"].items():
                rows.append({"label": f"{model} {layer}" + (" (random)" if control else ""), "model": model,
                             "layer": layer, "control": control, **s})
    return rows


def best_layer_files(folder: str | Path) -> list[tuple[str, Path, Path]]:
    """``(model, responses.nc, family.nc)`` of each trained model's best layer in an atlas folder."""
    folder = Path(folder)
    atlas = read_atlas(folder)
    out = []
    for model, m in atlas["models"].items():
        layer = m["best_layer"] or next(iter(m["layers"]))
        out.append((model, folder / model / "trained" / "responses.nc", folder / m["layers"][layer]["family_file"]))
    return out
