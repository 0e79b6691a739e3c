"""curvebench's renderer: batched, differentiable synthetic stimuli of the article.

``render(kind, ...)`` returns ``(B, 3, H, W)`` images in ``[0, 1]``: lines, curves
(circular arcs), angles and rounded angles, filled curves, colours, combing ticks.
See :func:`stimuli.draw.render` and ``docs/stimuli.md`` for the conventions.

The names below are loaded on first use (PEP 562), so ``import stimuli.cli`` (the
``curvebench`` parser) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# public name -> submodule that defines it
_EXPORTS = {
    "hue_to_rgb": "color",
    **dict.fromkeys(
        ("DEFAULT_LENGTH", "DEFAULT_TICK_LENGTH", "DEFAULT_WIDTH", "KINDS", "MAX_TURN", "TICK_SIDES",
         "Renderer", "max_curvature", "render"),
        "draw",
    ),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
