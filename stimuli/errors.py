"""The renderer's user-facing error: a parameter outside what the renderer can draw."""

from __future__ import annotations

__all__ = ["StimulusError"]


class StimulusError(ValueError):
    """A stimulus parameter that is not finite, out of range, or of the wrong shape.

    The message names the parameter, the bad value and what is allowed.
    """
