"""``curvebench run | suites | demo | probe`` and ``curvebench bench run``.

Heavy imports happen inside the handlers so that ``curvebench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from curvebench.cli.argtypes import name_list, positive_int, weights_spec
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
    """The :class:`~suites.options.RunOptions` of parsed ``run``/``demo`` arguments (absent ones: None)."""
    from suites.options import RunOptions

    return RunOptions.of(**{k: getattr(args, k, None) for k in
                            ("model", "weights", "device", "batch_size", "storage", "layers", "limit")},
                         quick=bool(getattr(args, "quick", False)))


def _cmd_run(args: argparse.Namespace) -> int:
    from suites.limits import MAX_BATCH, check_at_most
    from suites.runner import run_suite

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
    run_suite(args.suite, options, out=args.out, resume=args.resume, progress=False if args.no_progress else None)
    return 0


# ----------------------------------------------------------------------------- suites

def _cmd_suites(args: argparse.Namespace) -> int:
    from suites.builtin import builtin_names
    from suites.spec import load_suite

    rows = []
    for name in builtin_names():
        s = load_suite(name)
        rows.append({
            "name": name, "description": s.description, "kind": s.kind, "stimuli": s.num_stimuli,
            "axes": {n: len(v) for n, v in s.axes}, "model": s.model,
            "layers": list(s.layers) or f"family {s.family}",
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        axes = " x ".join(f"{n} {k}" for n, k in r["axes"].items())
        print(f"{r['name']:<{width}}  {r['description']}  [{axes} = {r['stimuli']:,} stimuli]")
    return 0


# ----------------------------------------------------------------------------- demo

def _cmd_demo(args: argparse.Namespace) -> int:
    from suites.results import open_results
    from suites.runner import run_suite

    _check_out(args.out)
    if args.out is not None:
        from suites.atomic import check_folder

        check_folder(Path(args.out).with_suffix(""), "the heatmaps folder (--out without .h5)")

    res = run_suite("demo", run_options(args), out=args.out, progress=False if args.no_progress else None)
    figures: list[Path] = []
    try:
        from suites.analysis.plots import plot_heatmaps
        from suites.strips import stimulus_strip
    except ImportError:
        plot_heatmaps = None
    if plot_heatmaps is None:
        print("heatmaps skipped: suites.analysis.plots.plot_heatmaps is not available in this installation",
              file=sys.stderr)
    else:
        out_dir = res.path.with_suffix("")
        with open_results(res.path) as ds:
            figures = plot_heatmaps(ds, out_dir, strip=stimulus_strip)
        for p in figures:
            print(f"figure: {p}")
    print("next:")
    print(f"  python -c \"import suites; print(suites.open_results('{res.path}'))\"")
    print("  curvebench weights download        # InceptionV1 (inception5h.pth), or use --weights PATH")
    print("  curvebench run curves --model inceptionv1 --weights PATH/inception5h.pth")
    return 0


# ----------------------------------------------------------------------------- probe

def _cmd_probe(args: argparse.Namespace) -> int:
    from suites.limits import MAX_BATCH, MAX_IMAGE_SIDE, check_at_most, check_memory
    from suites.probe_images import probe_images

    check_at_most("--size", args.size, MAX_IMAGE_SIDE, "px")
    check_at_most("--batch-size", args.batch_size, MAX_BATCH)
    check_memory("a batch of images", 40 * args.batch_size * 3 * args.size**2 * 4,
                 hint="choose a smaller --size or --batch-size")

    res = probe_images(
        args.model, args.layers, args.images, args.out, weights=args.weights, device=args.device,
        full_map=args.full_map, size=args.size, batch_size=args.batch_size,
        progress=False if args.no_progress else None,
    )
    print(res)
    return 0


# ----------------------------------------------------------------------------- bench run

def _cmd_bench_run(args: argparse.Namespace) -> int:
    from suites.atomic import check_output, output_file
    from suites.limits import MAX_BATCH, check_at_most
    from suites.run_bench import bench_run

    check_at_most("--batch-size", args.batch_size, MAX_BATCH)
    check_at_most("--memory-batch-size", args.memory_batch_size, MAX_BATCH)
    if args.json:
        check_output(args.json, "--json")

    report = bench_run(
        model=args.model, weights=args.weights, layers=args.layers, stimuli=args.stimuli,
        batch_size=args.batch_size, device=args.device, repeats=args.repeats,
        memory_sweep=args.memory_sweep, memory_batch_size=args.memory_batch_size,
    )
    text = json.dumps(report, indent=2)
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    print(text)
    return 0


def register(commands: Any, bench_commands: Any) -> None:
    """Add ``run``, ``suites``, ``demo``, ``probe`` and ``bench run`` to the ``curvebench`` parser."""
    p = commands.add_parser(
        "run", help="run a sweep suite into an xarray-readable HDF5 results file",
        description="Render, probe and write a suite's stimuli (streaming, resumable). "
                    "SUITE is a built-in name (`curvebench suites`) or a TOML file.",
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

    p = commands.add_parser("suites", help="list the built-in suites", description="List the built-in sweep suites.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=_cmd_suites)

    p = commands.add_parser(
        "demo", help="offline demo: a small curves sweep on the ground-truth model, with heatmaps",
        description="Runs the built-in `demo` suite (curves on the ground-truth model, about a minute on a "
                    "laptop CPU), writes results/demo-groundtruth-<time>.h5 and its heatmaps.",
    )
    p.add_argument("--out", metavar="FILE", help="results file (default results/demo-groundtruth-<UTC time>.h5)")
    p.add_argument("--device", help="torch device (default auto)")
    p.add_argument("--quick", action="store_true", help="thin the sweep to 12 x 12 stimuli (smoke test)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)

    p = commands.add_parser(
        "probe", help="activations of arbitrary images (folder or .npy) into an HDF5 file",
        description="Probe images at the unit nearest the image centre (or full maps) and write "
                    "<layer> / <layer>_pre_relu with dims (image, <layer>_channel).",
    )
    p.add_argument("--model", required=True, help="model id, e.g. inceptionv1, groundtruth")
    p.add_argument("--weights", type=weights_spec, metavar="PATH",
                   help="weights file or 'random' (default: the cached file of `curvebench weights download`)")
    p.add_argument("--layers", type=name_list, required=True, metavar="A,B", help="comma-separated layer names")
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
    p.set_defaults(func=_cmd_bench_run)
