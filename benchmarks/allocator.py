"""How much faster are CPU forward passes when glibc keeps freed buffers (probes/allocator.py)?

Runs the same forward pass (EfficientNet-Lite0 to ``blocks.3.2.depthwise`` on its 154 px
receptive-field crop, 360 rendered arcs at batch 8, discover's own probing code) in fresh
subprocesses, alternately with glibc's default thresholds and with
:func:`probes.allocator.reuse_freed_memory`, and prints the wall and CPU ratios (one JSON
line). ``load_model`` sets the thresholds itself, so the "default" runs stop it from
doing so.

Usage::

    python benchmarks/allocator.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
import probes
from suites.discovery import responses as R
torch.set_num_threads(int(sys.argv[2]))
if sys.argv[1] == "default":  # keep glibc's defaults: load_model would raise the thresholds
    import probes.registry
    probes.registry.reuse_freed_memory = lambda: False
model = probes.load_model("efficientnet-lite0")
sw = R.Sweep()
layers = R.check_layers(model, ["blocks.3.2.depthwise"], sw)
where = R._where(model, layers, sw)
model.net.to(memory_format=torch.channels_last)
go, gk = np.meshgrid(sw.orientation_values(), sw.curvature_values())
imgs = list(R._render_batches("curve", {"orientation": go.ravel(), "curvature": gk.ravel()},
                              {"length": 64.0, "width": 3.0, "position": where[1]}, where[0], 8, "cpu", True))
R._probe_all(model, layers, imgs[:4], where[2], where[3])  # warm-up
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
R._probe_all(model, layers, imgs, where[2], where[3])
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
print(json.dumps({"wall": t1 - t0, "user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    runs: dict[str, list[dict]] = {"default": [], "reuse": []}
    for _ in range(a.repeats):
        for mode in runs:
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(a.threads)], check=True,
                                 capture_output=True, text=True).stdout
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))

    def median(mode: str, key: str) -> float:
        vals = sorted(r[key] for r in runs[mode])
        return vals[len(vals) // 2]

    cpu = {m: median(m, "user") + median(m, "sys") for m in runs}
    print(json.dumps({
        "repeats": a.repeats, "threads": a.threads,
        "wall_ratio_default_over_reuse": round(median("default", "wall") / median("reuse", "wall"), 2),
        "cpu_ratio_default_over_reuse": round(cpu["default"] / cpu["reuse"], 2),
        "sys_seconds_default": round(median("default", "sys"), 2), "sys_seconds_reuse": round(median("reuse", "sys"), 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
