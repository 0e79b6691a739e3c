"""``curvebench bench optimize``: gradient ascent against the dense sweep that reaches the same activations.

Protocol (one process, one model, the same renderer and probe for both):

1. :func:`suites.optimization.ascent.optimize` on every requested channel over the free
   parameters: ``free="sweep"`` orientation, curvature, length and width (black on
   white, centred: the sweep's own stimuli), or ``free="default"`` every parameter
   ``optimize`` frees by default (also position and both colours: 12 coordinates). The
   run stops on its tolerance (``tol`` sigma, ``patience``; a row that is done is no
   longer rendered) or its step budget. Its *final* value per channel is the best at
   the end; the *target* is 99% of it (channels whose final value is <= 0 are left out
   and counted). The optimiser's cost is the wall time, CPU time and forward passes
   (coarse sweep included; only the rows actually rendered) until every channel's best
   is at or above its target.
2. Dense sweeps of the same free coordinates within the same bounds, ``n`` values per
   axis for ``n = 2, 3, 4, ...`` while ``n^D <= max_sweep``, each timed on its own
   (render + probe, no gradients). The first grid whose maximum reaches every channel's
   target is the sweep needed. ``sweep_equivalent_speedup`` = its wall time / the
   optimiser's; if no grid up to ``max_sweep`` reaches it, the largest grid's wall time
   gives a lower bound (``sweep_reached`` false), and ``sweep_stimuli_lower_bound`` is
   the size of the next grid of the sequence (the smallest the protocol could still
   need). The same ratio of process CPU times (``sweep_equivalent_speedup_cpu_time``) is
   steadier on a shared machine.

Note that one sweep serves every channel at once while the optimiser renders one
stimulus per channel and restart, and that each optimiser step also runs a backward
pass: both costs are in the wall times.
"""

from __future__ import annotations

import itertools
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from probes.weights_spec import RANDOM_TEXT

__all__ = ["bench_optimize", "OptimizeBenchOptions"]

#: Parameters held fixed in each configuration (``free="sweep"``: the sweeps' own stimuli).
FIXED = {"sweep": {"position": 0.0, "fg": 0.0, "bg": 1.0}, "default": {}}


def _grid(space: Any, start: torch.Tensor, n: int) -> torch.Tensor:
    """``(n^D, N)`` points: n values per free axis (orientation periodic) within the space's bounds."""
    from suites.optimization.space import COORDINATES

    idx = {c: i for i, c in enumerate(COORDINATES)}
    axes = []
    for c in space.free:
        lo, hi = float(space.lo[idx[c]]), float(space.hi[idx[c]])
        if c == "orientation" and space.periodic:
            axes.append(torch.linspace(0.0, 360.0, n + 1, dtype=torch.float64)[:-1])
        else:
            axes.append(torch.linspace(lo, hi, n, dtype=torch.float64))
    pts = torch.tensor(list(itertools.product(*[a.tolist() for a in axes])), dtype=torch.float64)
    x = start.expand(pts.shape[0], -1).clone()
    for j, c in enumerate(space.free):
        x[:, idx[c]] = pts[:, j]
    return space.clamp(x)


@dataclass(frozen=True)
class OptimizeBenchOptions:
    """What ``curvebench bench optimize`` measures (the defaults of the command line).

    ``polish``: compass-search iterations after the ascent (``optimize(polish=...)``;
    their forward passes and time count); ``max_sweep``: the largest dense grid tried;
    ``threads``: torch CPU threads (None: torch's default).
    """

    model: str = "inceptionv1"
    weights: str | None = RANDOM_TEXT
    layer: str = "mixed3b"
    channels: Sequence[int] | str | None = "all"
    restarts: int = 1
    steps: int = 12
    free: str = "sweep"
    tol: float = 0.001
    patience: int = 3
    lr: float = 0.02
    polish: int = 0
    device: str = "cpu"
    max_sweep: int = 110000
    threads: int | None = None
    seed: int = 0

    def command(self) -> str:
        """The command line that repeats this run."""
        return (f"curvebench bench optimize --model {self.model} --layer {self.layer} --free {self.free} "
                f"--restarts {self.restarts} --steps {self.steps} --lr {self.lr:g} --tol {self.tol:g} "
                f"--patience {self.patience} --polish {self.polish} --max-sweep {self.max_sweep}"
                + (f" --threads {self.threads}" if self.threads else ""))


