"""Open results files and reshape grid sweeps.

Plain ``xarray.open_dataset(path)`` opens any curvebench results file. Two helpers
add what plain xarray cannot know:

* :func:`open_results` trims to the rows the writer has *committed*
  (``rows_completed``), so a file that is still being written, or was killed, reads
  as exactly its finished batches;
* :func:`unstack_grid` turns the flat ``stimulus`` dimension of a grid sweep into one
  dimension per swept parameter, in the suite's order: e.g. ``mixed3b`` with dims
  ``(stimulus, mixed3b_channel)`` becomes ``(orientation, curvature, mixed3b_channel)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from suites.results.verify import check_results_file

__all__ = ["open_results", "unstack_grid", "grid_axes"]


def open_results(path: str | os.PathLike) -> xr.Dataset:
    """Open a results (or probe) file lazily, keeping only committed rows.

    Works while the file is being written (HDF5 file locking is disabled for the
    read; the writer flushes a batch before it advances the counter).

    Returns:
        ``xr.Dataset`` with dims ``(stimulus, <layer>_channel)`` (``image`` for probe
        files); ``ds.attrs["rows_completed"] == ds.sizes["stimulus"]``.

    Raises:
        ResultsFileError: not a results file, or its attributes disagree with each other
            or with the data (:func:`suites.results.verify.check_results_file`).
    """
    path = Path(path)
    check_results_file(path)  # a regular file; attributes against each other and the data (ResultsFileError)
    try:
        ds = xr.open_dataset(path, engine="h5netcdf", driver_kwds={"locking": False})
    except OSError as exc:
        raise ValueError(f"cannot open {path} as a results file: {exc}") from None
    if "rows_completed" not in ds.attrs:
        ds.close()
        raise ValueError(f"{path} is not a curvebench results file (no rows_completed attribute)")
    rd = str(ds.attrs.get("row_dim", "stimulus"))
    n = int(ds.attrs["rows_completed"])
    if rd in ds.sizes and ds.sizes[rd] != n:
        ds = ds.isel({rd: slice(0, n)})
    return ds


def grid_axes(ds: xr.Dataset) -> list[tuple[str, np.ndarray]]:
    """The grid's ``(name, values)`` axes stored in a results file's attributes."""
    if "grid_axes" not in ds.attrs:
        raise ValueError("dataset has no grid_axes attribute: not a grid sweep written by curvebench run")
    names = str(ds.attrs["grid_axes"]).split()
    if all(f"grid_axis_{n}" in ds.attrs for n in names):
        return [(n, np.asarray(ds.attrs[f"grid_axis_{n}"], dtype=np.float64).reshape(-1)) for n in names]
    from suites.specs.options import suite_from_file  # long axes: rebuild from the stored suite text

    suite, _ = suite_from_file(ds.attrs)
    return [(n, v) for n, v in suite.axes]


def unstack_grid(ds: xr.Dataset) -> xr.Dataset:
    """Reshape a grid sweep from ``stimulus`` rows to one dimension per swept parameter.

    Row ``i`` is grid point ``numpy.unravel_index(i, shape)`` (first axis slowest).
    Rows not yet written (a running, interrupted or ``--limit`` run) are NaN.
    Variables without the ``stimulus`` dimension (summaries) are kept as they are.

    Not the same job as :func:`suites.analysis.arrays.grid` (heatmaps), and neither can
    stand in for the other: this places row ``i`` by its *position* in the grid stored in
    the file (``grid_axes``), so it gives every swept axis in the suite's order with
    *every* value, including values no row has reached yet (NaN), for every row variable,
    and it refuses rows that do not follow the stored grid. ``grid`` places rows by their
    coordinate *values*, so it takes any row order, subsets (``select``) and datasets
    without ``grid_axes``, averages rows that share a cell, and spans only the values
    present, on two axes sorted ascending.

    Returns:
        ``xr.Dataset`` whose row variables have dims ``(*grid axes, <other dims>)``,
        e.g. ``(orientation, curvature, mixed3b_channel)``, with the axis values as
        coordinates.

    Raises:
        ValueError: not a grid sweep, or the stored coordinates disagree with the grid.
    """
    rd = str(ds.attrs.get("row_dim", "stimulus"))
    axes = grid_axes(ds)
    shape = tuple(len(v) for _, v in axes)
    total = math.prod(shape)
    n = ds.sizes.get(rd, 0)
    if n > total:
        raise ValueError(f"dataset has {n} rows but the grid {shape} has only {total} points")
    names = [a for a, _ in axes]
    # The stored per-row coordinates must be the grid's; a mismatch means a foreign file.
    if n:
        index = np.unravel_index(np.arange(n), shape)
        for (name, values), idx in zip(axes, index):
            if name in ds.coords and not np.allclose(ds[name].values, values[idx], equal_nan=True):
                raise ValueError(f"coordinate {name!r} does not follow the grid order stored in the attributes")
    out_vars = {}
    for name, var in ds.data_vars.items():
        if rd not in var.dims:
            out_vars[name] = var
            continue
        if var.dims[0] != rd:
            var = var.transpose(rd, ...)
        rest = var.dims[1:]
        values = np.asarray(var.values)
        if n < total:
            dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
            full = np.full((total, *values.shape[1:]), np.nan, dtype=dtype)
            full[:n] = values
            values = full
        out_vars[name] = xr.Variable(tuple(names) + rest, values.reshape(shape + values.shape[1:]), var.attrs)
    coords = {a: (a, v) for a, v in axes}
    for c, cv in ds.coords.items():
        if rd not in cv.dims:
            coords[c] = cv
    attrs = dict(ds.attrs)
    attrs["rows_present"] = n
    return xr.Dataset(out_vars, coords=coords, attrs=attrs)
