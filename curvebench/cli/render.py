"""``curvebench render`` (draw one stimulus or a sweep) and ``curvebench bench render``.

Each numeric option of ``render`` takes a value, a comma list (``0,90,180``) or a
linear sweep ``start:stop:count`` (both ends included, like ``numpy.linspace``). With one
swept option the PNG is a single row of stimuli; with two, a contact sheet laid out like
the article's stimulus strips: orientation along x when it is swept (else the first
swept option), the other option along y, top to bottom. Negative values and sweeps
(``--curvature -0.05:0.05:5``, ``--curvature -max:max:9``) are values, not options.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from curvebench.cli.argtypes import nonnegative_int, positive_int
from curvebench.cli.outputs import add_overwrite
from suites.errors import LimitError
from suites.limits import MAX_IMAGE_SIDE, MAX_RENDER_IMAGES, check_at_most
from stimuli import kinds as _decl

__all__ = ["register", "parse_values", "parse_colour", "parse_size"]

# Numeric options of `curvebench render`, in the order that picks the sheet's x axis: the
# stimulus parameters declared in stimuli.kinds (help, units and defaults come from there),
# then the command line's own colour and position options.
_EXTRA_HELP = {"curvature": "; 'max' = a full circle at the given --length"}
_NUMERIC: tuple[tuple[str, str], ...] = tuple(
    (p.name, p.describe() + _EXTRA_HELP.get(p.name, "")) for p in _decl.PARAMS
) + (
    ("fg_hue", "foreground hue in degrees, 0 red, 120 green, 240 blue (default: use --fg)"),
    ("x", "x of the path's midpoint in px from the left edge (default: image centre)"),
    ("y", "y of the path's midpoint in px from the top edge (default: image centre)"),
)

_NAMED_COLOURS = {
    "black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "gray": (0.5, 0.5, 0.5), "grey": (0.5, 0.5, 0.5),
    "red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
}


def parse_values(name: str, text: str) -> list[float]:
    """``"v"``, ``"a,b,c"`` or ``"start:stop:count"`` (inclusive linspace) -> list of floats."""
    text = text.strip()
    too_many = 0
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            if count < 1:
                raise ValueError
            if count > MAX_RENDER_IMAGES:
                too_many = count
                raise ValueError
            values = [start] if count == 1 else [start + (stop - start) * i / (count - 1) for i in range(count)]
        else:
            values = [float(v) for v in text.split(",")]
    except ValueError:
        if too_many:
            raise LimitError(f"--{name.replace('_', '-')} = {text!r}: {too_many:,} values is too many: "
                             f"at most {MAX_RENDER_IMAGES:,} stimuli per render") from None
        raise ValueError(
            f"--{name.replace('_', '-')} = {text!r}: expected a number, a comma list (0,90,180) or "
            "start:stop:count with count >= 1"
        ) from None
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"--{name.replace('_', '-')} = {text!r}: {bad[0]} is not finite; allowed finite numbers")
    huge = [v for v in values if abs(v) > FLOAT32_MAX]  # would become inf in the renderer's float32
    if huge:
        raise LimitError(f"--{name.replace('_', '-')} = {text!r}: {huge[0]:g} is too large: at most "
                         f"{FLOAT32_MAX:.3g} in magnitude (the renderer computes in float32)")
    return values


#: Largest float32 value: a number beyond it would reach the renderer as inf.
FLOAT32_MAX = 3.4028234663852886e38


def parse_size(text: str) -> int | tuple[int, int]:
    """``"N"`` -> ``N``, ``"H,W"`` -> ``(H, W)``: image size in px, integers >= 1."""
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise ValueError(f"--size = {text!r}: expected N or H,W in px, integers >= 1 (e.g. 224 or 128,256)")
    check_at_most("--size", max(sizes), MAX_IMAGE_SIDE, "px")
    return sizes[0] if len(sizes) == 1 else (sizes[0], sizes[1])


def parse_colour(name: str, text: str) -> tuple[float, float, float]:
    """``"r,g,b"`` in [0, 1], ``"#rrggbb"`` or a name (black, white, gray, red, green, blue)."""
    t = text.strip().lower()
    if t in _NAMED_COLOURS:
        return _NAMED_COLOURS[t]
    try:
        if t.startswith("#") and len(t) == 7:
            return tuple(int(t[i : i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore[return-value]
        rgb = tuple(float(v) for v in t.split(","))
        if len(rgb) == 3 and all(0.0 <= v <= 1.0 for v in rgb):
            return rgb  # type: ignore[return-value]
    except ValueError:
        pass
    raise ValueError(
        f"--{name} = {text!r}: expected r,g,b in [0, 1] (e.g. 1,0,0), #rrggbb or one of {', '.join(_NAMED_COLOURS)}"
    )


def _sweep_values(args: argparse.Namespace) -> dict[str, list[float]]:
    """Numeric option values as lists; resolves curvature 'max' against the length."""
    out: dict[str, list[float]] = {}
    for key, _ in _NUMERIC:
        text = getattr(args, key)
        if text is None:
            continue
        if key == "curvature" and "max" in text:
            lengths = parse_values("length", args.length) if args.length is not None else None
            if lengths is not None and len(lengths) != 1:
                raise ValueError("--curvature with 'max' needs a single --length (the limit 2 pi / length depends on it)")
            length = lengths[0] if lengths else _decl.param("length").default_for(args.kind)
            if not length > 0:
                raise ValueError(f"--curvature 'max' is 2 pi / length and needs --length > 0, got {length:g}")
            kmax = _decl.MAX_TURN / length
            text = text.replace("-max", repr(-kmax)).replace("max", repr(kmax))
        out[key] = parse_values(key, text)
    return out


def _cmd_render(args: argparse.Namespace) -> int:
    import contextlib

    with contextlib.ExitStack() as stack:
        return _render(args, stack)


def _sheet_request(args: argparse.Namespace) -> tuple[Any, Any, int | tuple[int, int]]:
    """The sheet's grid and stimuli from the options (values, at most two swept; outputs named), and the size."""
    from suites.specs.sheet_grid import SheetColours, sheet_grid, sheet_stimuli

    values = _sweep_values(args)
    if "orientation" in values and args.orientation_axis != "curvebench":
        from suites.analysis.orientation_axis import from_axis

        values["orientation"] = [float(o) for o in from_axis(values["orientation"], args.orientation_axis)]
    grid = sheet_grid(values)
    if args.out is None and args.npy is None:
        raise ValueError("render: give --out PNG and/or --npy PATH")
    if args.out is not None and Path(args.out).suffix.lower() != ".png":
        raise ValueError(f"--out = {args.out!r}: the contact sheet is a PNG; give a path ending in .png")
    size = parse_size(args.size)
    hw = (size, size) if isinstance(size, int) else size
    check_at_most("stimuli to render", grid.n, MAX_RENDER_IMAGES, hint="sweep fewer values")
    colours = SheetColours(parse_colour("fg", args.fg), parse_colour("bg", args.bg), args.bg_hue_offset)
    stim = sheet_stimuli(grid, {c.name: getattr(args, c.name) for c in _decl.CHOICES}, hw, colours)
    return grid, stim, size


