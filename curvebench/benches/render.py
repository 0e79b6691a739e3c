"""Renderer throughput: ours vs PIL (4x supersampled) and cairo, same stimuli, 224 x 224.

What is timed, per method, producing the same thing (a ``(3, 224, 224)`` float image in
``[0, 1]`` per stimulus, the form the model consumes):

- ours: :func:`stimuli.render` on batches of ``batch_size`` (CPU, ``threads`` torch threads);
- PIL: one image at a time, drawn at 4x resolution and LANCZOS-downsized, to float;
- cairo: one image at a time on a reused surface with native anti-aliasing, to float.

Each method runs ``repeats`` timed rounds after a warm-up, interleaved (ours, cairo,
PIL, ours, ...) so that load from other processes hits all alike; the report gives the median
and interquartile range of images/s, and ``ratio_vs_pil`` / ``ratio_vs_cairo`` = ours /
theirs (medians, measured in the same process). On CUDA it adds images/s for float32,
float16 and bfloat16 output and the fraction of the card's memory-write bound:
``output bytes per image * images/s / bandwidth``.
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from stimuli.baselines import CairoCanvas, draw_pil
from stimuli.draw import DEFAULT_LENGTH, DEFAULT_WIDTH, MAX_TURN, render

SIZE = 224
POSITION = (111.5, 111.5)  # mixed3b's receptive-field centre at 224 px input (a pixel centre)

#: Peak memory bandwidth (GB/s) by a substring of ``torch.cuda.get_device_name()``,
#: most specific first (vendor datasheets).
CARD_BANDWIDTH_GBS: tuple[tuple[str, float], ...] = (
    ("H200", 4800.0),
    ("H100 PCIe", 2000.0),
    ("H100 NVL", 3900.0),
    ("H100", 3350.0),  # SXM5
    ("GH200", 4000.0),
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),  # 40 GB
    ("L40S", 864.0),
    ("L40", 864.0),
    ("L4", 300.0),
    ("A10G", 600.0),
    ("A10", 600.0),
    ("V100", 900.0),
    ("T4", 320.0),
    ("RTX 4090", 1008.0),
    ("RTX 3090", 936.0),
)


def card_bandwidth_gbs(name: str) -> float | None:
    """Datasheet bandwidth for a CUDA device name, or ``None`` if the card is not listed."""
    for key, gbs in CARD_BANDWIDTH_GBS:
        if key.lower() in name.lower():
            return gbs
    return None


def stimulus_set(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` random curves: orientation uniform in [0, 360), curvature in [0, 2 pi / L]."""
    rng = np.random.default_rng(seed)
    return {
        "orientation": rng.uniform(0.0, 360.0, n),
        "curvature": rng.uniform(0.0, MAX_TURN / DEFAULT_LENGTH, n),
    }


def _summary(rates: list[float]) -> dict[str, Any]:
    q = np.percentile(rates, [25, 50, 75])
    return {"median": float(q[1]), "iqr": float(q[2] - q[0]), "q25": float(q[0]), "q75": float(q[2]),
            "repeats": [float(r) for r in rates]}


def _time_rates(fn: Callable[[], int], repeats: int, sync: Callable[[], None] = lambda: None, warmup: bool = True) -> list[float]:
    if warmup:
        fn()
        sync()
    rates = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        n = fn()
        sync()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def _ours(stim: dict[str, np.ndarray], n: int, batch: int, device: torch.device, dtype: torch.dtype) -> Callable[[], int]:
    total = len(stim["orientation"])
    o = torch.as_tensor(stim["orientation"], dtype=torch.float32, device=device)
    k = torch.as_tensor(stim["curvature"], dtype=torch.float32, device=device)
    # Batches cycle through the stimulus set (prepared once, on the device).
    starts = [(i * batch) % max(1, total - batch + 1) for i in range(math.ceil(n / batch))]

    def run() -> int:
        done = 0
        with torch.no_grad():
            for s in starts:
                render("curve", orientation=o[s : s + batch], curvature=k[s : s + batch], length=DEFAULT_LENGTH,
                       width=DEFAULT_WIDTH, position=POSITION, size=SIZE, device=device, dtype=dtype)
                done += min(batch, total - s)
        return done

    return run


def _one_at_a_time(draw: Callable[[float, float], np.ndarray], stim: dict[str, np.ndarray], n: int) -> Callable[[], int]:
    o, k = stim["orientation"], stim["curvature"]

    def run() -> int:
        for i in range(n):
            draw(float(o[i % len(o)]), float(k[i % len(k)]))
        return n

    return run


