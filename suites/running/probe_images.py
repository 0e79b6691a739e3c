"""``curvebench probe``: activations of arbitrary images into an xarray-readable HDF5 file.

Same file conventions as sweeps (``docs/results.md``) with the row dimension ``image``:
per layer ``<layer>`` (post-ReLU) and ``<layer>_pre_relu`` with dims
``(image, <layer>_channel)``, read at the unit whose receptive-field centre is nearest
the image centre; with ``full_map`` dims ``(image, <layer>_channel, <layer>_y, <layer>_x)``
whose coordinates are the units' receptive-field centres in input pixels (continuous
coordinates, ``x`` right, ``y`` down; unit indices where the model has no geometry).
The per-image coordinate ``source`` names the file (or ``<file.npy>[i]``).

Convention:
    * a folder: every ``.jpg``/``.jpeg``/``.png`` below it, sorted by path; each image's
      shorter side is resized to ``size`` px (bilinear, antialiased), then the centre
      ``size x size`` square is cropped (``probes.images``);
    * a ``.npy`` file: ``(N, H, W, 3)`` or ``(N, 3, H, W)``, uint8 in 0..255 or float in
      [0, 1], used as it is (no resize);
    * ``"builtin"``: scikit-image's bundled photographs (a small proxy, not ImageNet).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suites.limits import MAX_IMAGE_SIDE
from probes.weights_spec import WeightsLike, WeightsSpec
from suites.results.writer import Layout, ResultsWriter, Variable, utc_now

__all__ = ["probe_images", "ProbeImagesOptions", "load_npy_images", "MIN_IMAGE_SIDE"]

#: Smallest image side (px) worth probing (as ``probes.images.iter_batches``): smaller ones read as zeros.
MIN_IMAGE_SIDE = 8


def load_npy_images(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` image array as ``(N, 3, H, W)`` float32 in [0, 1] (memory-mapped read)."""
    from probes.errors import ImageError

    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:  # numpy: EOFError for a zero-byte file, ValueError if foreign
        raise ImageError(f"images: {path} is not a plain numeric .npy array "
                         f"({' '.join(str(exc).split()) or type(exc).__name__})") from None
    if a.ndim != 4 or (a.shape[-1] != 3 and a.shape[1] != 3):
        raise ImageError(f"images: {path} must have shape (N, H, W, 3) or (N, 3, H, W), got {a.shape}")
    if a.dtype.kind not in "uif":
        raise ImageError(f"images: {path} must hold uint8 (0..255) or float ([0, 1]) values, got dtype {a.dtype}")
    if a.shape[0] == 0:
        raise ImageError(f"images: {path} holds no images (shape {a.shape})")
    h, w = (a.shape[1], a.shape[2]) if a.shape[-1] == 3 and a.shape[1] != 3 else (a.shape[2], a.shape[3])
    if min(h, w) < MIN_IMAGE_SIDE:
        raise ImageError(f"images: {path} holds {h} x {w} px images; the probes need at least "
                         f"{MIN_IMAGE_SIDE} x {MIN_IMAGE_SIDE} px")
    if max(h, w) > MAX_IMAGE_SIDE:
        raise ImageError(f"images: {path} holds {h} x {w} px images; at most {MAX_IMAGE_SIDE} px per side")
    return a


def _npy_batches(a: np.ndarray, name: str, batch_size: int) -> Iterator[tuple[list[str], torch.Tensor]]:
    channels_last = a.shape[-1] == 3 and a.shape[1] != 3
    for s in range(0, a.shape[0], batch_size):
        x = np.asarray(a[s : s + batch_size])
        t = torch.from_numpy(np.array(x, copy=True))
        if channels_last:
            t = t.permute(0, 3, 1, 2)
        if a.dtype == np.uint8:
            t = t.float() / 255.0
        else:
            t = t.float()
            lo, hi = float(t.min()), float(t.max())
            if lo < 0 or hi > 1:
                bad = int(((t < 0) | (t > 1)).flatten(1).any(1).nonzero()[0, 0]) + s
                raise ValueError(f"images: {name}[{bad}] has values outside [0, 1] (range {lo:g}..{hi:g}); "
                                 "float arrays must be in [0, 1], or use uint8 0..255")
        yield [f"{name}[{i}]" for i in range(s, s + t.shape[0])], t.contiguous()


@dataclass(frozen=True)
class ProbeImagesOptions:
    """How :func:`probe_images` loads the model and reads the images.

    Attributes:
        weights: weights file, ``"random"`` or None (the model's default).
        device: torch device text (``"auto"``, ``"cpu"``, ``"cuda:1"``).
        full_map: store each layer's whole activation map instead of the unit nearest the centre.
        size: side (px) images of a folder or ``"builtin"`` are resized to (``.npy`` images keep theirs).
        batch_size: images per forward pass.
        input_transform: the input transform of a ``"module.path:factory"`` model
            (``probes.parse_input_transform``).
    """

    weights: WeightsLike = None
    device: str = "auto"
    full_map: bool = False
    size: int = 224
    batch_size: int = 16
    input_transform: str | None = None


def _image_batches(images: str | Path, size: int, batch_size: int) -> tuple[int, tuple[int, int], Iterator, str]:
    """``(count, (H, W), batches of (names, images), label)`` of a ``.npy`` file, a folder or ``"builtin"``."""
    src = str(images)
    if src.endswith(".npy"):
        if not Path(src).is_file():
            raise FileNotFoundError(f"images: file not found: {src}")
        arr = load_npy_images(src)
        hw = (arr.shape[1], arr.shape[2]) if arr.shape[-1] == 3 and arr.shape[1] != 3 else (arr.shape[2], arr.shape[3])
        return arr.shape[0], hw, _npy_batches(arr, Path(src).name, batch_size), f"npy {src}"
    from probes.images import image_source, iter_batches

    source = image_source(src)
    return len(source), (size, size), iter_batches(source, size=size, batch_size=batch_size), source.label


