"""``curvebench report``: one self-contained interactive HTML page for results files.

Heavy imports happen inside the handler so ``curvebench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from curvebench.cli.argtypes import CHANNELS_HELP, channel_selection, name_list, positive_int
from curvebench.cli.outputs import add_overwrite

__all__ = ["register"]


def _inputs(files: list[str]):
    """``(name, dataset)`` per file; an atlas folder gives one per model: its best layer's responses and family."""
    from suites.file_kinds import CURVE_FAMILY_KIND, DISCOVER_RESPONSES_KIND
    from suites.results.files import open_file, open_for_report, with_family

    for f in files:
        if Path(f).is_dir() and (Path(f) / "atlas.json").is_file():
            from suites.discovery.atlas import best_layer_files

            for model, responses, family in best_layer_files(f):
                yield str(Path(f) / model), with_family(open_file(responses, DISCOVER_RESPONSES_KIND, option="report"),
                                                        open_file(family, CURVE_FAMILY_KIND, option="report"))
            continue
        yield f, open_for_report(f)


def cmd_report(args: argparse.Namespace) -> int:
    from suites.analysis.report import ReportOptions, report_kind
    from suites.report_stimuli import write_report

    if not (math.isfinite(args.vmax) and args.vmax > 0):
        raise ValueError(f"--vmax = {args.vmax:g}: allowed a number of sigma > 0")
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--out {out}: the report is one HTML file; give a name ending in .html")
    from suites.atomic import check_output

    check_output(out, "--out")  # before reading anything: an existing page needs --overwrite
    runs = []
    names: set[str] = set()
    for f, ds in _inputs(args.files):
        _say_what_is_missing(f, ds)
        try:
            report_kind(ds)
        except ValueError as exc:
            raise type(exc)(f"{f}: {exc}") from None
        name = Path(f).name if Path(f).is_dir() else Path(f).stem
        while name in names:  # same stem from two folders: keep both sections apart
            name += "'"
        names.add(name)
        runs.append((name, ds))
    stats = None
    if args.stats:
        from suites.analysis.sigma import choose_positions
        from suites.results.files import load_stats

        stats = choose_positions(load_stats(args.stats, "--stats"), args.sigma_positions)
    from curvebench.cli.analysis import family_folders
    from suites.results.family_file import with_family_files

    channels = with_family_files(args.channels, family_folders(args.files))
    options = ReportOptions(stats=stats, channels=channels, layers=args.layers, max_channels=args.max_channels,
                            vmax=args.vmax)
    t0 = time.perf_counter()
    path = write_report(runs, out, options, title=args.title)
    from suites.atomic import readable_path

    size = readable_path(path).stat().st_size
    print(f"wrote {path} ({size / 1e6:.2f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def _say_what_is_missing(path: str, ds) -> None:
    """A sweep that is partial, a subset of its grid, or holds NaN/inf activations: one note each (the page shows what is there)."""
    from suites.file_kinds import RESULTS_KIND
    from suites.results.attributes import file_kind
    from suites.results.verify import check_for_analysis

    if file_kind(ds.attrs) == RESULTS_KIND and Path(path).is_file():
        for note in check_for_analysis(path)[1]:
            print(note)


def register(commands: argparse._SubParsersAction, bench_commands: argparse._SubParsersAction) -> None:
    """Add ``curvebench report`` to the parser."""
    p = commands.add_parser(
        "report", help="one self-contained interactive HTML page of results files (heatmaps, radial, tuning)",
        description="Writes one HTML file (no network needed: script and data inlined) with every shown channel's "
        "orientation x curvature heatmap in sigma, sorted by preferred orientation; hover a cell to see its "
        "stimulus and activation; the radial tuning plot (hover a curve to isolate it, click to select its "
        "heatmap); the sortable tuning table and provenance; several files = the families side by side.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="results file(s) of `curvebench run` (curves, fill, colour, "
                   "angles, rounding, families, ...), `curvebench optimize` files, `curvebench discover` output "
                   "folders (or their responses.nc)")
    p.add_argument("--out", required=True, metavar="FILE.html", help="output HTML file (an existing one needs --overwrite)")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="statistics file from `curvebench stats` (default: each sweep's own, labelled)")
    from curvebench.cli.analysis import add_sigma_positions

    add_sigma_positions(p)
    p.add_argument("--layers", type=name_list, metavar="A,B", help="comma-separated layers (default all)")
    p.add_argument("--channels", type=channel_selection(), default="auto", metavar="auto|all|family|IDS|FAMILY.nc",
                   help=CHANNELS_HELP.replace("at most 16", "at most --max-channels") + " (sweep files; discover output: "
                   "auto = its detectors; optimize results: auto = all)")
    p.add_argument("--max-channels", type=positive_int, default=16, metavar="N",
                   help="at most N heatmaps per layer by default (default 16); the tuning table lists every channel")
    p.add_argument("--vmax", type=float, default=25.0, metavar="SIGMA",
                   help="top of the colour scale in sigma (default 25, the article's)")
    p.add_argument("--title", default=None, help="page title (default: from the files' suite names)")
    add_overwrite(p)
    p.set_defaults(func=cmd_report)