@dataclass
class _Target:
    """The optimiser's result the sweeps must reach: final value per channel, 99% of it, the channels counted."""

    ids: list[int]
    final: np.ndarray
    target: np.ndarray
    keep: np.ndarray


def _optimiser_cost(ds: Any, t: _Target) -> dict[str, Any]:
    """Steps, wall and CPU time and forward passes until every counted channel is within 1% of its final value."""
    hist = ds.history.values  # (step, C)
    ok = (hist[:, t.keep] >= t.target[t.keep]).all(axis=1)
    t99 = int(np.argmax(ok)) if ok.any() else len(ok) - 1
    per_channel_steps = np.argmax(hist[:, t.keep] >= t.target[t.keep], axis=0)
    return {
        "optimizer_steps_to_99pct": t99,
        "optimizer_steps_to_99pct_per_channel_median": float(np.median(per_channel_steps)) if t.keep.any() else None,
        "optimizer_wall_s_to_99pct": float(ds.history_wall_s.values[t99]),
        "optimizer_cpu_s_to_99pct": float(ds.history_cpu_s.values[t99]),
        "optimizer_forward_passes_to_99pct": int(ds.history_forward_passes.values[t99]),
    }


def _dense_sweeps(ev: Any, t: _Target, max_sweep: int, sync: Any, log: Any) -> tuple[list[dict], dict | None, int]:
    """Sweeps of ``n`` values per free axis, ``n = 2, 3, ...`` while ``n^D <= max_sweep``, until one reaches every
    target; returns the sweeps, the one that reached (or None) and the next grid's size."""
    space = ev.space
    start = space.start()
    sweeps: list[dict] = []
    dims = len(space.free)
    n = 2
    while n ** dims <= max_sweep:
        x = _grid(space, start, n)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        best = ev.all_channels(x)["pre"][:, t.ids].max(0).values.double().numpy()
        sync()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        keep = t.keep
        frac = float((best[keep] >= t.target[keep]).mean()) if keep.any() else 1.0
        sweeps.append({"values_per_axis": n, "stimuli": int(x.shape[0]), "wall_s": wall, "cpu_s": cpu,
                       "fraction_of_channels_reaching_target": frac,
                       "fraction_at_or_above_optimizer_final": float((best[keep] >= t.final[keep]).mean()) if keep.any() else 1.0})
        if log is not None:
            log(f"sweep {n}^{dims} = {x.shape[0]:,} stimuli: {frac:.3f} of the channels reach their target; "
                f"{wall:.1f} s wall, {cpu:.1f} s CPU")
        if frac >= 1.0:
            return sweeps, sweeps[-1], n ** dims
        n += 1 if n < 8 else 2
    return sweeps, None, n ** dims


def _comparison(sweeps: list[dict], reached: dict | None, next_grid: int, cost: dict[str, Any]) -> dict[str, Any]:
    """The sweep needed (or the largest tried, a lower bound) against the optimiser's cost."""
    ref = reached or (sweeps[-1] if sweeps else None)
    opt_wall, opt_cpu = cost["optimizer_wall_s_to_99pct"], cost["optimizer_cpu_s_to_99pct"]
    opt_passes = cost["optimizer_forward_passes_to_99pct"]
    lower = None if reached else next_grid
    return {
        "sweeps": sweeps,
        "sweep_reached": reached is not None,
        "sweep_stimuli_needed": reached["stimuli"] if reached else None,
        "sweep_wall_s": ref["wall_s"] if ref else None,
        "sweep_forward_passes": ref["stimuli"] if ref else None,
        "forward_pass_ratio": (ref["stimuli"] / opt_passes) if ref else None,
        "sweep_stimuli_lower_bound": lower,
        "forward_pass_ratio_lower_bound": (lower / opt_passes) if lower else None,
        "sweep_equivalent_speedup": (ref["wall_s"] / opt_wall) if ref else None,
        "sweep_equivalent_speedup_cpu_time": (ref["cpu_s"] / opt_cpu) if ref and opt_cpu > 0 else None,
        "sweep_equivalent_speedup_is_lower_bound": reached is None,
    }