def _layout(net: Any, layers: Sequence[str], hw: tuple[int, int], o: ProbeImagesOptions) -> tuple[Layout, dict]:
    """The probe file's layout (one channel dim per layer, maps' grids with ``full_map``) and the probed units."""
    dims: dict[str, np.ndarray] = {}
    variables = []
    units = {}
    for layer in layers:
        cdim = f"{layer}_channel"
        dims[cdim] = np.arange(net.num_channels(layer), dtype=np.int64)
        vdims: tuple[str, ...] = ("image", cdim)
        if net.geometry is not None and layer not in net.geometry.layers:
            pass  # a global tap (logits after the pool): one value per channel, no unit to pick
        elif o.full_map:
            grid = _map_coords(net, layer, hw)
            dims[f"{layer}_y"], dims[f"{layer}_x"] = grid
            vdims = ("image", cdim, f"{layer}_y", f"{layer}_x")
        elif net.geometry is not None or getattr(net, "measure_geometry", False):
            units[layer] = list(net.nearest_units(layer, (hw[1] / 2, hw[0] / 2), hw)[layer])
        pairs = ((layer, False), (f"{layer}_pre_relu", True)) if f"{layer}_pre_relu" in net.taps else ((layer, False),)
        for name, pre in pairs:  # a wrapped module may have no pre-ReLU tap
            variables.append(Variable(name, vdims, "float32", {
                "layer": layer, "readout": "pre_relu" if pre else "post_relu",
                "long_name": f"{layer} {'pre-ReLU' if pre else 'post-ReLU'} "
                             f"{'activation maps' if o.full_map else 'activation at the unit nearest the image centre'}",
            }))
    return Layout("image", dims, {"source": "str"}, tuple(variables), chunk_rows=o.batch_size), units


def probe_images(model: str, layers: Sequence[str], images: str | Path, out: str | Path,
                 options: ProbeImagesOptions | None = None, *, progress: bool | None = None) -> str:
    """Probe a folder / ``.npy`` file / ``"builtin"`` of images and write ``out``; returns a summary line.

    ``model`` is a registry id or ``"module.path:factory"`` (then ``options.input_transform``
    may name its input transform, see ``probes.parse_input_transform``).
    """
    import probes
    from tqdm.auto import tqdm

    from probes.device import resolve_device
    from suites.results.provenance import versions

    o = options or ProbeImagesOptions()
    if not layers:
        raise ValueError("layers: give at least one layer name (comma-separated)")
    out = Path(out)
    if out.exists():  # checked again, race-free, when the writer creates it
        raise ValueError(f"out: {out} already exists; probe files are never overwritten: choose another path")
    dev = resolve_device(o.device)
    weights = WeightsSpec.parse(o.weights)
    weights.check_exists()
    net = probes.load_model(model, weights=weights, device=dev, input_transform=o.input_transform, layers=layers)
    for layer in layers:
        if layer not in net.layers:
            raise ValueError(f"layers: unknown layer {layer!r} for model {model!r}; allowed: {', '.join(net.layers)}")
    count, hw, batches, source_label = _image_batches(images, o.size, o.batch_size)
    layout, units = _layout(net, layers, hw, o)
    attrs = {
        "title": f"curvebench probe of {source_label} on {model}",
        "images": source_label, "model": model, "weights": weights.text() or "",
        "weights_sha256": (net.meta or {}).get("weights_sha256") or weights.file_sha256(),
        "layers": " ".join(layers), "full_map": int(o.full_map), "image_size_hw": np.asarray(hw, dtype=np.int64),
        "probed_units": json.dumps(units), "device": str(dev), "dtype": "float32",
        "created": utc_now(), "rows_total": count, **versions(),
    }
    writer = ResultsWriter.create(out, layout, attrs)
    t0 = time.perf_counter()
    bar = tqdm(total=count, unit="img", desc="probe", disable=None if progress is None else not progress)
    failed = True
    try:
        with torch.inference_mode():
            for names, x in batches:
                acts = net.probe(x.to(dev), list(layers), plan=None, full_map=o.full_map)
                data = {k: v.float().cpu().numpy() for k, v in acts.items()}
                writer.append({"source": np.asarray(list(names), dtype=object)}, data)
                bar.update(len(names))
        writer.finish()
        failed = False
    finally:
        bar.close()
        writer.close()
        if failed:  # a probe file is not resumable: leave no partial file (and no lock) behind
            out.unlink(missing_ok=True)
            Path(str(out) + ".lock").unlink(missing_ok=True)
    secs = time.perf_counter() - t0
    return f"{count} images in {secs:.1f} s ({count / max(secs, 1e-9):,.1f} images/s) -> {out}"


def _map_coords(net: Any, layer: str, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Receptive-field centres (continuous px) of a layer's map rows and columns."""
    if net.geometry is None and not getattr(net, "measure_geometry", False):
        with torch.inference_mode():
            m = net.probe(torch.zeros(1, 3, *hw), [layer], full_map=True)[layer]
        return np.arange(m.shape[-2], dtype=np.float64), np.arange(m.shape[-1], dtype=np.float64)
    ry, rx = net.receptive_field(layer, hw[0]), net.receptive_field(layer, hw[1])
    return (np.array([ry.centre(j) for j in range(ry.grid)]), np.array([rx.centre(j) for j in range(rx.grid)]))
