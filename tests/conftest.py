"""Shared pytest fixtures (``--device`` and ``--dtype`` select where tensors live) and test helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from suites.specs.suite import Suite, parse_suite


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


CURVE_SUITE = """
name = "{name}"
description = "{description}"
kind = "curve"
[sweep]
orientation = {{ start = 0, stop = 360, step = {step} }}
curvature = {{ start = 0, stop = 0.3, num = 5 }}
[fixed]
length = 16
width = 2
[model]
name = "groundtruth"
layers = {layers}
{model_extra}
[run]
batch_size = {batch_size}
{run_extra}
"""


def curve_suite_text(name: str, description: str = "", *, step: float = 30, layers: str = '["curves"]',
                     batch_size: int | str = 8, model_extra: str = "", run_extra: str = "") -> str:
    """The TOML text of :func:`curve_suite` (defaults: the ground-truth ``curves`` layer, 12 x 5 stimuli)."""
    return CURVE_SUITE.format(name=name, description=description, step=step, layers=layers,
                              batch_size=batch_size, model_extra=model_extra, run_extra=run_extra)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (relative path -> digest): to prove a command changed nothing."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def curve_suite(name: str, description: str, *, step: float, layers: str, batch_size: int,
                model_extra: str = "", run_extra: str = "") -> Suite:
    """A small ground-truth curve sweep (orientation every ``step`` degrees x 5 curvatures) for runner tests.

    ``layers`` is TOML (``'["edges"]'``); ``model_extra``/``run_extra`` are TOML lines added to
    ``[model]``/``[run]`` (``run_extra`` may also open further tables, e.g. ``[summary]``).
    Import it with ``from conftest import curve_suite``.
    """
    text = curve_suite_text(name, description, step=step, layers=layers, batch_size=batch_size,
                            model_extra=model_extra, run_extra=run_extra)
    return parse_suite(text, path=f"{name}.toml")
