"""``curvebench atlas``: the curve-family test over many taps of several models (docs/atlas.md)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from curvebench.cli.argtypes import name_list

__all__ = ["register"]


def _layers(text: str) -> list[str] | None:
    """``auto`` (None) or comma-separated tap names."""
    return None if text.strip() == "auto" else name_list(text)


def _cmd_atlas(args: argparse.Namespace) -> int:
    from curvebench.cli.discover import _criteria, _sweep
    from suites.atomic import check_output, output_file
    from suites.discovery.atlas import AtlasOptions, run_atlas

    if args.json:
        check_output(args.json, "--json")
    out = Path(args.out) if args.out else Path("results") / f"atlas-{_dt.datetime.now(_dt.timezone.utc):%Y%m%d-%H%M%S}"
    opts = AtlasOptions(models=tuple(args.models), layers=None if args.layers is None else tuple(args.layers),
                        control=args.control, seed=args.seed, sweep=_sweep(args), criteria=_criteria(args),
                        images=args.images, cache_dir=None if args.no_cache else args.cache, device=args.device,
                        figures=not args.no_figures, progress=not args.no_progress)
    atlas = run_atlas(opts, out)
    for part, what in ((atlas["models"], "trained"), (atlas.get("control", {}).get("models", {}), "random weights")):
        for model, m in part.items():
            sizes = ", ".join(f"{l} {s['detectors']} [{s['detectors_ci'][0]}, {s['detectors_ci'][1]}]"
                              for l, s in m["layers"].items())
            print(f"{model} ({what}): best layer {m['best_layer']}; {sizes}")
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(json.dumps(atlas, indent=2) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    print(f"atlas: {out / 'atlas.json'} ({atlas['seconds']['total']:.0f} s)")
    return 0


def register(commands: Any, bench_commands: Any) -> None:
    """Add ``atlas`` to the ``curvebench`` parser."""
    from curvebench.cli.discover import add_run_options

    p = commands.add_parser(
        "atlas", help="curve families across many layers of several models, with the random-weights control",
        description="Run the curve-family test of `curvebench discover` on many taps of each model (all taps of a "
                    "model from one forward pass per batch) and write atlas.json, per-layer family.nc and figures "
                    "into --out. Resumable: run the same command again to continue an interrupted atlas "
                    "(docs/atlas.md).",
    )
    p.add_argument("--models", required=True, type=name_list, metavar="A,B", help="comma-separated model ids "
                   "(see `curvebench models`)")
    p.add_argument("--layers", type=_layers, default=None, metavar="auto|A,B",
                   help="'auto' (default): every block output and depthwise activation of stages 2-4 of each model; "
                        "or comma-separated tap names present in every model")
    p.add_argument("--control", action="store_true", help="also test each architecture with random weights")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the random weights (default 0)")
    p.add_argument("--images", default="builtin", help="'builtin' or an image folder, for the sigma statistics")
    p.add_argument("--cache", default="results/cache", metavar="DIR", help="statistics cache (default results/cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the statistics cache")
    add_run_options(p, "output folder (default results/atlas-<UTC time>); an existing atlas folder is continued "
                       "when the settings are the same, refused otherwise", "also write atlas.json here")
    p.set_defaults(func=_cmd_atlas)
