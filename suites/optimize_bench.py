"""``curvebench bench optimize``: gradient ascent against the dense sweep that reaches the same activations.

Protocol (one process, one model, the same renderer and probe for both):

1. :func:`suites.optimize.optimize` on every requested channel over orientation,
   curvature, length and width (black on white, centred: the sweep's own stimuli), for
   the full step budget (``tol = 0``). Its *final* value per channel is the last step's
   best; the *target* is 99% of it (channels whose final value is <= 0 are left out and
   counted). The optimiser's cost is the wall time and forward passes (coarse sweep
   included) until every channel's best is at or above its target.
2. Dense sweeps of the same four parameters within the same bounds, ``n`` values per
   axis for ``n = 4, 5, 6, ...`` while ``n^4 <= max_sweep``, each timed on its own (render
   + probe, no gradients). The first grid whose maximum reaches every channel's target
   is the sweep needed. ``sweep_equivalent_speedup`` = its wall time / the optimiser's;
   if no grid up to ``max_sweep`` reaches it, the largest grid's wall time gives a lower
   bound (``sweep_reached`` false). The same ratio of process CPU times
   (``sweep_equivalent_speedup_cpu_time``) is steadier on a shared machine.

Note that one sweep serves every channel at once while the optimiser renders one
stimulus per channel and restart, and that each optimiser step also runs a backward
pass: both costs are in the wall times.
"""

from __future__ import annotations

import itertools
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["bench_optimize"]

FREE = ("orientation", "curvature", "length", "width")


def _grid(space: Any, start: torch.Tensor, n: int) -> torch.Tensor:
    """``(n^4, N)`` points: n values per free axis (orientation periodic) within the space's bounds."""
    from suites.optimize_space import COORDINATES

    idx = {c: i for i, c in enumerate(COORDINATES)}
    axes = []
    for c in FREE:
        lo, hi = float(space.lo[idx[c]]), float(space.hi[idx[c]])
        if c == "orientation" and space.periodic:
            axes.append(torch.linspace(0.0, 360.0, n + 1, dtype=torch.float64)[:-1])
        else:
            axes.append(torch.linspace(lo, hi, n, dtype=torch.float64))
    pts = torch.tensor(list(itertools.product(*[a.tolist() for a in axes])), dtype=torch.float64)
    x = start.expand(pts.shape[0], -1).clone()
    for j, c in enumerate(FREE):
        x[:, idx[c]] = pts[:, j]
    return space.clamp(x)


def bench_optimize(
    *,
    model: str = "inceptionv1",
    weights: str | None = "random",
    layer: str = "mixed3b",
    channels: Sequence[int] | str | None = "all",
    restarts: int = 1,
    steps: int = 30,
    device: str = "cpu",
    max_sweep: int = 20736,
    threads: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the protocol of the module docstring and return the JSON report."""
    import probes
    from suites.optimize import Evaluator, optimize
    from suites.optimize_space import build_space
    from suites.runner import resolve_device

    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dev = resolve_device(device)
    net = probes.load_model(model, weights=weights, device=dev)
    fix = {"position": 0.0, "fg": 0.0, "bg": 1.0}

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    sync()
    ds = optimize(net, layer, channels, fix=fix, restarts=restarts, steps=steps, tol=0.0, seed=seed)
    hist = ds.history.values  # (step, C)
    final = hist[-1]
    keep = final > 0
    target = 0.99 * final
    ok = (hist[:, keep] >= target[keep]).all(axis=1)
    t99 = int(np.argmax(ok)) if ok.any() else len(ok) - 1
    opt_wall = float(ds.history_wall_s.values[t99])
    opt_cpu = float(ds.history_cpu_s.values[t99])
    opt_passes = int(ds.history_forward_passes.values[t99])
    per_channel_steps = np.argmax(hist[:, keep] >= target[keep], axis=0)

    space = build_space(size=net.input_plan([layer]).size, fix=fix)
    ev = Evaluator(net, layer, space)
    ids = [int(c) for c in ds.channel.values]
    start = space.start()
    sweeps = []
    reached_at = None
    n = 4
    while n ** 4 <= max_sweep:
        x = _grid(space, start, n)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        best = ev.all_channels(x)["pre"][:, ids].max(0).values.double().numpy()
        sync()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        frac = float((best[keep] >= target[keep]).mean()) if keep.any() else 1.0
        sweeps.append({"values_per_axis": n, "stimuli": int(x.shape[0]), "wall_s": wall, "cpu_s": cpu,
                       "fraction_of_channels_reaching_target": frac,
                       "fraction_at_or_above_optimizer_final": float((best[keep] >= final[keep]).mean()) if keep.any() else 1.0})
        if frac >= 1.0:
            reached_at = sweeps[-1]
            break
        n += 1 if n < 8 else 2
    ref = reached_at or (sweeps[-1] if sweeps else None)
    speedup = (ref["wall_s"] / opt_wall) if ref else None
    return {
        "benchmark": "optimize",
        "model": model,
        "weights": weights or "",
        "layer": layer,
        "channels": len(ids),
        "channels_with_positive_final": int(keep.sum()),
        "free_parameters": list(FREE),
        "restarts": restarts,
        "steps_budget": steps,
        "optimizer_steps_to_99pct": t99,
        "optimizer_steps_to_99pct_per_channel_median": float(np.median(per_channel_steps)) if keep.any() else None,
        "optimizer_wall_s_to_99pct": opt_wall,
        "optimizer_cpu_s_to_99pct": opt_cpu,
        "optimizer_forward_passes_to_99pct": opt_passes,
        "optimizer_wall_s_total": float(ds.history_wall_s.values[-1]),
        "coarse_sweep_stimuli": int(ds.attrs["sweep_stimuli"]),
        "final_activation_mean": float(final.mean()),
        "final_over_coarse_sweep_max_median": float(np.median(final[keep] / np.maximum(ds.sweep_max.values[keep], 1e-12)))
        if keep.any() else None,
        "sweeps": sweeps,
        "sweep_reached": reached_at is not None,
        "sweep_stimuli_needed": reached_at["stimuli"] if reached_at else None,
        "sweep_wall_s": ref["wall_s"] if ref else None,
        "sweep_forward_passes": ref["stimuli"] if ref else None,
        "forward_pass_ratio": (ref["stimuli"] / opt_passes) if ref else None,
        "sweep_equivalent_speedup": speedup,
        "sweep_equivalent_speedup_cpu_time": (ref["cpu_s"] / opt_cpu) if ref and opt_cpu > 0 else None,
        "sweep_equivalent_speedup_is_lower_bound": reached_at is None,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "seed": seed,
        "command": f"curvebench bench optimize --model {model} --layer {layer} --restarts {restarts} --steps {steps} "
                   f"--max-sweep {max_sweep}" + (f" --threads {threads}" if threads else ""),
    }