def bench_optimize(options: OptimizeBenchOptions | None = None, *, log: Any = None, **overrides: Any) -> dict[str, Any]:
    """Run the protocol of the module docstring and return the JSON report.

    ``options``: :class:`OptimizeBenchOptions` (or its fields by name as ``overrides``).
    ``log``: optional callable given one line of text per finished stage (the optimiser,
    each dense sweep).
    """
    import probes
    from probes.device import resolve_device
    from suites.optimization.ascent import Evaluator, optimize
    from suites.optimization.space import build_space

    o = replace(options or OptimizeBenchOptions(), **overrides)
    if o.threads is not None:
        torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    dev = resolve_device(o.device)
    net = probes.load_model(o.model, weights=o.weights, device=dev)
    if o.free not in FIXED:
        raise ValueError(f"free: {o.free!r} is not allowed; use {' or '.join(map(repr, FIXED))}")
    fix = FIXED[o.free]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    sync()
    ds = optimize(net, o.layer, o.channels, fix=fix, restarts=o.restarts, steps=o.steps, tol=o.tol,
                  patience=o.patience, lr=o.lr, polish=o.polish, seed=o.seed)
    final = ds.history.values[-1]
    t = _Target([int(c) for c in ds.channel.values], final, 0.99 * final, final > 0)
    cost = _optimiser_cost(ds, t)
    if log is not None:
        log(f"optimiser: {int(t.keep.sum())} channels with a positive final value; every one within 1% of it at step "
            f"{cost['optimizer_steps_to_99pct']}: {cost['optimizer_forward_passes_to_99pct']:,} forward passes, "
            f"{cost['optimizer_wall_s_to_99pct']:.1f} s wall, {cost['optimizer_cpu_s_to_99pct']:.1f} s CPU")
    space = build_space(size=net.input_plan([o.layer]).size, fix=fix)
    sweeps, reached, next_grid = _dense_sweeps(Evaluator(net, o.layer, space), t, o.max_sweep, sync, log)
    keep = t.keep
    return {
        "benchmark": "optimize", "model": o.model, "weights": o.weights or "", "layer": o.layer,
        "channels": len(t.ids), "channels_with_positive_final": int(keep.sum()), "free": o.free,
        "free_parameters": list(space.parameters), "free_coordinates": list(space.free),
        "tol": o.tol, "patience": o.patience, "lr": o.lr, "restarts": o.restarts, "steps_budget": o.steps,
        "polish": o.polish, "optimizer_polish_iterations": int(ds.attrs["polish_iterations"]),
        **cost,
        "optimizer_wall_s_total": float(ds.history_wall_s.values[-1]),
        "optimizer_forward_passes_total": int(ds.history_forward_passes.values[-1]),
        "optimizer_steps_run": int(ds.attrs["steps_run"]),
        "optimizer_channels_converged": int(ds.converged.values.sum()),
        "coarse_sweep_stimuli": int(ds.attrs["sweep_stimuli"]),
        "final_activation_mean": float(final.mean()),
        "final_over_coarse_sweep_max_median": float(np.median(final[keep] / np.maximum(ds.sweep_max.values[keep], 1e-12)))
        if keep.any() else None,
        **_comparison(sweeps, reached, next_grid, cost),
        "device": str(dev), "threads": torch.get_num_threads(), "torch_version": torch.__version__,
        "python_version": platform.python_version(), "seed": o.seed, "command": o.command(),
    }
