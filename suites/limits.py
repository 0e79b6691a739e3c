"""Bounds checked before any work: image sizes, batch sizes, sweep sizes, memory a request needs.

Each check raises :class:`suites.errors.LimitError` with one line that names the option,
the value and the bound, *before* anything is allocated or written. Memory is estimated
from shapes (bytes = elements x item size) and compared with the memory this machine has
available now (``/proc/meminfo`` ``MemAvailable``; total physical memory elsewhere).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from suites.errors import LimitError

__all__ = ["MAX_IMAGE_SIDE", "MAX_BATCH", "MAX_RENDER_IMAGES", "MAX_TICKS", "MAX_OPTIMIZE_STEPS", "MAX_RESTARTS",
           "MAX_SWEEP_AXIS", "MAX_SWEEP_CELLS", "MAX_LENGTH", "OPTION_LIMITS", "LimitError", "check_at_most",
           "check_option_limits", "check_memory", "check_disk", "available_memory", "safe_file_name"]

#: Largest image side in px any command accepts (a 8192 x 8192 RGB float32 image is 768 MiB).
MAX_IMAGE_SIDE = 8192
#: Largest batch (stimuli or images per forward pass), also ``[run].batch_size`` of a suite.
MAX_BATCH = 65536
#: Most images ``curvebench render`` draws in one call (a contact sheet or ``.npy``).
MAX_RENDER_IMAGES = 1_000_000
#: Most combing ticks per stimulus.
MAX_TICKS = 1000
#: ``optimize``: step budget and starts per channel (the run also stops on its tolerance).
MAX_OPTIMIZE_STEPS = 100_000
MAX_RESTARTS = 1000
#: Most values along one swept axis (``discover --orientations``, ``optimize --sweep-curvatures``, ...).
MAX_SWEEP_AXIS = 10_000
#: Most cells (stimuli) of one sweep grid built from counts (``discover``: orientations x curvatures).
MAX_SWEEP_CELLS = MAX_RENDER_IMAGES
#: Longest stroke or arc in px at the largest image side (16 x the side: ``stimuli.kinds.MAX_REACH``).
MAX_LENGTH = 16 * MAX_IMAGE_SIDE
#: Most repetitions, restarts, iterations and threads any option asks for.
MAX_REPEATS = 1000
#: Most images or stimuli a count option (``--limit``, ``bench run --stimuli``) names.
MAX_COUNT = 1_000_000_000

#: Every size-like command-line option (argparse ``dest``) -> (largest value, unit): checked by
#: :func:`check_option_limits` for every command before any work, whatever the command.
OPTION_LIMITS: dict[str, tuple[float, str]] = {
    "size": (MAX_IMAGE_SIDE, "px"), "cell": (MAX_IMAGE_SIDE, "px"), "gap": (MAX_IMAGE_SIDE, "px"),
    "length": (MAX_LENGTH, "px"), "width": (MAX_LENGTH, "px"),
    "batch_size": (MAX_BATCH, ""), "batch": (MAX_BATCH, ""), "gpu_batch_size": (MAX_BATCH, ""),
    "memory_batch_size": (MAX_BATCH, ""), "chunk": (MAX_BATCH, ""),
    "positions": (MAX_REPEATS, ""), "orientations": (MAX_SWEEP_AXIS, ""), "curvatures": (MAX_SWEEP_AXIS, ""), "angle_curvatures": (MAX_SWEEP_AXIS, ""),
    "sweep_orientations": (MAX_SWEEP_AXIS, ""), "sweep_curvatures": (MAX_SWEEP_AXIS, ""),
    "steps": (MAX_OPTIMIZE_STEPS, ""), "polish": (MAX_OPTIMIZE_STEPS, ""), "patience": (MAX_OPTIMIZE_STEPS, ""),
    "restarts": (MAX_RESTARTS, ""), "escapes": (MAX_REPEATS, ""), "repeats": (MAX_REPEATS, ""),
    "warmup": (MAX_REPEATS, ""), "threads": (MAX_REPEATS, ""), "k": (MAX_REPEATS, ""),
    "max_channels": (MAX_SWEEP_AXIS, ""), "limit": (MAX_COUNT, ""), "stimuli": (MAX_RENDER_IMAGES, ""),
    "n_ours": (MAX_RENDER_IMAGES, ""), "n_cairo": (MAX_RENDER_IMAGES, ""), "n_pil": (MAX_RENDER_IMAGES, ""),
    "memory_sweep": (MAX_RENDER_IMAGES, ""), "max_sweep": (MAX_RENDER_IMAGES, ""), "scaling": (MAX_REPEATS, ""),
}


def check_option_limits(options: Mapping[str, Any]) -> None:
    """Refuse any size-like option above its bound in :data:`OPTION_LIMITS` (``--size = 100,000 px is too large:
    at most 8,192 px``); ``options`` is ``vars(args)`` of a parsed command line. Also the grid a
    ``discover`` sweep builds (orientations x curvatures <= :data:`MAX_SWEEP_CELLS`)."""
    for dest, value in options.items():
        if dest in OPTION_LIMITS and isinstance(value, (int, float)) and not isinstance(value, bool):
            bound, unit = OPTION_LIMITS[dest]
            check_at_most(f"--{dest.replace('_', '-')}", value, bound, unit)
    for a, b in (("orientations", "curvatures"), ("sweep_orientations", "sweep_curvatures")):
        x, y = options.get(a), options.get(b)
        if isinstance(x, int) and isinstance(y, int):
            n = options.get("positions") if a == "orientations" else None
            what = f"--{a.replace('_', '-')} x --{b.replace('_', '-')}" + (" x --positions" if isinstance(n, int) else "")
            check_at_most(what, x * y * (n if isinstance(n, int) else 1), MAX_SWEEP_CELLS, "stimuli")


#: Fraction of the available memory one request may claim.
MEMORY_FRACTION = 0.5


def check_at_most(what: str, value: float, bound: float, unit: str = "", hint: str = "") -> None:
    """Refuse ``value > bound``: ``"--size = 100000 px is too large: at most 8192 px"``."""
    if value > bound:
        u = f" {unit}" if unit else ""
        show = (lambda v: f"{v:,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}")
        raise LimitError(f"{what} = {show(value)}{u} is too large: at most {show(bound)}{u}" + (f" ({hint})" if hint else ""))


def available_memory() -> int:
    """Bytes of memory available now (Linux ``MemAvailable``; else total physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                m = re.match(r"MemAvailable:\s+(\d+)\s+kB", line)
                if m:
                    return int(m.group(1)) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 << 30


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(what: str, nbytes: float, hint: str = "") -> None:
    """Refuse a request whose estimated memory exceeds half of what is available."""
    budget = MEMORY_FRACTION * available_memory()
    if nbytes > budget:
        raise LimitError(f"{what} needs about {_gib(nbytes)} of memory; at most {_gib(budget)} is allowed here "
                         f"(half the available memory)" + (f": {hint}" if hint else ""))


def check_disk(what: str, folder: str | os.PathLike, nbytes: float) -> None:
    """Refuse writing ``nbytes`` into ``folder`` when its file system has less free space."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the folder does not exist yet: the write itself will say so
    if nbytes > free:
        raise LimitError(f"{what} needs {_gib(nbytes)} on disk; only {_gib(free)} is free in {folder}")


def safe_file_name(text: str, fallback: str = "suite") -> str:
    """``text`` made into one file name: no folders, no leading dots, only ``[A-Za-z0-9._+-]``.

    ``"../../escape"`` -> ``"escape"``, ``"/tmp/x"`` -> ``"tmp-x"``, ``"a b"`` -> ``"a_b"``.
    """
    parts = [p for p in re.split(r"[\\/]+", text) if p not in ("", ".", "..")]
    name = "-".join(parts)
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".-")[:100]
    return name or fallback
