"""Ground-truth optimum against the whole built-in ``curves`` sweep (72,000 stimuli).

Runs ``suites.optimization.ascent.optimize`` on the ground-truth model's 12 curve units with the
defaults, once with the position fixed at the receptive-field centre and once with every
parameter free, and prints as JSON: the worst orientation error (deg) and relative
curvature error against each unit's design, how many units end at or above the curves
sweep's maximum (0.5 deg x 100 curvatures, 64 px, 3 px, black on white, centred) and
by how much, and the steps, polish iterations and forward passes. One CPU thread.

    python benchmarks/optimize_groundtruth.py
"""

from __future__ import annotations

import json

import numpy as np
import torch

import probes
from suites.optimization.ascent import Evaluator, optimize
from suites.optimization.space import COORDINATES, build_space
from suites.specs.suite import load_suite


def main() -> None:
    torch.set_num_threads(1)
    gt = probes.load_model("groundtruth")
    design = {u["channel"]: u for u in gt.meta["units"]}
    suite = load_suite("curves")
    axes = dict(suite.axes)
    space = build_space(size=gt.input_plan(["curves"]).size,
                        fix={"length": 64.0, "width": 3.0, "position": 0.0, "fg": 0.0, "bg": 1.0})
    oo, kk = np.meshgrid(np.asarray(axes["orientation"]), np.asarray(axes["curvature"]), indexing="ij")
    x = space.start().expand(oo.size, -1).clone()
    x[:, COORDINATES.index("orientation")] = torch.tensor(oo.ravel())
    x[:, COORDINATES.index("curvature")] = torch.tensor(kk.ravel())
    sweep_max = Evaluator(gt, "curves", space, chunk=1024).all_channels(x)["pre"].double().max(0).values.numpy()
    report = {"sweep_stimuli": int(oo.size)}
    for name, fix in (("position fixed", {"position": 0.0}), ("all free", None)):
        ds = optimize(gt, "curves", fix=fix)
        want = [design[int(c)] for c in ds.channel.values]
        err_o = [abs((float(o) - w["preferred_orientation"] + 180.0) % 360.0 - 180.0) for o, w in zip(ds.orientation.values, want)]
        err_k = [abs(float(k) - w["preferred_curvature"]) / w["preferred_curvature"] for k, w in zip(ds.curvature.values, want)]
        ratio = ds.activation.values / sweep_max[ds.channel.values]
        report[name] = {
            "orientation_error_deg": [round(e, 3) for e in err_o], "worst_orientation_error_deg": max(err_o),
            "worst_curvature_error": max(err_k), "at_or_above_sweep_max": int((ratio >= 1).sum()),
            "activation_over_sweep_max": [float(ratio.min()), float(ratio.max())],
            "steps_run": int(ds.attrs["steps_run"]), "polish_iterations": int(ds.attrs["polish_iterations"]),
            "forward_passes": int(ds.attrs["forward_passes"]),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
