"""`curvebench atlas`: many layers of several models, one forward pass per batch, resumable, bad input in one line.

The ground-truth model (12 `curves` units, 12 `edges` units) and tiny sweeps keep this fast;
one EfficientNet-Lite0 run checks the control, the figures and `compare`/`report` on an atlas.
"""

from __future__ import annotations

import json

import pytest

from curvebench.cli import main as cli_main
from suites.discovery import atlas as A
from suites.discovery.responses import Sweep

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = Sweep(orientations=36, curvatures=8, length=32.0, width=2.0)
TINY_ARGS = ["--orientations", "36", "--curvatures", "8", "--length", "32", "--width", "2"]
LAYER_KEYS = {"depth", "stride", "rf_size", "channels_tested", "detectors", "detectors_ci", "largest_gap_deg",
              "median_tuning_width_deg", "median_preferred_curvature"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _gt_options(cache, **kw) -> A.AtlasOptions:
    from suites.analysis.curve_family import Criteria

    # line ratio 1.3: the odd curve units' curve/line ratio moves 1.33-1.78 over positions (tests/test_discover.py)
    return A.AtlasOptions(models=("groundtruth",), layers=("edges", "curves"), sweep=TINY, cache_dir=cache,
                          criteria=Criteria(min_line_ratio=1.3), figures=False, **kw)


def test_groundtruth_atlas_finds_its_12_curve_units_from_one_pass_per_batch(tmp_path, cache, monkeypatch) -> None:
    import probes.base

    calls = []
    probe = probes.base.ProbeModel.probe

    def spy(self, images, layers, *args, **kwargs):
        calls.append(list(layers) if not isinstance(layers, str) else [layers])
        return probe(self, images, layers, *args, **kwargs)

    monkeypatch.setattr(probes.base.ProbeModel, "probe", spy)
    atlas = A.run_atlas(_gt_options(cache), tmp_path / "a")
    measured = [c for c in calls if len(c) == 2]
    assert len(measured) >= TINY.positions * 2 * 36 * 8 / TINY.batch_size  # the sweep's batches ...
    assert all(sorted(c) == ["curves", "edges"] for c in calls)  # ... each read both taps at once
    layers = atlas["models"]["groundtruth"]["layers"]
    assert set(layers) == {"edges", "curves"}
    for s in layers.values():
        assert LAYER_KEYS <= set(s) and 0 <= s["depth"] <= 1
        lo, hi = s["detectors_ci"]
        assert lo <= s["detectors"] <= hi
    assert layers["curves"]["detectors"] == 12 and layers["edges"]["detectors"] == 0
    assert layers["curves"]["depth"] > layers["edges"]["depth"]
    assert atlas["models"]["groundtruth"]["best_layer"] == "curves"
    assert json.loads((tmp_path / "a" / "atlas.json").read_text()) == atlas
    assert (tmp_path / "a" / "groundtruth" / "trained" / "curves" / "family.nc").is_file()


def test_resume_continues_per_layer_and_refuses_other_settings(tmp_path, cache, monkeypatch) -> None:
    out = tmp_path / "a"
    real = A._test_layer

    def dies_on_curves(resp, layer, criteria):
        if layer == "curves":
            raise KeyboardInterrupt  # interrupted after the first layer was written
        return real(resp, layer, criteria)

    monkeypatch.setattr(A, "_test_layer", dies_on_curves)
    with pytest.raises(KeyboardInterrupt):
        A.run_atlas(_gt_options(cache), out)
    assert (out / "groundtruth" / "trained" / "edges" / "layer.json").is_file()
    assert not (out / "groundtruth" / "trained" / "curves" / "layer.json").exists()
    first = json.loads((out / "groundtruth" / "trained" / "seconds.json").read_text())["seconds"]
    assert first > 0  # the interrupted run's measuring time is kept
    monkeypatch.setattr(A, "_test_layer", real)
    measured = []
    import suites.discovery.atlas as mod

    monkeypatch.setattr(mod, "discover_responses", lambda *a, **k: measured.append(a) or pytest.fail("re-measured"))
    atlas = A.run_atlas(_gt_options(cache), out)  # the saved responses are reused, only 'curves' is tested
    assert not measured and atlas["models"]["groundtruth"]["layers"]["curves"]["detectors"] == 12
    part = atlas["seconds"]["groundtruth trained"]
    assert part >= first and atlas["seconds"]["total"] == part and atlas["seconds"]["this_run"] > 0
    from dataclasses import replace

    with pytest.raises(A.AtlasError, match="other sweep.orientations"):
        A.run_atlas(replace(_gt_options(cache), sweep=Sweep(orientations=40, curvatures=8, length=32.0, width=2.0)), out)
    with pytest.raises(A.AtlasError, match="other models.groundtruth.layers"):
        A.run_atlas(replace(_gt_options(cache), layers=("curves",)), out)
    with pytest.raises(A.AtlasError, match="other criteria.min_line_ratio"):
        A.run_atlas(replace(_gt_options(cache), criteria=None), out)


def test_resume_refuses_other_weights(tmp_path, cache) -> None:
    out = tmp_path / "a"
    A.run_atlas(_gt_options(cache), out)
    settings = json.loads((out / "settings.json").read_text())
    settings["models"]["groundtruth"]["weights_sha256"] = "0" * 64  # as if the atlas had been run with other weights
    (out / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(A.AtlasError, match="other models.groundtruth.weights_sha256"):
        A.run_atlas(_gt_options(cache), out)


def test_cli_resume_with_other_settings_is_one_line(tmp_path, cache, capsys) -> None:
    out = tmp_path / "a"
    base = ["atlas", "--models", "groundtruth", "--layers", "edges,curves", "--out", str(out), "--cache", str(cache),
            "--no-progress", "--no-figures", "--min-line-ratio", "1.3", *TINY_ARGS]
    assert cli_main(base) == 0
    assert "groundtruth (trained): best layer curves" in capsys.readouterr().out
    assert cli_main([*base, "--min-sigma", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other criteria.min_sigma (2.0 there, 3.0 asked)" in err[0]


@pytest.mark.parametrize("argv, needle", [
    (["--models", "nosuchnet", "--layers", "curves"], "unknown model 'nosuchnet'; allowed: inceptionv1, efficientnet-lite0"),
    (["--models", "groundtruth", "--layers", "curves,mixed3b"], "unknown layer 'mixed3b' for model 'groundtruth'; "
                                                                "allowed: edges, curves"),
    (["--models", "groundtruth"], "model 'groundtruth' has no taps in the auto range"),
    (["--models", "inceptionv1", "--layers", "auto"], "model 'inceptionv1' has no taps in the auto range"),
    (["--models", "groundtruth", "--layers", "curves", "--control"], "built from code"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, needle) -> None:
    assert cli_main(["atlas", *argv, "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and len(err) == 1
    assert not (tmp_path / "a").exists()  # refused before any work


def test_a_folder_that_is_not_an_atlas_is_refused(tmp_path, cache) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("mine")
    with pytest.raises(A.AtlasError, match="not empty and holds no atlas"):
        A.run_atlas(_gt_options(cache), tmp_path / "a")


def test_auto_layers_are_block_outputs_and_depthwise_of_the_auto_stages() -> None:
    layers = A.auto_layers("efficientnet-lite1")
    assert "blocks.2.0.depthwise" in layers and "blocks.4.3" in layers and "blocks.3.3.depthwise" in layers
    assert not any(l.endswith(".expand") or l in ("blocks.3", "blocks.5.0") for l in layers)
    assert {int(l.split(".")[1]) for l in layers} == set(A.AUTO_STAGES)
    assert len(A.auto_layers("efficientnet-lite2")) == len(layers) > len(A.auto_layers("efficientnet-lite0"))


def test_efficientnet_atlas_with_control_figures_compare_and_report(tmp_path, cache, capsys) -> None:
    out = tmp_path / "a"
    assert cli_main(["atlas", "--models", "efficientnet-lite0", "--layers", "blocks.2,blocks.3.0.depthwise",
                     "--control", "--out", str(out), "--json", str(tmp_path / "atlas.json"), "--cache", str(cache),
                     "--no-progress", "--orientations", "12", "--curvatures", "4", "--positions", "1"]) == 0
    atlas = json.loads((tmp_path / "atlas.json").read_text())
    trained = atlas["models"]["efficientnet-lite0"]["layers"]
    control = atlas["control"]["models"]["efficientnet-lite0"]["layers"]
    assert trained["blocks.3.0.depthwise"]["stride"] == 16 and trained["blocks.2"]["stride"] == 8
    assert trained["blocks.3.0.depthwise"]["detectors"] > max(s["detectors"] for s in control.values())
    assert (out / "atlas-depth.png").stat().st_size > 10_000 and (out / "atlas-best-radial.png").stat().st_size > 10_000
    capsys.readouterr()
    assert cli_main(["compare", str(out), "--out", str(tmp_path / "c.png")]) == 0
    text = capsys.readouterr().out
    assert "efficientnet-lite0 blocks.3.0.depthwise (random)" in text and (tmp_path / "c.png").is_file()
    assert cli_main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "efficientnet-lite0" in (tmp_path / "r.html").read_text(encoding="utf-8")
