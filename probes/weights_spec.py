"""Which weights a model is built with: the packaged default, a file, or random initialisation.

One value, :class:`WeightsSpec`, parsed once from the text a user writes (``--weights``,
``[model].weights`` of a suite, a results file's ``weights`` attribute) and passed as it
is everywhere else, so no module compares strings against a sentinel::

    WeightsSpec.parse(None)            # default: the cached download (trained networks)
    WeightsSpec.parse("random")        # random initialisation (seeded by the caller)
    WeightsSpec.parse("w/inception5h.pth")   # this file

``spec.text()`` gives the text back (``None``, ``"random"`` or the path), which is what
results files and run options store. This module imports neither torch nor numpy.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

__all__ = ["WeightsSpec", "WeightsLike", "DEFAULT", "RANDOM", "RANDOM_TEXT", "sha256sum"]

#: The text that asks for random weights on the command line and in suite files.
RANDOM_TEXT = "random"


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class WeightsSpec:
    """Weights to build a model with.

    Attributes:
        kind: ``"default"`` (the registry's file for trained networks, e.g. the cached
            ``inception5h.pth``; nothing for models built from code), ``"file"`` (``path``)
            or ``"random"`` (random initialisation; the caller seeds torch).
        path: the weights file when ``kind == "file"``, else None.
    """

    kind: Literal["default", "file", "random"] = "default"
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("default", "file", "random"):
            raise ValueError(f"weights: kind must be default, file or random, got {self.kind!r}")
        if (self.kind == "file") != (self.path is not None):
            raise ValueError("weights: a path is given exactly when kind is 'file'")

    @classmethod
    def parse(cls, value: WeightsLike) -> WeightsSpec:
        """``None``/``""`` -> default, ``"random"`` -> random, other text or a path -> that file."""
        if isinstance(value, WeightsSpec):
            return value
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT
        if isinstance(value, str) and value.strip() == RANDOM_TEXT:
            return RANDOM
        if isinstance(value, (str, os.PathLike)):
            return cls("file", Path(value).expanduser())
        raise ValueError(f"weights: expected a file path, 'random' or nothing, got {value!r}")

    @property
    def is_default(self) -> bool:
        return self.kind == "default"

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    def text(self) -> str | None:
        """The user's spelling: None (default), ``"random"`` or the file path."""
        if self.kind == "file":
            return str(self.path)
        return RANDOM_TEXT if self.kind == "random" else None

    def check_exists(self) -> None:
        """Raise ``FileNotFoundError`` when a weights file is named but absent."""
        if self.path is not None and not self.path.is_file():
            if self.path.is_dir():
                raise FileNotFoundError(f"weights: {self.path} is a folder, not a weights file (give the file, or 'random')")
            raise FileNotFoundError(f"weights file not found: {self.path}")

    def file_sha256(self) -> str:
        """SHA-256 of the named file; ``""`` for default or random weights."""
        return sha256sum(self.path) if self.path is not None else ""

    def __str__(self) -> str:
        return self.text() or "default"


DEFAULT = WeightsSpec("default")
RANDOM = WeightsSpec("random")

#: What functions that take weights accept; they parse it once with :meth:`WeightsSpec.parse`.
WeightsLike = Union[WeightsSpec, str, os.PathLike, None]
