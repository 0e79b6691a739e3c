"""Shared pytest fixtures: ``--device`` and ``--dtype`` select where tensors live."""

from __future__ import annotations

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="torch device for tensor tests (cpu, cuda, ...)")
    parser.addoption("--dtype", default="float32", choices=["float32", "float64"], help="dtype for tensor tests")


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.config.getoption("--device"))


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.config.getoption("--dtype"))


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """Run the test on one torch thread: with tiny batches on a shared few-core machine,
    one thread avoids costly thread hand-offs. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