def _cell_size(args: argparse.Namespace, values: dict, H: int, W: int) -> int:
    """Side (px) of a contact-sheet cell: ``--cell``, else one that holds the largest stimulus."""
    from stimuli.sheet import default_cell

    def largest(name: str) -> float:
        return max(values.get(name, [_decl.param(name).default_for(args.kind)]))

    tick_reach = largest("tick_length") if largest("ticks") > 0 else 0.0
    if args.cell is not None:
        check_at_most("--cell", args.cell, MAX_IMAGE_SIDE, "px")
    return args.cell or min(max(H, W), default_cell(min(largest("length"), 4 * max(H, W)),
                                                    min(largest("width"), max(H, W)), min(tick_reach, max(H, W))))


def _render(args: argparse.Namespace, stack: Any) -> int:
    import numpy as np
    import torch

    from stimuli.sheet import contact_sheet, crop_around
    from suites.atomic import check_output, output_file
    from suites.limits import available_memory, check_disk, check_memory
    from suites.specs.sheet_grid import render_chunks

    grid, stim, size = _sheet_request(args)
    H, W = (size, size) if isinstance(size, int) else size
    n = grid.n
    # Bounds before any work: image bytes per chunk, the .npy on disk, the sheet in memory.
    image_bytes = 3 * H * W * 4
    check_memory("one rendered image", 8 * image_bytes, hint="choose a smaller --size")
    chunk = int(max(1, min(256, 0.05 * available_memory() // (8 * image_bytes))))
    cell = _cell_size(args, dict(grid.values), H, W)
    if args.out is not None:
        side = 1 if n == 1 and not args.crop else cell
        check_memory("the contact sheet", n * 3 * side * side * 4 * 2 if side > 1 else n * image_bytes * 2,
                     hint="sweep fewer values or choose a smaller --cell")
        check_output(args.out, "--out")
    npy = None
    if args.npy is not None:
        check_output(args.npy, "--npy")
        check_disk("--npy", Path(args.npy).resolve().parent, n * image_bytes)
        # the renderer checks every value of the sweep in the loop below; the file is a temporary that
        # replaces --npy only when the whole command succeeds
        npy_tmp = stack.enter_context(output_file(args.npy, "--npy"))
        npy = np.lib.format.open_memmap(npy_tmp, mode="w+", dtype=np.float32, shape=(n, 3, H, W))
    cells = []
    for start, stop, images, p in render_chunks(args.kind, stim, size, chunk):
        if npy is not None:
            npy[start:stop] = images.numpy()
        if args.out is not None:
            if n == 1 and not args.crop:
                cells.append(images)
            else:
                centre = torch.tensor([[W / 2, H / 2]], dtype=torch.float64) if p is None else p.reshape(-1, 2)
                cells.append(crop_around(images, centre.expand(stop - start, 2), cell))
    if npy is not None:
        npy.flush()
        del npy
        print(f"wrote {args.npy}: ({n}, 3, {H}, {W}) float32 in [0, 1]")
    if args.out is not None:
        from PIL import Image

        sheet = contact_sheet(torch.cat(cells), grid.rows, grid.cols, gap=args.gap)
        with output_file(args.out, "--out") as tmp:
            Image.fromarray(sheet).save(tmp, format="PNG")
        axes = [f"columns: {grid.col_key}"] * bool(grid.col_key) + [f"rows: {grid.row_key}"] * bool(grid.row_key)
        layout = f"{grid.rows} x {grid.cols}" + (f" ({', '.join(axes)})" if axes else "")
        print(f"wrote {args.out}: {layout}, cells {sheet.shape[1] // max(grid.cols, 1)} px")
    return 0


def _cmd_bench_render(args: argparse.Namespace) -> int:
    from curvebench.benches.render import bench_render
    from suites.atomic import check_output

    if args.json:
        check_output(args.json, "--json")

    report = bench_render(
        device=args.device, batch_size=args.batch_size, repeats=args.repeats, n_ours=args.n_ours,
        n_cairo=args.n_cairo, n_pil=args.n_pil, threads=args.threads, seed=args.seed,
        bandwidth_gbs=args.bandwidth_gbs, gpu_batch_size=args.gpu_batch_size, progress=not args.quiet,
    )
    text = json.dumps(report, indent=2)
    if args.json:
        from suites.atomic import output_file

        with output_file(args.json, "--json") as tmp:
            tmp.write_text(text + "\n")
    cairo = report["cairo"].get("images_per_s", {}).get("median")
    vs_cairo = report["ratio_vs_cairo"]
    summary = (f"ours {report['ours']['images_per_s']['median']:,.0f} img/s, cairo "
               f"{'n/a' if cairo is None else f'{cairo:,.0f}'}, PIL {report['pil']['images_per_s']['median']:,.0f} "
               f"({report['ours']['threads']} thread(s)): ratio_vs_pil {report['ratio_vs_pil']:.1f}, ratio_vs_cairo "
               f"{'n/a' if vs_cairo is None else f'{vs_cairo:.2f}'}")
    if "cuda" in report:
        c = report["cuda"]
        summary += "; " + ", ".join(
            f"{k} {v['images_per_s']['median']:,.0f} img/s ({v['fraction_of_write_bound']:.0%} of write bound)"
            if v.get("fraction_of_write_bound") is not None else f"{k} {v['images_per_s']['median']:,.0f} img/s"
            for k, v in c["dtypes"].items()
        ) + f" on {c['name']}"
    print(summary + (f" -> {args.json}" if args.json else ""), file=sys.stderr if not args.json else sys.stdout)
    if not args.json:
        print(text)
    return 0


def register(commands: Any, bench_commands: Any) -> None:
    """Add ``render`` to ``commands`` and ``render`` to ``bench_commands``."""
    p = commands.add_parser(
        "render",
        help="draw one stimulus or a sweep (contact sheet PNG and/or raw .npy)",
        description=__doc__.split("\n\n")[1] + "\n\nExamples:\n"
        "  curvebench render --kind curve --orientation 0:345:24 --curvature 0:max:8 --out curves.png\n"
        "  curvebench render --kind angle --rounding 0:1:5 --orientation 0:330:12 --curvature 0.05 --out r.png\n"
        "  curvebench render --curvature 0.05 --fill 1 --fg-hue 0:330:12 --bg-hue-offset 180 --out colour.png\n"
        "  curvebench render --curvature 0.05 --ticks 7 --tick-side out --npy one.npy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # argparse takes only plain negative numbers (-3, -0.5) as option values; also take
    # -1:1:5, -0.05,0.05 and -max, so `--curvature -max:max:9` works without the `=`.
    p._negative_number_matcher = re.compile(r"^-(\d|\.\d|max)")
    p.add_argument("--kind", default="curve", choices=list(_decl.KINDS),
                   help="what to draw: " + "; ".join(f"{k.name} = {k.help}" for k in _decl.KIND_DECLARATIONS)
                   + " (default curve)")
    for key, helptext in _NUMERIC:
        p.add_argument("--" + key.replace("_", "-"), dest=key, metavar="V|A,B|START:STOP:N", help=helptext)
    for c in _decl.CHOICES:
        p.add_argument("--" + c.name.replace("_", "-"), dest=c.name, default=c.default, choices=list(c.choices),
                       help=c.describe())
    p.add_argument("--orientation-axis", choices=("curvebench", "article"), default="curvebench",
                   help="axis of --orientation: curvebench = counter-clockwise on screen; article = the article's, "
                   "clockwise on screen, (360 - curvebench) mod 360; both 0 = opening right (default curvebench)")
    p.add_argument("--fg", default="black", help="stroke colour: r,g,b in [0,1], #rrggbb or a name (default black)")
    p.add_argument("--bg", default="white", help="background colour, same forms as --fg (default white)")
    p.add_argument("--bg-hue-offset", type=float, default=None, metavar="DEG",
                   help="with --fg-hue: background hue = foreground hue + DEG degrees "
                   "(180 = complementary; default: use --bg)")
    p.add_argument("--size", default="224", metavar="N|H,W", help="image size in px: N or H,W (default 224)")
    p.add_argument("--out", default=None, metavar="PNG",
                   help="write the stimulus (or contact sheet) as PNG (give --out, --npy or both)")
    p.add_argument("--npy", default=None, metavar="PATH", help="write the raw (B, 3, H, W) float32 images (.npy), "
                   "rows of the sheet one after another")
    p.add_argument("--cell", type=positive_int, default=None, metavar="PX",
                   help="contact-sheet cell size in px (default: fits the largest stimulus)")
    p.add_argument("--crop", action="store_true",
                   help="with a single stimulus, crop it to one cell as well (default: the whole image)")
    p.add_argument("--gap", type=nonnegative_int, default=0, metavar="PX",
                   help="white gap between sheet cells in px (default 0)")
    add_overwrite(p)
    p.set_defaults(func=_cmd_render)

    b = bench_commands.add_parser(
        "render",
        help="renderer images/s vs PIL (4x supersampled) and cairo, one thread; fp16/bf16 on CUDA",
        description="Renderer throughput at 224 x 224 on the same random curves as two baselines drawn one "
        "image at a time: PIL (4x supersampled, LANCZOS-downsized) and cairo (native anti-aliasing). "
        "The comparison runs on --threads CPU threads (default 1); on CUDA the GPU numbers are added.",
    )
    b.add_argument("--json", default=None, metavar="FILE", help="write the JSON report here (else print it)")
    b.add_argument("--device", default="auto", help="cpu, cuda or auto = cuda when available (default auto)")
    b.add_argument("--batch-size", metavar="N", type=positive_int, default=32,
                   help="our CPU batch size (default 32)")
    b.add_argument("--gpu-batch-size", metavar="N", type=positive_int, default=4096,
                   help="our batch size on CUDA (default 4096)")
    b.add_argument("--repeats", metavar="N", type=positive_int, default=5,
                   help="timed repeats per method (default 5)")
    b.add_argument("--n-ours", metavar="N", type=positive_int, default=2048,
                   help="images per repeat, ours on CPU (default 2048)")
    b.add_argument("--n-cairo", metavar="N", type=positive_int, default=400,
                   help="images per repeat, cairo (default 400)")
    b.add_argument("--n-pil", metavar="N", type=positive_int, default=40,
                   help="images per repeat, PIL (default 40)")
    b.add_argument("--threads", metavar="N", type=positive_int, default=1,
                   help="torch CPU threads for the comparison (default 1)")
    b.add_argument("--seed", metavar="SEED", type=int, default=0,
                   help="seed of the random stimuli (default 0)")
    b.add_argument("--bandwidth-gbs", type=float, default=None, metavar="GB/S",
                   help="GPU memory bandwidth in GB/s for the write-bound fraction (default: by card name, "
                   "e.g. H100 SXM 3350, H100 PCIe 2000, H200 4800, A100 80GB 2039)")
    b.add_argument("--quiet", action="store_true", help="no progress messages")
    add_overwrite(b)
    b.set_defaults(func=_cmd_bench_render)
