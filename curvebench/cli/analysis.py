"""``curvebench stats | plot | tuning | validate | rotate-tuning``: analysis commands.

Heavy imports happen inside the handlers so ``curvebench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from curvebench.cli.argtypes import CHANNELS_HELP, add_model_options, channel_selection, int_list, name_list, positive_int

from curvebench.cli.outputs import add_overwrite


def _open(path: str, allow_partial: bool | None = None):
    """Open a verified results file; say when it is partial or still being written.

    ``allow_partial=False`` refuses a partial file (tuning, validate without ``--allow-partial``);
    None only says so.
    """
    from suites.results.reading import open_results
    from suites.results.verify import check_for_analysis

    _, notes = check_for_analysis(path, allow_partial)
    for note in notes:
        print(note)
    return open_results(path)


def _stats(path: str | None, positions: str = "valid"):
    if not path:
        return None
    from suites.analysis.sigma import choose_positions
    from suites.results.files import load_stats

    return choose_positions(load_stats(path, "--stats"), positions)


def add_sigma_positions(p: argparse.ArgumentParser) -> None:
    """``--sigma-positions valid|all``: which std of a statistics file the sigma uses (docs/analysis.md)."""
    p.add_argument("--sigma-positions", choices=["valid", "all"], default="valid",
                   help="with --stats: the std over the padding-free positions of natural images (default, the one "
                        "sigma of every command) or over all positions")


def _say_statistics(stats) -> None:
    from suites.analysis.sigma import SWEEP_LABEL, stats_label

    if stats is None:
        print(f"note: no --stats file given; sigma values use the {SWEEP_LABEL}")
    else:
        print(f"sigma values use {stats_label(stats)}")


def _strip(args: argparse.Namespace):
    """The stimulus-strip renderer for figures, or None with --no-strip."""
    from suites.stimulus_strips import stimulus_strip

    return None if args.no_strip else stimulus_strip


def _layers(ds, requested: list[str] | None) -> list[str]:
    from suites.analysis.arrays import layer_names

    have = layer_names(ds)
    if not have:
        raise ValueError("the results hold no per-stimulus activations (a summary-only run, keep_rows = false?); "
                         "nothing to plot or tune")
    if not requested:
        return have
    bad = [l for l in requested if l not in have]
    if bad:
        raise ValueError(f"--layers: {bad} not in the results; available: {', '.join(have)}")
    return requested


def _orientation_axis_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--orientation-axis", choices=("curvebench", "article"), default="curvebench",
                   help="axis of the orientations shown: curvebench = counter-clockwise on screen; article = the "
                   "article's, clockwise on screen, (360 - curvebench) mod 360; both 0 = opening right "
                   "(default curvebench)")


# -- stats -----------------------------------------------------------------------------
def cmd_stats(args: argparse.Namespace) -> int:
    import probes

    from suites.running.dataset_stats import compute_stats, default_stats_path, save_stats
    from suites.analysis.distribution import plot_activation_distribution
    from suites.analysis.family_channels import article_families
    from probes.images import image_source

    from suites.atomic import check_output
    from suites.limits import MAX_BATCH, MAX_IMAGE_SIDE, check_at_most, check_memory

    check_at_most("--size", args.size, MAX_IMAGE_SIDE, "px")
    check_at_most("--batch-size", args.batch_size, MAX_BATCH)
    check_memory("a batch of images", 40 * args.batch_size * 3 * args.size**2 * 4,
                 hint="choose a smaller --size or --batch-size")
    if args.out:
        check_output(args.out, "--out")
    model = probes.load_model(args.model, weights=args.weights, device=args.device,
                              input_transform=args.input_transform, layers=args.layers)
    layers = args.layers if args.layers else list(model.layers)
    source = image_source(args.images, limit=args.limit)
    if source.proxy:
        print(f"images: {source.label}")
    stats = compute_stats(model, source, layers, size=args.size, batch_size=args.batch_size,
                          progress=sys.stderr.isatty(), positions=args.positions)
    out = Path(args.out) if args.out else default_stats_path(stats)
    check_output(out, "--out")
    save_stats(stats, out)
    print(f"wrote {out} ({len(source)} images, layers {', '.join(layers)}; {stats.attrs['positions_description']})")
    fams = article_families(model.name)
    for layer in layers:
        channels = args.figure_channels if args.figure_channels else list(fams.get(layer, {}))[:6] or list(range(min(3, model.num_channels(layer))))
        fig = plot_activation_distribution(stats, layer, channels, out.with_name(f"{out.stem}-{layer}-distribution.png"))
        print(f"wrote {fig}")
    return 0


# -- plot ------------------------------------------------------------------------------
def family_folders(paths) -> list[Path]:
    """Where ``--channels auto`` looks for a discovered family: beside the files, and ./results."""
    return list(dict.fromkeys([Path(p).resolve().parent for p in paths] + [Path("results").resolve()]))


def _plot_layer(name: str, ds, layer: str, out: Path, stats, args: argparse.Namespace, channels) -> list[Path]:
    """Heatmaps (and series) and the radial figure of one layer; none, with a note, when auto finds no channel."""
    from suites.analysis.arrays import grid
    from suites.analysis.channel_choice import NoChannels
    from suites.analysis.plots import choose, plot_heatmaps, plot_radial
    from suites.analysis.sigma import to_sigma

    try:
        chosen = choose(ds, layer, grid(ds, to_sigma(ds, layer, stats)), channels, None)
    except NoChannels as exc:
        print(f"note: {name} {layer}: {exc}; no figures of it")
        return []
    print(f"{name} {layer}: channels {', '.join(map(str, chosen.channels))}: {chosen.how}")
    if chosen.source == "sweep test":
        print(f"note: for discover's full test (both polarities, several positions, controls) run `curvebench discover "
              f"--model {ds.attrs.get('model', 'MODEL')} --layers {layer}`; plot then shows its detectors")
    written = plot_heatmaps(ds, out, stats, layers=[layer], channels=channels, vmax=args.vmax,
                            strip=_strip(args), name=name)
    return written + plot_radial(ds, out, stats, layers=[layer], channels=channels, name=name)


def cmd_plot(args: argparse.Namespace) -> int:
    from suites.analysis.arrays import layer_names
    from suites.analysis.plots import COMPARISON_LAYERS, plot_layer_comparison, plot_side_by_side
    from suites.results.family_file import with_family_files

    if not (math.isfinite(args.vmax) and args.vmax > 0):
        raise ValueError(f"--vmax = {args.vmax:g}: allowed a number of sigma > 0")
    from suites.analysis.orientation_axis import with_orientation_axis
    from suites.atomic import check_folder

    if args.out:
        check_folder(args.out)
    datasets = [(Path(f).stem, with_orientation_axis(_open(f), args.orientation_axis)) for f in args.files]
    requested = args.layers if args.layers else None
    layer_lists = [_layers(ds, requested) for _, ds in datasets]  # bad input fails before any output
    stats = _stats(args.stats, args.sigma_positions)
    _say_statistics(stats)
    out = Path(args.out) if args.out else Path(args.files[0]).with_suffix("").parent / (Path(args.files[0]).stem + "-figures")
    written = []
    channels = with_family_files(args.channels, family_folders(args.files))
    for (name, ds), layers in zip(datasets, layer_lists):
        for layer in layers:
            written += _plot_layer(name, ds, layer, out, stats, args, channels)
        present = [l for l in COMPARISON_LAYERS if l in layer_names(ds)]
        if len(present) >= 2:
            written.append(plot_layer_comparison(ds, out / f"{name}-layer-comparison.png", stats))
    if len(datasets) > 1:
        common = [l for l in layer_names(datasets[0][1]) if all(l in layer_names(d) for _, d in datasets)]
        for layer in args.layers if args.layers else common:
            written.append(plot_side_by_side(datasets, layer, out / f"side-by-side-{layer}.png", stats, channels=channels,
                                             vmax=args.vmax, strip=_strip(args)))
    for p in written:
        print(f"wrote {p}")
    return 0


# -- tuning ----------------------------------------------------------------------------
def cmd_tuning(args: argparse.Namespace) -> int:
    from suites.analysis.tuning_report import jsonable, tuning_report
    from suites.atomic import check_output

    if args.json:
        check_output(args.json, "--json")
    ds = _open(args.file, allow_partial=args.allow_partial)
    reference = _open(args.reference) if args.reference else None
    layers = _layers(ds, args.layers)  # bad input fails before any output
    from suites.results.verify import check_results_file

    subset = check_results_file(args.file).describe_subset()
    stats = _stats(args.stats, args.sigma_positions)
    _say_statistics(stats)
    report = tuning_report(ds, stats, layers, reference, orientation_axis=args.orientation_axis)
    if args.orientation_axis != "curvebench":
        print(f"orientations on the {args.orientation_axis}'s axis: {report['units']['orientation']}")
    report["file"] = str(args.file)
    report["grid_subset"] = subset  # empty: the whole grid; else e.g. "300 of 72,000 grid cells; ..."
    for layer, res in report["layers"].items():
        print(f"{layer}:")
        print(f"  {'channel':>8} {'pref(deg)':>9} {'best k':>8} {'peak sig':>8} {'FWHM':>6} {'echo':>5}" + ("  invar" if reference is not None else ""))
        for c, u in res["channels"].items():
            line = (f"  {c:>8} {u['preferred_orientation']:>9.1f} {u['best_curvature']:>8.4f} "
                    f"{u['peak_sigma']:>8.2f} {u['fwhm_deg']:>6.1f} {u['echo_index']:>5.2f}")
            if reference is not None:
                line += f"  {u['invariance_score']:>5.2f}"
            print(line)
        for name, f in res["families"].items():
            lo, hi = f["orientation_range_deg"]
            print(f"  {name}: coverage {100 * f['coverage']:.0f}% of the {f['orientations_swept']} orientations swept "
                  f"({lo:g} to {hi:g} deg), largest gap between preferred "
                  f"orientations {f['largest_gap_deg']:.1f} deg, longest uncovered run {f['largest_uncovered_deg']:.1f} deg")
    if args.json:
        from suites.atomic import output_file

        with output_file(args.json, "--json") as tmp:
            tmp.write_text(json.dumps(jsonable(report), indent=1))
        print(f"wrote {args.json}")
    return 0


# -- validate --------------------------------------------------------------------------
# layers `validate` checks by default, when the file has them
_VALIDATE_LAYERS = ("conv2d2", "mixed3a", "mixed3b", "mixed4a", "curves")


def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} = {value:g}: allowed a fraction in [0, 1]")
    return value


def cmd_validate(args: argparse.Namespace) -> int:
    from suites.analysis.plots import provenance
    from suites.analysis.tuning_report import jsonable
    from suites.analysis.reference_curves import reference_family
    from suites.analysis.validate import validate_layer

    if not (math.isfinite(args.max_rms) and args.max_rms >= 0):
        raise ValueError(f"--max-rms = {args.max_rms:g}: allowed a number of degrees >= 0")
    if not (math.isfinite(args.tie_deg) and 0 <= args.tie_deg < 180):
        raise ValueError(f"--tie-deg = {args.tie_deg:g}: allowed degrees in [0, 180)")
    options = dict(
        allow_reflection=not args.no_reflection, max_rms=args.max_rms, tie_deg=args.tie_deg,
        min_order=_fraction("--min-order", args.min_order), min_corr=args.min_corr,
        min_measured=_fraction("--min-measured", args.min_measured),
    )
    if not (math.isfinite(args.min_corr) and -1.0 <= args.min_corr <= 1.0):
        raise ValueError(f"--min-corr = {args.min_corr:g}: allowed a correlation in [-1, 1]")
    from suites.atomic import check_output, output_file

    if args.json:
        check_output(args.json, "--json")
    ds = _open(args.file, allow_partial=args.allow_partial)
    model = args.against or str(ds.attrs.get("model", ""))
    print(f"results: {args.file} ({provenance(ds)})")
    layers = args.layers if args.layers else [l for l in _VALIDATE_LAYERS if l in ds.data_vars]
    checked = []
    for layer in layers:
        ref = reference_family(model, layer)
        if ref is None:
            print(f"{layer}: no reference tuning for model {model!r}; skipped")
            continue
        if layer not in ds.data_vars and f"{layer}_pre_relu" not in ds.data_vars:
            raise ValueError(f"--layers: {layer!r} not in the results")
        res = validate_layer(ds, layer, ref, **options)
        print(res.table())
        checked.append(res)
    if not checked:
        raise ValueError(f"validate: no layer of the results has a curve family with reference tuning for model {model!r}")
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(json.dumps(jsonable([r.to_dict() for r in checked]), indent=1))
        print(f"wrote {args.json}")
    failed = [r.layer for r in checked if not r.passed]
    print("validation " + ("FAILED for " + ", ".join(failed) if failed else "passed"))
    return 1 if failed else 0


# -- rotate-tuning ---------------------------------------------------------------------
def cmd_rotate(args: argparse.Namespace) -> int:
    import probes

    from suites.analysis.family_channels import article_families
    from probes.images import image_source
    from suites.analysis.rotate import plot_rotation_tuning, rotation_tuning
    from suites.running.rotation_responses import measure_rotation_responses

    from suites.atomic import check_folder, output_file
    from suites.limits import MAX_IMAGE_SIDE, check_at_most

    check_folder(args.out)
    check_at_most("--size", args.size, MAX_IMAGE_SIDE, "px")
    check_at_most("--k", args.k, 1000)
    if not (math.isfinite(args.step) and 0.01 <= args.step <= 360):
        raise ValueError(f"--step = {args.step:g}: allowed degrees in [0.01, 360]")
    model = probes.load_model(args.model, weights=args.weights, device=args.device,
                              input_transform=args.input_transform, layers=[args.layer] if args.layer else None)
    layer = args.layer or next((l for l in article_families(model.name)), model.layers[-1])
    channels = args.channels if args.channels else list(article_families(model.name).get(layer, {}))
    if not channels:
        raise ValueError(f"--channels: layer {layer!r} of {model.name!r} has no known curve family; give channel ids")
    stats = _stats(args.stats, args.sigma_positions)
    source = image_source(args.images, limit=args.limit)
    measured = measure_rotation_responses(model, source, layer, channels, k=args.k, step=args.step, size=args.size,
                                          progress=sys.stderr.isatty())
    result = rotation_tuning(measured, stats=stats)
    print("preferred orientation on the common axis (degrees): " + ", ".join(
        f"{c}: {p:.1f}" for c, p in zip(result.coords["channel"].values, result["preferred"].values)))
    print(f"typical tuning curve FWHM: {result.attrs['typical_fwhm_deg']:.1f} deg ({result.attrs['response_units']})")
    out = Path(args.out)
    fig = plot_rotation_tuning(result, out / f"rotate-tuning-{model.name}-{layer}.png")
    with output_file(out / f"rotate-tuning-{model.name}-{layer}.nc") as tmp:
        result.to_netcdf(tmp, engine="h5netcdf")
    print(f"wrote {fig} and {out / f'rotate-tuning-{model.name}-{layer}.nc'}")
    return 0


def _add_stats(commands: argparse._SubParsersAction) -> None:
    """``curvebench stats``: its options."""
    p = commands.add_parser(
        "stats", help="per-channel activation statistics over natural images (for sigma units)",
        description="Mean/std of pre- and post-ReLU activations per channel over the spatial positions of "
        "natural images (resize short side to --size, centre crop): all of them, or with --positions valid only "
        "those whose receptive field lies entirely inside the image (no padding, like the centre unit the sweeps "
        "probe); plus pre-ReLU histograms and the activation-distribution figure. 'builtin' = scikit-image sample "
        "photographs, a small proxy, not ImageNet.",
    )
    add_model_options(p)
    p.add_argument("--images", required=True, metavar="DIR|builtin",
                   help="folder of JPEG/PNG (flat or nested) or 'builtin'")
    p.add_argument("--layers", type=name_list, metavar="A,B", help="comma-separated layers (default: all of the model's)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output file (default results/stats-<model>-<weights sha>-<images>-<size>px.nc)")
    p.add_argument("--size", type=positive_int, default=224, metavar="PX",
                   help="image size in px after resize + centre crop (default 224)")
    p.add_argument("--batch-size", type=positive_int, default=8, metavar="N",
                   help="images per forward pass (default 8)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N images (default: all)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--positions", choices=("all", "valid"), default="all",
                   help="spatial positions counted: all (default) or valid = padding-free units only; "
                   "stored in the file and named in every figure")
    p.add_argument("--figure-channels", type=int_list, metavar="A,B",
                   help="channel ids for the distribution figure (default: the layer's family, up to 6)")
    add_overwrite(p)
    p.set_defaults(func=cmd_stats)


def _add_plot(commands: argparse._SubParsersAction) -> None:
    """``curvebench plot``: its options."""
    p = commands.add_parser(
        "plot", help="article-style figures of results files (heatmaps, series, radial, layers)",
        description="Orientation x curvature heatmaps in sigma (0..25 on black) with a stimulus strip, series "
        "side by side (e.g. rounding), radial tuning curves, a layer comparison, and several files side by side.",
    )
    p.add_argument("files", nargs="+", help="results file(s); several = also drawn side by side")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="statistics file from `curvebench stats` (default: the sweep's own, labelled)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default <first file>-figures/)")
    add_sigma_positions(p)
    p.add_argument("--layers", type=name_list, metavar="A,B", help="comma-separated layers (default all)")
    p.add_argument("--channels", type=channel_selection(), default="auto", metavar="auto|all|family|IDS|FAMILY.nc",
                   help=CHANNELS_HELP)
    p.add_argument("--vmax", type=float, default=25.0, metavar="SIGMA",
                   help="top of the colour scale in sigma (default 25, the article's)")
    p.add_argument("--no-strip", action="store_true", help="do not render the stimulus strip")
    add_overwrite(p)
    _orientation_axis_option(p)
    p.set_defaults(func=cmd_plot)


def _add_tuning(commands: argparse._SubParsersAction) -> None:
    """``curvebench tuning``: its options."""
    p = commands.add_parser(
        "tuning", help="preferred orientation, peak sigma, FWHM by curvature, echo index, invariance, family coverage",
        description="Per layer and channel: preferred orientation (fitted peak at the best curvature), peak sigma, "
        "FWHM by curvature, echo index; with --reference a plain-curve run, the invariance score; family coverage.",
    )
    p.add_argument("file", help="results file of an orientation x curvature sweep")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="statistics file from `curvebench stats` (default: the sweep's own, labelled)")
    add_sigma_positions(p)
    p.add_argument("--reference", default=None, metavar="FILE",
                   help="plain-curve results file: adds invariance scores (fill, colour runs)")
    p.add_argument("--layers", type=name_list, metavar="A,B", help="comma-separated layers (default all)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the full report as JSON")
    p.add_argument("--allow-partial", action="store_true",
                   help="tune a partial sweep (interrupted or still running) instead of refusing it")
    add_overwrite(p)
    _orientation_axis_option(p)
    p.set_defaults(func=cmd_tuning)


def _add_validate(commands: argparse._SubParsersAction) -> None:
    """``curvebench validate``: its options."""
    from suites.analysis.validate import (DEFAULT_MAX_RMS, DEFAULT_MIN_CORR, DEFAULT_MIN_MEASURED, DEFAULT_MIN_ORDER,
                                          DEFAULT_TIE_DEG)

    p = commands.add_parser(
        "validate", help="compare measured family tuning curves with the article's (exit 1 past tolerance)",
        description="Compares each family channel's radial tuning curve (max over non-zero curvature) with the "
        "article's published curve (Cammarata et al., Distill 2020; ground truth: its designed peaks): "
        "estimates the convention mapping (shift, reflection) once per layer, then per-unit residuals of the "
        "whole curve, peak residuals, curve correlations and circular order. Fails when fewer than "
        f"--min-measured ({DEFAULT_MIN_MEASURED:g}) of the family is measured, RMS residual > --max-rms "
        f"({DEFAULT_MAX_RMS:g}), order agreement < --min-order ({DEFAULT_MIN_ORDER:g}) or median curve "
        f"correlation < --min-corr ({DEFAULT_MIN_CORR:g}). Defaults calibrated by simulation (docs/analysis.md).",
    )
    p.add_argument("file", help="results file of an orientation (full circle) x curvature sweep")
    p.add_argument("--layers", type=name_list, metavar="A,B",
                   help=f"layers to check (default: those of {', '.join(_VALIDATE_LAYERS)} in the file)")
    p.add_argument("--against", default=None, metavar="MODEL",
                   help="model whose families to compare with (default: the file's model)")
    p.add_argument("--max-rms", type=float, default=DEFAULT_MAX_RMS, metavar="DEG",
                   help=f"tolerance on the RMS per-unit residual in degrees (default {DEFAULT_MAX_RMS:g})")
    p.add_argument("--min-order", type=float, default=DEFAULT_MIN_ORDER, metavar="FRACTION",
                   help=f"minimum circular-order agreement, 0..1 (default {DEFAULT_MIN_ORDER:g})")
    p.add_argument("--tie-deg", type=float, default=DEFAULT_TIE_DEG, metavar="DEG",
                   help=f"reference peaks closer than this are near-ties left out of the order test (default {DEFAULT_TIE_DEG:g})")
    p.add_argument("--min-corr", type=float, default=DEFAULT_MIN_CORR, metavar="R",
                   help=f"minimum median curve correlation, published curves only (default {DEFAULT_MIN_CORR:g})")
    p.add_argument("--min-measured", type=float, default=DEFAULT_MIN_MEASURED, metavar="FRACTION",
                   help=f"fraction of the family's channels that must be measured (default {DEFAULT_MIN_MEASURED:g})")
    p.add_argument("--no-reflection", action="store_true", help="only a circular shift, no reflection")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the comparison as JSON")
    p.add_argument("--allow-partial", action="store_true",
                   help="validate a partial sweep (interrupted or still running) instead of refusing it")
    add_overwrite(p)
    p.set_defaults(func=cmd_validate)


def _add_rotate_tuning(commands: argparse._SubParsersAction) -> None:
    """``curvebench rotate-tuning``: its options."""
    p = commands.add_parser(
        "rotate-tuning", help="family responses to rotated top natural-image crops, aligned and averaged",
        description="For each family channel: the top-k receptive-field-sized crops of the images, rotated in --step "
        "degree steps over 360 (kornia); the whole family's responses, aligned and averaged (article figure).",
    )
    add_model_options(p)
    p.add_argument("--images", required=True, metavar="DIR|builtin",
                   help="folder of JPEG/PNG or 'builtin' (small proxy)")
    p.add_argument("--layer", default=None, help="layer (default: the model's first family layer)")
    p.add_argument("--channels", type=int_list, metavar="A,B", help="channel ids (default: the layer's family)")
    p.add_argument("--k", type=positive_int, default=4, metavar="N",
                   help="top crops per channel (default 4; article scale: 20+)")
    p.add_argument("--step", type=float, default=10.0, metavar="DEG",
                   help="rotation step in degrees (default 10; article: 1)")
    p.add_argument("--size", type=positive_int, default=224, metavar="PX",
                   help="image size in px for the top-k search (default 224)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N images (default: all)")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="statistics file: responses in sigma (default: raw post-ReLU)")
    add_sigma_positions(p)
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", default="results", metavar="DIR", help="output folder (default results/)")
    add_overwrite(p)
    p.set_defaults(func=cmd_rotate)


def register(commands: argparse._SubParsersAction, bench_commands: argparse._SubParsersAction) -> None:
    """Add the analysis subcommands to the ``curvebench`` parser."""
    _add_stats(commands)
    _add_plot(commands)
    _add_tuning(commands)
    _add_validate(commands)
    _add_rotate_tuning(commands)
