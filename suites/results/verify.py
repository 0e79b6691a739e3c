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

__all__ = ["ResultsStatus", "AxisCoverage", "check_results_file", "check_resumable", "being_written",
           "count_nonfinite", "check_for_analysis", "ROWS_PER_CHUNK"]

#: Rows read at a time when a check covers every row (coordinates, activations).
ROWS_PER_CHUNK = 65536


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
    grid_cells: int | None = None
    axes_coverage: tuple[AxisCoverage, ...] = ()

    @property
    def partial(self) -> bool:
        """Fewer rows than the run will write (interrupted, ``--limit`` excluded: that is its total)."""
        return self.rows_total is not None and self.rows_completed < self.rows_total

    @property
    def subset(self) -> bool:
        """The rows present cover only part of the grid (a ``--limit`` run, or a partial one)."""
        return self.grid_cells is not None and self.rows_completed < self.grid_cells

    def describe(self) -> str:
        """One line: ``"partial: 16 of 60 rows (interrupted; continue with ...)"`` or ``"complete: 60 rows"``."""
        if not self.partial:
            return f"complete: {self.rows_completed:,} rows"
        how = ("still being written by another process" if self.being_written else
               f"interrupted; continue with `curvebench run --resume {self.path}`")
        return f"partial: {self.rows_completed:,} of {self.rows_total:,} rows ({how})"

    def describe_subset(self) -> str:
        """One line on what part of the grid the rows cover, e.g. ``"300 of 72,000 grid cells; complete axes:
        curvature; orientation: 2 of 360 values (0 to 1.5)"`` (empty when the whole grid is there)."""
        if not self.subset:
            return ""
        full = [a.name for a in self.axes_coverage if a.present == a.size]
        part = [f"{a.name}: {a.present:,} of {a.size:,} values ({a.low:g} to {a.high:g})"
                for a in self.axes_coverage if a.present < a.size]
        return "; ".join([f"{self.rows_completed:,} of {self.grid_cells:,} grid cells",
                          f"complete axes: {', '.join(full) if full else 'none'}", *part])


@dataclass(frozen=True)
class AxisCoverage:
    """How much of one grid axis the rows present reach: ``present`` of ``size`` values, from ``low`` to ``high``."""

    name: str
    present: int
    size: int
    low: float
    high: float


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

    from suites.data_files import check_data_file

    p = check_data_file(path, "results file")
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
        _check_dimensions(p, f, names)
        if "shards" in attrs:
            _check_shards(p, attrs, done)
        cells, coverage = (_check_grid(p, f, attrs, done, total) if "grid_axes" in attrs else (None, ()))
    return ResultsStatus(p, done, total, state, being_written(p), cells, coverage)


def _check_dimensions(p: Path, f: Any, names: list[str]) -> None:
    """Every axis of every row dataset has its coordinate dataset (``<layer>_channel``, ...)."""
    for name in names:
        ds = f[name]
        for axis in range(1, ds.ndim):
            try:
                scales = [sc.name for sc in ds.dims[axis].values()]
            except (KeyError, ValueError, RuntimeError, OSError):
                scales = [None]
            if not scales or any(sc is None or sc.lstrip("/") not in f for sc in scales):
                raise ResultsFileError(f"{p}: dataset {name!r} has lost the coordinate dataset of its axis {axis} "
                                       f"(e.g. '{name.removesuffix('_pre_relu')}_channel' was deleted); the file is "
                                       "incomplete and is not used")


def _check_shards(p: Path, attrs: Any, done: int) -> None:
    """A combined (torchrun) file: every shard that holds finished rows is there, a regular file with those rows."""
    import h5py

    from suites.data_files import DataFileError, check_data_file

    shards = str(attrs["shards"]).split()
    bounds = np.asarray(attrs.get("shard_rows", np.zeros((0, 2))), dtype=np.int64).reshape(-1, 2)
    if len(bounds) != len(shards):
        raise _bad(p, "shards", f"names {len(shards)} shards but shard_rows gives {len(bounds)} row ranges")
    for rel, (a, b) in zip(shards, bounds):
        need = max(0, min(b, done) - a)
        if need == 0:
            continue
        try:
            shard = check_data_file(p.parent / rel, "shard")
            with h5py.File(shard, "r", locking=False) as h5:
                have = int(np.asarray(h5.attrs.get("rows_completed", -1)).reshape(()))
        except (DataFileError, OSError, ValueError, TypeError) as exc:
            raise ResultsFileError(f"{p}: shard {rel} (rows {a:,}-{b - 1:,}) is missing or unreadable "
                                   f"({' '.join(str(exc).split())[:200]}); its rows would read as NaN, so the file "
                                   "is not used") from None
        if have < need:
            raise ResultsFileError(f"{p}: shard {rel} holds {max(have, 0):,} finished rows but the file counts "
                                   f"{need:,} of its rows ({a:,}-{a + need - 1:,}) as done; the file is not used")


