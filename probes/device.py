"""One place that turns a device name from a user into a ``torch.device`` it can run on."""

from __future__ import annotations

import torch

from probes.errors import ModelError

__all__ = ["resolve_device", "DEVICE_HELP"]

DEVICE_HELP = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` checked here.

    Raises:
        ModelError: not a torch device, a kind curvebench does not compute on (``meta``, ...),
            or a CUDA device this machine does not have. The message names the value.
    """
    if isinstance(name, str) and name.strip() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ModelError(f"device: {str(name)!r} is not a torch device; allowed {DEVICE_HELP}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ModelError(f"device: {str(name)!r} cannot run models here; allowed {DEVICE_HELP}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device: {str(name)!r} requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelError(f"device: {str(name)!r}: this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s), ids 0..{torch.cuda.device_count() - 1}")
    return dev
