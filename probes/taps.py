"""Forward hooks on named submodules that live only as long as one call.

Works on any ``torch.nn.Module``: taps are module names as in ``named_modules()``.
The forward pass can stop as soon as every requested tap has fired, so a probe of
``conv2d2`` never runs ``mixed5b``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


class _StopForward(Exception):
    """Raised from a hook once every requested tap has fired (caught by :func:`run_until`)."""


@contextmanager
def capture(module: nn.Module, names: Sequence[str], stop_early: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the named submodules of ``module`` while the block runs.

    Yields a dict that fills up as the forward pass reaches each tap. With
    ``stop_early`` the hook of the last missing tap raises a private exception that
    :func:`run_until` catches, so nothing deeper is computed. Hooks are removed on exit,
    also when the block raises.
    """
    modules = dict(module.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"tap {missing[0]!r} is not a submodule of {type(module).__name__}; "
                         f"named submodules include: {', '.join(list(modules)[1:12])}, ...")
    out: dict[str, torch.Tensor] = {}
    wanted = set(names)

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(_mod: nn.Module, _inp: object, output: torch.Tensor) -> None:
            out[name] = output
            if stop_early and wanted.issubset(out):
                raise _StopForward

        return hook

    handles = [modules[n].register_forward_hook(make_hook(n)) for n in dict.fromkeys(names)]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


def run_until(module: nn.Module, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run ``module(x)`` and return the outputs of the named submodules, stopping after the last one."""
    with capture(module, names, stop_early=True) as out:
        try:
            module(x)
        except _StopForward:
            pass
    missing = [n for n in names if n not in out]
    if missing:
        raise ValueError(f"tap {missing[0]!r} never ran in the forward pass of {type(module).__name__}")
    return out
