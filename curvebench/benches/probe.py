"""``curvebench bench probe``: images/s of probes, truncated forwards and the receptive-field crop.

All numbers of one report come from one process, alternating the variants inside
every repeat so that machine noise hits them alike; speedups are ratios of medians.

* ``truncated``: ``model.probe`` at the unit nearest the centre of a full-size input,
  for each tap layer (the forward stops there), and the whole network to ``softmax2``.
* ``rf_crop``: a mixed3b centre probe on the full 224 input (whole maps) vs the
  exact receptive-field crop from :meth:`~probes.base.ProbeModel.input_plan` as
  ``model.probe`` runs it by default (crop, and for InceptionV1 only the windows the
  unit reads, :mod:`probes.sliced`): ``rf_crop_speedup_mixed3b`` = crop images/s / full
  images/s. Also reported: the crop with whole maps (``crop_whole_maps``) and the
  sliced probe on the uncropped 224 input (``sliced_full_input``).
* on CUDA (or when asked): channels-last memory format, bf16 autocast and
  ``torch.compile`` variants of the crop and full mixed3b probes.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from probes.errors import LayerError
from probes.registry import load_model
from probes.taps import run_until
from probes.weights_spec import RANDOM, WeightsLike, WeightsSpec



def _model_defaults(model: str, spatial: list[str]) -> tuple[tuple[str, ...], str]:
    """A registered model's truncated-forward layers and crop layer (its entry's ``bench_layers``, ``best_layer``)."""
    from probes.registry import get_entry, is_factory_spec

    if is_factory_spec(model):
        return (), spatial[-1]
    entry = get_entry(model)
    return entry.bench_layers, entry.best_layer or spatial[-1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """GPU name, or CPU architecture with core and thread counts."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()})"


def _summary(images: int, seconds: list[float]) -> dict[str, Any]:
    rates = [images / s for s in seconds]
    q25, q75 = np.percentile(rates, [25, 75])
    return {"images_per_s": statistics.median(rates), "iqr": float(q75 - q25), "repeats": len(rates),
            "median_batch_s": statistics.median(seconds)}


def _time_variants(variants: dict[str, Callable[[], object]], device: torch.device, repeats: int,
                   warmup: int, progress: bool) -> dict[str, list[float]]:
    from tqdm.auto import tqdm

    for fn in variants.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in tqdm(range(repeats), desc="bench probe", disable=not progress, leave=False):
        for name, fn in variants.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


@dataclass(frozen=True)
class ProbeBenchSettings:
    """What ``curvebench bench probe`` measures (see :func:`bench_probe`)."""

    weights: WeightsLike = None
    device: str | torch.device = "cpu"
    batch: int | None = None
    repeats: int = 5
    warmup: int = 1
    layers: tuple[str, ...] | None = None
    crop_layer: str | None = None
    size: int = 224
    options: tuple[str, ...] | None = None
    full_network: bool = True
    progress: bool = True
    seed: int = 0


def _variants(m: Any, x: torch.Tensor, x_crop: torch.Tensor, plan: Any, layers: tuple[str, ...], crop_layer: str,
              full_network: bool) -> dict[str, Callable[[], object]]:
    """The forwards timed: truncated whole maps per layer, the full network, the receptive-field crop ways."""
    variants: dict[str, Callable[[], object]] = {}
    for layer in layers:  # whole maps up to the layer, centre unit read
        variants[f"truncated:{layer}"] = lambda layer=layer: m.probe(x, layer, check_range=False, sliced=False)
    if full_network:
        variants["full_network"] = lambda: m.forward(x)
    if crop_layer not in layers:  # else the truncated forward at crop_layer is this very measurement
        variants["rf_full"] = lambda: m.probe(x, crop_layer, check_range=False, sliced=False)
    variants["rf_crop_maps"] = lambda: m.probe(x_crop, crop_layer, plan, check_range=False, sliced=False)
    variants["rf_crop"] = lambda: m.probe(x_crop, crop_layer, plan, check_range=False)  # default probe path
    if m.unit_forward is not None:
        variants["sliced_full"] = lambda: m.probe(x, crop_layer, check_range=False)
    return variants


