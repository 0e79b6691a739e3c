"""Append-only, crash-safe HDF5 results writer (plain h5py, netCDF-compatible layout).

The writer knows nothing of stimuli or models: it appends rows along one unlimited
dimension (``stimulus`` for sweeps, ``image`` for probes) to a set of per-row
coordinate and data datasets, and keeps a few fixed-size datasets (e.g. running
summaries) in step with the rows.

Crash safety (facts measured on this machine, ``docs/results.md``):

* one chunk per batch along the row dimension, data uncompressed, coordinates gzip;
* after each batch: resize, write, ``flush()``; only then set the ``rows_completed``
  attribute and ``flush()`` again. A reader (and :meth:`ResultsWriter.open_resume`)
  trusts only that counter; rows beyond it are never data;
* on resume, every row dataset is truncated back to the counter before appending.

Layout (what plain ``xarray.open_dataset`` sees): each dimension has a 1-D dataset
of the same name marked as a dimension scale and attached to every variable axis;
data variables carry a ``coordinates`` attribute naming the per-row coordinates.

A sidecar lock file ``<file>.lock`` (``fcntl.flock``) refuses a second writer.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from suites.errors import ResultsExistsError, ResultsLockedError, ResultsWriteError
from suites.file_kinds import RESULTS_KIND
from suites.results.provenance import utc_now

__all__ = ["Layout", "Variable", "ResultsWriter", "ResultsExistsError", "ResultsLockedError", "ResultsWriteError",
           "utc_now"]


@dataclass(frozen=True)
class Variable:
    """A dataset: ``dims[0]`` is the row dimension for row variables; other dims are fixed."""

    name: str
    dims: tuple[str, ...]
    dtype: str = "float32"
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """What a results file holds.

    Attributes:
        row_dim: the unlimited dimension (``"stimulus"`` or ``"image"``); its scale holds row indices.
        dims: fixed dimensions and their coordinate values (e.g. ``mixed3b_channel`` -> channel ids).
        coords: per-row coordinates (name -> dtype), stored gzip-compressed; dtype ``"str"``
            for variable-length text (uncompressed).
        variables: per-row data variables (dims start with ``row_dim``), stored uncompressed.
        statics: fixed-size variables rewritten with every batch (dims from ``dims``).
        chunk_rows: rows per chunk (the batch size).
        coord_attrs: attributes of the per-row coordinates (CF ``units``, ``long_name``), by name.
    """

    row_dim: str
    dims: Mapping[str, np.ndarray]
    coords: Mapping[str, str]
    variables: tuple[Variable, ...]
    statics: tuple[Variable, ...] = ()
    chunk_rows: int = 256
    coord_attrs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_RESERVE_SLACK = 1 << 16  # bytes of HDF5 metadata growth allowed per batch (B-tree nodes, heaps)


def _acquire_lock(path: Path) -> int:
    lock_path = Path(str(path) + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ResultsWriteError(f"cannot create lock file {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise ResultsLockedError(
                f"{path} is being written by another process (lock {lock_path} is held); "
                "wait for it to finish or write to another --out file"
            ) from None
        raise
    return fd


def _check_writable_dir(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write results to {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write results to {path}: directory {parent} is not writable")


class ResultsWriter:
    """Appends batches of rows to an HDF5 results file. Use :meth:`create` or :meth:`open_resume`.

    Not thread-safe: use it from one thread (the runner's writer thread).
    """

    def __init__(self, path: Path, h5: h5py.File, lock_fd: int) -> None:
        self.path = path
        self._h5 = h5
        self._lock_fd = lock_fd
        self.row_dim: str = h5.attrs["row_dim"]
        self._row_names = [self.row_dim] + list(_split(h5.attrs.get("row_variables", "")))
        self.rows_completed: int = int(h5.attrs["rows_completed"])
        #: how a user continues this file, quoted in error messages (a distributed run's shards
        #: are continued through their combined file)
        self.resume_hint = f"`curvebench run --resume {path}`"

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path: str | os.PathLike, layout: Layout, attrs: Mapping[str, Any]) -> ResultsWriter:
        """Create a new file (refuses to overwrite an existing one) with ``state = "running"``."""
        path = Path(path)
        _check_writable_dir(path)
        if path.exists():
            raise ResultsExistsError(f"{path} already exists; continue it with --resume {path} or choose another --out")
        fd = _acquire_lock(path)
        try:
            h5 = h5py.File(path, "w-", locking=False)
        except Exception as exc:
            os.close(fd)
            raise ResultsWriteError(f"cannot create {path}: {exc}") from None
        try:
            _init_layout(h5, layout)
            h5.attrs["file_kind"] = RESULTS_KIND  # what the file is (suites.results.files reads it)
            for k, v in attrs.items():
                h5.attrs[k] = _attr_value(k, v)
            h5.attrs["rows_completed"] = 0
            h5.attrs["state"] = "running"
            h5.flush()
        except BaseException:
            h5.close()
            path.unlink(missing_ok=True)  # nothing was written yet: leave no half-made file
            os.close(fd)
            raise
        return cls(path, h5, fd)

    @classmethod
    def open_resume(cls, path: str | os.PathLike) -> ResultsWriter:
        """Reopen an interrupted file for appending; rows beyond ``rows_completed`` are dropped."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: results file {path} not found")
        if not os.access(path, os.W_OK):
            raise PermissionError(f"cannot resume: results file {path} is not writable")
        if not h5py.is_hdf5(path):
            raise ValueError(f"cannot resume {path}: not a curvebench results file (not an HDF5 file)")
        fd = _acquire_lock(path)
        try:
            h5 = h5py.File(path, "r+", locking=False)
        except Exception as exc:
            os.close(fd)
            raise ResultsWriteError(f"cannot reopen {path} for resume (damaged beyond the counter?): {exc}") from None
        if "rows_completed" not in h5.attrs or "row_dim" not in h5.attrs:
            h5.close()
            os.close(fd)
            raise ValueError(f"cannot resume {path}: not a curvebench results file (no rows_completed attribute)")
        writer = cls(path, h5, fd)
        writer._truncate(writer.rows_completed)
        h5.attrs["state"] = "running"
        h5.flush()
        return writer

    # ------------------------------------------------------------------ writing
    @property
    def attrs(self) -> h5py.AttributeManager:
        return self._h5.attrs

    def append(
        self,
        coords: Mapping[str, np.ndarray],
        data: Mapping[str, np.ndarray],
        statics: Mapping[str, np.ndarray] | None = None,
        rows: int | None = None,
    ) -> int:
        """Append one batch of rows, flush, then advance ``rows_completed``; returns it.

        ``coords`` and ``data`` must hold every per-row dataset of the layout, each with
        the same number of rows. ``statics`` replaces fixed-size datasets in the same step.
        ``rows`` gives the row count when the layout has no per-row variables
        (summary-only files).
        """
        names = set(coords) | set(data)
        expected = set(self._row_names[1:])
        if names != expected:
            raise ValueError(
                f"append: got row variables {sorted(names)}, the file has {sorted(expected)}"
            )
        arrays = {**coords, **data}
        n = {k: int(np.shape(a)[0]) for k, a in arrays.items()}
        if rows is not None:
            n["rows"] = int(rows)
        if len(set(n.values())) != 1:
            raise ValueError(f"append: all row variables need the same number of rows, got {n}")
        b = next(iter(n.values()))
        r0, r1 = self.rows_completed, self.rows_completed + b
        need = sum(np.asarray(a).nbytes if np.asarray(a).dtype != object else 256 * b for a in arrays.values())
        need += sum(np.asarray(v).nbytes for v in (statics or {}).values()) + 8 * b + _RESERVE_SLACK
        self._reserve(need, r0, r1)
        try:
            if statics:
                # statics are replaced in place, so a kill during the flush below could leave them
                # half new; -1 marks them untrusted until rows_completed and statics_rows agree
                self._h5.attrs["statics_rows"] = -1
                self._h5.flush()
            for name in self._row_names:
                ds = self._h5[name]
                ds.resize(r1, axis=0)
                ds[r0:r1] = np.arange(r0, r1, dtype=np.int64) if name == self.row_dim else arrays[name]
            for name, value in (statics or {}).items():
                self._h5[name][...] = value
            self._h5.flush()
            if statics:
                self._h5.attrs["statics_rows"] = r1
            self._h5.attrs["rows_completed"] = r1
            self._h5.flush()
        except (OSError, RuntimeError) as exc:
            raise ResultsWriteError(
                f"writing rows {r0}..{r1} to {self.path} failed ({exc}); " + _after_failure(r0, self.resume_hint)
            ) from None
        self.rows_completed = r1
        return r1

    def _reserve(self, nbytes: int, r0: int, r1: int) -> None:
        """Allocate disk blocks for the next batch *before* HDF5 writes anything.

        HDF5 cannot recover from a failed write (the file's superblock may already
        point past the data that never landed, and the library crashes at exit), so
        space is claimed with ``posix_fallocate`` from HDF5's end of allocation: the
        batch's allocations then land in blocks that exist. Without space (disk full,
        quota, file size limit) the batch is refused cleanly and the file stays as it
        was. The file may end with up to one batch of reserved, unused zero bytes.
        """
        eoa = int(self._h5.id.get_filesize())  # HDF5's end of allocation (not the file's EOF)
        try:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                os.posix_fallocate(fd, eoa, int(nbytes))
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return  # the file system cannot reserve space; write without the guard
            raise ResultsWriteError(
                f"no space to write rows {r0}..{r1} to {self.path} ({exc.strerror}: needed about "
                f"{nbytes / 2**20:.1f} MiB); " + _after_failure(r0, self.resume_hint)
            ) from None

    def read_static(self, name: str) -> np.ndarray:
        return self._h5[name][...]

    @property
    def statics_trusted(self) -> bool:
        """True when the statics describe exactly ``rows_completed`` rows.

        False after a run was killed while a batch's statics were being replaced (the
        ``statics_rows`` attribute is -1 or disagrees with ``rows_completed``). Files
        written before the attribute existed are trusted, as they were.
        """
        if "statics_rows" not in self._h5.attrs:
            return True
        return int(self._h5.attrs["statics_rows"]) == self.rows_completed

    def read_rows(self, name: str, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` (committed rows only) of the per-row dataset ``name``."""
        if not 0 <= r0 <= r1 <= self.rows_completed:
            raise ValueError(f"read_rows: {r0}:{r1} outside the {self.rows_completed} committed rows")
        return self._h5[name][r0:r1]

    def finish(self, **attrs: Any) -> None:
        """Mark the file complete (``state = "complete"``, ``finished`` time) and flush."""
        for k, v in attrs.items():
            self._h5.attrs[k] = _attr_value(k, v)
        self._h5.attrs["finished"] = utc_now()
        self._h5.attrs["state"] = "complete"
        self._h5.flush()

    def close(self) -> None:
        """Close the file and release the lock (idempotent)."""
        if self._h5 is not None:
            try:
                self._h5.close()
            except Exception:  # a failed disk may refuse the final metadata write
                pass
            self._h5 = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _truncate(self, rows: int) -> None:
        for name in self._row_names:
            ds = self._h5[name]
            if ds.shape[0] != rows:
                ds.resize(rows, axis=0)


def _after_failure(rows: int, resume_hint: str) -> str:
    """What to do after a failed batch: resume only when rows landed (an empty file is removed)."""
    if rows == 0:
        return "no row was written (the empty file is removed); free space or choose a smaller batch and run again"
    return f"the {rows} rows written before are intact and readable; free space and continue with {resume_hint}"


def _attr_value(key: str, v: Any) -> Any:
    """HDF5/netCDF-friendly attribute value: str, int, float or a numeric array."""
    if v is None:
        return ""
    if isinstance(v, (str, np.str_)):
        return str(v)
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return v
    arr = np.asarray(v)
    if arr.dtype.kind in "iuf":
        return arr
    raise TypeError(f"attribute {key!r}: cannot store {type(v).__name__} {v!r} (use str, numbers or numeric arrays)")


def _split(s: str) -> list[str]:
    return [x for x in str(s).split() if x]


def _init_layout(h5: h5py.File, layout: Layout) -> None:
    rd, chunk = layout.row_dim, int(max(1, layout.chunk_rows))
    scales = {}
    row = h5.create_dataset(rd, shape=(0,), maxshape=(None,), dtype="int64", chunks=(chunk,))
    row.make_scale(rd)
    row.attrs["long_name"] = f"{rd} index (row number in the sweep)"
    scales[rd] = row
    for dim, values in layout.dims.items():
        values = np.asarray(values)
        ds = h5.create_dataset(dim, data=values)
        ds.make_scale(dim)
        scales[dim] = ds
    for name, dtype in layout.coords.items():
        if dtype == "str":  # variable-length UTF-8 (file names); filters do not apply to vlen data
            ds = h5py_dataset_str(h5, name, chunk)
        else:
            ds = h5.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(chunk,),
                compression="gzip", compression_opts=4, shuffle=True,
            )
        ds.dims[0].attach_scale(row)
        for k, v in layout.coord_attrs.get(name, {}).items():
            ds.attrs[k] = v
    coord_attr = " ".join(layout.coords)
    for var in layout.variables:
        if var.dims[0] != rd:
            raise ValueError(f"row variable {var.name!r} must have {rd!r} as first dimension, got {var.dims}")
        fixed = tuple(len(layout.dims[d]) for d in var.dims[1:])
        ds = h5.create_dataset(
            var.name, shape=(0, *fixed), maxshape=(None, *fixed), dtype=var.dtype, chunks=(chunk, *fixed),
        )
        _attach(ds, var.dims, scales)
        for k, v in var.attrs.items():
            ds.attrs[k] = v
        if coord_attr:
            ds.attrs["coordinates"] = coord_attr
    for var in layout.statics:
        shape = tuple(len(layout.dims[d]) for d in var.dims)
        ds = h5.create_dataset(var.name, shape=shape, dtype=var.dtype)
        _attach(ds, var.dims, scales)
        for k, v in var.attrs.items():
            ds.attrs[k] = v
    h5.attrs["row_dim"] = rd
    h5.attrs["row_variables"] = " ".join(list(layout.coords) + [v.name for v in layout.variables])


def h5py_dataset_str(h5: h5py.File, name: str, chunk: int) -> h5py.Dataset:
    return h5.create_dataset(name, shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(chunk,))


def _attach(ds: h5py.Dataset, dims: tuple[str, ...], scales: dict[str, h5py.Dataset]) -> None:
    for axis, dim in enumerate(dims):
        if dim not in scales:
            raise ValueError(f"variable {ds.name!r} uses dimension {dim!r} that the layout does not define")
        ds.dims[axis].attach_scale(scales[dim])
