"""pytest-benchmark: the renderer and its two baselines at a small scale (same code as
``curvebench bench render``, which is the command that reports the ratios).

Run: ``python -m pytest benchmarks/test_bench_render.py --benchmark-only``
(``CURVEBENCH_BENCH_DEVICE=cuda`` times the renderer on the GPU; the baselines are CPU-only).
"""

from __future__ import annotations

import pytest
import torch

from curvebench.benches.render import POSITION, SIZE, _ours, stimulus_set
from stimuli.baselines import CairoCanvas, draw_pil
from stimuli.draw import DEFAULT_LENGTH, DEFAULT_WIDTH, render

STIM = stimulus_set(256, seed=0)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@pytest.mark.parametrize("batch", [1, 32])
def test_render_curves(benchmark, device: torch.device, one_thread, batch: int) -> None:
    run = _ours(STIM, batch * 4, batch, device, torch.float32)

    def go() -> int:
        n = run()
        _sync(device)
        return n

    assert benchmark(go) == batch * 4


def test_render_every_feature(benchmark, device: torch.device, one_thread) -> None:
    gen = torch.Generator().manual_seed(0)
    o = (torch.rand(32, generator=gen) * 360).to(device)
    k = (torch.rand(32, generator=gen) * 0.09).to(device)

    def go() -> torch.Tensor:
        img = render("angle", orientation=o, curvature=k, rounding=0.5, fill=0.5, ticks=5, size=SIZE, position=POSITION)
        _sync(device)
        return img

    assert benchmark(go).shape == (32, 3, SIZE, SIZE)


def test_render_backward(benchmark, device: torch.device, one_thread) -> None:
    o = torch.rand(32, device=device) * 360
    k = torch.rand(32, device=device) * 0.09

    def go() -> None:
        oo, kk = o.clone().requires_grad_(), k.clone().requires_grad_()
        render("curve", orientation=oo, curvature=kk, size=SIZE, position=POSITION).mean().backward()
        _sync(device)

    benchmark(go)


def test_cairo_one_at_a_time(benchmark, one_thread) -> None:
    canvas = CairoCanvas(SIZE)
    o, k = STIM["orientation"], STIM["curvature"]

    def go() -> None:
        for i in range(32):
            canvas.draw(float(o[i]), float(k[i]), DEFAULT_LENGTH, DEFAULT_WIDTH, *POSITION)

    benchmark(go)


def test_pil_supersampled_one_at_a_time(benchmark, one_thread) -> None:
    o, k = STIM["orientation"], STIM["curvature"]

    def go() -> None:
        for i in range(4):
            draw_pil(float(o[i]), float(k[i]), DEFAULT_LENGTH, DEFAULT_WIDTH, *POSITION, size=SIZE)

    benchmark.pedantic(go, rounds=3, iterations=1)
