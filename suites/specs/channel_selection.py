"""Which channels a command works on: the one ``--channels`` vocabulary of plot, report and optimize.

A selection is one of

- ``auto``: the command picks, in a stated way (for sweep figures: the article's family of
  the layer, else a discovered family for the same network, else the channels that pass
  the curve-detector test on the sweep itself; see :mod:`suites.analysis.channel_choice`);
- ``all``: every channel of the layer;
- ``family``: the layer's known curve family (the article's, ``probes.article_families``);
- channel ids, ``3,17,42``;
- ``FAMILY.nc``: the curve detectors of a ``curvebench discover`` family file.

Commands accept a subset (``optimize`` has no ``auto``); :func:`parse_channels` refuses the
others in one line that names the text and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MODES", "ChannelSelection", "parse_channels"]

#: Every form a selection can take, in the order the help text lists them.
MODES: tuple[str, ...] = ("auto", "all", "family", "ids", "file")

_WORDS = {"auto": "auto", "all": "all", "family": "family", "ids": "channel ids like 3,17,42",
          "file": "a FAMILY.nc of `curvebench discover`"}


@dataclass(frozen=True)
class ChannelSelection:
    """A parsed ``--channels`` value.

    Attributes:
        mode: one of :data:`MODES`.
        ids: the channel ids (mode ``ids``), in the order given.
        path: the family file (mode ``file``).
        families: discovered family files, opened, as ``(path, dataset)`` pairs, newest
            first: the file given (mode ``file``), or the candidates ``auto`` may use
            (``family.nc``, ``discover-*/family.nc`` beside the results and in
            ``./results``). Set by the command that opens files
            (:func:`suites.results.family_file.with_family_files`), not parsed: the analysis
            works on datasets and opens none.
    """

    mode: str = "auto"
    ids: tuple[int, ...] = ()
    path: Path | None = None
    families: tuple[tuple[Path, Any], ...] = field(default_factory=tuple, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"channel selection: mode {self.mode!r} is not one of {', '.join(MODES)}")

    def describe(self) -> str:
        """The selection as the user would write it (``"3,17,42"``, ``"auto"``, the file's path)."""
        if self.mode == "ids":
            return ",".join(str(c) for c in self.ids)
        if self.mode == "file":
            return str(self.path)
        return self.mode


def allowed_text(allowed: tuple[str, ...] = MODES) -> str:
    """``"auto, all, family, channel ids like 3,17,42 or a FAMILY.nc of `curvebench discover`"``."""
    words = [_WORDS[m] for m in allowed]
    return ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1]


def parse_channels(text: str, allowed: tuple[str, ...] = MODES) -> ChannelSelection:
    """Parse a ``--channels`` value; ``allowed``: the modes the command accepts.

    Raises:
        ValueError: one line naming ``text`` and the allowed forms (an unknown word, a
            negative or repeated id, an empty list, a form the command does not take).
    """
    s = str(text).strip()
    if s in ("auto", "all", "family"):
        mode, sel = s, ChannelSelection(mode=s)
    elif s.lower().endswith(".nc"):
        mode, sel = "file", ChannelSelection(mode="file", path=Path(s))
    else:
        parts = [p.strip() for p in s.split(",") if p.strip()]
        try:
            ids = tuple(int(p) for p in parts)
        except ValueError:
            ids = ()
        if not ids:
            raise ValueError(f"expected {allowed_text(allowed)}, got {text!r}")
        bad = [c for c in ids if c < 0]
        if bad:
            raise ValueError(f"channel ids are >= 0, got {bad[0]} in {text!r}")
        twice = [c for c in ids if ids.count(c) > 1]
        if twice:
            raise ValueError(f"channel {twice[0]} is given twice in {text!r}")
        mode, sel = "ids", ChannelSelection(mode="ids", ids=ids)
    if mode not in allowed:
        raise ValueError(f"{text!r} is not allowed here; expected {allowed_text(allowed)}")
    return sel