@dataclass(frozen=True)
class RenderBenchOptions:
    """What ``curvebench bench render`` measures (the defaults of the command line).

    ``n_ours``/``n_cairo``/``n_pil``: images per timed repeat of each method; ``threads``:
    torch CPU threads for ours; ``gpu_batch_size``, ``bandwidth_gbs``: the CUDA part (card
    bandwidth in GB/s, None: by the card's name); ``progress``: one line per stage on stderr.
    """

    device: str = "auto"
    batch_size: int = 32
    gpu_batch_size: int = 4096
    repeats: int = 5
    n_ours: int = 2048
    n_cairo: int = 400
    n_pil: int = 40
    threads: int = 1
    seed: int = 0
    bandwidth_gbs: float | None = None
    progress: bool = True


def _render_device(device: str) -> torch.device:
    """The device ours also renders on (besides the CPU): ``auto`` -> cuda when present; only cpu or cuda."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = torch.device("meta")  # refused just below, with the value the user gave
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"bench render: --device {device!r} is not a device to render on; allowed auto, cpu, "
                         "cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("bench render: --device cuda but CUDA is not available here")
    return dev


def _agreement(stim: dict[str, np.ndarray], log: Callable[[str], None]) -> tuple[Any, dict[str, Any], str | None]:
    """Cross-check: ours against cairo (same geometry) and PIL, or the ratios mean nothing.

    Returns the cairo canvas (None if cairo is missing), the agreement numbers and cairo's error.
    """
    cairo_error = None
    try:
        canvas: CairoCanvas | None = CairoCanvas(SIZE)
    except (ImportError, OSError) as exc:  # cairocffi or the libcairo2 system library missing
        canvas, cairo_error = None, f"cairo unavailable: {exc} (pip install cairocffi; apt-get install libcairo2)"
        log(f"bench render: WARNING: {cairo_error}; ratio_vs_cairo will be null")
    probe = slice(0, 16)
    ours_img = render("curve", orientation=torch.as_tensor(stim["orientation"][probe], dtype=torch.float32),
                      curvature=torch.as_tensor(stim["curvature"][probe], dtype=torch.float32),
                      position=POSITION, size=SIZE).numpy()
    pil_img = np.stack([draw_pil(float(o), float(k), DEFAULT_LENGTH, DEFAULT_WIDTH, *POSITION, size=SIZE)
                        for o, k in zip(stim["orientation"][:4], stim["curvature"][:4])])
    agreement: dict[str, Any] = {}
    if canvas is not None:
        cairo_img = np.stack([canvas.draw(float(o), float(k), DEFAULT_LENGTH, DEFAULT_WIDTH, *POSITION)
                              for o, k in zip(stim["orientation"][probe], stim["curvature"][probe])])
        agreement = {
            "max_abs_diff_vs_cairo": float(np.abs(ours_img - cairo_img).max()),
            "mean_abs_diff_vs_cairo": float(np.abs(ours_img - cairo_img).mean()),
            "ink_ratio_vs_cairo": float((1 - ours_img[:, 0]).sum() / (1 - cairo_img[:, 0]).sum()),
        }
    agreement["ink_ratio_vs_pil"] = float((1 - ours_img[:4, 0]).sum() / (1 - pil_img[:, 0]).sum())
    return canvas, agreement, cairo_error


def _interleaved_rates(stim: dict[str, np.ndarray], canvas: Any, o: RenderBenchOptions) -> dict[str, list[float]]:
    """Images/s of each method per round; rounds interleaved (ours, cairo, PIL, ours, ...) so that load from
    other processes on a shared machine falls on all three alike."""
    runs = {
        "ours": _ours(stim, o.n_ours, o.batch_size, torch.device("cpu"), torch.float32),
        "pil": _one_at_a_time(lambda a, k: draw_pil(a, k, DEFAULT_LENGTH, DEFAULT_WIDTH, *POSITION, size=SIZE), stim,
                              o.n_pil),
    }
    if canvas is not None:
        draw = canvas.draw
        runs["cairo"] = _one_at_a_time(lambda a, k: draw(a, k, DEFAULT_LENGTH, DEFAULT_WIDTH, *POSITION), stim,
                                       o.n_cairo)
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()  # warm-up
    for _ in range(o.repeats):
        for name, fn in runs.items():
            rates[name] += _time_rates(fn, 1, warmup=False)
    return rates


def bench_render(options: RenderBenchOptions | None = None, **overrides: Any) -> dict[str, Any]:
    """Measure and return the JSON-ready report (see the module docstring).

    ``options``: :class:`RenderBenchOptions` (or its fields by name as ``overrides``).
    """
    o = replace(options or RenderBenchOptions(), **overrides)
    log: Callable[[str], None] = (lambda m: print(m, file=sys.stderr, flush=True)) if o.progress else (lambda m: None)
    dev = _render_device(o.device)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(o.threads)
    try:
        stim = stimulus_set(max(o.n_ours, o.n_cairo, o.n_pil, o.batch_size, 4096), o.seed)
        canvas, agreement, cairo_error = _agreement(stim, log)
        log(f"bench render: {o.repeats} interleaved rounds of ours (CPU, {o.threads} thread(s), batch {o.batch_size}), "
            "cairo and PIL (one image at a time) ...")
        rates = _interleaved_rates(stim, canvas, o)
        ours, cairo, pil = rates["ours"], rates.get("cairo"), rates["pil"]

        import PIL

        if cairo is not None:
            import cairocffi

            cairo_entry: dict[str, Any] = {
                "images_per_s": _summary(cairo), "threads": 1, "images_per_repeat": o.n_cairo,
                "version": cairocffi.cairo_version_string(), "cairocffi": cairocffi.version}
        else:
            cairo_entry = {"error": cairo_error}
        report: dict[str, Any] = {
            "benchmark": "curvebench bench render",
            "stimuli": {"kind": "curve", "size": [SIZE, SIZE], "length_px": DEFAULT_LENGTH, "width_px": DEFAULT_WIDTH,
                        "position": list(POSITION), "orientation": "uniform [0, 360) deg",
                        "curvature": f"uniform [0, 2 pi / {DEFAULT_LENGTH:g}] 1/px", "seed": o.seed,
                        "output": "(3, 224, 224) float32 in [0, 1] per image, every method"},
            "ours": {"images_per_s": _summary(ours), "device": "cpu", "threads": o.threads, "batch_size": o.batch_size,
                     "images_per_repeat": o.n_ours, "dtype": "float32"},
            "cairo": cairo_entry,
            "pil": {"images_per_s": _summary(pil), "threads": 1, "images_per_repeat": o.n_pil, "supersample": 4,
                    "resample": "LANCZOS", "version": PIL.__version__},
            "ratio_vs_pil": statistics.median(ours) / statistics.median(pil),
            "ratio_vs_cairo": statistics.median(ours) / statistics.median(cairo) if cairo else None,
            "agreement": agreement,
            "repeats": o.repeats,
            "meta": {
                "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                "cpu_count": _cpu_count(), "torch_threads": o.threads, "device": "cpu",
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        }
        if dev.type == "cuda":
            report["cuda"] = _bench_cuda(stim, dev, o.gpu_batch_size, o.repeats, o.bandwidth_gbs, log)
            report["meta"]["device"] = report["cuda"]["name"]
        return report
    finally:
        torch.set_num_threads(threads_before)


def _cpu_count() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count()


def _bench_cuda(
    stim: dict[str, np.ndarray], dev: torch.device, batch: int, repeats: int, bandwidth_gbs: float | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    name = torch.cuda.get_device_name(dev)
    props = torch.cuda.get_device_properties(dev)
    if bandwidth_gbs is None:
        bandwidth_gbs = card_bandwidth_gbs(name)
    sync = lambda: torch.cuda.synchronize(dev)  # noqa: E731
    out: dict[str, Any] = {
        "name": name, "memory_gib": props.total_memory / 2**30, "batch_size": batch,
        "bandwidth_gbs": bandwidth_gbs,
        "bandwidth_source": "--bandwidth-gbs or datasheet by card name" if bandwidth_gbs else "unknown card: pass --bandwidth-gbs",
        "dtypes": {},
    }
    n = batch * 20  # 20 batches per repeat
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        label = str(dtype).replace("torch.", "")
        log(f"bench render: ours on {name}, {label} output, batch {batch} ...")
        rates = _time_rates(_ours(stim, n, batch, dev, dtype), repeats, sync)
        bytes_per_image = 3 * SIZE * SIZE * torch.tensor([], dtype=dtype).element_size()
        med = statistics.median(rates)
        entry: dict[str, Any] = {"images_per_s": _summary(rates), "bytes_per_image": bytes_per_image,
                                 "images_per_repeat": n}
        entry["fraction_of_write_bound"] = (bytes_per_image * med / (bandwidth_gbs * 1e9)) if bandwidth_gbs else None
        out["dtypes"][label] = entry
    return out
