"""What a file's attributes say: its kind, its stimulus kind, its model and weights, its statistics.

Every file curvebench writes names its kind in ``file_kind`` (:mod:`suites.file_kinds`);
results files name their stimulus kind in ``stimulus_kind``. Files written before those
attributes carried one attribute ``kind`` for both; the readers here accept them. Only
attributes are read here (no file is opened): the analysis, which works on datasets, uses
this module; :mod:`suites.results.files` opens the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from suites.errors import ResultsFileError
from suites.file_kinds import RESULTS_KIND

__all__ = ["file_kind", "stimulus_kind", "model_id", "check_same_model", "stats_label", "stats_positions",
           "POSITIONS_LABEL"]

#: how each ``positions`` value of a statistics file is named in labels and figure titles
POSITIONS_LABEL = {"all": "all positions", "valid": "padding-free positions only"}


def file_kind(attrs: Mapping[str, Any]) -> str | None:
    """The kind of file whose attributes are ``attrs`` (:data:`suites.file_kinds.FILE_KINDS`), or None.

    Reads ``file_kind``; for files written before it, the old ``kind`` attribute when it
    names a file kind, else :data:`~suites.file_kinds.RESULTS_KIND` for a file with rows.
    """
    kind = attrs.get("file_kind")
    if kind:
        return str(kind)
    old = attrs.get("kind")
    if isinstance(old, str) and old.startswith("curvebench-"):
        return old
    return RESULTS_KIND if "rows_completed" in attrs else None


def stimulus_kind(attrs: Mapping[str, Any]) -> str | None:
    """The stimulus kind (``"curve"``, ``"line"``, ...) of a results file's ``attrs`` (older files: ``kind``), or None."""
    kind = attrs.get("stimulus_kind")
    if kind:
        return str(kind)
    old = attrs.get("kind")
    return str(old) if file_kind(attrs) == RESULTS_KIND and old else None


def model_id(attrs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(model name, weights sha256)`` from a file's attributes (None where absent)."""
    model = attrs.get("model") or attrs.get("model_name")
    sha = attrs.get("weights_sha256") or attrs.get("weights_hash")
    return (str(model) if model else None, str(sha) if sha else None)


def _weights(sha: str | None) -> str:
    return f"weights sha256 {sha[:12]}..." if sha else "no weights file (random or built-in weights)"


def check_same_model(made: Mapping[str, Any], used: Mapping[str, Any], *, what: str, other: str,
                     error: type[Exception] = ResultsFileError) -> None:
    """Refuse a file made with another model or other weights than the data it is used with.

    Args:
        made: the attributes of the file (``model``, ``weights_sha256``).
        used: the attributes of what it is used with (a results file, a model's ``meta``
            plus ``model``); a model name absent on either side is not compared.
        what: how the file came to be, e.g. ``"stats: computed"``: the message reads
            ``"<what> in model 'a', but <other> is 'b'"`` or ``"<what> with weights sha256 ..., but <other> has ..."``.
        other: what it is used with, e.g. ``"the results"``.
        error: the exception type raised.
    """
    m_model, m_sha = model_id(made)
    u_model, u_sha = model_id(used)
    if m_model and u_model and m_model != u_model:
        raise error(f"{what} in model {m_model!r}, but {other} is {u_model!r}")
    if (m_sha or u_sha) and m_sha != u_sha:
        raise error(f"{what} with {_weights(m_sha)}, but {other} has {_weights(u_sha)}")


def stats_positions(stats: xr.Dataset) -> str:
    """``"valid"`` or ``"all"``: which spatial positions a statistics file counts (older files: all)."""
    return "valid" if stats.attrs.get("positions") == "valid" else "all"


def stats_label(stats: xr.Dataset, positions: str | None = None) -> str:
    """One line naming a statistics dataset: images, count, positions counted (and a proxy's warning).

    ``positions`` (``"all"``/``"valid"``) names the position set whose std is used, for
    files that store both (default: the file's own ``positions``).
    """
    source = stats.attrs.get("source", "unknown images")
    n = stats.attrs.get("n_images", "?")
    proxy = " - small proxy, not ImageNet" if int(stats.attrs.get("proxy", 0)) and "proxy" not in str(source) else ""
    return f"dataset statistics: {source}, {n} images, {POSITIONS_LABEL[positions or stats_positions(stats)]}{proxy}"
