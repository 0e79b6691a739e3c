"""Fixtures for the pytest-benchmark files: seeded RNGs and the device under test.

Run with ``pytest benchmarks/ --benchmark-only``; set ``CURVEBENCH_BENCH_DEVICE=cuda``
to benchmark on a GPU (default ``cpu``).
"""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("CURVEBENCH_BENCH_DEVICE", "cpu"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
