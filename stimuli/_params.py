"""Parameter handling for :func:`stimuli.render`: broadcasting and validation.

Every check raises a :class:`ValueError` that names the parameter, the offending value
(with its batch index when the parameter is batched) and what is allowed, before any
geometry runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor
from .errors import StimulusError

Number = Union[int, float]
ParamLike = Union[Number, Tensor, Sequence[Number]]

#: Largest image side (px) the renderer draws (an 8192 x 8192 RGB float32 image is 768 MiB).
MAX_SIZE = 8192


def image_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` as ``(H, W)``; an int means a square image."""
    if isinstance(size, bool):
        raise StimulusError(f"size must be an int or (H, W) pair of ints >= 1, got {size!r}")
    if isinstance(size, int):
        hw = (size, size)
    else:
        try:
            hw = tuple(int(s) for s in size)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise StimulusError(f"size must be an int or (H, W) pair of ints >= 1, got {size!r}") from None
        if len(hw) != 2 or any(int(s) != s for s in size):  # type: ignore[union-attr]
            raise StimulusError(f"size must be an int or (H, W) pair of ints >= 1, got {size!r}")
    if min(hw) < 1:
        raise StimulusError(f"size must be an int or (H, W) pair of ints >= 1, got {size!r}")
    if max(hw) > MAX_SIZE:
        raise StimulusError(f"size = {size!r} is too large: at most {MAX_SIZE} px per side")
    return hw  # type: ignore[return-value]


def infer_device(values: Sequence[object], device: torch.device | str | None) -> torch.device:
    """``device`` if given, else the device of the first tensor among ``values``, else CPU."""
    if device is not None:
        return torch.device(device)
    for v in values:
        if isinstance(v, Tensor):
            return v.device
    return torch.device("cpu")


def as_tensor(name: str, value: ParamLike, trailing: int | None, *, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Convert a parameter to a float tensor and check its rank.

    ``trailing=None``: a per-stimulus scalar, shape ``()`` or ``(B,)``.
    ``trailing=k``: a per-stimulus vector, shape ``(k,)`` or ``(B, k)``.
    """
    if isinstance(value, Tensor):
        t = value.to(device=device, dtype=dtype)
    else:
        try:
            t = torch.as_tensor(value, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError):
            raise StimulusError(f"{name} must be a number or a tensor of numbers, got {value!r}") from None
    if trailing is None:
        if t.dim() > 1:
            raise StimulusError(f"{name} must be a number or a 1-D tensor of shape (B,), got shape {tuple(t.shape)}")
    else:
        if t.dim() not in (1, 2) or t.shape[-1] != trailing:
            raise StimulusError(
                f"{name} must have shape ({trailing},) or (B, {trailing}), got shape {tuple(t.shape)}"
            )
    return t


def batch_size(shapes: dict[str, tuple[int, ...]]) -> int:
    """Broadcast the batch shapes of all parameters; ``ValueError`` naming them if impossible."""
    try:
        out = torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        batched = {k: v[0] for k, v in shapes.items() if len(v) == 1 and v[0] != 1}
        listing = ", ".join(f"{k}: {n}" for k, n in batched.items())
        raise StimulusError(
            f"parameter batch sizes do not broadcast ({listing}); every batched parameter must have "
            "the same length B (or length 1, or be a plain number)"
        ) from None
    return int(out[0]) if len(out) else 1


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _where(name: str, values: Tensor, idx: int) -> str:
    if values.dim() == 0 or values.numel() == 1:
        return name
    return f"{name}[{idx}]"


def check_finite(name: str, value: Tensor, *, vector: bool = False) -> None:
    """Raise if ``value`` has NaN or infinity anywhere (see :func:`check_range` for ``vector``)."""
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        if vector:
            rows = value.reshape(-1, value.shape[-1])
            idx = int(bad.reshape(rows.shape).any(dim=1).nonzero()[0, 0])
            shown: object = rows[idx].tolist()
            where = f"{name}[{idx}]" if value.dim() > 1 else name
        else:
            idx = int(bad.reshape(-1).nonzero()[0, 0])
            shown = float(value.reshape(-1)[idx])
            where = _where(name, value, idx)
        raise StimulusError(f"{where} = {shown} is not finite; {name} must be finite (no NaN or inf)")


def check_range(
    name: str, value: Tensor, low: float | Tensor, high: float | Tensor, allowed: str, unit: str = "", *, vector: bool = False
) -> None:
    """Raise if any element of ``value`` is outside ``[low, high]``.

    ``vector=True``: ``value`` is ``(k,)`` or ``(B, k)`` (a colour, a position) and the
    whole offending row is reported.
    """
    bad = (value < low) | (value > high)
    if bool(bad.any()):
        if vector:
            rows = value.reshape(-1, value.shape[-1])
            idx = int(bad.reshape(rows.shape).any(dim=1).nonzero()[0, 0])
            shown: object = [round(x, 6) for x in rows[idx].tolist()]
            where = f"{name}[{idx}]" if value.dim() > 1 else name
        else:
            idx = int(bad.reshape(-1).nonzero()[0, 0])
            shown = _fmt(float(value.reshape(-1)[idx]))
            where = _where(name, value, idx)
        raise StimulusError(f"{where} = {shown}{unit} is out of range: allowed {allowed}")


def check_integer(name: str, value: Tensor, allowed: str) -> None:
    """Raise if any element of ``value`` is not a whole number."""
    bad = value != value.round()
    if bool(bad.any()):
        idx = int(bad.reshape(-1).nonzero()[0, 0])
        where = _where(name, value, idx)
        raise StimulusError(f"{where} = {_fmt(float(value.reshape(-1)[idx]))} is not an integer: allowed {allowed}")


def check_curvature(curvature: Tensor, length: Tensor, max_turn: float) -> None:
    """Curvature is limited by the length: ``|curvature| * length <= max_turn`` (2 pi: a full circle)."""
    turn = (curvature * length).abs()
    bad = turn > max_turn * (1 + 1e-6)
    if bool(bad.any()):
        idx = int(bad.reshape(-1).nonzero()[0, 0])
        k = float(curvature.reshape(-1)[idx] if curvature.numel() > 1 else curvature)
        n = float(length.reshape(-1)[idx] if length.numel() > 1 else length)
        where = f"curvature[{idx}]" if turn.numel() > 1 else "curvature"
        raise StimulusError(
            f"{where} = {_fmt(k)} 1/px is out of range for length {_fmt(n)} px: allowed "
            f"|curvature| <= 2*pi/length = {_fmt(max_turn / n if n > 0 else math.inf)} 1/px "
            "(curvature * length = 2*pi is a full circle)"
        )
