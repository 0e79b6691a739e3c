"""Turn one batch of suite parameters into keyword arguments of ``stimuli.render``.

Suite parameters are the renderer's own (``orientation``, ``curvature``, ``length``,
``width``, ``rounding``, ``fill``, ``ticks``, ``tick_length``, ``tick_side``, ``fg``,
``bg``) plus colour parameters that make colour sweeps a numeric coordinate:

* ``fg_hue``/``bg_hue`` (degrees, 0 = red, 120 = green, 240 = blue) with optional
  ``*_saturation`` and ``*_value`` in [0, 1] (default 1): HSV colours;
* ``fg_r``, ``fg_g``, ``fg_b`` (and ``bg_*``) in [0, 1]: single RGB components, the others
  taken from the fixed ``fg``/``bg`` (defaults: black on white);
* ``bg = "complement"``: background = ``1 - fg`` per pixel colour (for full-saturation,
  full-value HSV colours this is the hue + 180 degrees).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from stimuli.color import hue_to_rgb
from stimuli.kinds import CHOICES, PARAMS

__all__ = ["render_kwargs"]

_DEFAULT_FG = (0.0, 0.0, 0.0)
_DEFAULT_BG = (1.0, 1.0, 1.0)


def _colour(side: str, params: Mapping[str, np.ndarray], fixed: Mapping[str, Any], n: int, fg: np.ndarray | None) -> np.ndarray:
    def get(key: str, default: float) -> np.ndarray:
        if key in params:
            return np.asarray(params[key], dtype=np.float64)
        return np.full(n, float(fixed.get(key, default)))

    if f"{side}_hue" in params or f"{side}_hue" in fixed:
        rgb = hue_to_rgb(get(f"{side}_hue", 0.0), get(f"{side}_saturation", 1.0), get(f"{side}_value", 1.0),
                         dtype=torch.float64)
        return np.broadcast_to(rgb.numpy(), (n, 3)).copy()
    base = fixed.get(side, _DEFAULT_FG if side == "fg" else _DEFAULT_BG)
    if base == "complement":
        assert fg is not None
        return 1.0 - fg
    rgb = np.tile(np.asarray(base, dtype=np.float64), (n, 1))
    for i, c in enumerate("rgb"):
        key = f"{side}_{c}"
        if key in params or key in fixed:
            rgb[:, i] = get(key, 0.0)
    return rgb


def _to_device(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """Host tensor -> ``device``; to CUDA through pinned memory without blocking the host.

    A plain copy from pageable memory would wait for the stream's queued work (a host
    sync per parameter per batch); pinned memory from PyTorch's caching host allocator is
    kept until the copy has run, so the asynchronous copy is safe.
    """
    if device is None or torch.device(device).type != "cuda":
        return t.to(device) if device is not None else t
    return t.pin_memory().to(device, non_blocking=True)


def render_kwargs(
    params: Mapping[str, np.ndarray],
    fixed: Mapping[str, Any],
    n: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:
    """Keyword arguments for ``stimuli.render`` (without kind, position, size, device, dtype).

    Args:
        params: swept values of this batch, float64 arrays of length ``n``.
        fixed: the suite's fixed parameters.
        n: batch size.

    Returns:
        numeric parameters as ``(n,)`` tensors (swept) or Python numbers (fixed), and
        ``fg``/``bg`` as ``(n, 3)`` tensors or RGB tuples.
    """
    out: dict[str, Any] = {}
    for decl in PARAMS:
        key = decl.name
        if key in params:
            t = _to_device(torch.as_tensor(np.asarray(params[key]), dtype=dtype), device)
            out[key] = t.round().to(torch.int64) if decl.integer else t
        elif key in fixed:
            out[key] = fixed[key]
    for c in CHOICES:
        if c.name in fixed:
            out[c.name] = fixed[c.name]
    colour_swept = any(k.startswith(("fg_", "bg_")) for k in params)
    if colour_swept or any(k.startswith(("fg_", "bg_")) for k in fixed) or fixed.get("bg") == "complement":
        fg = _colour("fg", params, fixed, n, None)
        bg = _colour("bg", params, fixed, n, fg)
        if colour_swept:
            out["fg"] = _to_device(torch.as_tensor(fg, dtype=dtype), device)
            out["bg"] = _to_device(torch.as_tensor(bg, dtype=dtype), device)
        else:
            out["fg"], out["bg"] = tuple(fg[0].tolist()), tuple(bg[0].tolist())
    else:
        if "fg" in fixed:
            out["fg"] = tuple(fixed["fg"])
        if "bg" in fixed:
            out["bg"] = tuple(fixed["bg"])
    return out
