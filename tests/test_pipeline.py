"""The runner's per-batch readout/copy-out and parameter upload; on CUDA, the streamed run equals the CPU run.

The CUDA tests are skipped without a GPU; run ``python -m pytest tests/test_pipeline.py -q``
on a GPU machine to check the side render stream, the pinned asynchronous copies and the
writer's event wait (values against a CPU run, determinism across runs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import probes
from conftest import curve_suite
from suites.specs.render_args import render_kwargs
from suites.specs.options import RunOptions
from suites.running.runner import BatchReadout, resolve_readout, run_suite

pytestmark = pytest.mark.usefixtures("one_thread")


def make(bs: int = 16, channels: str = "", storage: str = "float32"):
    return curve_suite("pipe", "pipeline test sweep", step=15, layers='["edges", "curves"]', batch_size=bs,
                       model_extra=channels, run_extra=f'storage = "{storage}"')


def test_batch_readout_selects_casts_and_copies():
    net = probes.load_model("groundtruth")
    s = make(channels='channels = { edges = "all", curves = [3, 0, 5] }')
    readout = resolve_readout(s, net)
    widths = {l: net.num_channels(l) for l in readout.layers}
    acts = {k: torch.randn(7, widths[k.removesuffix("_pre_relu")]) for k in
            ("edges", "edges_pre_relu", "curves", "curves_pre_relu")}
    for dtype in (torch.float32, torch.float16):
        host, done = BatchReadout(readout, widths, torch.device("cpu"), dtype).to_host(acts)
        assert done is None and set(host) == {"edges", "edges_pre_relu", "curves", "curves_pre_relu"}
        for name, t in host.items():
            assert t.dtype == dtype
            src = acts[name]
            want = src if name.startswith("edges") else src[:, [3, 0, 5]]
            torch.testing.assert_close(t, want.to(dtype))
            assert t.data_ptr() != src.data_ptr()  # a copy, never a view of the feature map


def test_render_kwargs_values_unchanged_on_host():
    params = {"orientation": np.array([0.1, 359.9, 1e-9]), "curvature": np.array([0.0, -0.25, 1 / 3]),
              "ticks": np.array([0.0, 2.0, 3.0])}
    kw = render_kwargs(params, {"length": 16.0}, 3, device="cpu")
    for key in ("orientation", "curvature"):
        assert kw[key].dtype == torch.float32 and kw[key].device.type == "cpu"
        np.testing.assert_array_equal(kw[key].numpy(), params[key].astype(np.float32))
    assert kw["ticks"].dtype == torch.int64 and kw["ticks"].tolist() == [0, 2, 3]
    assert kw["length"] == 16.0


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _load(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


@cuda
@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_cuda_run_equals_cpu_run(tmp_path, storage, monkeypatch):
    # TF32 off: compare kernels, not TF32 rounding. A race in the pipeline (image memory
    # reused before the probe read it, a host buffer read before its copy landed, batches
    # out of order) gives errors of the size of the values, far above these tolerances.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    # odd batch size: a short last batch; channel subset: index_select before the copy
    s = make(bs=13, channels='channels = { curves = [1, 2, 7] }', storage=storage)
    cpu = _load(run_suite(s, RunOptions(device="cpu"), out=tmp_path / "cpu.h5", progress=False, log=None).path)
    g1 = _load(run_suite(s, RunOptions(device="cuda"), out=tmp_path / "g1.h5", progress=False, log=None).path)
    g2 = _load(run_suite(s, RunOptions(device="cuda"), out=tmp_path / "g2.h5", progress=False, log=None).path)
    assert g1.attrs["rows_completed"] == cpu.attrs["rows_completed"] == s.num_stimuli
    rel = 2e-3 if storage == "float16" else 1e-4
    for name in ("edges", "edges_pre_relu", "curves", "curves_pre_relu"):
        assert g1[name].dtype == cpu[name].dtype and g1[name].shape == cpu[name].shape
        ref = cpu[name].values.astype(np.float64)
        scale = float(np.abs(ref).max()) or 1.0
        np.testing.assert_allclose(g1[name].values.astype(np.float64), ref, rtol=rel, atol=rel * scale)
        same = 1e-3 if storage == "float16" else 1e-5  # run to run: at most a last-bit difference
        np.testing.assert_allclose(g2[name].values.astype(np.float64), g1[name].values.astype(np.float64),
                                   rtol=same, atol=same * scale)
    np.testing.assert_array_equal(g1["orientation"].values, cpu["orientation"].values)
