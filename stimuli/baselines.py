"""Reference rasterisers for the renderer benchmark: PIL (4x supersampled) and cairo.

Both draw the curve :func:`stimuli.render` draws (same centre of curvature, arc length,
butt caps, width, black on white) one image at a time and return the image the way
the pipeline consumes it: a ``(3, H, W)`` float32 numpy array in ``[0, 1]``. They exist
for timing and for a cross-check of the geometry, not as renderers of the package.
"""

from __future__ import annotations

import math

import numpy as np


def _arc_screen(orientation: float, curvature: float, length: float, x: float, y: float) -> tuple[float, float, float, float, float]:
    """Centre ``(cx, cy)``, radius and start/end angles (rad, clockwise on screen, i.e. +x toward +y)."""
    theta = math.radians(orientation)
    r = 1.0 / curvature
    cx, cy = x + r * math.cos(theta), y - r * math.sin(theta)
    mid = math.atan2(y - cy, x - cx)
    half = 0.5 * curvature * length
    return cx, cy, r, mid - half, mid + half


def _line_ends(orientation: float, length: float, x: float, y: float) -> tuple[float, float, float, float]:
    theta = math.radians(orientation)
    tx, ty = math.sin(theta), math.cos(theta)  # tangent on screen (perpendicular to the normal)
    h = 0.5 * length
    return x - h * tx, y - h * ty, x + h * tx, y + h * ty


def draw_pil(orientation: float, curvature: float, length: float, width: float, x: float, y: float, size: int = 224, supersample: int = 4) -> np.ndarray:
    """PIL: draw at ``supersample`` x resolution, then LANCZOS-downsize (the classic way).

    PIL strokes have integer widths; the width is rounded at the supersampled scale.
    """
    from PIL import Image, ImageDraw

    s = supersample
    img = Image.new("RGB", (size * s, size * s), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    wpx = max(1, round(width * s))
    if abs(curvature) * length < 1e-6:
        x0, y0, x1, y1 = _line_ends(orientation, length, x, y)
        draw.line([(x0 * s, y0 * s), (x1 * s, y1 * s)], fill=(0, 0, 0), width=wpx)
    else:
        if curvature < 0:
            orientation, curvature = orientation + 180.0, -curvature
        cx, cy, r, a0, a1 = _arc_screen(orientation, curvature, length, x, y)
        ro = (r + 0.5 * width) * s  # PIL arcs grow inward from the bounding box
        box = [cx * s - ro, cy * s - ro, cx * s + ro, cy * s + ro]
        draw.arc(box, math.degrees(a0), math.degrees(a1), fill=(0, 0, 0), width=wpx)
    img = img.resize((size, size), Image.LANCZOS)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


class CairoCanvas:
    """A reusable cairo surface (created once, as a fast caller would)."""

    def __init__(self, size: int = 224) -> None:
        import cairocffi as cairo

        self._cairo = cairo
        self.size = size
        self.surface = cairo.ImageSurface(cairo.FORMAT_RGB24, size, size)
        self.ctx = cairo.Context(self.surface)

    def draw(self, orientation: float, curvature: float, length: float, width: float, x: float, y: float) -> np.ndarray:
        """Draw one curve with cairo's native anti-aliasing; returns ``(3, H, W)`` float32 in [0, 1]."""
        ctx = self.ctx
        ctx.set_source_rgb(1.0, 1.0, 1.0)
        ctx.paint()
        ctx.set_source_rgb(0.0, 0.0, 0.0)
        ctx.set_line_width(width)
        ctx.set_line_cap(self._cairo.LINE_CAP_BUTT)
        ctx.new_path()
        if abs(curvature) * length < 1e-6:
            x0, y0, x1, y1 = _line_ends(orientation, length, x, y)
            ctx.move_to(x0, y0)
            ctx.line_to(x1, y1)
        else:
            if curvature < 0:
                orientation, curvature = orientation + 180.0, -curvature
            cx, cy, r, a0, a1 = _arc_screen(orientation, curvature, length, x, y)
            ctx.arc(cx, cy, r, a0, a1)
        ctx.stroke()
        self.surface.flush()
        buf = np.frombuffer(self.surface.get_data(), dtype=np.uint8)
        stride = self.surface.get_stride()
        bgrx = buf.reshape(self.size, stride // 4, 4)[:, : self.size]
        # FORMAT_RGB24 is native-endian 32-bit xRGB: bytes B, G, R, x on little-endian machines.
        return bgrx[:, :, 2::-1].transpose(2, 0, 1).astype(np.float32) * (1.0 / 255.0)