def _check_grid(p: Path, f: Any, attrs: Any, done: int, total: int | None) -> tuple[int, tuple[AxisCoverage, ...]]:
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
    if done and len(axes) == len(names):  # every finished row sits where the grid says
        _check_rows_on_grid(p, f, names, axes, shape_t, offset, done)
    return size, _coverage(names, axes, shape_t, offset, done)


def _check_rows_on_grid(p: Path, f: Any, names: list[str], axes: dict[str, np.ndarray], shape: tuple[int, ...],
                        offset: int, done: int) -> None:
    """Each finished row's coordinates are finite and the grid's, in chunks of :data:`ROWS_PER_CHUNK` rows."""
    stored = [n for n in names if n in f and f[n].shape and f[n].shape[0] >= done]
    for start in range(0, done, ROWS_PER_CHUNK):
        stop = min(done, start + ROWS_PER_CHUNK)
        index = np.unravel_index(np.arange(offset + start, offset + stop), shape)
        for name in stored:
            got = np.asarray(f[name][start:stop], dtype=np.float64)
            want = axes[name][index[names.index(name)]]
            ok = np.isclose(got, want, rtol=1e-6, atol=1e-9) | (np.isnan(got) & np.isnan(want))
            if not ok.all():
                row = start + int(np.argmin(ok))
                what = "is not finite" if not np.isfinite(got[row - start]) else "is off the grid"
                bad = int((~ok).sum())
                raise _bad(p, f"grid_axis_{name}", f"puts {want[row - start]:g} at row {row:,} but the row holds "
                                                   f"{name} = {got[row - start]:g}, which {what} ({bad:,} such rows "
                                                   f"in rows {start:,}-{stop - 1:,})")


def _coverage(names: list[str], axes: dict[str, np.ndarray], shape: tuple[int, ...], offset: int,
              done: int) -> tuple[AxisCoverage, ...]:
    """Which values of each axis rows ``offset .. offset + done - 1`` (grid order, first axis slowest) reach."""
    out = []
    for k, (name, n) in enumerate(zip(names, shape)):
        stride = math.prod(shape[k + 1:])
        first, last = offset // stride, (offset + max(done, 1) - 1) // stride
        present = n if last - first + 1 >= n else (last - first + 1 if done else 0)
        idx = np.arange(first, first + max(present, 1)) % n
        values = axes.get(name, np.arange(n, dtype=np.float64))[idx]
        out.append(AxisCoverage(name, present, n, float(np.min(values)), float(np.max(values))))
    return tuple(out)


def count_nonfinite(path: str | os.PathLike, variables: list[str] | None = None) -> dict[str, int]:
    """NaN and infinite values in the finished rows of each float row variable (chunked); only non-zero counts.

    ``variables``: the datasets to count (default: every float row variable that is not a grid coordinate).
    """
    import h5py

    counts: dict[str, int] = {}
    with h5py.File(path, "r", locking=False) as f:
        done = int(np.asarray(f.attrs["rows_completed"]).reshape(-1)[0])
        coords = set(str(f.attrs.get("grid_axes", "")).split())
        names = variables if variables is not None else [
            n for n in str(f.attrs.get("row_variables", "")).split() if n not in coords]
        for name in names:
            ds = f[name]
            if ds.dtype.kind != "f":
                continue
            per_chunk = max(1, ROWS_PER_CHUNK * 8 // max(1, math.prod(ds.shape[1:])))
            bad = sum(int((~np.isfinite(ds[a:min(done, a + per_chunk)])).sum()) for a in range(0, done, per_chunk))
            if bad:
                counts[name] = bad
    return counts


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


def check_for_analysis(path: str | os.PathLike, allow_partial: bool | None = None) -> tuple[ResultsStatus, list[str]]:
    """Verify a results file for an analysis: refuse (``allow_partial=False``) or state what is missing.

    Missing means: rows not run yet (partial, or still being written), grid cells outside the
    rows (a ``--limit`` run: which axes are complete, how many cells of how many), and NaN or
    infinite activations (counted per variable, every row read in chunks).

    Returns:
        the status and the notes to print (``"note: X is ..."``), empty for a whole, finite grid.

    Raises:
        ResultsFileError: an inconsistent file; or, with ``allow_partial=False``, a file with
            anything missing (the message says what, and to pass ``--allow-partial``).
    """
    status = check_results_file(path)
    missing: list[str] = []
    if status.partial or status.being_written:
        missing.append(status.describe())
    if status.subset and not status.partial:
        missing.append(f"a subset of its grid: {status.describe_subset()}")
    elif status.subset:
        missing.append(status.describe_subset())
    bad = count_nonfinite(path)
    if bad:
        missing.append("non-finite activations (" + ", ".join(f"{n:,} NaN/inf values in {v!r}" for v, n in bad.items()) + ")")
    if missing and allow_partial is False:
        raise ResultsFileError(f"{path}: " + "; ".join(missing) + "; its numbers would describe only what is "
                               "there: finish or rerun it, or pass --allow-partial")
    notes = [f"note: {path}: " + "; ".join(missing) + ("; numbers describe only what is there" if missing else "")]
    return status, notes if missing else []


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
