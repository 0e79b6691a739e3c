"""pytest-benchmark: probe throughput, truncated forwards and the receptive-field crop.

Run: ``pytest benchmarks/test_bench_probe.py --benchmark-only`` (``CURVEBENCH_BENCH_DEVICE=cuda``
for a GPU). Each benchmark's ``extra_info`` holds images/s; compare variants from the
same run only. ``curvebench bench probe --json FILE`` gives the same numbers as one
JSON report with ``rf_crop_speedup_mixed3b``.
"""

from __future__ import annotations

import pytest
import torch

import probes

BATCH = 8


@pytest.fixture(scope="module")
def model() -> probes.ProbeModel:
    import os

    torch.manual_seed(0)
    return probes.load_model("inceptionv1", weights="random", device=os.environ.get("CURVEBENCH_BENCH_DEVICE", "cpu"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(benchmark, fn, device: torch.device) -> None:  # type: ignore[no-untyped-def]
    def call() -> None:
        fn()
        _sync(device)

    benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats.stats.median
    benchmark.extra_info["device"] = str(device)


@pytest.mark.parametrize("layer", ["conv2d2", "mixed3a", "mixed3b", "mixed4a"])
def test_truncated_forward(benchmark, model, layer: str) -> None:  # type: ignore[no-untyped-def]
    x = torch.rand(BATCH, 3, 224, 224, device=model.device)
    benchmark.group = "truncated forward, 224 px"
    _run(benchmark, lambda: model.probe(x, layer, check_range=False, sliced=False), model.device)


def test_full_network(benchmark, model) -> None:  # type: ignore[no-untyped-def]
    x = torch.rand(BATCH, 3, 224, 224, device=model.device)
    benchmark.group = "truncated forward, 224 px"
    with torch.no_grad():
        _run(benchmark, lambda: model(x), model.device)


@pytest.mark.parametrize("crop, sliced", [(False, False), (True, False), (True, True), (False, True)],
                         ids=["full224_maps", "rf_crop_maps", "rf_crop_sliced", "full224_sliced"])
def test_mixed3b_centre_probe(benchmark, model, crop: bool, sliced: bool) -> None:  # type: ignore[no-untyped-def]
    """Whole maps on 224 px (reference) vs the exact crop, with whole maps or only the unit's windows."""
    plan = model.input_plan("mixed3b")
    x = torch.rand(BATCH, 3, 224, 224, device=model.device)
    if crop:
        x = plan.crop(x).contiguous()
    benchmark.group = "mixed3b centre probe"
    benchmark.extra_info["input_px"] = x.shape[-1]
    _run(benchmark, lambda: model.probe(x, "mixed3b", plan if crop else None, check_range=False, sliced=sliced),
         model.device)
