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


def pass_rates(
    layers: Sequence[str] = PUBLISHED_LAYERS,
    runs: int | Mapping[str, int] = 200,
    *,
    step: float = 2.0,
    seed: int = 0,
    **options,
) -> dict[str, dict[str, float]]:
    """``{layer: {condition: fraction of runs that pass}}`` (``options`` go to :func:`.validate.compare_curves`).

    Args:
        runs: runs per layer and condition (or per condition).
        step: orientation step of the simulated sweep (degrees, full circle).
        seed: seeds one generator per (layer, condition), so results do not depend on the order.
    """
    o = np.arange(0.0, 360.0, step)
    out: dict[str, dict[str, float]] = {}
    for li, layer in enumerate(layers):
        ref = published(layer)
        out[layer] = {}
        for ci, (name, (kwargs, _)) in enumerate(CONDITIONS.items()):
            n = runs if isinstance(runs, int) else runs.get(name, 0)
            if n <= 0:
                continue
            rng = np.random.default_rng([seed, li, ci])
            passed = 0
            for _ in range(n):
                curves, _truth = simulate_family_curves(ref, o, seed=rng, **kwargs)
                passed += compare_curves(layer, o, curves, ref, **options).passed
            out[layer][name] = passed / n
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print the pass rates as a markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=1000, help="runs per layer and condition (default 1000)")
    p.add_argument("--step", type=float, default=2.0, help="orientation step in degrees (default 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rates = pass_rates(runs=args.runs, step=args.step, seed=args.seed)
    heads = [f"{c} ({'pass' if should else 'fail'})" for c, (_, should) in CONDITIONS.items()]
    print("| layer | " + " | ".join(heads) + " |")
    print("|---" * (len(CONDITIONS) + 1) + "|")
    for layer, r in rates.items():
        cells = [f"{100 * (r[c] if CONDITIONS[c][1] else 1 - r[c]):.1f}%" for c in CONDITIONS]
        print(f"| {layer} | {' | '.join(cells)} |")
    print(f"({args.runs} runs per cell, orientation step {args.step:g} deg, seed {args.seed})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
