"""``discover``: measure (:mod:`suites.discovery.responses`), test (:mod:`suites.analysis.curve_family`), write files and figures.

The one-call Python API of ``curvebench discover`` and ``curvebench demo``::

    from suites.discovery.pipeline import DiscoverOptions, discover
    result = discover("efficientnet-lite0", ["blocks.3.2.depthwise"], DiscoverOptions(control=True, out_dir="results/mine"))
    print(result.line())        # "N curve detectors (95% CI lo-hi over positions) in blocks.3.2.depthwise, ..."

and, for many layers of an already loaded model measured in one forward pass per batch
(``curvebench atlas``), :func:`layer_families`::

    from suites.discovery.pipeline import layer_families
    fams = layer_families(model, ["blocks.2", "blocks.3.2.depthwise"])   # {layer: layer summary}
    fams["blocks.3.2.depthwise"]["detectors"], fams["blocks.3.2.depthwise"]["detectors_ci"]

It sits above the analysis (it draws figures) in the import layers, beside
:mod:`suites.stimulus_strips`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from probes.weights_spec import RANDOM_TEXT, WeightsSpec
from suites.atomic import check_folder, output_file
from suites.discovery.responses import DEFAULT_SWEEP, DiscoverError, Sweep, discover_responses, load_network, model_fingerprint

__all__ = ["DiscoverOptions", "DiscoverResult", "discover", "layer_families", "write_figures", "compare_rows",
           "output_paths"]


def _layer_file(layer: str, what: str) -> str:
    return f"{layer.replace('/', '_')}-{what}.png"


def output_paths(out_dir: str | Path, layers: Sequence[str], *, control: bool = False,
                 figures: bool = True) -> list[Path]:
    """Every file :func:`discover` may write into ``out_dir`` (to refuse existing ones before the work)."""
    out = Path(out_dir)
    names = ["family.nc", "responses.nc", "summary.json"]
    if control:
        names += ["family-control.nc", "responses-control.nc"]
    if figures:
        names += ["layers-summary.png"] + [_layer_file(l, w) for l in layers for w in ("family-heatmaps", "radial")]
    return [out / n for n in names]


@dataclass
class DiscoverOptions:
    """How :func:`discover` runs (every field a ``curvebench discover`` flag).

    Attributes:
        weights: weights file, None (the model's default) or ``"random"`` (seeded with
            ``seed``; the random-weights control alone).
        control: also run the same test on the same architecture with random weights.
        seed: torch seed of the random initialisation.
        sweep: stimuli and positions (:class:`~suites.discovery.responses.Sweep`).
        criteria: :class:`suites.analysis.curve_family.Criteria` (None: the defaults).
        images: ``"builtin"`` or a folder, for the sigma statistics.
        stats: precomputed statistics of the trained network (not used for the control).
        cache_dir: statistics cache (None: no cache).
        out_dir: if given, write ``family.nc`` (and ``family-control.nc``), the raw
            ``responses.nc``, ``summary.json`` and, with ``figures``, per layer
            ``<layer>-family-heatmaps.png`` and ``<layer>-radial.png``, plus
            ``layers-summary.png``.
        figures: draw the PNGs (with ``out_dir``).
        device: torch device.
        progress: progress bars.
        sigma: the sigma definition (:class:`suites.analysis.sigma.SigmaDefinition`; None:
            the one default, dataset mean and padding-free std).
    """

    weights: str | Path | None = None
    control: bool = False
    seed: int = 0
    sweep: Sweep = DEFAULT_SWEEP
    criteria: Any = None
    images: str = "builtin"
    stats: xr.Dataset | None = None
    cache_dir: str | Path | None = "results/cache"
    out_dir: str | Path | None = None
    figures: bool = True
    device: str = "cpu"
    progress: bool = False
    sigma: Any = None


@dataclass
class DiscoverResult:
    """What :func:`discover` made: datasets, the JSON summary and the files written."""

    responses: xr.Dataset
    family: xr.Dataset
    summary: dict
    control_responses: xr.Dataset | None = None
    control_family: xr.Dataset | None = None
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self, layer: str | None = None) -> str:
        """The one-line summary of ``layer`` (default: the first layer)."""
        from suites.analysis.curve_family import summary_line

        layer = layer or next(iter(self.summary["layers"]))
        return summary_line(self.summary, layer)


def layer_families(model, layers: Sequence[str], sweep: Sweep = DEFAULT_SWEEP, criteria=None, *,
                   images: str = "builtin", stats: xr.Dataset | None = None,
                   cache_dir: str | Path | None = "results/cache", progress: bool = False,
                   sigma=None) -> dict[str, dict]:
    """The position-robust family of several layers of a loaded ``probes`` model, from one pass per batch.

    Every stimulus is rendered once and all ``layers`` are read from the same forward
    pass. Returns ``{layer: summary}`` with the shape of the JSON's ``layers`` entries
    (:func:`suites.analysis.curve_family.layer_summary`): ``detectors``, ``detectors_ci``,
    ``largest_gap_deg``, ``median_tuning_width_deg``, ``median_preferred_curvature``,
    ``flagged`` and ``family`` (members with ``stability``, ``preferred_orientation``
    (deg), ``preferred_curvature`` (1/px), ``tuning_width_deg``, ...).
    """
    from suites.analysis.curve_family import Criteria, classify_all, layer_summary

    from suites.analysis.sigma import DEFAULT_SIGMA

    resp = discover_responses(model, layers, sweep, images=images, stats=stats, cache_dir=cache_dir, progress=progress,
                              sigma=sigma or DEFAULT_SIGMA)
    family = classify_all(resp, criteria or Criteria(), list(dict.fromkeys(layers)))
    return {l: layer_summary(family, l) for l in dict.fromkeys(layers)}


def _run_one(net, layers: list[str], opts: DiscoverOptions, crit, *, stats, weights_label: str | None):
    from suites.analysis.curve_family import classify_all

    from suites.analysis.sigma import DEFAULT_SIGMA

    resp = discover_responses(net, layers, opts.sweep, images=opts.images, stats=stats, cache_dir=opts.cache_dir,
                              progress=opts.progress, sigma=opts.sigma or DEFAULT_SIGMA)
    if weights_label:
        resp.attrs["weights"] = weights_label
    return resp, classify_all(resp, crit, layers)


def discover(model: str, layers: Sequence[str], options: DiscoverOptions | None = None, **fields: Any) -> DiscoverResult:
    """Find the curve family of ``layers`` of a model: measure, test, summarise, and optionally write files.

    Args:
        model: registry id (``probes.list_models()``).
        layers: tap names.
        options: :class:`DiscoverOptions` (default: the model's weights, default sweep
            and test, no control, no files).
        fields: :class:`DiscoverOptions` fields by name, replacing those of ``options``
            (``discover("groundtruth", ["curves"], sweep=Sweep(positions=1), out_dir="d")``).

    Returns:
        :class:`DiscoverResult`; ``summary`` has the JSON shape of docs/discover.md.
    """
    import time

    from suites.analysis.curve_family import Criteria, summary

    from dataclasses import replace

    opts = replace(options or DiscoverOptions(), **fields)
    t0 = time.perf_counter()
    crit = opts.criteria or Criteria()
    layers = list(dict.fromkeys(layers))
    net = load_network(model, opts.weights, seed=opts.seed, device=opts.device)
    rnd = None
    if opts.control:  # before any work: a model built from code has no random control
        rnd = load_network(model, RANDOM_TEXT, seed=opts.seed, device=opts.device)
        if model_fingerprint(rnd) == model_fingerprint(net):
            raise DiscoverError(f"control: model {model!r} has no random initialisation (its weights are built from "
                                f"code); drop --control")
    random_label = f"random (torch seed {opts.seed})"
    is_random = WeightsSpec.parse(opts.weights).is_random
    resp, family = _run_one(net, layers, opts, crit, stats=opts.stats, weights_label=random_label if is_random else None)
    c_resp = c_family = None
    if rnd is not None:
        del net
        c_resp, c_family = _run_one(rnd, layers, opts, crit, stats=None, weights_label=random_label)
    result = DiscoverResult(resp, family, summary(family, c_family), c_resp, c_family)
    if opts.out_dir is not None:
        _write(result, Path(opts.out_dir), opts.figures)
    result.seconds = time.perf_counter() - t0
    result.summary["seconds"] = round(result.seconds, 2)
    if opts.out_dir is not None:
        result.files["summary"] = _write_json(result.summary, Path(opts.out_dir) / "summary.json")
    return result


def _write(result: DiscoverResult, out_dir: Path, figures: bool) -> None:
    out = check_folder(out_dir, "out_dir")
    files = result.files
    files["family"] = _save(result.family, out / "family.nc")
    files["responses"] = _save(result.responses, out / "responses.nc")
    if result.control_family is not None:
        files["family_control"] = _save(result.control_family, out / "family-control.nc")
        files["responses_control"] = _save(result.control_responses, out / "responses-control.nc")
    if figures:
        files.update(write_figures(result, out))


def _write_json(summ: dict, path: Path) -> Path:
    import json

    with output_file(path) as tmp:
        tmp.write_text(json.dumps(summ, indent=2) + "\n", encoding="utf-8")
    return path


def _save(ds: xr.Dataset, path: Path) -> Path:
    with output_file(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def write_figures(result: DiscoverResult, out: Path) -> dict[str, Path]:
    """Family heatmaps and radial plot per layer with detectors, and the per-layer summary figure."""
    from suites.analysis.curve_family import summary_line
    from suites.analysis.plots import compare_figure, family_heatmap_figure, family_radial_figure

    files: dict[str, Path] = {}
    for layer, s in result.summary["layers"].items():
        if not s["detectors"]:
            continue
        files[f"{layer}:heatmaps"] = family_heatmap_figure(result.responses, result.family, layer,
                                                           out / _layer_file(layer, "family-heatmaps"),
                                                           title=summary_line(result.summary, layer))
        files[f"{layer}:radial"] = family_radial_figure(result.responses, result.family, layer, out / _layer_file(layer, "radial"),
                                                        control=result.control_family)
    files["layers"] = compare_figure(compare_rows(result.summary), out / "layers-summary.png",
                                     title=f"{result.summary['model']}: curve families by layer")
    return files


def compare_rows(summ: dict, label: str | None = None) -> list[dict]:
    """One row per layer (and per control layer) of a discover summary, for :func:`suites.analysis.plots.compare_figure`."""
    rows = []
    for part in (summ, summ.get("control")):
        if part is None:
            continue
        for layer, s in part["layers"].items():
            name = f"{label or part['model']} {layer}" + (" (random)" if part.get("random_weights") else "")
            rows.append({"label": name, "model": part["model"], "layer": layer,
                         "control": bool(part.get("random_weights")),
                         **{k: v for k, v in s.items() if k != "family"}})
    return rows
