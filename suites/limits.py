"""Bounds checked before any work: image sizes, batch sizes, sweep sizes, memory a request needs.

Each check raises :class:`suites.errors.LimitError` with one line that names the option,
the value and the bound, *before* anything is allocated or written. Memory is estimated
from shapes (bytes = elements x item size) and compared with the memory this machine has
available now (``/proc/meminfo`` ``MemAvailable``; total physical memory elsewhere).
"""

from __future__ import annotations

import os
import re

from suites.errors import LimitError

__all__ = ["MAX_IMAGE_SIDE", "MAX_BATCH", "MAX_RENDER_IMAGES", "MAX_TICKS", "MAX_OPTIMIZE_STEPS", "MAX_RESTARTS",
           "LimitError", "check_at_most", "check_memory", "check_disk", "available_memory", "safe_file_name"]

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
