"""pytest-benchmark: end-to-end sweep throughput vs probe-only, same model, stimuli and run.

Run: ``pytest benchmarks/test_bench_run.py --benchmark-only`` (``CURVEBENCH_BENCH_DEVICE=cuda``
for a GPU). Group "pipeline": ``end_to_end`` runs :func:`suites.run_suite` on the first
``N`` stimuli of the ``curves`` suite (render + probe + writer thread + HDF5 with a flush
per batch); ``probe_only`` probes the same stimuli, pre-rendered, and copies the readout
to the host. Their ratio of medians is ``pipeline_efficiency`` (also
``curvebench bench run --json FILE``, which adds the flat-memory sweep).
"""

from __future__ import annotations

import itertools

import pytest
import torch

import probes
import stimuli
from suites.specs.grid import Grid
from suites.specs.render_args import render_kwargs
from suites.specs.options import RunOptions
from suites.running.runner import prepare_suite, resolve_readout, run_suite

N, BATCH = 256, 64


@pytest.fixture(scope="module")
def setup(device):  # type: ignore[no-untyped-def]
    dev = device
    suite = prepare_suite("curves", RunOptions.of(model="inceptionv1", weights="random", device=str(dev),
                                                  batch_size=BATCH))
    torch.manual_seed(suite.seed)
    net = probes.load_model("inceptionv1", weights="random", device=dev)
    readout = resolve_readout(suite, net)
    plan = net.input_plan(list(readout.layers))
    images = []
    with torch.inference_mode():
        for b in Grid(suite.axes).batches(BATCH, 0, N):
            kw = render_kwargs(b.params, suite.fixed, len(b), device=dev)
            images.append(stimuli.render(suite.kind, position=plan.position, size=plan.size, device=dev, **kw))
    return suite, net, readout, plan, images


@pytest.fixture(scope="module")
def device():  # type: ignore[no-untyped-def]  # module-scoped twin of conftest's fixture
    import os

    return torch.device(os.environ.get("CURVEBENCH_BENCH_DEVICE", "cpu"))


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def test_end_to_end(benchmark, setup, tmp_path):  # type: ignore[no-untyped-def]
    suite, net = setup[0], setup[1]
    counter = itertools.count()

    def run() -> None:  # the same model object: no loading inside the timed call
        run_suite(suite, RunOptions(limit=N), out=tmp_path / f"e2e-{next(counter)}.h5", progress=False, log=None,
                  probe_model=net)

    benchmark.group = "pipeline"
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["stimuli_per_s"] = N / benchmark.stats.stats.median


def test_probe_only(benchmark, setup):  # type: ignore[no-untyped-def]
    suite, net, readout, plan, images = setup
    dev = images[0].device

    def run() -> None:
        with torch.inference_mode():
            for x in images:
                acts = net.probe(x, list(readout.layers), plan=plan, check_range=dev.type == "cpu")
                for name, layer, pre in readout.variables:
                    acts[f"{layer}_pre_relu" if pre else layer].to("cpu", copy=True)
        _sync(dev)

    benchmark.group = "pipeline"
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["stimuli_per_s"] = N / benchmark.stats.stats.median
