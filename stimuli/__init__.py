"""curvebench's renderer: batched, differentiable synthetic stimuli of the article.

``render(kind, ...)`` returns ``(B, 3, H, W)`` images in ``[0, 1]``: lines, curves
(circular arcs), angles and rounded angles, filled curves, colours, combing ticks.
See :func:`stimuli.draw.render` and ``docs/stimuli.md`` for the conventions.
"""

from .color import hue_to_rgb
from .draw import (
    DEFAULT_LENGTH,
    DEFAULT_TICK_LENGTH,
    DEFAULT_WIDTH,
    KINDS,
    MAX_TURN,
    TICK_SIDES,
    Renderer,
    max_curvature,
    render,
)

__all__ = [
    "DEFAULT_LENGTH",
    "DEFAULT_TICK_LENGTH",
    "DEFAULT_WIDTH",
    "KINDS",
    "MAX_TURN",
    "TICK_SIDES",
    "Renderer",
    "hue_to_rgb",
    "max_curvature",
    "render",
]
