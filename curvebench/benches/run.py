"""``curvebench bench run``: how much of the probes' speed the whole pipeline keeps.

Two measurements in one process, alternated ``repeats`` times (medians and IQR):

* **end-to-end**: :func:`suites.run_suite` on the first ``stimuli`` rows of the
  ``curves`` suite (render on the device, probe, writer thread, HDF5 file with a
  flush per batch), timed from the first batch to the last committed row;
* **probe-only**: the same model, plan, layers and channel readout on the *same*
  stimuli, pre-rendered into memory before timing, read out and copied to the host
  exactly as the runner does (:class:`suites.running.runner.BatchReadout`: same channels, same
  storage dtype, pinned asynchronous copies on CUDA, at most 3 batches in flight) and
  dropped (no rendering, no writing).

``pipeline_efficiency = end-to-end stimuli/s / probe-only stimuli/s`` (1.0 = rendering
and writing are completely hidden). Render-only stimuli/s is reported for context.

``memory_sweep=N`` also runs an ``N``-stimulus sweep on the ground-truth model at its
``edges`` layer (the exact receptive-field crop is 13 x 13 px: "small image size") and
reports peak RSS (``ru_maxrss``) when 10% and 100% of the rows are committed.

``scaling=N`` also measures scale-out (:func:`run_scaling`): the same sweep as
``curvebench run`` in one process and under ``torchrun`` with ``N`` processes (fresh
processes both, one thread each), stimuli/s from the first batch to the last committed
row (the slowest rank for ``N``; start-up and model loading excluded, and reported
separately as wall-clock rates), and ``scaling_efficiency = rate(N) / (N * rate(1))``.
"""

from __future__ import annotations

import collections
import json
import math
import os
import subprocess
import sys
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from probes.weights_spec import RANDOM, WeightsSpec

__all__ = ["bench_run", "memory_sweep_suite"]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = np.percentile(values, [25, 75])
    return float(q[1] - q[0])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()})"


def memory_sweep_suite(n: int, batch_size: int = 1024):
    """An ``n``-stimulus curves sweep for the ground-truth model's ``edges`` layer (12 px arcs)."""
    from suites.specs.suite import parse_suite

    n_o = 1000 if n >= 1000 else n
    n_k = math.ceil(n / n_o)
    text = f"""
name = "memory-sweep"
description = "flat-memory benchmark: {n} curves on the ground-truth model's edges layer"
kind = "curve"
[sweep]
orientation = {{ start = 0, stop = 360, num = {n_o}, endpoint = false }}
curvature = {{ start = 0, stop = {2 * math.pi / 12!r}, num = {n_k} }}
[fixed]
length = 12
width = 2
[model]
name = "groundtruth"
layers = ["edges"]
[run]
batch_size = {batch_size}
"""
    return parse_suite(text, path="<memory-sweep>")


@dataclass(frozen=True)
class RunBenchOptions:
    """What ``curvebench bench run`` measures (the defaults of the command line).

    ``stimuli``: the first rows of the curves suite run per repeat; ``memory_sweep``: also
    run a sweep of this many stimuli and trace the memory (``memory_batch_size`` per
    batch); ``scaling``: also time this many torchrun processes against one;
    ``workdir``: where the temporary results files go.
    """

    model: str = "inceptionv1"
    weights: str | None = None
    layers: list[str] | None = None
    stimuli: int = 1024
    batch_size: int = 64
    device: str = "auto"
    repeats: int = 3
    memory_sweep: int | None = None
    memory_batch_size: int = 1024
    workdir: str | Path | None = None
    scaling: int | None = None


class _Workload:
    """The runner's per-batch work, split: rendering the first ``n`` rows, and probing them without rendering."""

    def __init__(self, o: RunBenchOptions, spec: WeightsSpec) -> None:
        from probes.device import resolve_device
        from suites.running.runner import BatchReadout, prepare_suite, resolve_readout
        from suites.running.suite_model import load_probe_model
        from suites.specs.grid import Grid
        from suites.specs.options import RunOptions

        self.suite = prepare_suite("curves", RunOptions(model=o.model, weights=spec, device=o.device,
                                                        batch_size=o.batch_size, layers=tuple(o.layers or ["mixed3b"])))
        self.dev = resolve_device(self.suite.device)
        self.net = load_probe_model(self.suite, self.dev)
        self.readout = resolve_readout(self.suite, self.net)
        self.plan = self.net.input_plan(list(self.readout.layers), size=self.suite.size)
        grid = Grid(self.suite.axes)
        self.n = min(o.stimuli, grid.size)
        self.batches = list(grid.batches(o.batch_size, 0, self.n))  # the very stimuli the end-to-end run draws
        store = torch.float16 if self.suite.storage == "float16" else torch.float32
        self.copy_out = BatchReadout(self.readout, {l: self.net.num_channels(l) for l in self.readout.layers}, self.dev,
                                     store)
        self.want_pre = any(pre for _, _, pre in self.readout.variables)

    def render_all(self) -> tuple[list[torch.Tensor], float]:
        """The rows' images, and stimuli/s."""
        import stimuli as stim
        from suites.specs.render_args import render_kwargs

        t = time.perf_counter()
        out = []
        with torch.inference_mode():
            for b in self.batches:
                kw = render_kwargs(b.params, self.suite.fixed, len(b), device=self.dev)
                out.append(stim.render(self.suite.kind, position=self.plan.position, size=self.plan.size,
                                       device=self.dev, **kw))
        _sync(self.dev)
        return out, self.n / (time.perf_counter() - t)

    def probe_only(self, images: list[torch.Tensor]) -> float:
        """Stimuli/s of the runner's per-batch work minus rendering and writing: probe, the same channel
        readout and device->host copies; a host copy is waited for (then dropped) once ``depth`` newer
        batches are queued, as the runner's bounded writer queue does."""
        depth = 3
        pending: collections.deque = collections.deque()
        t0 = time.perf_counter()
        with torch.inference_mode():
            for x in images:
                acts = self.net.probe(x, list(self.readout.layers), plan=self.plan, pre_relu=self.want_pre,
                                      check_range=self.dev.type == "cpu")
                pending.append(self.copy_out.to_host(acts))
                del acts
                while len(pending) > depth:
                    _, done = pending.popleft()
                    if done is not None:
                        done.synchronize()
            for _, done in pending:
                if done is not None:
                    done.synchronize()
        _sync(self.dev)
        return self.n / (time.perf_counter() - t0)


