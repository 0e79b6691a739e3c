"""Receptive-field geometry measured from a network itself (for wrapped modules without a :class:`Geometry`).

A unit depends on an input pixel exactly when a NaN placed there reaches the unit:
convolutions, batch norm, (clamped) ReLUs, pooling and padding all propagate NaN,
whatever the weights are (no dead-ReLU blind spots, unlike gradients). So for one
axis, an input whose rows ``0..p`` are NaN makes output row ``j`` NaN exactly when
unit ``j``'s first input row ``first_j <= p``; rows ``p..n-1`` NaN tell whether its
last row ``last_j >= p``. Both are monotone in ``p``, so a binary search finds
``first_j`` and ``last_j`` for two neighbouring units in ``ceil(log2 n)`` batched
forward passes (8 images each: 2 units x 2 ends x 2 axes). From them:

* ``stride = centre_{j+1} - centre_j`` with ``centre_j = (first_j + last_j) / 2``
  (pixel index, continuous coordinate ``+ 0.5`` as in :mod:`probes.receptive`);
* ``offset = centre_j - stride * j`` (pixel index of unit 0's centre);
* ``size = last_j - first_j + 1`` (the footprint; the whole receptive field when the
  units are not clipped by the image border).

The two units count as unclipped when their footprints are copies of each other shifted
by a positive whole number of pixels. When they are not (receptive field wider than
the input), the input is enlarged (doubled, up to 4 times) until they do not;
stride and size come from there, and the offset at the real size from the unclipped
end of the first (or last) unit: its last (first) pixel minus (plus) half the
receptive field. :attr:`MeasuredField.clipped` records that case (slower: the
larger inputs cost most of the time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from probes.errors import LayerError
from probes.receptive import ReceptiveField
from probes.taps import run_until


@dataclass(frozen=True)
class MeasuredField:
    """Measured geometry of one layer at one input size: a :class:`ReceptiveField` per axis.

    Attributes:
        rows, cols: :class:`~probes.receptive.ReceptiveField` along y and x.
        clipped: the footprints reached the border at this size, so stride, size and
            offset were measured on a larger input (see module docstring).
    """

    rows: ReceptiveField
    cols: ReceptiveField
    clipped: bool = False


def _map(net: nn.Module, module_name: str, x: torch.Tensor, layer: str) -> torch.Tensor:
    try:
        out = run_until(net, x, [module_name])[module_name]
    except RuntimeError as exc:  # e.g. a pooling window larger than its input
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LayerError(f"layer {layer!r}: the network fails on a {x.shape[-2]}x{x.shape[-1]} px input before "
                         f"reaching it ({first}); use a larger input or a shallower layer") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise LayerError(f"layer {layer!r} gives {shape}, not (B, C, H, W) maps: it has no units to place "
                         f"under a stimulus; choose a convolutional layer")
    return out


def _footprints(net: nn.Module, module_name: str, layer: str, h: int, w: int,
                searches: list[tuple[int, int, str]], mid: tuple[int, int],
                device: torch.device, dtype: torch.dtype) -> dict[tuple[int, int, str], int]:
    """``{(axis, unit, "first"|"last"): pixel}`` for each search (axis 0 rows, 1 cols).

    A row search reads its unit in map column ``mid[1]``, a column search in row ``mid[0]``.
    """
    n = (h, w)
    # first: smallest p with pred(p) = "NaN in 0..p reaches unit"; last: largest p with "NaN in p..n-1 reaches unit"
    bounds = {s: [0, n[s[0]] - 1] for s in searches}
    mid_r, mid_c = mid
    for _ in range(math.ceil(math.log2(max(h, w))) + 1):
        active = [s for s in searches if bounds[s][0] < bounds[s][1]]
        if not active:
            break
        x = torch.zeros(len(active), 3, h, w, device=device, dtype=dtype)
        probes_at = []
        for b, (axis, j, end) in enumerate(active):
            lo, hi = bounds[(axis, j, end)]
            p = (lo + hi) // 2 if end == "first" else (lo + hi + 1) // 2
            sl = slice(0, p + 1) if end == "first" else slice(p, None)
            if axis == 0:
                x[b, :, sl, :] = float("nan")
            else:
                x[b, :, :, sl] = float("nan")
            probes_at.append(p)
        with torch.no_grad():
            out = _map(net, module_name, x, layer)
        for b, (axis, j, end) in enumerate(active):
            unit = out[b, :, j, mid_c] if axis == 0 else out[b, :, mid_r, j]
            hit = bool(torch.isnan(unit).any())
            p, key = probes_at[b], (axis, j, end)
            if end == "first":
                bounds[key] = [bounds[key][0], p] if hit else [p + 1, bounds[key][1]]
            else:
                bounds[key] = [p, bounds[key][1]] if hit else [bounds[key][0], p - 1]
    return {s: bounds[s][0] for s in searches}


def _axis(layer: str, n: int, grid: int, j1: int, j2: int, fp: dict, axis: int) -> tuple[ReceptiveField | None, bool]:
    """The axis's field from two units' footprints, or ``(None, True)`` when they reach the border."""
    a1, b1 = fp[(axis, j1, "first")], fp[(axis, j1, "last")]
    a2, b2 = fp[(axis, j2, "first")], fp[(axis, j2, "last")]
    # neighbours whose footprints are shifted copies of each other are not clipped by the border
    if j1 == j2 or a2 - a1 != b2 - b1 or a2 - a1 <= 0:
        return None, True
    stride = a2 - a1
    return ReceptiveField(layer, n, grid, stride, b1 - a1 + 1, (a1 + b1) / 2 - stride * j1), False


def measure_field(net: nn.Module, module_name: str, layer: str, h: int, w: int, *,
                  device: torch.device, dtype: torch.dtype, max_doublings: int = 4) -> MeasuredField:
    """Measure stride, footprint and unit-0 centre of the maps of submodule ``module_name`` on an ``h`` x ``w`` input.

    ``net`` gets network-space inputs (the caller's transform is affine, so NaN stays
    NaN). Raises :class:`~probes.errors.LayerError` when the submodule's output is not a
    4-D map or the network fails at this size.
    """
    with torch.no_grad():
        shape = _map(net, module_name, torch.zeros(1, 3, h, w, device=device, dtype=dtype), layer).shape
    gh, gw = int(shape[-2]), int(shape[-1])
    size_h, size_w, clipped = h, w, False
    for attempt in range(max_doublings + 1):
        grid_h, grid_w = (gh, gw) if attempt == 0 else tuple(int(v) for v in _map(
            net, module_name, torch.zeros(1, 3, size_h, size_w, device=device, dtype=dtype), layer).shape[-2:])
        r1, c1 = max((grid_h - 1) // 2, 0), max((grid_w - 1) // 2, 0)
        r2, c2 = min(r1 + 1, grid_h - 1), min(c1 + 1, grid_w - 1)
        searches = [(axis, j, end) for axis, js in ((0, (r1, r2)), (1, (c1, c2))) for j in js
                    for end in ("first", "last")]
        fp = _footprints(net, module_name, layer, size_h, size_w, searches, (r1, c1), device, dtype)
        rows, clip_r = _axis(layer, size_h, grid_h, r1, r2, fp, 0)
        cols, clip_c = _axis(layer, size_w, grid_w, c1, c2, fp, 1)
        if rows is not None and cols is not None:
            break
        clipped = True
        size_h, size_w = 2 * size_h, 2 * size_w
    else:
        raise LayerError(f"layer {layer!r}: its receptive field is wider than {size_h // 2}x{size_w // 2} px (or its "
                         f"maps have a single unit), so its geometry cannot be measured; give the model a Geometry")
    if clipped:  # stride and size from the larger input; the offset from an unclipped end on the real one
        mid = (max((gh - 1) // 2, 0), max((gw - 1) // 2, 0))
        searches = [(0, 0, "last"), (0, gh - 1, "first"), (1, 0, "last"), (1, gw - 1, "first")]
        fp = _footprints(net, module_name, layer, h, w, searches, mid, device, dtype)
        fields = []
        for axis, big, n, g in ((0, rows, h, gh), (1, cols, w, gw)):
            half = (big.size - 1) / 2
            offset = big.offset  # last resort: every unit reads the whole axis
            if fp[(axis, 0, "last")] < n - 1:
                offset = fp[(axis, 0, "last")] - half
            elif fp[(axis, g - 1, "first")] > 0:
                offset = fp[(axis, g - 1, "first")] + half - big.stride * (g - 1)
            fields.append(ReceptiveField(layer, n, g, big.stride, big.size, offset))
        rows, cols = fields
    return MeasuredField(rows, cols, clipped)


Measure = Callable[[str, int, int], MeasuredField]
