"""Faster CPU forward passes: let glibc's malloc keep freed activation buffers for reuse.

By default glibc serves every allocation over 128 KiB-32 MiB (its dynamic mmap
threshold) with a fresh ``mmap`` and returns it to the kernel on ``free``. A CPU forward
pass allocates and frees its activation maps once per batch, so every batch pays page
faults to zero the same buffers again. Raising the mmap threshold to its 32 MiB maximum
and the trim threshold to 1 GiB keeps them in the heap.

Measured (``python benchmarks/allocator.py``, benchmarks/README.md: EfficientNet-Lite0 to
``blocks.3.2.depthwise`` on its 154 px crop, 360 arcs at batch 8, 2 threads, fresh
processes alternating): 2.2x less wall and 1.8x less CPU time, system time 1.05 s ->
0.01 s; the 16-position ``curvebench demo`` went from 157 s to 108 s of wall. The cost:
the process keeps up to 1 GiB of freed memory instead of returning it. Nothing changes
on a C library without ``mallopt`` (macOS, musl) or for CUDA tensors.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_MAX = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold on 64-bit
_TRIM = 1024 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def reuse_freed_memory() -> bool:
    """Set glibc's malloc thresholds once per process (see the module docstring); True when they were set."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM))
