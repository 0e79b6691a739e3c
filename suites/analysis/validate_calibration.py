"""Calibration of :mod:`.validate` by simulation: how often it passes correct and wrong families.

For each layer with published curves, runs built by
:func:`.synthetic.simulate_family_curves` from the article's own curves (random
convention: shift and reflection), under four conditions:

- ``noise``: every unit's curve rotated by N(0, 12 deg), echo gain and amplitude noise
  (a correct measurement; should pass);
- ``random``: every unit rotated by a uniform random angle (should fail);
- ``scrambled``: the curves handed to the channels in a random non-identity order (should fail);
- ``third``: only a third of the family's channels measured (should fail).

Reproduce the table of ``docs/analysis.md``::

    python -m suites.analysis.validate_calibration --runs 1000
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import numpy as np

from .reference_curves import PUBLISHED_LAYERS, published
from .synthetic import simulate_family_curves
from .validate import compare_curves

#: condition -> (keyword arguments of simulate_family_curves, whether validate should pass)
CONDITIONS: dict[str, tuple[dict, bool]] = {
    "noise": ({"rotation_sd": 12.0}, True),
    "random": ({"random_orientations": True}, False),
    "scrambled": ({"permute": True}, False),
    "third": ({"keep": 1 / 3}, False),
}


def calibrate(
    layers: Sequence[str] = PUBLISHED_LAYERS,
    runs: int | Mapping[str, int] = 200,
    *,
    step: float = 2.0,
    seed: int = 0,
    rotation_sd: float = 12.0,
    **options,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{layer: {condition: numbers}}`` over simulated runs (``options`` go to :func:`.validate.compare_curves`).

    ``numbers``: ``pass`` (fraction of runs that pass), and the range over runs of the RMS
    residual (``rms_min``, ``rms_max``, degrees), the order agreement (``order_min``,
    ``order_max``) and the median curve correlation (``corr_min``, ``corr_max``); NaN
    statistics (e.g. too few channels to map) are left out of the ranges.

    Args:
        runs: runs per layer and condition (or per condition; conditions left out are skipped).
        step: orientation step of the simulated sweep (degrees, full circle).
        seed: seeds one generator per (layer, condition), so results do not depend on the order.
        rotation_sd: per-unit orientation noise of the ``noise`` condition (degrees).
    """
    o = np.arange(0.0, 360.0, step)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for li, layer in enumerate(layers):
        ref = published(layer)
        out[layer] = {}
        for ci, (name, (kwargs, _)) in enumerate(CONDITIONS.items()):
            n = runs if isinstance(runs, int) else runs.get(name, 0)
            if n <= 0:
                continue
            if name == "noise":
                kwargs = {**kwargs, "rotation_sd": rotation_sd}
            rng = np.random.default_rng([seed, li, ci])
            rows = []
            for _ in range(n):
                curves, _truth = simulate_family_curves(ref, o, seed=rng, **kwargs)
                v = compare_curves(layer, o, curves, ref, **options)
                rows.append((v.passed, v.rms, v.order_agreement, v.median_correlation))
            a = np.array(rows, dtype=np.float64)
            numbers = {"pass": float(a[:, 0].mean()), "runs": n}
            for col, key in ((1, "rms"), (2, "order"), (3, "corr")):
                finite = a[np.isfinite(a[:, col]), col]
                numbers[f"{key}_min"] = float(finite.min()) if finite.size else float("nan")
                numbers[f"{key}_max"] = float(finite.max()) if finite.size else float("nan")
            out[layer][name] = numbers
    return out


def pass_rates(layers: Sequence[str] = PUBLISHED_LAYERS, runs: int | Mapping[str, int] = 200, **kwargs) -> dict[str, dict[str, float]]:
    """``{layer: {condition: fraction of runs that pass}}`` (arguments as :func:`calibrate`)."""
    return {layer: {c: r["pass"] for c, r in conds.items()} for layer, conds in calibrate(layers, runs, **kwargs).items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the pass rates as a markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=1000, help="runs per layer and condition (default 1000)")
    p.add_argument("--step", type=float, default=2.0, help="orientation step in degrees (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rotation-sd", type=float, default=12.0, help="per-unit noise of the noise condition (default 12 deg)")
    args = p.parse_args(argv)
    result = calibrate(runs=args.runs, step=args.step, seed=args.seed, rotation_sd=args.rotation_sd)
    heads = [f"{c} ({'pass' if should else 'fail'})" for c, (_, should) in CONDITIONS.items()]
    print("right verdicts:\n| layer | " + " | ".join(heads) + " |")
    print("|---" * (len(CONDITIONS) + 1) + "|")
    for layer, r in result.items():
        cells = [f"{100 * (r[c]['pass'] if CONDITIONS[c][1] else 1 - r[c]['pass']):.1f}%" for c in CONDITIONS]
        print(f"| {layer} | {' | '.join(cells)} |")
    print("\nmargins (range over runs):\n| layer | condition | RMS residual (deg) | order agreement | median correlation |")
    print("|---|---|---|---|---|")
    for layer, r in result.items():
        for c, x in r.items():
            print(f"| {layer} | {c} | {x['rms_min']:.1f} - {x['rms_max']:.1f} | {x['order_min']:.2f} - {x['order_max']:.2f} "
                  f"| {x['corr_min']:.2f} - {x['corr_max']:.2f} |")
    print(f"({args.runs} runs per cell, orientation step {args.step:g} deg, noise {args.rotation_sd:g} deg per unit, "
          f"seed {args.seed})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
