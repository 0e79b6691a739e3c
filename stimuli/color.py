"""Colour helpers for colour sweeps (HSV with hue in degrees -> RGB), built on kornia."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def hue_to_rgb(
    hue: float | Tensor,
    saturation: float | Tensor = 1.0,
    value: float | Tensor = 1.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """RGB in ``[0, 1]`` for hue in degrees (0 = red, 120 = green, 240 = blue; wraps every 360).

    ``saturation`` and ``value`` are in ``[0, 1]``. Inputs broadcast to ``(B,)``;
    returns ``(B, 3)`` of ``dtype``, ready for ``render(fg=..., bg=...)``. The
    complementary colour of hue ``h`` is ``hue_to_rgb(h + 180)``. This is the project's
    one HSV conversion (suite colour sweeps use it too).
    """
    from kornia.color import hsv_to_rgb

    h, s, v = (torch.as_tensor(x, dtype=dtype, device=device) for x in (hue, saturation, value))
    h, s, v = torch.broadcast_tensors(h.reshape(-1), s.reshape(-1), v.reshape(-1))
    from ._params import check_finite, check_range

    check_finite("hue", h)
    check_range("saturation", s, 0.0, 1.0, "0 <= saturation <= 1")
    check_range("value", v, 0.0, 1.0, "0 <= value <= 1")
    hsv = torch.stack([torch.deg2rad(h.remainder(360.0)), s, v], dim=-1)  # kornia: H in radians [0, 2pi]
    rgb = hsv_to_rgb(hsv[:, :, None, None])[:, :, 0, 0]
    return rgb.clamp(0.0, 1.0)