def _rates(w: _Workload, o: RunBenchOptions) -> tuple[list[float], list[float], list[float]]:
    """Stimuli/s per repeat: end to end (``run_suite``), probe only, render only."""
    from suites.running.runner import run_suite
    from suites.specs.options import RunOptions

    images, _ = w.render_all()  # warm-up
    e2e, probe, render = [], [], []
    w.probe_only(images)  # warm-up (allocator, kernels); not counted
    with tempfile.TemporaryDirectory(dir=o.workdir) as tmp:
        # warm-up of the runner too (on CUDA its render stream has its own allocator pool)
        run_suite(w.suite, RunOptions(limit=min(w.n, 2 * o.batch_size)), out=Path(tmp) / "warm-up.h5",
                  progress=False, log=None, probe_model=w.net)
        for r in range(o.repeats):
            res = run_suite(w.suite, RunOptions(limit=w.n), out=Path(tmp) / f"bench-{r}.h5", progress=False, log=None,
                            probe_model=w.net)
            e2e.append(res.rows / res.seconds)
            probe.append(w.probe_only(images))
            images, rate = w.render_all()
            render.append(rate)
    return e2e, probe, render


def bench_run(options: RunBenchOptions | None = None, **overrides: Any) -> dict[str, Any]:
    """Run the benchmark and return the JSON-able report (see the module docstring).

    ``options``: :class:`RunBenchOptions` (or its fields by name as ``overrides``).
    """
    o = replace(options or RunBenchOptions(), **overrides)
    spec = WeightsSpec.parse(o.weights)
    if spec.is_default and o.model == "inceptionv1":
        spec = RANDOM  # the benchmark measures speed: random weights need no download
    w = _Workload(o, spec)
    e2e, probe, render = _rates(w, o)
    report: dict[str, Any] = {
        "benchmark": "curvebench bench run",
        "pipeline_efficiency": statistics.median(e2e) / statistics.median(probe),
        "pipeline_efficiency_per_repeat": [a / b for a, b in zip(e2e, probe)],
        "end_to_end_stimuli_per_s": {"median": statistics.median(e2e), "iqr": _iqr(e2e), "runs": e2e},
        "probe_only_stimuli_per_s": {"median": statistics.median(probe), "iqr": _iqr(probe), "runs": probe},
        "render_only_stimuli_per_s": {"median": statistics.median(render), "iqr": _iqr(render), "runs": render},
        "config": {
            "suite": "curves (first rows)", "model": o.model, "weights": spec.text(), "layers": list(w.readout.layers),
            "channels_per_layer": {l: int(len(c)) for l, c in w.readout.channels.items()},
            "readout": w.suite.readout, "stimuli": w.n, "batch_size": o.batch_size, "repeats": o.repeats,
            "input_size": w.plan.size, "device": str(w.dev), "device_name": _device_name(w.dev),
            "torch": torch.__version__, "seed": w.suite.seed,
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if o.memory_sweep:
        report["memory_sweep"] = run_memory_sweep(o.memory_sweep, o.memory_batch_size, o.device, o.workdir)
    if o.scaling:
        report["scaling"] = run_scaling(o.scaling, model=o.model, weights=spec, layers=list(w.readout.layers),
                                        stimuli=w.n, batch_size=o.batch_size, device=o.device, repeats=o.repeats,
                                        workdir=o.workdir)
        report["scaling_efficiency"] = report["scaling"]["scaling_efficiency"]
    return report


def run_scaling(processes: int, *, model: str, weights: WeightsSpec, layers: list[str], stimuli: int,
                batch_size: int, device: str = "auto", repeats: int = 1,
                workdir: str | Path | None = None) -> dict[str, Any]:
    """Stimuli/s of ``curvebench run curves`` in 1 process and in ``processes`` under torchrun; their ratio.

    Each is run ``repeats`` times, alternating; medians and every run are reported. All
    runs are fresh child processes with ``OMP_NUM_THREADS=1`` (one core each on CPU; on
    GPUs each rank takes ``cuda:LOCAL_RANK``). The rate is rows / the run's ``seconds``
    attribute (first batch to last committed row; for N processes the slowest rank).
    """
    import h5py

    import suites

    if processes < 2:
        raise ValueError(f"scaling: give at least 2 processes, got {processes}")
    args = ["run", "curves", "--model", model, "--layers", ",".join(layers), "--batch-size", str(batch_size),
            "--limit", str(stimuli), "--device", device, "--no-progress"]
    if weights.text():
        args += ["--weights", str(weights.text())]
    root = str(Path(suites.__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.pop("WORLD_SIZE", None)
    out: dict[str, Any] = {"processes": processes, "stimuli": stimuli, "threads_per_process": 1, "repeats": repeats}
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for r in range(repeats):  # alternate 1 and N processes; medians reported
            runs = {1: [sys.executable, "-m", "curvebench", *args, "--out", f"{tmp}/one-{r}.h5"],
                    processes: [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                f"--nproc-per-node={processes}", "-m", "curvebench", *args, "--out", f"{tmp}/many-{r}.h5"]}
            for k, cmd in runs.items():
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    raise RuntimeError(f"scaling run with {k} process(es) failed (exit {proc.returncode}): "
                                       f"{proc.stderr.strip()[-2000:]}")
                with h5py.File(cmd[cmd.index("--out") + 1], "r") as f:
                    seconds, rows = float(f.attrs["seconds"]), int(f.attrs["rows_completed"])
                    rss = [float(x) for x in np.atleast_1d(f.attrs.get("peak_rss_mb_per_rank", []))]
                rates.setdefault(f"stimuli_per_s_{k}", []).append(rows / seconds)
                rates.setdefault(f"wall_stimuli_per_s_{k}", []).append(rows / wall)
                if rss:
                    out[f"peak_rss_mb_per_rank_{k}"] = rss
    for key, values in rates.items():
        out[key] = statistics.median(values)
        out[key + "_runs"] = values
    out["scaling_efficiency"] = out[f"stimuli_per_s_{processes}"] / (processes * out["stimuli_per_s_1"])
    out["wall_scaling_efficiency"] = out[f"wall_stimuli_per_s_{processes}"] / (processes * out["wall_stimuli_per_s_1"])
    out["command"] = " ".join(runs[processes][1:])
    return out


def run_memory_sweep(n: int, batch_size: int = 1024, device: str = "auto", workdir: str | Path | None = None) -> dict[str, Any]:
    """Run the memory sweep in a fresh Python process (so earlier work does not set the peak RSS)."""
    cmd = [sys.executable, "-m", "curvebench.benches.run", "memory", str(n), str(batch_size), device, str(workdir or "")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory sweep failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_sweep_in_process(n: int, batch_size: int = 1024, device: str = "auto", workdir: str | Path | None = None) -> dict[str, Any]:
    """Run the ``n``-stimulus ground-truth sweep; peak RSS at 10% and 100% of the rows."""
    from suites.specs.options import RunOptions
    from suites.running.runner import run_suite

    suite = replace(memory_sweep_suite(n, batch_size), device=device)
    marks: dict[str, float] = {}
    trace: list[tuple[int, float]] = []
    next_mark = [0.1]

    def on_progress(done: int, total: int) -> None:
        frac = done / total
        if frac >= next_mark[0] - 1e-12:
            trace.append((done, _rss_mb()))
            if "peak_rss_mb_at_10pct" not in marks:
                marks["peak_rss_mb_at_10pct"] = _peak_rss_mb()
            next_mark[0] = round(next_mark[0] + 0.1, 10)

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = Path(tmp) / "memory-sweep.h5"
        res = run_suite(suite, RunOptions(limit=n), out=out, progress=False, log=None, on_progress=on_progress)
        size = out.stat().st_size
    peak_end = _peak_rss_mb()
    return {
        "stimuli": res.rows,
        "seconds": res.seconds,
        "stimuli_per_s": res.rate,
        "batch_size": batch_size,
        "input_size_px": int(res.attrs.get("input_size", 0)),
        "model": "groundtruth", "layer": "edges",
        "peak_rss_mb_at_10pct": marks.get("peak_rss_mb_at_10pct"),
        "peak_rss_mb_at_100pct": peak_end,
        "peak_rss_growth_mb_10_to_100pct": peak_end - marks.get("peak_rss_mb_at_10pct", peak_end),
        "rss_mb_trace": [{"rows": r, "rss_mb": m} for r, m in trace],
        "file_mb": size / 2**20,
        "target": "peak RSS growth < 100 MB from 10% to 100%",
    }


if __name__ == "__main__":  # child process of run_memory_sweep
    if len(sys.argv) != 6 or sys.argv[1] != "memory":
        sys.exit("usage: python -m curvebench.benches.run memory N BATCH_SIZE DEVICE WORKDIR")
    result = memory_sweep_in_process(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] or None)
    print(json.dumps(result))