def _truncated(stats: dict[str, Any], layers: tuple[str, ...], full_network: bool) -> dict[str, Any]:
    truncated: dict[str, Any] = {layer: stats[f"truncated:{layer}"] for layer in layers}
    if full_network:
        full = stats["full_network"]["images_per_s"]
        for layer in layers:
            truncated[layer] = {**truncated[layer], "speedup_vs_full": truncated[layer]["images_per_s"] / full}
        truncated["full"] = stats["full_network"]
    return truncated


def _rf_crop(stats: dict[str, Any], plan: Any, crop_layer: str, size: int) -> dict[str, Any]:
    rf_full = stats["rf_full"]["images_per_s"]
    return {
        "layer": crop_layer, "crop_size": plan.size, "full_size": size, "exact": plan.exact,
        "full": stats["rf_full"], "crop": stats["rf_crop"], "crop_whole_maps": stats["rf_crop_maps"],
        "crop_whole_maps_speedup": stats["rf_crop_maps"]["images_per_s"] / rf_full,
        **({"sliced_full_input": stats["sliced_full"],
            "sliced_full_input_speedup": stats["sliced_full"]["images_per_s"] / rf_full}
           if "sliced_full" in stats else {}),
    }


def bench_probe(model: str = "inceptionv1", settings: ProbeBenchSettings | None = None, **overrides: Any) -> dict[str, Any]:
    """Measure probe throughput; returns the JSON-able report (see module docstring).

    ``settings``: :class:`ProbeBenchSettings`, or its fields by name as ``overrides``:
        weights: weights file; None = random weights (speed does not depend on them).
        batch: images per forward; None = 8 on CPU, 128 on CUDA.
        options: extra variants among ``"channels_last"``, ``"bf16"``, ``"compile"``;
            None = all three on CUDA, none on CPU.
        full_network: also time the whole network (the reference of ``speedup_vs_full``).
        layers, crop_layer: None = the model's defaults (its registry entry's ``bench_layers``
            and ``best_layer``; else the last spatial layer). ``rf_crop_speedup`` is measured
            at ``crop_layer`` (also reported as ``rf_crop_speedup_<crop_layer>``).
    """
    from probes.device import resolve_device

    o = replace(settings or ProbeBenchSettings(), **overrides)
    dev = resolve_device(o.device)
    batch = o.batch if o.batch is not None else (128 if dev.type == "cuda" else 8)
    for name, value in (("batch", batch), ("repeats", o.repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    torch.manual_seed(o.seed)
    spec = WeightsSpec.parse(o.weights)
    if spec.is_default and model != "groundtruth":
        spec = RANDOM  # a speed benchmark: random weights need no download
    m = load_model(model, weights=spec, device=dev)
    spatial = [layer for layer in m.layers if m.geometry is None or layer in m.geometry.layers]
    default_layers, default_crop = _model_defaults(model, spatial)
    layers = tuple(layer for layer in (o.layers or default_layers) if layer in m.layers) or (spatial[-1],)
    crop_layer = o.crop_layer or default_crop
    if crop_layer not in spatial:
        raise LayerError(f"crop_layer: {crop_layer!r} is not a spatial layer of {m.name!r}; allowed: {', '.join(spatial)}")
    x = torch.rand(batch, 3, o.size, o.size, device=dev)
    plan = m.input_plan(crop_layer, size=o.size)
    x_crop = plan.crop(x).contiguous()
    with torch.no_grad():
        times = _time_variants(_variants(m, x, x_crop, plan, layers, crop_layer, o.full_network), dev, o.repeats,
                               o.warmup, o.progress)
    stats = {k: _summary(batch, v) for k, v in times.items()}
    stats.setdefault("rf_full", stats.get(f"truncated:{crop_layer}"))  # type: ignore[arg-type]
    speedup = stats["rf_crop"]["images_per_s"] / stats["rf_full"]["images_per_s"]
    report: dict[str, Any] = {
        "benchmark": "probe", "model": m.name, "weights": m.meta.get("weights") or spec.text(),
        "device": str(dev), "device_name": device_name(dev), "torch": torch.__version__, "dtype": "float32",
        "threads": torch.get_num_threads(), "batch": batch, "repeats": o.repeats, "warmup": o.warmup,
        "size": o.size, "seed": o.seed,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "truncated": _truncated(stats, layers, o.full_network),
        "rf_crop": _rf_crop(stats, plan, crop_layer, o.size),
        "rf_crop_speedup": speedup,
        f"rf_crop_speedup_{crop_layer}": speedup,
    }
    options = o.options
    if options is None:
        options = ("channels_last", "bf16", "compile") if dev.type == "cuda" else ()
    if options:
        report["options"] = _bench_options(m, x, x_crop, plan, crop_layer, dev, o.repeats, o.warmup, options,
                                           o.progress)
    return report


def _bench_options(m, x, x_crop, plan, layer, dev, repeats, warmup, options, progress):  # type: ignore[no-untyped-def]
    """Channels-last, bf16 autocast and compiled variants of the full and crop probes of ``layer``."""
    out: dict[str, Any] = {}
    unknown = set(options) - {"channels_last", "bf16", "compile"}
    if unknown:
        raise ValueError(f"options: unknown {sorted(unknown)}; allowed: channels_last, bf16, compile")
    net = m.net
    transform = m.transform
    takes_until = "until" in inspect.signature(net.forward).parameters

    def runner(net_, inputs, amp, unit):  # type: ignore[no-untyped-def]
        ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if amp else nullcontext()

        def run() -> object:
            with ctx:
                if takes_until:
                    y = net_(transform(inputs), until=layer)
                else:  # any other network: stop after the tap's module (hooks)
                    y = run_until(net_, transform(inputs), [m.taps[layer]])[m.taps[layer]]
            return y[:, :, unit[0], unit[1]].float()

        return run

    full_unit = plan.full_units[layer]
    crop_unit = plan.units[layer]
    combos = {"baseline": (False, False, False)}
    if "channels_last" in options:
        combos["channels_last"] = (True, False, False)
    if "bf16" in options:
        combos["bf16_autocast"] = (False, True, False)
        if "channels_last" in options:
            combos["channels_last+bf16_autocast"] = (True, True, False)
    if "compile" in options:
        combos["compile"] = (False, False, True)
        if "channels_last" in options and "bf16" in options:
            combos["compile+channels_last+bf16_autocast"] = (True, True, True)
    for name, (cl, amp, comp) in combos.items():
        try:
            fmt = torch.channels_last if cl else torch.contiguous_format
            net_ = net.to(memory_format=fmt)
            xf, xc = x.contiguous(memory_format=fmt), x_crop.contiguous(memory_format=fmt)
            if comp:
                net_ = torch.compile(net_, dynamic=False)  # static shapes: full and crop compile separately
            variants = {"full": runner(net_, xf, amp, full_unit), "crop": runner(net_, xc, amp, crop_unit)}
            with torch.no_grad():
                times = _time_variants(variants, dev, repeats, max(warmup, 2 if comp else 1), progress)
            out[name] = {k: _summary(x.shape[0], v) for k, v in times.items()}
        except Exception as exc:  # an option unsupported here must not lose the other numbers
            out[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        finally:
            net.to(memory_format=torch.contiguous_format)
    base = out.get("baseline", {}).get("full", {}).get("images_per_s")
    for name, res in out.items():
        if base and "full" in res:
            res["full_speedup_vs_baseline"] = res["full"]["images_per_s"] / base
            res["crop_speedup_vs_baseline_full"] = res["crop"]["images_per_s"] / base
    return out
