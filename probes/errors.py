"""Exceptions the probes layer raises for mistakes a user can fix.

Every one derives from :class:`ProbesError`, so a caller (the command line, a notebook)
can catch the whole layer's user errors in one ``except``.
"""

from __future__ import annotations

__all__ = ["ProbesError", "ModelError", "LayerError", "WeightsError", "ImageError"]


class ProbesError(Exception):
    """Base class of the probes layer's user-facing errors (one line, no traceback needed)."""


class ModelError(ProbesError, ValueError):
    """An unknown model name, a model factory that does not build a model, a bad device."""


class LayerError(ProbesError, ValueError):
    """An unknown layer, channel or unit, or a layer whose maps are too small for the request."""


class WeightsError(ProbesError, RuntimeError):
    """A weights file is missing, unreadable, of the wrong architecture, or fails its checksum."""


class ImageError(ProbesError, ValueError):
    """An input image (file, folder, array) that cannot be read or has the wrong shape."""
