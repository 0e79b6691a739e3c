"""The streaming runner on the ground-truth model: values, determinism, resume, subsets, summaries, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import probes
import stimuli
from conftest import curve_suite
from curvebench.cli import main as cli_main
from suites.specs.grid import Grid
from suites.results.reading import open_results, unstack_grid
from suites.specs.options import RunOptions
from suites.running.runner import resolve_readout, run_suite
from suites.specs.suite import SuiteError, parse_suite

pytestmark = pytest.mark.usefixtures("one_thread")


def make(layers='["edges"]', bs=16, model_extra="", run_extra="", summary=""):
    return curve_suite("tiny", "test sweep", step=30, layers=layers, batch_size=bs, model_extra=model_extra,
                       run_extra=f"{run_extra}\n{summary}")


def _load(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


def test_values_are_the_probed_stimuli_and_file_is_self_describing(tmp_path):
    s = make()
    res = run_suite(s, out=tmp_path / "a.h5", progress=False, log=None)
    assert res.complete and res.rows == s.num_stimuli == 60
    ds = _load(res.path)
    assert ds["edges"].dims == ("stimulus", "edges_channel")
    assert ds["edges_pre_relu"].dims == ("stimulus", "edges_channel")
    np.testing.assert_array_equal(ds["edges_channel"].values, np.arange(12))
    rows = Grid(s.axes).rows(0, 60)
    np.testing.assert_array_equal(ds["orientation"].values, rows["orientation"])
    np.testing.assert_array_equal(ds["curvature"].values, rows["curvature"])
    for key in ("suite", "model", "weights_sha256", "torch_version", "curvebench_version", "device", "dtype",
                "seed", "created", "rows_completed", "state"):
        assert key in ds.attrs, key
    assert ds.attrs["state"] == "complete" and ds.attrs["suite"] == s.source
    # independent computation: render the same stimuli at the plan's position and probe them
    net = probes.load_model("groundtruth")
    plan = net.input_plan(["edges"])
    imgs = stimuli.render("curve", orientation=torch.tensor(rows["orientation"], dtype=torch.float32),
                          curvature=torch.tensor(rows["curvature"], dtype=torch.float32), length=16.0, width=2.0,
                          position=plan.position, size=plan.size)
    ref = net.probe(imgs, ["edges"], plan=plan)
    np.testing.assert_allclose(ds["edges"].values, ref["edges"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds["edges_pre_relu"].values, ref["edges_pre_relu"].numpy(), rtol=1e-5, atol=1e-6)
    assert tuple(ds.attrs["stimulus_position_xy"]) == plan.position and ds.attrs["input_size"] == plan.size
    u = unstack_grid(ds)
    assert u["edges"].dims == ("orientation", "curvature", "edges_channel") and u["edges"].shape == (12, 5, 12)


def test_deterministic_and_interrupted_resume_equals_uninterrupted(tmp_path):
    s = make(bs=8, summary="[summary]\nenabled = true\ntop_k = 3\n")
    a = run_suite(s, out=tmp_path / "a.h5", progress=False, log=None)
    b = run_suite(s, out=tmp_path / "b.h5", progress=False, log=None)
    part = run_suite(s, out=tmp_path / "c.h5", progress=False, log=None, stop_after_batches=3)
    assert not part.complete and part.rows_total == 24
    with open_results(part.path) as ds:
        assert ds.attrs["state"] == "running" and ds.sizes["stimulus"] == 24
    done = run_suite(resume=tmp_path / "c.h5", progress=False, log=None)
    assert done.complete and done.rows == 36
    da, db, dc = _load(a.path), _load(b.path), _load(tmp_path / "c.h5")
    for name in ("edges", "edges_pre_relu", "orientation", "edges_mean", "edges_std", "edges_top_stimulus"):
        np.testing.assert_array_equal(da[name].values, db[name].values)
        np.testing.assert_array_equal(da[name].values, dc[name].values)
    # running summaries equal the statistics of the stored rows
    x = da["edges_pre_relu"].values.astype(np.float64)
    np.testing.assert_allclose(da["edges_pre_relu_mean"].values, x.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(da["edges_pre_relu_std"].values, x.std(0), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(da["edges_pre_relu_max"].values, x.max(0))
    top = da["edges_pre_relu_top_stimulus"].values
    assert top.shape == (3, 12) and da["edges_pre_relu_top_value"].dims == ("rank", "edges_channel")
    np.testing.assert_array_equal(x[top[0], np.arange(12)], x.max(0))
    assert np.all(np.diff(da["edges_pre_relu_top_value"].values, axis=0) <= 0)


def _kill_mid_statics(path) -> None:
    """What SIGKILL during a batch's flush leaves: the next batch's statics half written, untrusted."""
    import h5py

    with h5py.File(path, "r+", locking=False) as f:
        for name in ("edges_m2", "edges_mean", "edges_pre_relu_top_value"):
            f[name][...] = f[name][...] * 1.5 + 1.0
        f.attrs["statics_rows"] = -1


def test_resume_after_a_kill_mid_statics_rebuilds_the_summaries(tmp_path):
    s = make(bs=8, summary="[summary]\nenabled = true\ntop_k = 3\n")
    ref = _load(run_suite(s, out=tmp_path / "a.h5", progress=False, log=None).path)
    run_suite(s, out=tmp_path / "c.h5", progress=False, log=None, stop_after_batches=3)
    _kill_mid_statics(tmp_path / "c.h5")
    assert run_suite(resume=tmp_path / "c.h5", progress=False, log=None).complete
    got = _load(tmp_path / "c.h5")
    assert got.attrs["statics_rows"] == got.attrs["rows_completed"] == got.attrs["rows_total"]
    for name in ("edges_mean", "edges_m2", "edges_std", "edges_pre_relu_top_value", "edges_pre_relu_top_stimulus"):
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-12, atol=1e-12, err_msg=name)
    # a summary-only file has no rows to rebuild from: refused in one line, the file left as it is
    s2 = make(bs=8, summary="[summary]\nenabled = true\nkeep_rows = false\n")
    run_suite(s2, out=tmp_path / "s.h5", progress=False, log=None, stop_after_batches=2)
    _kill_mid_statics(tmp_path / "s.h5")
    before = (tmp_path / "s.h5").read_bytes()
    from suites.errors import ResultsFileError

    with pytest.raises(ResultsFileError, match="keep_rows = false"):
        run_suite(resume=tmp_path / "s.h5", progress=False, log=None)
    assert (tmp_path / "s.h5").read_bytes() == before


def test_summary_only_files_keep_no_rows(tmp_path):
    s = make(summary="[summary]\nenabled = true\nkeep_rows = false\n")
    res = run_suite(s, out=tmp_path / "s.h5", progress=False, log=None)
    ds = _load(res.path)
    assert "edges" not in ds and "edges_mean" in ds and ds.attrs["rows_completed"] == 60


def test_resume_refuses_other_suite_or_model(tmp_path):
    s = make(bs=8)
    run_suite(s, out=tmp_path / "c.h5", progress=False, log=None, stop_after_batches=1)
    other = make(bs=8, run_extra="seed = 3")
    with pytest.raises(ValueError, match="different suite"):
        run_suite(other, resume=tmp_path / "c.h5", progress=False, log=None)
    with pytest.raises(ValueError, match="written with model 'groundtruth', not 'inceptionv1'"):
        run_suite(None, RunOptions(model="inceptionv1"), resume=tmp_path / "c.h5", progress=False, log=None)
    wfile = tmp_path / "w.pth"
    wfile.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="weights .* differ"):
        run_suite(None, RunOptions.of(weights=str(wfile)), resume=tmp_path / "c.h5", progress=False, log=None)
    with pytest.raises(FileNotFoundError):
        run_suite(resume=tmp_path / "nope.h5", progress=False, log=None)


def test_channel_subset_float16_limit_and_reading_while_running(tmp_path):
    full = run_suite(make(), out=tmp_path / "f.h5", progress=False, log=None)
    s = make(model_extra="channels = [7, 3]", run_extra='storage = "float16"')
    seen = []

    def peek(done, total):
        with open_results(tmp_path / "h.h5") as ds:  # the writer has the file open right now
            seen.append((done, ds.sizes["stimulus"], ds.attrs["state"]))

    res = run_suite(s, RunOptions(limit=40), out=tmp_path / "h.h5", progress=False, log=None, on_progress=peek)
    assert res.rows == 40 and res.complete
    assert seen and all(d == n and st == "running" for d, n, st in seen)
    ds, dfull = _load(res.path), _load(full.path)
    assert ds["edges"].dtype == np.float16 and list(ds["edges_channel"].values) == [7, 3]
    np.testing.assert_allclose(ds["edges"].values, dfull["edges"].values[:40][:, [7, 3]], rtol=2e-3, atol=1e-3)
    u = unstack_grid(ds)  # a --limit run unstacks with NaN where rows were not run
    assert np.isnan(u["edges"].values.astype(np.float32)).sum() == (60 - 40) * 2


def test_resolve_readout_errors_name_the_key():
    net = probes.load_model("groundtruth")
    with pytest.raises(SuiteError, match=r"tiny.toml: \[model\].layers: unknown layer 'mixed3b'.*allowed: edges, curves"):
        resolve_readout(make(layers='["mixed3b"]'), net)
    with pytest.raises(SuiteError, match=r"\[model\].channels\[1\]: channel 12 is beyond layer 'edges'.*12 channels: ids 0..11"):
        resolve_readout(make(model_extra="channels = [1, 12]"), net)
    with pytest.raises(SuiteError, match="family 'mixed3b' belongs to layer|does not exist"):
        resolve_readout(make(layers='["curves"]', model_extra='channels = "mixed3b"'), net)
    # the families suite resolves to the ground-truth model's own family
    fam = make(layers="[]", model_extra='family = "curves"')
    r = resolve_readout(fam, net)
    assert r.layers == ("curves",) and list(r.channels["curves"]) == list(range(12))


def test_cli_run_suites_and_errors(tmp_path, capsys):
    p = tmp_path / "t.toml"
    p.write_text(make().source)
    out = tmp_path / "cli.h5"
    assert cli_main(["run", str(p), "--out", str(out), "--no-progress", "--limit", "20"]) == 0
    line = capsys.readouterr().out
    assert "20 stimuli in" in line and "stimuli/s" in line and str(out) in line
    assert cli_main(["suites"]) == 0
    listing = capsys.readouterr().out
    for name in ("curves", "fill", "color", "angles", "rounding", "families", "combing"):
        assert name in listing
    bad = tmp_path / "bad.toml"
    bad.write_text(make().source.replace("batch_size", "batchsize"))
    assert cli_main(["run", str(bad), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml" in err and "[run].batchsize" in err
    assert not (tmp_path / "x.h5").exists()
    assert cli_main(["run", str(p), "--out", str(out)]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err


def test_failure_mid_run_keeps_committed_rows_and_first_batch_failure_leaves_no_file(tmp_path, monkeypatch):
    real = stimuli.render
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ValueError("curvature[0] = 9 is out of range (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(stimuli, "render", flaky)
    logs = []
    with pytest.raises(ValueError, match="injected"):
        run_suite(make(bs=8), out=tmp_path / "m.h5", progress=False, log=logs.append)
    assert any("16 rows committed" in line and "--resume" in line for line in logs)
    with open_results(tmp_path / "m.h5") as ds:
        assert ds.sizes["stimulus"] == 16 and ds.attrs["state"] == "running"
    monkeypatch.setattr(stimuli, "render", real)
    assert run_suite(resume=tmp_path / "m.h5", progress=False, log=None).complete

    calls["n"] = 2
    monkeypatch.setattr(stimuli, "render", flaky)
    with pytest.raises(ValueError, match="injected"):
        run_suite(make(bs=8), out=tmp_path / "first.h5", progress=False, log=None)
    assert not (tmp_path / "first.h5").exists()


def test_long_axes_unstack_from_the_stored_suite(tmp_path):
    s = parse_suite(make(bs=512).source.replace(
        "orientation = { start = 0, stop = 360, step = 30 }", "orientation = { start = 0, stop = 360, num = 5000, endpoint = false }"),
        path="long.toml")
    res = run_suite(s, RunOptions(limit=700), out=tmp_path / "l.h5", progress=False, log=None)
    with open_results(res.path) as ds:
        assert "grid_axis_orientation" not in ds.attrs and "grid_axis_curvature" in ds.attrs
        u = unstack_grid(ds)
    assert u["edges"].shape == (5000, 5, 12)
    np.testing.assert_allclose(u["orientation"].values, np.linspace(0, 360, 5000, endpoint=False))
    assert not np.isnan(u["edges"].values[:140]).any() and np.isnan(u["edges"].values[140:]).all()


@pytest.mark.slow
def test_bench_run_report_and_memory_sweep(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert cli_main(["bench", "run", "--model", "groundtruth", "--layers", "edges", "--stimuli", "128",
                     "--batch-size", "64", "--repeats", "1", "--json", str(out)]) == 0
    import json

    rep = json.loads(out.read_text())
    e2e, probe = rep["end_to_end_stimuli_per_s"]["median"], rep["probe_only_stimuli_per_s"]["median"]
    assert rep["pipeline_efficiency"] == pytest.approx(e2e / probe)
    assert rep["config"]["stimuli"] == 128 and rep["config"]["input_size"] == 13
    from curvebench.benches.run import memory_sweep_in_process

    mem = memory_sweep_in_process(3000, batch_size=500, device="cpu", workdir=tmp_path)
    assert mem["stimuli"] == 3000 and mem["peak_rss_mb_at_10pct"] > 0
    assert len(mem["rss_mb_trace"]) >= 5 and mem["peak_rss_growth_mb_10_to_100pct"] >= 0


def test_resume_of_a_text_or_truncated_file_is_one_line_naming_it(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not an HDF5 file\n")
    good = run_suite(make(bs=8), out=tmp_path / "good.h5", progress=False, log=None, stop_after_batches=1)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.path.read_bytes()[:1000])  # HDF5 signature, but truncated
    for bad in (text, cut):
        with pytest.raises(ValueError, match="not a curvebench results file"):
            run_suite(resume=bad, progress=False, log=None)
        assert cli_main(["run", "--resume", str(bad), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(bad) in err and "not a curvebench results file" in err
        assert "Traceback" not in err


def test_failed_run_leaves_no_empty_results_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "t.toml"
    p.write_text(make().source)
    missing = str(tmp_path / "missing.pth")
    assert cli_main(["run", str(p), "--model", "inceptionv1", "--weights", missing, "--no-progress"]) == 2
    assert "missing.pth" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli_main(["run", str(p), "--device", "cuda", "--no-progress"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
    assert cli_main(["run", str(p), "--no-progress", "--limit", "8"]) == 0  # a run that writes creates it
    assert len(list((tmp_path / "results").glob("tiny-groundtruth-*.h5"))) == 1


def test_stimulus_sized_per_layer_relative_to_the_receptive_field(tmp_path):
    s = make(layers='["edges", "curves"]', model_extra="length_per_receptive_field = 0.7")
    res = run_suite(s, out=tmp_path / "scaled.h5", progress=False, log=None)
    ds = _load(res.path)
    net = probes.load_model("groundtruth")
    plan = net.input_plan(["edges", "curves"])
    rows = Grid(s.axes).rows(0, s.num_stimuli)
    fields = {"edges": 13, "curves": 53}  # theoretical receptive fields of the ground-truth model (px)
    assert {l: net.receptive_field(l).size for l in fields} == fields
    import json

    scales = json.loads(ds.attrs["stimulus_scale"])
    for layer, rf in fields.items():
        length = 0.7 * rf  # the rule: the arc is 0.7 of the layer's field, the same turn at every size
        assert scales[layer] == pytest.approx(length / 16.0) and ds[layer].attrs["stimulus_scale"] == scales[layer]
        imgs = stimuli.render("curve", orientation=torch.tensor(rows["orientation"], dtype=torch.float32),
                              curvature=torch.tensor(rows["curvature"] * 16.0 / length, dtype=torch.float32),
                              length=length, width=2.0, position=plan.position, size=plan.size)
        ref = net.probe(imgs, [layer], plan=plan)
        np.testing.assert_allclose(ds[layer].values, ref[layer].numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(SuiteError, match="needs a fixed length"):
        parse_suite(s.source.replace("length = 16", "").replace("[sweep]", "[sweep]\nlength = [10, 20]"))
