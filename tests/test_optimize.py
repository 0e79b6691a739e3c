"""``optimize``: gradient ascent through the renderer (suites.optimization.ascent, curvebench optimize)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import probes
import stimuli
from curvebench.cli import main
from suites.errors import OptimizeError
from suites.optimization.ascent import optimize, resolve_channels
from suites.optimization.space import COORDINATES, build_space
from suites.specs.suite import load_suite


@pytest.fixture(scope="module")
def gt():
    return probes.load_model("groundtruth")


@pytest.fixture(scope="module")
def gt_optimum(gt):
    # Position fixed at the unit's centre: on this model's 2 px edge grid a sub-pixel
    # offset and a few degrees of rotation trade off at equal activation (within 1e-4),
    # which would leave orientation undetermined by the activation itself.
    return optimize(gt, "curves", restarts=1, steps=60, fix={"position": 0.0})


def test_unit_forward_matches_full_forward(gt):
    plan = gt.input_plan(["edges", "curves"])
    images = stimuli.render("curve", orientation=torch.tensor([0.0, 77.0, 200.0]), curvature=0.05, length=40.0,
                            position=plan.position, size=plan.size)
    sliced = gt.probe(images, ["edges", "curves"], plan)
    full = gt.probe(images, ["edges", "curves"], plan, sliced=False)
    for key in full:
        torch.testing.assert_close(sliced[key], full[key], rtol=1e-5, atol=1e-5)


def test_groundtruth_optimum_matches_design(gt, gt_optimum):
    ds = gt_optimum
    design = {u["channel"]: u for u in gt.meta["units"]}
    for i, ch in enumerate(ds.channel.values):
        want = design[int(ch)]
        d = abs((float(ds.orientation[i]) - want["preferred_orientation"] + 180.0) % 360.0 - 180.0)
        assert d <= 3.0, (int(ch), float(ds.orientation[i]))
        k = float(ds.curvature[i])
        assert abs(k - want["preferred_curvature"]) <= 0.25 * want["preferred_curvature"], (int(ch), k)
    assert (ds.activation.values >= ds.sweep_max.values).all()
    # the optimum's parameters really give that activation (rendered again, full 224 px input)
    plan = gt.input_plan(["curves"])
    x = stimuli.render("curve", orientation=torch.tensor(ds.orientation.values), curvature=torch.tensor(ds.curvature.values),
                       length=torch.tensor(ds.length.values), width=torch.tensor(ds.width.values),
                       position=torch.tensor(np.stack([ds.x.values, ds.y.values], 1)),
                       fg=torch.tensor(ds.fg.values), bg=torch.tensor(ds.bg.values), size=224)
    acts = gt.probe(x, ["curves"], units={"curves": plan.full_units["curves"]})["curves_pre_relu"]
    np.testing.assert_allclose(acts[np.arange(12), np.array(ds.channel.values)].numpy(), ds.activation.values, rtol=1e-4, atol=1e-5)


def test_groundtruth_optimum_beats_curves_sweep(gt, gt_optimum):
    """Activation >= the built-in curves sweep near each unit's preferred orientation.

    The suite's own grid (0.5 deg x 100 curvatures, 64 px, 3 px, black on white),
    thinned to every 3rd curvature, within +-2 deg of each unit's design (where its
    maximum lies); the whole 72,000-stimulus sweep is checked in the report.
    """
    suite = load_suite("curves")
    axes = dict(suite.axes)
    orientations, curvatures = np.asarray(axes["orientation"]), np.asarray(axes["curvature"])[::3]
    plan = gt.input_plan(["curves"])
    ds = gt_optimum
    for i, ch in enumerate(ds.channel.values):
        centre = gt.meta["units"][int(ch)]["preferred_orientation"]
        d = np.abs((orientations - centre + 180.0) % 360.0 - 180.0)
        o, k = np.meshgrid(orientations[d <= 2.0], curvatures, indexing="ij")
        images = stimuli.render("curve", orientation=torch.tensor(o.ravel()), curvature=torch.tensor(k.ravel()),
                                length=64.0, width=3.0, position=plan.position, size=plan.size)
        sweep_best = float(gt.probe(images, ["curves"], plan)["curves_pre_relu"][:, int(ch)].max())
        assert float(ds.activation[i]) >= sweep_best, (int(ch), float(ds.activation[i]), sweep_best)


def test_space_projection_keeps_parameters_in_range():
    space = build_space(size=94, bounds={"length": (10.0, 90.0)})
    x = torch.randn(500, len(COORDINATES), dtype=torch.float64) * 400
    y = space.clamp(x)
    col = {c: y[:, i] for i, c in enumerate(COORDINATES)}
    assert ((col["orientation"] >= 0) & (col["orientation"] < 360)).all()
    assert ((col["length"] >= 10) & (col["length"] <= 90)).all()
    assert (col["curvature"].abs() * col["length"] <= 2 * math.pi).all()
    for c in ("fg_r", "bg_b", "width", "dx"):
        lo, hi = float(space.lo[COORDINATES.index(c)]), float(space.hi[COORDINATES.index(c)])
        assert ((col[c] >= lo) & (col[c] <= hi)).all()
    stimuli.render("curve", **space.render_kwargs(y.float(), (47.0, 47.0)), size=94)  # the renderer accepts them all


@pytest.mark.parametrize("kwargs, match", [
    ({"fix": {"colour": 1.0}}, "unknown parameter 'colour'"),
    ({"bounds": {"thickness": (1, 2)}}, "unknown parameter 'thickness'"),
    ({"bounds": {"width": (1, 500)}}, "outside the renderer's valid range"),
    ({"bounds": {"fg": (0, 2)}}, "outside the renderer's valid range"),
    ({"bounds": {"curvature": (0, 1.0)}}, "2\\*pi/length"),
    ({"bounds": {"length": (50, 20)}}, "lo < hi"),
])
def test_bad_space_requests(kwargs, match):
    with pytest.raises(OptimizeError, match=match):
        build_space(size=55, **kwargs)


def test_bad_channels(gt):
    with pytest.raises(OptimizeError, match="channel 12 is not in layer 'curves'"):
        resolve_channels(gt, "curves", [3, 12])
    with pytest.raises(OptimizeError, match="not a layer"):
        resolve_channels(gt, "mixed3b", None)


def _family_file(path, model="groundtruth", sha="", layers=("curves", "curves", "curves", "edges"),
                 channels=(2, 5, 9, 5), detector=(True, False, True, True), kind="curvebench-curve-family"):
    import xarray as xr

    n = len(channels)
    ds = xr.Dataset({"detector": (("unit",), np.asarray(detector)),
                     "preferred_orientation": (("unit",), np.zeros(n))},
                    coords={"layer": (("unit",), np.asarray(layers, dtype=str)),
                            "channel": (("unit",), np.asarray(channels, dtype=np.int64))},
                    attrs={"kind": kind, "model": model, "weights_sha256": sha})
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_channels_from_a_discovered_family_file(gt, tmp_path, capsys):
    """--channels family.nc: the file's curve detectors in --layer; a file of another kind,
    model, weights or without detectors there is refused in one line."""
    fam = _family_file(tmp_path / "family.nc")
    assert resolve_channels(gt, "curves", fam) == [2, 9]
    assert resolve_channels(gt, "curves", str(fam)) == [2, 9]
    for bad, words in (
        (_family_file(tmp_path / "kind.nc", kind="curvebench-stats"), "not a family file"),
        (_family_file(tmp_path / "model.nc", model="inceptionv1"), "discovered in model 'inceptionv1'"),
        (_family_file(tmp_path / "sha.nc", sha="abc123"), "weights sha256 abc123"),
        (_family_file(tmp_path / "none.nc", detector=(False, False, False, True)), "no curve detectors in layer 'curves'"),
        (_family_file(tmp_path / "layer.nc", layers=("edges",) * 4), "no units of layer 'curves'"),
        (tmp_path / "missing.nc", "family file not found"),
    ):
        with pytest.raises(OptimizeError, match=words):
            resolve_channels(gt, "curves", bad)
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    with pytest.raises(OptimizeError, match="not a netCDF file"):
        resolve_channels(gt, "curves", tmp_path / "junk.nc")
    out = tmp_path / "o.nc"
    argv = ["optimize", "--model", "groundtruth", "--layer", "curves", "--channels", str(fam), "--restarts", "1",
            "--steps", "2", "--polish", "0", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    from suites.file_kinds import OPTIMIZE_KIND
    from suites.results.files import open_file

    assert list(open_file(out, OPTIMIZE_KIND).channel.values) == [2, 9]
    argv[argv.index(str(fam))] = str(tmp_path / "model.nc")
    argv[argv.index(str(out))] = str(tmp_path / "o2.nc")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("curvebench: error:") and "discovered in model" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, words", [
    (["--channels", "0,99"], "channel 99 is not in layer 'curves' (channels 0..11)"),
    (["--fix", "hue=3"], "unknown parameter 'hue'"),
    (["--bounds", "width=0:900"], "outside the renderer's valid range"),
    (["--polish", "100001"], "polish"),
])
def test_cli_bad_input_one_line(tmp_path, capsys, args, words):
    code = main(["optimize", "--model", "groundtruth", "--layer", "curves", "--out", str(tmp_path / "o.nc"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("curvebench: error:") and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.nc").exists()


def test_cli_end_to_end_with_sensitivity(tmp_path, capsys):
    from suites.file_kinds import OPTIMIZE_KIND
    from suites.results.files import open_file

    out, js = tmp_path / "o.nc", tmp_path / "o.json"
    argv = ["optimize", "--model", "groundtruth", "--layer", "curves", "--channels", "0,7", "--restarts", "1",
            "--steps", "8", "--fix", "fg=0", "--fix", "bg=1", "--out", str(out), "--json", str(js),
            "--sensitivity", "1", "--sweep-orientations", "12", "--sweep-curvatures", "4", "--escapes", "1", "--separation", "1",
            "--quiet"]
    assert main(argv) == 0
    rep = json.loads(js.read_text())
    assert rep["model"] == "groundtruth" and rep["layer"] == "curves"
    assert [c["channel"] for c in rep["channels"]] == [0, 7]
    for c in rep["channels"]:
        for key in ("orientation", "curvature", "length", "width", "activation", "sweep_max", "steps", "converged",
                    "activation_sigma"):
            assert key in c
        assert c["activation"] >= c["ascent_activation"] - 1e-5 and c["ascent_activation"] >= c["sweep_max"] - 1e-5
        assert set(c["sensitivity"]) == {"orientation", "curvature", "length", "width", "dx", "dy"}
    ds = open_file(out, OPTIMIZE_KIND)
    assert ds.attrs["model"] == "groundtruth" and ds.attrs["layer"] == "curves"
    options = json.loads(ds.attrs["options"])
    assert options["fix"]["fg"] == [0.0, 0.0, 0.0] and options["sweep"] == [12, 4] and options["escapes"] == 1
    assert options["separation"] == 1.0 and options["polish"] == 30
    assert rep["polish_iterations"] == ds.attrs["polish_iterations"] > 0
    assert ds.attrs["sweep_stimuli"] == 48 and set(ds.escapes.values) <= {0, 1}
    assert ds.image.shape[0] == 2 and (tmp_path / "o.png").stat().st_size > 0
    # the measured orientation change really moves the activation by >= 1 sigma, and half of it does not
    i = 0
    d = float(ds.sensitivity_measured.sel(coordinate="orientation")[i])
    assert math.isfinite(d) and 0 < abs(d) < 180
    gt = probes.load_model("groundtruth")
    plan = gt.input_plan(["curves"])
    o = float(ds.orientation[i]) + torch.tensor([d, d / 2], dtype=torch.float64)
    images = stimuli.render("curve", orientation=o, curvature=float(ds.curvature[i]), length=float(ds.length[i]),
                            width=float(ds.width[i]), position=(plan.position[0] + float(ds.dx[i]), plan.position[1] + float(ds.dy[i])),
                            size=plan.size)
    a = gt.probe(images, ["curves"], plan)["curves_pre_relu"][:, 0].double().numpy()
    drop = (float(ds.activation[i]) - a) / float(ds.reference_std[i])
    assert drop[0] >= 1.0 - 1e-3 and drop[1] < 1.0
    # never overwritten
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err


def test_bench_optimize_smoke():
    from curvebench.benches.optimize import bench_optimize

    rep = bench_optimize(model="groundtruth", weights=None, layer="curves", channels=[0, 5], steps=3, max_sweep=300)
    assert rep["channels"] == 2 and [s["stimuli"] for s in rep["sweeps"]][:3] == [16, 81, 256]
    assert rep["free_coordinates"] == ["orientation", "curvature", "length", "width"]
    assert rep["sweep_equivalent_speedup"] is not None and rep["sweep_equivalent_speedup"] > 0
    assert rep["coarse_sweep_stimuli"] <= rep["optimizer_forward_passes_to_99pct"] <= rep["optimizer_forward_passes_total"]
    if not rep["sweep_reached"]:  # the next grid of the sequence is the smallest the protocol could still need
        assert rep["sweep_stimuli_lower_bound"] == 5 ** 4 and rep["sweep_equivalent_speedup_is_lower_bound"]


def test_bench_optimize_counts_the_polish():
    """--polish N: the compass search's forward passes and time are part of the optimiser's cost."""
    from curvebench.benches.optimize import bench_optimize

    kw = dict(model="groundtruth", weights=None, layer="curves", channels=[0, 5], steps=3, max_sweep=20)
    bare = bench_optimize(**kw)
    polished = bench_optimize(polish=6, **kw)
    assert bare["optimizer_polish_iterations"] == 0 and polished["optimizer_polish_iterations"] > 0
    extra = polished["optimizer_forward_passes_total"] - bare["optimizer_forward_passes_total"]
    assert extra >= 2 * 4 * 2  # at least one iteration: 2 channels x 4 coordinates x +-
    assert polished["final_activation_mean"] >= bare["final_activation_mean"]
    assert "--polish 6" in polished["command"]


def test_bench_optimize_default_free_parameters():
    """--free default: 12 coordinates, so even 2 values per axis is 4096 stimuli, above this max_sweep."""
    from curvebench.benches.optimize import bench_optimize

    rep = bench_optimize(model="groundtruth", weights=None, layer="curves", channels=[0, 5], steps=4, max_sweep=4095,
                         free="default")
    assert rep["free_parameters"] == ["orientation", "curvature", "length", "width", "position", "fg", "bg"]
    assert len(rep["free_coordinates"]) == 12 and rep["sweeps"] == [] and not rep["sweep_reached"]
    assert rep["sweep_stimuli_lower_bound"] == 2 ** 12 and rep["sweep_equivalent_speedup"] is None
    assert rep["forward_pass_ratio_lower_bound"] == 2 ** 12 / rep["optimizer_forward_passes_to_99pct"]
    with pytest.raises(ValueError, match="free"):
        bench_optimize(model="groundtruth", weights=None, layer="curves", channels=[0], free="everything")


def test_zero_gradient_starts_escape(gt):
    """A start where the unit sees nothing (a 22 px offset: the bias, no gradient) jumps to random points.

    Without escapes the rows never move (activation = the coarse sweep's, the bias); with
    them, channel 6 finds a stimulus that drives it. Forward passes count only the rows
    rendered: done rows are not.
    """
    kw = dict(restarts=1, steps=25, bounds={"length": (4.0, 96.0)}, fix={"position": (22.0, 22.0)},
              sweep_orientations=3, sweep_curvatures=1, polish=0)
    stuck = optimize(gt, "curves", [4, 6], escapes=0, **kw)
    assert (stuck.escapes == 0).all()
    np.testing.assert_allclose(stuck.activation, stuck.sweep_max, atol=1e-6)
    np.testing.assert_allclose(stuck.sweep_max, -0.15, atol=1e-4)  # the curve units' bias
    free = optimize(gt, "curves", [4, 6], escapes=3, **kw)
    assert (free.escapes > 0).all() and (free.escapes <= 3).all()
    assert float(free.activation.sel(channel=6)) > float(free.sweep_max.sel(channel=6)) + 0.1
    assert (free.activation >= free.sweep_max).all()
    # accounting: the coarse sweep, then one pass per rendered row and step, then the final renders
    active = free.history_active_rows.values
    passes = free.history_forward_passes.values
    assert passes[0] == free.attrs["sweep_stimuli"] + active[0]
    np.testing.assert_array_equal(np.diff(passes), active[1:])
    assert free.attrs["forward_passes"] == passes[-1] + 2
    # channel 4 gave up after its escapes: converged, and its row was no longer rendered
    assert int(free.converged.sel(channel=4)) == 1 and active[-1] == 1
    assert int(free.steps.sel(channel=4)) < int(free.attrs["steps_run"])


def test_polish_alone_climbs_from_the_coarse_sweep(gt):
    """No gradient step at all (steps=0): the compass search alone takes each unit from its
    coarse-sweep best (15 deg grid) to its designed orientation; it only ever moves up,
    and its forward passes are counted per iteration (2 per free coordinate and row)."""
    design = {u["channel"]: u for u in gt.meta["units"]}
    kw = dict(restarts=1, steps=0, fix={"position": 0.0, "fg": 0.0, "bg": 1.0}, sweep_orientations=24,
              sweep_curvatures=4)
    ds = optimize(gt, "curves", [0, 5], polish=60, **kw)
    assert ds.attrs["polish_iterations"] > 5
    stage = ds.history_stage.values
    assert stage[0] == 0 and (stage[1:] == 1).all()
    for ch in (0, 5):
        d = abs((float(ds.orientation.sel(channel=ch)) - design[ch]["preferred_orientation"] + 180.0) % 360.0 - 180.0)
        assert d <= 1.0, (ch, d)
    assert (ds.activation > ds.sweep_max * 1.01).all()
    np.testing.assert_allclose(ds.ascent_activation, ds.sweep_max, rtol=1e-5)  # no ascent: the start
    assert (np.diff(ds.history.values, axis=0) >= 0).all()
    np.testing.assert_allclose(ds.history.values[-1], ds.activation, rtol=1e-5)
    passes, active = ds.history_forward_passes.values, ds.history_active_rows.values
    np.testing.assert_array_equal(np.diff(passes), active[1:])
    assert (active[1:] % 8 == 0).all()  # 4 free coordinates, +- each
    # without it the result is the start
    bare = optimize(gt, "curves", [0, 5], polish=0, **kw)
    np.testing.assert_allclose(bare.activation, bare.sweep_max, rtol=1e-5)
    assert bare.attrs["polish_iterations"] == 0


def test_rounding_and_fill_flags_and_family(gt):
    ds = optimize(gt, "curves", "family", rounding=True, fill=True, restarts=1, steps=2, sweep_orientations=8,
                  sweep_curvatures=2, bounds={"fill": (0.0, 0.5)})
    assert list(ds.channel.values) == [int(c) for c in probes.get_family("groundtruth", "curves").channels]
    assert {"rounding", "fill"} <= set(ds.coordinate.values)
    assert ((ds.fill >= 0) & (ds.fill <= 0.5)).all() and ((ds.rounding >= 0) & (ds.rounding <= 1)).all()
    assert int(ds.attrs["steps_run"]) <= 2 and (ds.activation >= ds.sweep_max).all()
