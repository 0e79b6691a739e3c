"""Open any file curvebench writes, by its kind (the one opener).

Every file curvebench writes names its kind in the attribute ``file_kind``
(:mod:`suites.file_kinds`). :func:`open_file` is the one opener: it reads the kind, refuses
a file of another kind than the caller wants in one line, and returns the dataset
(results files: only the committed rows, verified, as :func:`suites.results.reading.open_results`;
the other kinds: loaded into memory). Files written before ``file_kind`` existed carry
``kind`` instead (the file kind, or the stimulus kind in results files) and open the same way.

Example::

    from suites.results.files import open_file
    ds = open_file("results/curves.h5")                      # whatever kind it is
    stats = open_file("stats.nc", STATS_KIND, option="--stats")  # refused unless a statistics file
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from suites.errors import ResultsFileError
from suites.file_kinds import CURVE_FAMILY_KIND, DISCOVER_RESPONSES_KIND, FILE_KINDS, RESULTS_KIND, STATS_KIND
from suites.results.attributes import file_kind

__all__ = ["read_attrs", "open_file", "load_stats", "with_family", "open_for_report"]


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def read_attrs(path: str | os.PathLike, option: str = "file") -> dict[str, Any]:
    """The top-level attributes of an HDF5/netCDF file, without reading its data.

    Raises:
        FileNotFoundError: no such file, or not a regular file
            (:class:`suites.data_files.DataFileError`, names ``option``).
        ResultsFileError: HDF5 cannot read it (names ``option``).
    """
    import h5py

    from suites.data_files import check_data_file

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{option}: file not found: {p}")
    check_data_file(p, option)  # a regular file (a FIFO is never opened), recorded as an input
    try:
        with h5py.File(p, "r", locking=False) as f:
            return {k: _text(v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise ResultsFileError(f"{option}: {p} is not a curvebench results file (not a netCDF file HDF5 can read: "
                               f"{type(exc).__name__})") from None


def _describe(kinds: Sequence[str]) -> str:
    return " or ".join(FILE_KINDS.get(k, k) for k in kinds)


def open_file(path: str | os.PathLike, kinds: str | Sequence[str] | None = None, *, option: str = "file") -> xr.Dataset:
    """Open a file curvebench wrote, of one of ``kinds`` (None: any kind it writes).

    Args:
        path: the file.
        kinds: a file kind of :mod:`suites.file_kinds`, several, or None.
        option: the option or argument that named the file, for error messages.

    Returns:
        A results file: lazily, only its committed rows (:func:`~suites.results.reading.open_results`);
        any other kind: the dataset loaded into memory (the file is closed).

    Raises:
        FileNotFoundError: no such file.
        ResultsFileError: not readable, or not of the wanted kind (names both).
    """
    p = Path(path)
    attrs = read_attrs(p, option)
    kind = file_kind(attrs)
    wanted = list(FILE_KINDS) if kinds is None else [kinds] if isinstance(kinds, str) else list(kinds)
    if kind not in wanted:
        raise ResultsFileError(f"{option}: {p} is not {_describe(wanted)} (file_kind={kind!r})")
    if kind == RESULTS_KIND:
        from suites.results.reading import open_results

        return open_results(p)
    try:
        with xr.open_dataset(p, engine="h5netcdf") as ds:
            return ds.load()
    except (OSError, ValueError) as exc:
        raise ResultsFileError(f"{option}: {p} is not a netCDF file curvebench wrote ({type(exc).__name__})") from None


def load_stats(path: str | os.PathLike, option: str = "stats") -> xr.Dataset:
    """A statistics file written by :func:`suites.running.dataset_stats.save_stats` (``open_file(path, STATS_KIND)``)."""
    return open_file(path, STATS_KIND, option=option)


def with_family(responses: xr.Dataset, family: xr.Dataset) -> xr.Dataset:
    """The discover responses with the family file's per-unit results added as ``family_<name>`` on dim ``family_unit``."""
    if file_kind(family.attrs) != CURVE_FAMILY_KIND:
        raise ResultsFileError(f"not a curve-family file of curvebench discover (file_kind={file_kind(family.attrs)!r})")
    names = {str(v): f"family_{v}" for v in family.variables if v != "unit"}
    fam = family.rename(names).rename({"unit": "family_unit"}) if "unit" in family.dims else family.rename(names)
    out = xr.merge([responses, fam], combine_attrs="override")
    out.attrs = {**dict(responses.attrs), "family_test": str(family.attrs.get("test", ""))}
    return out


def open_for_report(path: str | Path) -> xr.Dataset:
    """What ``curvebench report`` shows of ``path``: a sweep results file, an optimize file,
    or a discover output (its folder, responses.nc or family.nc).

    A discover ``responses.nc`` is joined with the ``family.nc`` beside it when there is one.
    """
    p = Path(path)
    if p.is_dir():
        if not (p / "responses.nc").is_file():
            raise ResultsFileError(f"{p} is a folder without responses.nc (the report reads results files, "
                                   "optimize files, or the output folder of curvebench discover)")
        p = p / "responses.nc"
    ds = open_file(p, option="report")
    if file_kind(ds.attrs) == CURVE_FAMILY_KIND:
        if not (p.parent / "responses.nc").is_file():
            raise ResultsFileError(f"{p}: a curve-family file holds no heatmaps; give the discover output folder "
                                   "or its responses.nc (the family file is read from beside it)")
        p = p.parent / "responses.nc"
        ds = open_file(p, DISCOVER_RESPONSES_KIND, option="report")
    if file_kind(ds.attrs) == DISCOVER_RESPONSES_KIND and (p.parent / "family.nc").is_file():
        ds = with_family(ds, open_file(p.parent / "family.nc", CURVE_FAMILY_KIND, option="report"))
    return ds
