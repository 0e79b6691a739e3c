"""probes/allocator.py: glibc keeps freed activation buffers (faster CPU forward passes)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_load_model_on_cpu_sets_the_thresholds_once():
    """In a fresh process: load_model on CPU calls reuse_freed_memory, which succeeds and is cached."""
    code = (
        "import probes, probes.allocator as a\n"
        "assert a.reuse_freed_memory.cache_info().currsize == 0\n"
        "probes.load_model('groundtruth')\n"
        "info = a.reuse_freed_memory.cache_info()\n"
        "assert info.currsize == 1 and info.misses == 1, info\n"
        "assert a.reuse_freed_memory() is True and a.reuse_freed_memory.cache_info().hits == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
