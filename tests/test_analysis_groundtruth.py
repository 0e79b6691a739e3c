"""End to end on the ground-truth model: sweeps -> tuning numbers whose answers are known.

The ground-truth model (probes/groundtruth.py) has 12 ``curves`` units designed to
prefer orientations 30*k degrees at curvature 0.05 /px; odd units keep an "echo"
(weak inhibition of the opposite arc); its edge stage is built to respond alike to
strokes, filled shapes and any colour pair with a clear edge.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import probes
from suites.analysis.tuning import layer_tuning, wrap180
from curvebench.cli import main
from suites.results.reading import open_results
from suites.running.runner import run_suite
from suites.specs.suite import parse_suite

SUITE = """name = "{name}"
kind = "curve"
[sweep]
orientation = {{ start = 0, stop = 360, step = 6 }}
curvature = {{ start = 0, stop = 0.19634954084936207, num = 9 }}
{extra}
[fixed]
length = 32
width = 2
{fixed}
[model]
name = "groundtruth"
layers = ["curves"]
readout = "both"
[run]
batch_size = 1024
"""
RUNS = {
    "curves": ("", "fg = [0, 0, 0]\nbg = [1, 1, 1]"),
    "fill": ("", "fill = 1.0\nfg = [0, 0, 0]\nbg = [1, 1, 1]"),
    "colour": ("fg_hue = [120]", 'fill = 1.0\nbg = "complement"'),  # green on magenta
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("gt")
    out = {}
    for name, (extra, fixed) in RUNS.items():
        suite = parse_suite(SUITE.format(name=f"gt-{name}", extra=extra, fixed=fixed))
        out[name] = str(run_suite(suite, out=root / f"{name}.h5", progress=False, log=None).path)
    return out


@pytest.fixture(scope="module")
def design() -> list[dict]:
    return probes.load_model("groundtruth").meta["units"]


@pytest.fixture(scope="module")
def tuned(runs) -> dict:
    return layer_tuning(open_results(runs["curves"]), "curves")


def test_recovers_designed_orientations_within_3_degrees(tuned, design) -> None:
    errors = [wrap180(tuned["channels"][u["channel"]]["preferred_orientation"] - u["preferred_orientation"]) for u in design]
    assert np.max(np.abs(errors)) < 3.0, errors


def test_tuning_width_grows_with_curvature(tuned, design) -> None:
    # From the preferred curvature (0.05 /px) toward the closed circle, the orientation
    # tuning broadens: the article's triangles. The closed circle itself is excluded
    # (a full circle looks alike from every orientation's point of view).
    for u in design:
        res = tuned["channels"][u["channel"]]
        ks = sorted(float(k) for k in res["fwhm_by_curvature"])
        widths = [res["fwhm_by_curvature"][f"{k:.6g}"] for k in ks if res["best_curvature"] - 1e-9 <= k < ks[-1]]
        assert all(b >= a - 1.0 for a, b in zip(widths, widths[1:])), widths
        assert widths[-1] > 2 * widths[0], widths


def test_echo_units_have_higher_echo_index(tuned, design) -> None:
    echo = [tuned["channels"][u["channel"]]["echo_index"] for u in design if u["has_echo"]]
    clean = [tuned["channels"][u["channel"]]["echo_index"] for u in design if not u["has_echo"]]
    assert min(echo) > max(clean) + 0.2, (echo, clean)


def test_fill_and_colour_invariance_match_design(runs) -> None:
    ref = open_results(runs["curves"])
    for name in ("fill", "colour"):
        res = layer_tuning(open_results(runs[name]), "curves", reference=ref)
        scores = [u["invariance_score"] for u in res["channels"].values()]
        assert min(scores) > 0.9, (name, scores)
    # control: the same score between *different* units' heatmaps is low
    from suites.analysis.arrays import grid
    from suites.analysis.tuning import invariance_score

    g = grid(ref, layer="curves").values
    assert invariance_score(g[0], g[3]) < 0.3


def test_cli_tuning_plot_validate(runs, tmp_path, capsys) -> None:
    out_json = tmp_path / "tuning.json"
    assert main(["tuning", runs["fill"], "--reference", runs["curves"], "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())
    assert report["layers"]["curves"]["channels"]["3"]["invariance_score"] > 0.9
    assert "fitted peak" in report["preferred_orientation_method"]
    assert "sweep's own statistics" in report["statistics"]
    assert main(["validate", runs["curves"]]) == 0  # designed orientations are in the renderer's convention
    assert "mapping article = +measured + 0.0 deg" in capsys.readouterr().out
    figs = tmp_path / "figs"
    assert main(["plot", runs["curves"], runs["fill"], "--out", str(figs)]) == 0
    names = sorted(p.name for p in figs.iterdir())
    assert "curves-curves-heatmaps.png" in names and "side-by-side-curves.png" in names and "curves-curves-radial.png" in names
    assert all((figs / n).stat().st_size > 20_000 for n in names)


def test_cli_stats_and_rotate_tuning(tmp_path, capsys) -> None:
    stats = tmp_path / "s.nc"
    assert main(["stats", "--images", "builtin", "--limit", "2", "--size", "64", "--layers", "curves", "--out", str(stats)]) == 0
    assert stats.exists() and (tmp_path / "s-curves-distribution.png").exists()
    assert main(["rotate-tuning", "--images", "builtin", "--limit", "3", "--k", "2", "--step", "30", "--size", "96",
                 "--channels", "0,2,4,6,8,10", "--stats", str(stats), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "rotate-tuning-groundtruth-curves.png").stat().st_size > 20_000
    assert main(["stats", "--images", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err


def test_stimulus_strip_renders_the_runs_stimuli() -> None:
    from suites.analysis.strip_layout import tile_params
    from suites.stimulus_strips import stimulus_strip
    from suites.analysis.synthetic import synthetic_results

    suite = SUITE.format(name="strip", extra="fg_hue = [0, 120]", fixed='fill = 1.0\nbg = "complement"')
    ds = synthetic_results([dict(preferred=0.0)], layer="curves", orientations=np.arange(0, 360, 30.0),
                           curvatures=np.linspace(0, 0.19634954084936207, 4), extra={"fg_hue": [0.0, 120.0]},
                           attrs={"suite": suite, "model": "groundtruth"})
    strip = stimulus_strip(ds, np.unique(ds.orientation.values), np.unique(ds.curvature.values), columns=8, rows=3, tile=24)
    assert strip.shape == (72, 192, 3)
    # the heatmap averages over fg_hue, so hues cycle along the strip: red (0), green (120), ...
    assert tile_params(ds, 10.0, 0.05, column=0)["fg_hue"] == 0.0
    assert tile_params(ds, 10.0, 0.05, column=1)["fg_hue"] == 120.0
    red, green = strip[24:48, 2:22].reshape(-1, 3), strip[24:48, 26:46].reshape(-1, 3)
    assert (red[:, 0] - red[:, 1]).max() > 0.5 and (green[:, 1] - green[:, 0]).max() > 0.5
    # the background is the complement of the foreground (cyan behind red)
    assert red[:, 1].max() > 0.9 and red[:, 2].max() > 0.9
