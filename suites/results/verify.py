"""Results files are verified, not trusted: their attributes are checked against each other and the data.

A results file says how many rows are finished (``rows_completed``), how many the run
will write (``rows_total``), its ``state`` and, for grid sweeps, the grid (``grid_axes``,
``grid_shape``, ``grid_axis_<name>``) and the suite text that made it (``suite``,
``run_options``). :func:`check_results_file` reads those (h5py, no locking, nothing
loaded beyond two rows of coordinates) and refuses, with
:class:`suites.errors.ResultsFileError` naming the attribute, a file whose values
disagree: a counter beyond the rows the datasets hold, a negative or fractional
counter, a grid whose shape is not its axes', a stored suite whose grid is another
one, rows whose coordinates do not follow the grid. It returns a
:class:`ResultsStatus` that says whether the file is complete, partial, or still being
written by another process (its ``<file>.lock`` is held).

:func:`check_resumable` adds what ``curvebench run --resume`` needs: a sweep written by
``curvebench run`` that is not complete yet.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from suites.errors import ResultsFileError, SuiteError

__all__ = ["ResultsStatus", "check_results_file", "check_resumable", "being_written"]


@dataclass(frozen=True)
class ResultsStatus:
    """What a verified results file holds.

    Attributes:
        path: the file.
        rows_completed: finished rows (every row dataset holds at least this many).
        rows_total: rows the run will write (None when the file does not say).
        state: ``"complete"`` or ``"running"`` (interrupted, or still being written).
        being_written: another process holds the file's writer lock right now.
    """

    path: Path
    rows_completed: int
    rows_total: int | None
    state: str
    being_written: bool

    @property
    def partial(self) -> bool:
        """Fewer rows than the run will write (interrupted, ``--limit`` excluded: that is its total)."""
        return self.rows_total is not None and self.rows_completed < self.rows_total

    def describe(self) -> str:
        """One line: ``"partial: 16 of 60 rows (interrupted; continue with ...)"`` or ``"complete: 60 rows"``."""
        if not self.partial:
            return f"complete: {self.rows_completed:,} rows"
        how = ("still being written by another process" if self.being_written else
               f"interrupted; continue with `curvebench run --resume {self.path}`")
        return f"partial: {self.rows_completed:,} of {self.rows_total:,} rows ({how})"


def being_written(path: str | os.PathLike) -> bool:
    """True when another process holds ``<path>.lock`` (the writer's lock); never creates the lock file."""
    lock = Path(str(path) + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)  # closing releases a lock we took
    return False


def _bad(path: Path, attr: str, msg: str) -> ResultsFileError:
    return ResultsFileError(f"{path}: attribute {attr!r} {msg}; the file is inconsistent and is not used "
                            "(was it edited or written by another program?)")


def _int_attr(path: Path, attrs: Any, key: str, minimum: int = 0) -> int | None:
    if key not in attrs:
        return None
    v = attrs[key]
    arr = np.asarray(v)
    if arr.shape == (1,):  # netCDF writers store scalars as one-element arrays
        arr = arr.reshape(())
    if arr.shape != () or arr.dtype.kind not in "iu" or isinstance(v, (bool, np.bool_)):
        if arr.shape == () and arr.dtype.kind == "f" and math.isfinite(float(arr)) and float(arr).is_integer():
            pass  # an integer stored as float: accepted
        else:
            raise _bad(path, key, f"= {arr.tolist()!r} is not a whole number")
    n = int(arr)
    if n < minimum:
        raise _bad(path, key, f"= {n} is negative")
    return n


def check_results_file(path: str | os.PathLike) -> ResultsStatus:
    """Verify a results (or probe) file's attributes against each other and its data.

    Raises:
        FileNotFoundError: no such file.
        ResultsFileError: not a curvebench results file, or an inconsistent one (names the attribute).
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"results file not found: {p}")
    try:
        f = h5py.File(p, "r", locking=False)
    except OSError as exc:
        raise ResultsFileError(f"{p} is not a curvebench results file (HDF5 cannot read it: {exc})") from None
    with f:
        attrs = f.attrs
        if "rows_completed" not in attrs:
            raise ResultsFileError(f"{p} is not a curvebench results file (no rows_completed attribute)")
        done = _int_attr(p, attrs, "rows_completed")
        total = _int_attr(p, attrs, "rows_total")
        rd = str(attrs.get("row_dim", "stimulus"))
        names = [rd] + str(attrs.get("row_variables", "")).split()
        for name in names:
            if name not in f:
                raise _bad(p, "row_variables", f"names dataset {name!r}, which the file does not have")
            have = f[name].shape[0] if f[name].shape else 0
            if have < done:
                raise _bad(p, "rows_completed", f"= {done:,} but dataset {name!r} holds only {have:,} rows")
        if total is not None and done > total:
            raise _bad(p, "rows_completed", f"= {done:,} exceeds rows_total = {total:,}")
        state = str(attrs.get("state", "complete"))
        if state not in ("running", "complete"):
            raise _bad(p, "state", f"= {state!r} is neither 'running' nor 'complete'")
        if state == "complete" and total is not None and done != total:
            raise _bad(p, "state", f"= 'complete' but only {done:,} of rows_total = {total:,} rows are there")
        if "grid_axes" in attrs:
            _check_grid(p, f, attrs, done, total)
    return ResultsStatus(p, done, total, state, being_written(p))


def _check_grid(p: Path, f: Any, attrs: Any, done: int, total: int | None) -> None:
    names = str(attrs["grid_axes"]).split()
    if "grid_shape" not in attrs:
        raise _bad(p, "grid_shape", "is missing (the file has grid_axes)")
    shape = np.asarray(attrs["grid_shape"]).reshape(-1)
    if shape.dtype.kind not in "iu" or len(shape) != len(names) or (shape < 1).any():
        raise _bad(p, "grid_shape", f"= {shape.tolist()} does not give one positive size per axis of "
                                    f"grid_axes = {' '.join(names)!r}")
    shape_t = tuple(int(s) for s in shape)
    size = math.prod(shape_t)
    if total is not None and total > size:
        raise _bad(p, "rows_total", f"= {total:,} exceeds the grid's {size:,} points (grid_shape = {list(shape_t)})")
    axes: dict[str, np.ndarray] = {}
    for name, n in zip(names, shape_t):
        key = f"grid_axis_{name}"
        if key in attrs:
            values = np.asarray(attrs[key], dtype=np.float64).reshape(-1)
            if len(values) != n:
                raise _bad(p, "grid_shape", f"says {n} values along {name!r} but {key} has {len(values)}")
            axes[name] = values
    if "suite" in attrs:
        suite_axes = _stored_suite_axes(p, attrs)
        if [a for a, _ in suite_axes] != names:
            raise _bad(p, "grid_axes", f"= {' '.join(names)!r} but the stored suite sweeps "
                                       f"{' '.join(a for a, _ in suite_axes)!r}")
        for (name, values), n in zip(suite_axes, shape_t):
            if len(values) != n:
                raise _bad(p, "grid_shape", f"= {list(shape_t)} but the stored suite has {len(values)} values "
                                            f"along {name!r}")
            if name in axes and not np.allclose(axes[name], values, rtol=1e-9, atol=1e-12):
                raise _bad(p, f"grid_axis_{name}", "differs from the values of the stored suite")
            axes.setdefault(name, np.asarray(values, dtype=np.float64))
    # a torchrun shard's row r is grid row shard_rows[0] + r
    offset = int(np.asarray(attrs["shard_rows"]).reshape(-1)[0]) if "shard_rows" in attrs else 0
    if offset < 0 or offset + done > size:
        raise _bad(p, "shard_rows", f"starts at row {offset:,}, outside the grid's {size:,} points")
    if done and len(axes) == len(names):  # the first and last finished rows sit where the grid says
        for row in sorted({0, done - 1}):
            idx = np.unravel_index(offset + row, shape_t)
            for name, i in zip(names, idx):
                values = axes[name]
                if name in f and f[name].shape and f[name].shape[0] > row:
                    got = float(f[name][row])
                    if not (math.isclose(got, float(values[i]), rel_tol=1e-6, abs_tol=1e-9)
                            or (math.isnan(got) and math.isnan(float(values[i])))):
                        raise _bad(p, f"grid_axis_{name}", f"puts {values[i]:g} at row {row} but the row holds "
                                                           f"{name} = {got:g}")


def _stored_suite_axes(p: Path, attrs: Any) -> list[tuple[str, np.ndarray]]:
    from suites.specs.suite import parse_suite

    try:
        suite = parse_suite(str(attrs["suite"]), path=f"{p} (attribute 'suite')")
        opts = json.loads(str(attrs.get("run_options", "{}")))
        if not isinstance(opts, dict):
            raise ValueError("not a JSON object")
    except SuiteError as exc:
        raise ResultsFileError(f"{p}: attribute 'suite' is not a valid suite: {exc}") from None
    except ValueError as exc:
        raise _bad(p, "run_options", f"is not valid JSON options ({exc})") from None
    if opts.get("quick"):
        # files written before quick thinned periodic axes without the end point keep both ends
        legacy = suite.quick(legacy=True)
        suite = legacy if _stored_axes_match(attrs, legacy) and any(
            f"grid_axis_{n}" in attrs for n, _ in legacy.axes) else suite.quick()
    return [(n, np.asarray(v)) for n, v in suite.axes]


def _stored_axes_match(attrs: Any, suite: Any) -> bool:
    """Whether every ``grid_axis_<name>`` attribute holds the suite's values of that axis."""
    for name, values in suite.axes:
        key = f"grid_axis_{name}"
        if key in attrs:
            stored = np.asarray(attrs[key], dtype=np.float64).reshape(-1)
            if len(stored) != len(values) or not np.allclose(stored, values, rtol=1e-9, atol=1e-12):
                return False
    return True


def check_resumable(path: str | os.PathLike) -> ResultsStatus:
    """:func:`check_results_file`, plus: written by ``curvebench run``, not complete, not being written."""
    st = check_results_file(path)
    import h5py

    with h5py.File(st.path, "r", locking=False) as f:
        if "run_options" not in f.attrs or "suite" not in f.attrs:
            raise ResultsFileError(f"cannot resume {st.path}: not a results file written by `curvebench run`")
    if st.state == "complete" and not st.partial:
        raise ResultsFileError(f"cannot resume {st.path}: it is complete ({st.rows_completed:,} rows); "
                               "nothing to resume, the file is left as it is")
    return st
