"""Contact sheets: a grid of stimuli cropped around their position, like the article's strips.

The article shows its stimuli above each heatmap as a tight grid of glyphs: orientation
along x, curvature along y (straight line at the top). :func:`contact_sheet` lays out
a ``(rows, cols)`` grid of renders the same way, as one RGB image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from .errors import StimulusError


def crop_around(images: Tensor, positions: Tensor, cell: int) -> Tensor:
    """Crop ``cell x cell`` pixels centred on each ``(x, y)`` position (px); outside is white.

    Args:
        images: ``(B, 3, H, W)`` in ``[0, 1]``.
        positions: ``(B, 2)`` px, ``(x, y)``.
        cell: side of the crop (px).

    Returns:
        ``(B, 3, cell, cell)``.
    """
    B, C, H, W = images.shape
    pad = cell
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad), value=1.0)
    x0 = (positions[:, 0] - cell / 2).round().long() + pad
    y0 = (positions[:, 1] - cell / 2).round().long() + pad
    offs = torch.arange(cell, device=images.device)
    rows = (y0[:, None] + offs)[:, :, None]
    cols = (x0[:, None] + offs)[:, None, :]
    b = torch.arange(B, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[b, rows, cols].permute(0, 3, 1, 2)


def contact_sheet(cells: Tensor, rows: int, cols: int, gap: int = 0, gap_value: float = 1.0) -> np.ndarray:
    """Tile ``rows * cols`` cells (row-major, ``(N, 3, c, c)``) into an ``(H, W, 3)`` uint8 image."""
    n, _, ch, cw = cells.shape
    if n != rows * cols:
        raise StimulusError(f"contact_sheet: got {n} cells for a {rows} x {cols} grid")
    H, W = rows * ch + (rows - 1) * gap, cols * cw + (cols - 1) * gap
    sheet = torch.full((3, H, W), gap_value, dtype=torch.float32)
    for r in range(rows):
        for c in range(cols):
            y, x = r * (ch + gap), c * (cw + gap)
            sheet[:, y : y + ch, x : x + cw] = cells[r * cols + c].float().cpu()
    return (sheet.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def default_cell(length: float, width: float, tick_reach: float) -> int:
    """Cell side (px) that holds any stimulus of this size whatever its orientation and curvature."""
    return int(math.ceil(length + width + 2 * tick_reach + 6))
