"""The curve-family files of ``curvebench discover`` (``family.nc``) that a sweep's figures may use.

A command that takes ``--channels`` opens them here, with the one opener
(:func:`suites.results.files.open_file`), and hands them to the analysis inside the
:class:`~suites.specs.channel_selection.ChannelSelection` (the analysis opens no file):
the file given (``--channels FAMILY.nc``), or for ``auto`` every candidate beside the
results and in ``./results``. Refusals are one line naming the option and the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import xarray as xr

from suites.errors import ResultsFileError
from suites.file_kinds import CURVE_FAMILY_KIND
from suites.specs.channel_selection import ChannelSelection

__all__ = ["open_family", "family_candidates", "with_family_files"]


def open_family(path: str | Path, option: str = "--channels") -> xr.Dataset:
    """The family file at ``path``, loaded.

    Raises:
        FileNotFoundError: no such file.
        ResultsFileError: not a family file, or without the ``detector``, ``layer`` and
            ``channel`` of its units.
    """
    from suites.results.files import open_file

    fam = open_file(path, CURVE_FAMILY_KIND, option=option)
    if "detector" not in fam or "layer" not in fam.coords or "channel" not in fam.coords:
        raise ResultsFileError(f"{option}: {path} lacks the detector, layer or channel of its units")
    return fam


def family_candidates(folders: Iterable[str | Path]) -> list[tuple[Path, xr.Dataset]]:
    """Readable family files in ``folders`` (``FOLDER/family.nc``, ``FOLDER/discover-*/family.nc``), newest first.

    ``curvebench discover`` writes to ``results/discover-<model>-<time>/`` by default.
    Files that cannot be read as family files are passed over.
    """
    found: list[tuple[float, Path, xr.Dataset]] = []
    seen: set[Path] = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in [folder / "family.nc", *sorted(folder.glob("discover-*/family.nc"))]:
            if not p.is_file() or p.resolve() in seen:
                continue
            seen.add(p.resolve())
            try:
                found.append((p.stat().st_mtime, p, open_family(p)))
            except (ValueError, FileNotFoundError):
                continue
    found.sort(key=lambda t: -t[0])
    return [(p, ds) for _, p, ds in found]


def with_family_files(selection: ChannelSelection, folders: Iterable[str | Path]) -> ChannelSelection:
    """``selection`` with its family files opened: the one given (mode ``file``), or ``auto``'s candidates in ``folders``."""
    if selection.mode == "file":
        return replace(selection, families=((Path(selection.path), open_family(selection.path)),))
    if selection.mode == "auto":
        return replace(selection, families=tuple(family_candidates(folders)))
    return selection
