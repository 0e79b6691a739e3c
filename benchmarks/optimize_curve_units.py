"""Curve units of a layer from a sweep, then ``optimize``: does the optimum agree with the sweep?

The measurement behind the EfficientNet-Lite0 table of ``docs/optimize.md``:

1. sweep 120 orientations (3 deg) x 12 curvatures (line to closed circle) of the
   64 px, 3 px black arc on white at the centre unit, all channels at once;
2. curve units: best curve response >= 1.5x the best line response, resultant length
   of the orientation tuning (at the best curvature) >= 0.5, peak at nonzero
   curvature; the ``--family`` strongest (max / sweep std) form the family;
3. ``optimize`` those channels (``--sweep-space``: over orientation and curvature, the
   sweep's own space; ``--sweep-family``: also length and width; neither: every default
   parameter) and compare the optimum's orientation with the sweep's
   preferred orientation (the orientation of its best cell) and its activation with
   the sweep's maximum.

Usage::

    python benchmarks/optimize_curve_units.py --model efficientnet-lite0 --layer blocks.3.2.depthwise \\
        --family 12 --restarts 3 --steps 30 --sweep-family --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch

import probes
from suites.optimization.ascent import Evaluator, optimize
from suites.optimization.space import COORDINATES, build_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--layer", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--family", type=int, default=12)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--tol", type=float, default=0.001)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--escapes", type=int, default=3)
    ap.add_argument("--separation", type=float, default=2.0, help="starts >= this many coarse-sweep steps apart")
    ap.add_argument("--sweep-orientations", type=int, default=36, help="optimize's coarse sweep (default 36 x 6)")
    ap.add_argument("--sweep-curvatures", type=int, default=6)
    ap.add_argument("--sweep-family", action="store_true",
                    help="optimise only orientation, curvature, length, width (black on white, centred)")
    ap.add_argument("--sweep-space", action="store_true",
                    help="optimise only orientation and curvature (64 px, 3 px, black on white, centred: the "
                         "comparison sweep's own space)")
    ap.add_argument("--polish", type=int, default=30, help="compass-search iterations after the ascent (optimize's default)")
    ap.add_argument("--json")
    args = ap.parse_args()

    torch.manual_seed(0)
    m = probes.load_model(args.model, weights=args.weights)
    layer = args.layer
    t0 = time.time()
    fixed = {"length": 64.0, "width": 3.0, "position": 0.0, "fg": 0.0, "bg": 1.0}
    space = build_space(size=m.input_plan([layer]).size, fix=fixed)
    ev = Evaluator(m, layer, space, chunk=64)
    o = np.arange(0, 360, 3.0)
    k = np.linspace(0, 2 * math.pi / 64, 12)
    oo, kk = np.meshgrid(o, k, indexing="ij")
    x = space.start().expand(oo.size, -1).clone()
    x[:, COORDINATES.index("orientation")] = torch.tensor(oo.ravel())
    x[:, COORDINATES.index("curvature")] = torch.tensor(kk.ravel())
    pre = ev.all_channels(x)["pre"].double().numpy().reshape(len(o), len(k), -1)  # (O, K, C)

    std = pre.reshape(-1, pre.shape[-1]).std(0)
    curve_max, line_max = pre[:, 1:, :].max((0, 1)), pre[:, 0, :].max(0)
    best_k = pre.max(0).argmax(0)
    candidates = []
    for c in range(pre.shape[-1]):
        t = np.maximum(pre[:, best_k[c], c], 0)
        if t.sum() <= 0:
            continue
        resultant = abs((t * np.exp(1j * np.radians(o))).sum()) / t.sum()
        if curve_max[c] > 0 and curve_max[c] >= 1.5 * max(line_max[c], 1e-9) and resultant >= 0.5 and best_k[c] > 0:
            candidates.append((curve_max[c] / max(std[c], 1e-9), c))
    candidates.sort(reverse=True)
    family = [c for _, c in candidates[: args.family]]
    flat = pre.reshape(-1, pre.shape[-1])

    fix = {"position": 0.0, "fg": 0.0, "bg": 1.0} if args.sweep_family else None
    if args.sweep_space:
        fix = fixed
    ds = optimize(m, layer, family, restarts=args.restarts, steps=args.steps, chunk=64, fix=fix, lr=args.lr, tol=args.tol,
                  patience=args.patience, escapes=args.escapes, separation=args.separation,
                  sweep_orientations=args.sweep_orientations,
                  sweep_curvatures=args.sweep_curvatures, polish=args.polish)
    rows = []
    for i, c in enumerate(family):
        pref, smax = float(oo.ravel()[flat[:, c].argmax()]), float(flat[:, c].max())
        pref_k = float(kk.ravel()[flat[:, c].argmax()])
        diff = abs((float(ds.orientation[i]) - pref + 180) % 360 - 180)
        rows.append({"channel": c, "sweep_preferred_orientation": pref, "sweep_preferred_curvature": pref_k, "optimum_orientation": float(ds.orientation[i]),
                     "difference_deg": diff, "activation": float(ds.activation[i]), "sweep_max": smax,
                     "ascent_activation": float(ds.ascent_activation[i]),
                     "curvature": float(ds.curvature[i]), "length": float(ds.length[i]), "width": float(ds.width[i]),
                     "coarse_sweep_max": float(ds.sweep_max[i]), "steps": int(ds.steps[i]),
                     "converged": bool(ds.converged[i]), "escapes": int(ds.escapes[i])})
        print(rows[-1], flush=True)
    summary = {"model": args.model, "layer": layer, "candidates": len(candidates), "family": family,
               "within_10deg": sum(r["difference_deg"] <= 10 for r in rows),
               "activation_ge_sweep_max": sum(r["activation"] >= r["sweep_max"] for r in rows),
               "n": len(rows), "converged": int(ds.converged.sum()), "optimize_steps_run": int(ds.attrs["steps_run"]),
               "polish_iterations": int(ds.attrs["polish_iterations"]),
               "ascent_ge_sweep_max": sum(r["ascent_activation"] >= r["sweep_max"] for r in rows),
               "optimize_forward_passes": int(ds.attrs["forward_passes"]), "optimize_wall_s": float(ds.attrs["wall_s"]),
               "wall_s": time.time() - t0, "argv": sys.argv[1:]}
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"summary": summary, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
