"""``curvebench run | suites | probe`` and ``curvebench bench run`` (``demo``: :mod:`curvebench.cli.discover`).

Heavy imports happen inside the handlers so that ``curvebench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from curvebench.cli.argtypes import add_model_options, name_list, positive_int, weights_spec
from curvebench.cli.outputs import add_overwrite

__all__ = ["register"]


# ----------------------------------------------------------------------------- run

def _check_out(out: str | None, what: str = "--out") -> None:
    """Refuse before any work: an existing --out, a folder, a path below a file, a `results` that is a file."""
    from suites.atomic import check_folder, check_output

    if out is None:
        check_folder("results", "the default output folder results/")
    else:
        check_output(out, what)


def run_options(args: argparse.Namespace) -> Any:
    """The :class:`~suites.specs.options.RunOptions` of parsed ``run``/``demo`` arguments (absent ones: None)."""
    from suites.specs.options import RunOptions

    return RunOptions.of(**{k: getattr(args, k, None) for k in
                            ("model", "weights", "device", "batch_size", "storage", "layers", "limit")},
                         quick=bool(getattr(args, "quick", False)))


def _cmd_run(args: argparse.Namespace) -> int:
    from suites.limits import MAX_BATCH, check_at_most
    from suites.running.runner import run_suite

    if args.suite is None and args.resume is None:
        raise ValueError("run: name a SUITE (see `curvebench suites`) or give --resume FILE")
    if args.resume is not None and args.out is not None:
        raise ValueError("run: --resume continues FILE in place; do not combine it with --out")
    options = run_options(args)
    if args.resume is not None and options.overrides_grid:
        raise ValueError("run --resume uses the options stored in the file; do not pass --batch-size, --storage, "
                         "--layers, --limit or --quick")
    if args.batch_size is not None:
        check_at_most("--batch-size", args.batch_size, MAX_BATCH, hint="stimuli per batch")
    if args.resume is None:
        _check_out(args.out)
    progress = False if args.no_progress else None
    from suites.running.distributed import launched

    if not launched():
        run_suite(args.suite, options, out=args.out, resume=args.resume, progress=progress)
        return 0
    from suites.running.distributed import run_sharded
    from suites.errors import RankFailedError

    try:
        run_sharded(args.suite, options, out=args.out, resume=args.resume, progress=progress)
    except RankFailedError as exc:
        if not exc.report:  # rank 0 prints the one line for the whole job
            return 2
        raise
    return 0


# ----------------------------------------------------------------------------- suites

def _cmd_suites(args: argparse.Namespace) -> int:
    from suites.specs.builtin import builtin_names
    from suites.specs.suite import load_suite

    rows = [{**load_suite(name).describe(), "name": name} for name in builtin_names()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        axes = " x ".join(f"{n} {a['count']}" for n, a in r["axes"].items())
        print(f"{r['name']:<{width}}  {r['description']}  [{axes} = {r['stimuli']:,} stimuli]")
    return 0


# ----------------------------------------------------------------------------- probe

def _cmd_probe(args: argparse.Namespace) -> int:
    from suites.limits import MAX_BATCH, MAX_IMAGE_SIDE, check_at_most, check_memory
    from suites.running.probe_images import ProbeImagesOptions, probe_images

    check_at_most("--size", args.size, MAX_IMAGE_SIDE, "px")
    check_at_most("--batch-size", args.batch_size, MAX_BATCH)
    check_memory("a batch of images", 40 * args.batch_size * 3 * args.size**2 * 4,
                 hint="choose a smaller --size or --batch-size")

    options = ProbeImagesOptions(weights=args.weights, device=args.device, full_map=args.full_map, size=args.size,
                                 batch_size=args.batch_size, input_transform=args.input_transform)
    res = probe_images(args.model, args.layers, args.images, args.out, options,
                       progress=False if args.no_progress else None)
    print(res)
    return 0


# ----------------------------------------------------------------------------- bench run

def _cmd_bench_run(args: argparse.Namespace) -> int:
    from suites.atomic import check_output, output_file
    from suites.limits import MAX_BATCH, check_at_most
    from curvebench.benches.run import bench_run

    check_at_most("--batch-size", args.batch_size, MAX_BATCH)
    check_at_most("--memory-batch-size", args.memory_batch_size, MAX_BATCH)
    if args.json:
        check_output(args.json, "--json")

    report = bench_run(
        model=args.model, weights=args.weights, layers=args.layers, stimuli=args.stimuli,
        batch_size=args.batch_size, device=args.device, repeats=args.repeats,
        memory_sweep=args.memory_sweep, memory_batch_size=args.memory_batch_size, scaling=args.scaling,
    )
    text = json.dumps(report, indent=2)
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    print(text)
    return 0


def _add_run(commands: Any) -> None:
    """``curvebench run``: its options."""
    p = commands.add_parser(
        "run", help="run a sweep suite into an xarray-readable HDF5 results file",
        description="Render, probe and write a suite's stimuli (streaming, resumable). "
                    "SUITE is a built-in name (`curvebench suites`) or a TOML file. Under torchrun "
                    "(`torchrun --standalone --nproc-per-node=N $(command -v curvebench) run SUITE --out FILE`) "
                    "each process runs one shard of the grid and FILE combines them (docs/scale-out.md).",
    )
    p.add_argument("suite", nargs="?", help="built-in suite name or TOML path (optional with --resume)")
    p.add_argument("--model", help="model id, e.g. inceptionv1, groundtruth (default: the suite's; "
                   "see `curvebench models`)")
    p.add_argument("--weights", type=weights_spec, metavar="PATH",
                   help="weights file (e.g. inception5h.pth) or 'random' (default: the suite's, "
                   "else the cached file of `curvebench weights download`)")
    p.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:1 (default: the suite's)")
    p.add_argument("--out", metavar="FILE", help="results file (default results/<suite>-<model>-<UTC time>.h5); "
                   "never overwritten")
    p.add_argument("--resume", metavar="FILE", help="continue an interrupted results file")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="only the first N stimuli of the grid, for smoke runs (default: all)")
    p.add_argument("--quick", action="store_true", help="thin every swept axis to at most 12 values")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="stimuli per batch (default: the suite's)")
    p.add_argument("--storage", choices=["float32", "float16"],
                   help="on-disk dtype of activations (default: the suite's)")
    p.add_argument("--layers", type=name_list, metavar="A,B", help="comma-separated layers (default: the suite's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)


def _add_suites(commands: Any) -> None:
    """``curvebench suites``: its options."""
    p = commands.add_parser("suites", help="list the built-in suites", description="List the built-in sweep suites.")
    p.add_argument("--json", action="store_true",
                   help="print the list as JSON: per suite name, kind, axes {param: {min, max, count}}, fixed "
                   "(every other render parameter, incl. length; null = unlimited) and more")
    p.set_defaults(func=_cmd_suites)


def _add_probe(commands: Any) -> None:
    """``curvebench probe``: its options."""
    p = commands.add_parser(
        "probe", help="activations of arbitrary images (folder or .npy) into an HDF5 file",
        description="Probe images at the unit nearest the image centre (or full maps) and write "
                    "<layer> / <layer>_pre_relu with dims (image, <layer>_channel).",
    )
    add_model_options(p, default=None, weights_default="the cached file of `curvebench weights download`")
    p.add_argument("--layers", type=name_list, required=True, metavar="A,B",
                   help="comma-separated layer names (a factory model: dotted named_modules() names)")
    p.add_argument("--images", required=True, metavar="PATH",
                   help="folder of images (png/jpg/...) or a .npy array (N, 3, H, W) in [0, 1]")
    p.add_argument("--out", required=True, metavar="FILE", help="output .h5 file (never overwritten)")
    p.add_argument("--full-map", action="store_true", help="store whole maps (image, channel, y, x)")
    p.add_argument("--size", type=positive_int, default=224, metavar="PX",
                   help="folder images: shorter side resized to PX px, then centre-cropped (default 224)")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                   help="images per forward pass (default 16)")
    p.add_argument("--device", default="auto", help="torch device (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_probe)


def _add_bench_run(bench_commands: Any) -> None:
    """``curvebench bench run``: its options."""
    p = bench_commands.add_parser(
        "run", help="end-to-end sweep throughput vs probe-only; optional flat-memory sweep",
        description="Measures stimuli/s of a full sweep (render + probe + write) against probe-only "
                    "stimuli/s on the same pre-rendered stimuli, in one process; pipeline_efficiency = "
                    "end-to-end / probe-only. --memory-sweep N also runs an N-stimulus sweep on the "
                    "ground-truth model and reports its peak RSS (MB) when 10% and when 100% of the rows "
                    "are committed.",
    )
    p.add_argument("--json", metavar="FILE", help="also write the report to this JSON file")
    p.add_argument("--model", default="inceptionv1", help="model id (default inceptionv1)")
    p.add_argument("--weights", type=weights_spec, metavar="PATH", help="weights file (default: random weights, seed 0)")
    p.add_argument("--layers", type=name_list, default=["mixed3b"], metavar="A,B",
                   help="comma-separated layers to probe (default mixed3b)")
    p.add_argument("--stimuli", type=positive_int, default=1024, metavar="N",
                   help="stimuli per measurement (default 1024)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="stimuli per batch (default 64)")
    p.add_argument("--repeats", type=positive_int, default=3, metavar="N",
                   help="alternating repeats; medians reported (default 3)")
    p.add_argument("--device", default="auto", help="torch device (default auto)")
    p.add_argument("--memory-sweep", type=positive_int, metavar="N",
                   help="also run an N-stimulus ground-truth sweep and measure peak RSS growth (default: off)")
    p.add_argument("--memory-batch-size", type=positive_int, default=1024, metavar="N",
                   help="stimuli per batch of the memory sweep (default 1024)")
    add_overwrite(p)
    p.add_argument("--scaling", type=positive_int, metavar="N",
                   help="also run the sweep in 1 process and under torchrun with N processes and report "
                        "stimuli/s of each and scaling_efficiency = rate(N) / (N * rate(1)) (default: off)")
    p.set_defaults(func=_cmd_bench_run)


def register(commands: Any, bench_commands: Any) -> None:
    """Add ``run``, ``suites``, ``probe`` and ``bench run`` to the ``curvebench`` parser."""
    _add_run(commands)
    _add_suites(commands)
    _add_probe(commands)
    _add_bench_run(bench_commands)
