"""``curvebench optimize`` and ``curvebench bench optimize``.

Heavy imports happen inside the handlers so that ``curvebench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from curvebench.cli.argtypes import channel_selection, name_list, nonnegative_int, positive_int
from curvebench.cli.outputs import add_overwrite
from probes.weights_spec import RANDOM_TEXT

__all__ = ["register"]


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def fixed_value(text: str) -> tuple[str, list[float]]:
    """``NAME=V`` or ``NAME=V1,V2,V3`` (colours, position)."""
    name, value = _assignment(text)
    try:
        return name, [float(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER or NAME=N1,N2,N3, got {text!r}") from None


def bound(text: str) -> tuple[str, tuple[float, float]]:
    """``NAME=LO:HI``."""
    name, value = _assignment(text)
    lo, sep, hi = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return name, (float(lo), float(hi))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=LO:HI, got {text!r}") from None


#: ``--channels`` of optimize: the shared vocabulary without ``auto`` (there is no sweep to choose from).
channel_list = channel_selection("all", "family", "ids", "file")


def _duplicates(pairs: list[tuple[str, Any]], option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"{option}: {name!r} is given twice")
        out[name] = value
    return out


def _cmd_optimize(args: argparse.Namespace) -> int:
    from suites.analysis.optimum import plot_sheet, report
    from suites.atomic import check_output, output_file
    from suites.optimization.ascent import optimize, save

    out = check_output(args.out, "--out")  # refused before any work: an existing file (without --overwrite), an input
    figure = check_output(args.figure if args.figure else out.with_suffix(".png"), "--figure")
    if args.json:
        check_output(args.json, "--json")
    fix = {k: (v[0] if len(v) == 1 else v) for k, v in _duplicates(args.fix or [], "--fix").items()}
    bounds = _duplicates(args.bounds or [], "--bounds")

    def progress(step: int, mean: float) -> None:
        if not args.quiet:
            print(f"\rstep {step}: mean best activation {mean:.4g}", end="", file=sys.stderr, flush=True)

    ds = optimize(
        args.model, args.layer, args.channels, weights=args.weights, device=args.device, fix=fix, bounds=bounds,
        rounding=args.rounding, fill=args.fill, restarts=args.restarts, init=args.init, steps=args.steps,
        lr=args.lr, tol=args.tol, patience=args.patience, escapes=args.escapes, polish=args.polish, stats=args.stats,
        sweep_orientations=args.sweep_orientations, sweep_curvatures=args.sweep_curvatures, separation=args.separation,
        sensitivity_sigma=args.sensitivity,
        chunk=args.chunk, seed=args.seed, progress=progress,
    )
    if not args.quiet:
        print(file=sys.stderr)
    save(ds, out)
    print(f"wrote {out}")
    plot_sheet(ds, figure)
    print(f"figure: {figure}")
    rep = report(ds)
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(json.dumps(rep, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    n = len(rep["channels"])
    conv = sum(r["converged"] for r in rep["channels"])
    better = sum(r["activation"] >= r["sweep_max"] for r in rep["channels"])
    print(f"{n} channels of {rep['layer']}: {conv} converged, {better} at or above their coarse-sweep maximum; "
          f"{rep['steps_run']} steps, {rep['forward_passes']:,} forward passes, {rep['wall_s']:.1f} s")
    return 0


def _cmd_bench_optimize(args: argparse.Namespace) -> int:
    from suites.atomic import check_output, output_file
    from curvebench.benches.optimize import bench_optimize

    if args.json:
        check_output(args.json, "--json")
    rep = bench_optimize(model=args.model, weights=args.weights, layer=args.layer, channels=args.channels,
                         restarts=args.restarts, steps=args.steps, device=args.device, max_sweep=args.max_sweep,
                         threads=args.threads, free=args.free, tol=args.tol, patience=args.patience, lr=args.lr,
                         polish=args.polish, log=lambda line: print(line, file=sys.stderr, flush=True))
    text = json.dumps(rep, indent=2)
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    print(text)
    return 0


def _add_optimize(commands: Any) -> None:
    """``curvebench optimize``: its options."""
    p = commands.add_parser(
        "optimize", help="each channel's preferred stimulus by gradient ascent through the renderer",
        description="Finds, for every channel of a layer at once (channel x restart as one batch), the "
                    "stimulus parameters that maximise its centre unit's (pre-ReLU) activation, by projected "
                    "Adam through the differentiable renderer, seeded from a coarse orientation x curvature "
                    "sweep. Parameters: orientation, curvature, length, width, position, fg, bg (and rounding, "
                    "fill with --rounding/--fill). Writes a netCDF file, a figure sheet and optionally JSON.",
    )
    p.add_argument("--model", required=True, help="model id, e.g. groundtruth, inceptionv1 (see `curvebench models`)")
    p.add_argument("--layer", required=True, help="layer whose centre unit is optimised")
    p.add_argument("--channels", type=channel_list, default="all", metavar="IDS",
                   help="comma-separated channel ids, 'all' (default), 'family' (the article's family) or the "
                        "family.nc of `curvebench discover` (its curve detectors in --layer)")
    p.add_argument("--weights", metavar="PATH", help="weights file or 'random' (default: the cached download)")
    p.add_argument("--out", required=True, metavar="FILE.nc", help="output netCDF file (never overwritten)")
    p.add_argument("--json", metavar="PATH", help="also write the per-channel report as JSON")
    p.add_argument("--figure", metavar="PNG", help="figure sheet (default: FILE with .png)")
    p.add_argument("--fix", type=fixed_value, action="append", metavar="NAME=V",
                   help="hold a parameter constant, e.g. width=3, fg=0,0,0 (repeatable)")
    p.add_argument("--bounds", type=bound, action="append", metavar="NAME=LO:HI",
                   help="search range of a parameter, e.g. curvature=0:0.08, length=32:64 (repeatable)")
    p.add_argument("--rounding", action="store_true", help="also optimise rounding (0 angle .. 1 curve)")
    p.add_argument("--fill", action="store_true", help="also optimise the fill opacity")
    p.add_argument("--restarts", type=positive_int, default=4, metavar="N", help="starts per channel (default 4)")
    p.add_argument("--init", choices=["sweep", "random"], default="sweep",
                   help="starts: best coarse-sweep stimuli (default) or uniform random points")
    p.add_argument("--sweep-orientations", type=positive_int, default=24, metavar="N",
                   help="coarse sweep: orientations (default 24; 72 for rugged real networks, see docs/optimize.md)")
    p.add_argument("--sweep-curvatures", type=positive_int, default=6, metavar="N",
                   help="coarse sweep: curvatures (default 6)")
    p.add_argument("--separation", type=float, default=2.0, metavar="K",
                   help="a channel's sweep starts lie >= K coarse-sweep orientation steps apart (default 2; 0: the best "
                        "points)")
    p.add_argument("--steps", type=nonnegative_int, default=150, metavar="N", help="step budget (default 150)")
    p.add_argument("--lr", type=float, default=0.02, help="Adam learning rate on normalised parameters (default 0.02)")
    p.add_argument("--tol", type=float, default=0.001,
                   help="a row that has not gained TOL sigma for --patience steps restarts from its best point with half "
                        "the learning rate; converged at lr/8 (default 0.001)")
    p.add_argument("--patience", type=positive_int, default=5, metavar="N", help="see --tol (default 5)")
    p.add_argument("--escapes", type=nonnegative_int, default=3, metavar="N",
                   help="times a start at a zero-gradient point (dead receptive field) may jump to a random point "
                        "(default 3)")
    p.add_argument("--polish", type=nonnegative_int, default=30, metavar="N",
                   help="after the ascent, at most N compass-search iterations around each channel's best point: "
                        "+-h along every parameter, h from half a coarse-sweep step down to 1/64 of it (default 30; "
                        "0: none)")
    p.add_argument("--stats", metavar="FILE", help="dataset statistics (`curvebench stats`) for sigma "
                   "(default: the coarse sweep's own statistics)")
    p.add_argument("--sensitivity", type=float, nargs="?", const=2.0, metavar="K",
                   help="also find, per parameter, the smallest change that lowers the activation by K sigma "
                        "(default K 2)")
    p.add_argument("--chunk", type=positive_int, default=256, metavar="N", help="stimuli per forward pass (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed (random starts, random weights; default 0)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, auto (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    add_overwrite(p)
    p.set_defaults(func=_cmd_optimize)


def _add_bench_optimize(bench_commands: Any) -> None:
    """``curvebench bench optimize``: its options."""
    p = bench_commands.add_parser(
        "optimize", help="gradient ascent vs the dense sweep needed to reach the same activations",
        description="Optimises every channel of a layer (--free sweep: orientation, curvature, length, width; "
                    "black on white, centred; --free default: also position and colours) and measures wall time "
                    "and forward passes until every channel is within 1% of its final activation, against dense "
                    "sweeps of the same free parameters (grids refined until each channel reaches that "
                    "activation). sweep_equivalent_speedup = sweep wall time / optimiser wall time (a lower bound "
                    "when no sweep up to --max-sweep reaches it).",
    )
    p.add_argument("--json", metavar="FILE", help="also write the report to this JSON file")
    p.add_argument("--model", default="inceptionv1", help="model id (default inceptionv1)")
    p.add_argument("--weights", default=RANDOM_TEXT, metavar="PATH", help="weights (default: random, seed 0)")
    p.add_argument("--layer", default="mixed3b", help="layer (default mixed3b, 480 channels)")
    p.add_argument("--channels", type=channel_list, default="all", metavar="IDS", help="channels (default all)")
    p.add_argument("--restarts", type=positive_int, default=1, metavar="N", help="starts per channel (default 1)")
    p.add_argument("--steps", type=positive_int, default=12, metavar="N", help="step budget (default 12)")
    p.add_argument("--free", choices=["sweep", "default"], default="sweep",
                   help="free parameters: 'sweep' = orientation, curvature, length, width (black on white, centred; "
                        "default), 'default' = also position, fg, bg (as `curvebench optimize`)")
    p.add_argument("--tol", type=float, default=0.001, help="optimiser tolerance in sigma (default 0.001; 0 = run "
                   "the whole step budget)")
    p.add_argument("--patience", type=positive_int, default=3, metavar="N", help="optimiser patience (default 3)")
    p.add_argument("--lr", type=float, default=0.02, help="optimiser learning rate (default 0.02)")
    p.add_argument("--polish", type=nonnegative_int, default=0, metavar="N",
                   help="compass-search iterations after the ascent, counted in its cost (default 0: gradient ascent "
                        "alone)")
    p.add_argument("--max-sweep", type=positive_int, default=110000, metavar="N",
                   help="largest dense sweep tried, in stimuli (default 110000: up to 18^4 = 104,976; about 25 "
                        "minutes of one CPU thread on mixed3b, benchmarks/README.md)")
    p.add_argument("--threads", type=positive_int, metavar="N", help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_overwrite(p)
    p.set_defaults(func=_cmd_bench_optimize)


def register(commands: Any, bench_commands: Any) -> None:
    """Add ``optimize`` and ``bench optimize`` to the ``curvebench`` parser."""
    _add_optimize(commands)
    _add_bench_optimize(bench_commands)
