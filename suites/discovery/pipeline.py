"""``discover``: measure (:mod:`suites.discovery.responses`), test (:mod:`suites.analysis.curve_family`), write files and figures.

The one-call Python API of ``curvebench discover`` and ``curvebench demo``::

    from suites.discovery.pipeline import discover
    result = discover("efficientnet-lite0", ["blocks.3.2.depthwise"], control=True, out_dir="results/mine")
    print(result.line())        # "55 curve detectors in blocks.3.2.depthwise, ...; random-weights control: 0"

It sits above the analysis (it draws figures) in the import layers, beside
:mod:`suites.stimulus_strips`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from suites.atomic import check_folder, output_file
from suites.discovery.responses import DEFAULT_SWEEP, DiscoverError, Sweep, discover_responses, load_network, model_fingerprint

__all__ = ["DiscoverResult", "discover", "write_figures", "compare_rows", "output_paths"]


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
class DiscoverResult:
    """What :func:`discover` made: datasets, the JSON summary and the files written."""

    responses: xr.Dataset
    family: xr.Dataset
    summary: dict
    control_responses: xr.Dataset | None = None
    control_family: xr.Dataset | None = None
    files: dict[str, Path] | None = None
    seconds: float = 0.0

    def line(self, layer: str | None = None) -> str:
        """The one-line summary of ``layer`` (default: the first layer)."""
        from suites.analysis.curve_family import summary_line

        layer = layer or next(iter(self.summary["layers"]))
        return summary_line(self.summary, layer)


def discover(
    model: str,
    layers: Sequence[str],
    *,
    weights: str | Path | None = None,
    control: bool = False,
    seed: int = 0,
    sweep: Sweep = DEFAULT_SWEEP,
    criteria=None,
    images: str = "builtin",
    stats: xr.Dataset | None = None,
    cache_dir: str | Path | None = "results/cache",
    out_dir: str | Path | None = None,
    figures: bool = True,
    device: str = "cpu",
    progress: bool = False,
) -> DiscoverResult:
    """Find the curve family of ``layers`` of a model: measure, test, summarise, and optionally write files.

    Args:
        model: registry id (``probes.list_models()``).
        layers: tap names.
        weights: weights file, None (the model's default) or ``"random"`` (seeded with
            ``seed``; the random-weights control alone).
        control: also run the same test on the same architecture with random weights.
        seed: torch seed of the random initialisation.
        sweep: stimuli (:class:`Sweep`).
        criteria: :class:`suites.analysis.curve_family.Criteria` (default thresholds).
        images: ``"builtin"`` or a folder, for the sigma statistics.
        stats: precomputed statistics of the trained network (not used for the control).
        cache_dir: statistics cache (None: no cache).
        out_dir: if given, write ``family.nc`` (and ``family-control.nc``), the raw
            ``responses.nc``, ``summary.json`` and, with ``figures``, per layer
            ``<layer>-family-heatmaps.png`` and ``<layer>-radial.png``, plus
            ``layers-summary.png``.

    Returns:
        :class:`DiscoverResult`; ``summary`` has the JSON shape of docs/discover.md.
    """
    import json
    import time

    from suites.analysis.curve_family import Criteria, classify_all, summary

    t0 = time.perf_counter()
    crit = criteria or Criteria()
    layers = list(dict.fromkeys(layers))
    net = load_network(model, weights, seed=seed, device=device)
    rnd = None
    if control:  # before any work: a model built from code has no random control
        rnd = load_network(model, "random", seed=seed, device=device)
        if model_fingerprint(rnd) == model_fingerprint(net):
            raise DiscoverError(f"control: model {model!r} has no random initialisation (its weights are built from "
                                f"code); drop --control")
    resp = discover_responses(net, layers, sweep, images=images, stats=stats, cache_dir=cache_dir, progress=progress)
    if isinstance(weights, str) and weights == "random":
        resp.attrs["weights"] = f"random (torch seed {seed})"
    family = classify_all(resp, crit, layers)
    c_resp = c_family = None
    if control:
        del net
        c_resp = discover_responses(rnd, layers, sweep, images=images, cache_dir=cache_dir, progress=progress)
        c_resp.attrs["weights"] = f"random (torch seed {seed})"
        c_family = classify_all(c_resp, crit, layers)
    summ = summary(family, c_family)
    result = DiscoverResult(resp, family, summ, c_resp, c_family, {}, 0.0)
    if out_dir is not None:
        out = check_folder(out_dir, "out_dir")
        files = result.files
        files["family"] = _save(family, out / "family.nc")
        files["responses"] = _save(resp, out / "responses.nc")
        if c_family is not None:
            files["family_control"] = _save(c_family, out / "family-control.nc")
            files["responses_control"] = _save(c_resp, out / "responses-control.nc")
        if figures:
            files.update(write_figures(result, out))
    result.seconds = time.perf_counter() - t0
    summ["seconds"] = round(result.seconds, 2)
    if out_dir is not None:
        path = Path(out_dir) / "summary.json"
        with output_file(path) as tmp:
            tmp.write_text(json.dumps(summ, indent=2) + "\n", encoding="utf-8")
        result.files["summary"] = path
    return result


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
    for key, part in (("trained", summ), ("control", summ.get("control"))):
        if part is None:
            continue
        for layer, s in part["layers"].items():
            name = f"{label or part['model']} {layer}" + (" (random)" if part.get("random_weights") else "")
            rows.append({"label": name, "model": part["model"], "layer": layer,
                         "control": bool(part.get("random_weights")),
                         **{k: v for k, v in s.items() if k != "family"}})
    return rows
