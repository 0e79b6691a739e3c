"""One results file over per-process shards: the grid split by rank, and HDF5 virtual datasets.

A sweep run by ``N`` processes (``torchrun``, :mod:`suites.running.distributed`) writes one
ordinary, crash-safe results file per rank, its **shard**, holding a contiguous block
of grid rows, and one **combined file** ``FILE`` that holds no activations itself:

* every per-row dataset of ``FILE`` (activations, grid coordinates) is an HDF5 virtual
  dataset that maps shard ``r``'s rows to rows ``start_r:stop_r`` of the grid, so plain
  ``xarray.open_dataset(FILE)`` sees one dataset in grid order;
* the shards are named by paths relative to ``FILE``'s folder (``FILE.stem + ".shards/"``),
  so moving the folder keeps ``FILE`` readable; HDF5 finds them next to ``FILE``;
* fixed-size variables (running summaries) and the ``stimulus`` index are ordinary
  datasets of ``FILE``, written by rank 0 once every shard is complete;
* attributes: those of a single-process file plus ``world_size``, ``shards`` (space
  separated relative names) and ``shard_rows`` (``[start, stop)`` per rank).

The split (:func:`shard_bounds`) depends only on the number of rows, the batch size and
the world size: each rank gets a contiguous run of whole batches, so every rank draws
exactly the batches a single process would, and the values are the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from suites.results.writer import Layout, _attr_value, utc_now

__all__ = ["shard_bounds", "shard_names", "create_combined", "finish_combined"]


def shard_bounds(rows: int, batch_size: int, world_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` grid rows of each rank: whole batches, as even as possible, in rank order.

    >>> shard_bounds(10, 2, 2)
    [(0, 4), (4, 10)]
    """
    if world_size < 1 or batch_size < 1 or rows < 0:
        raise ValueError(f"shard_bounds: need rows >= 0, batch_size >= 1, world_size >= 1; got "
                         f"{rows}, {batch_size}, {world_size}")
    batches = -(-rows // batch_size)
    edges = [min(rows, (r * batches // world_size) * batch_size) for r in range(world_size + 1)]
    edges[-1] = rows
    return [(edges[r], edges[r + 1]) for r in range(world_size)]


def shard_names(path: str | os.PathLike, world_size: int) -> list[str]:
    """Shard paths relative to ``path``'s folder: ``<stem>.shards/rank-00001-of-00002.h5``."""
    stem = Path(path).stem
    return [f"{stem}.shards/rank-{r:05d}-of-{world_size:05d}.h5" for r in range(world_size)]


def create_combined(path: str | os.PathLike, layout: Layout, attrs: Mapping[str, Any],
                    shards: list[str], bounds: list[tuple[int, int]]) -> None:
    """Write ``path``: virtual per-row datasets over ``shards`` (``state = "running"``, 0 rows completed).

    Refuses to overwrite an existing file. The shards need not exist yet.
    """
    path = Path(path)
    rd = layout.row_dim
    rows = bounds[-1][1] if bounds else 0
    with h5py.File(path, "w-", locking=False) as h5:
        row = h5.create_dataset(rd, data=np.arange(rows, dtype=np.int64))
        row.make_scale(rd)
        row.attrs["long_name"] = f"{rd} index (row number in the sweep)"
        scales = {rd: row}
        for dim, values in layout.dims.items():
            ds = h5.create_dataset(dim, data=np.asarray(values))
            ds.make_scale(dim)
            scales[dim] = ds
        per_row = [(name, (rd,), dtype, dict(layout.coord_attrs.get(name, {}))) for name, dtype in layout.coords.items()]
        per_row += [(v.name, v.dims, v.dtype, dict(v.attrs)) for v in layout.variables]
        coord_attr = " ".join(layout.coords)
        for name, dims, dtype, vattrs in per_row:
            fixed = tuple(len(layout.dims[d]) for d in dims[1:])
            vl = h5py.VirtualLayout(shape=(rows, *fixed), dtype=dtype, maxshape=(rows, *fixed))
            for rel, (a, b) in zip(shards, bounds):
                if b > a:
                    src = h5py.VirtualSource(rel, name, shape=(b - a, *fixed), maxshape=(None, *fixed))
                    vl[a:b] = src[0:b - a]
            fill = np.nan if np.dtype(dtype).kind == "f" else 0
            ds = h5.create_virtual_dataset(name, vl, fillvalue=fill)
            for axis, dim in enumerate(dims):
                ds.dims[axis].attach_scale(scales[dim])
            for k, v in vattrs.items():
                ds.attrs[k] = v
            if coord_attr and name not in layout.coords:
                ds.attrs["coordinates"] = coord_attr
        for var in layout.statics:
            ds = h5.create_dataset(var.name, shape=tuple(len(layout.dims[d]) for d in var.dims), dtype=var.dtype)
            for axis, dim in enumerate(var.dims):
                ds.dims[axis].attach_scale(scales[dim])
            for k, v in var.attrs.items():
                ds.attrs[k] = v
        for k, v in attrs.items():
            h5.attrs[k] = _attr_value(k, v)
        h5.attrs["row_dim"] = rd
        h5.attrs["row_variables"] = " ".join(list(layout.coords) + [v.name for v in layout.variables])
        h5.attrs["world_size"] = len(shards)
        h5.attrs["shards"] = " ".join(shards)
        h5.attrs["shard_rows"] = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
        h5.attrs["rows_completed"] = 0
        h5.attrs["state"] = "running"


def finish_combined(path: str | os.PathLike, statics: Mapping[str, np.ndarray], **attrs: Any) -> None:
    """Rank 0, every shard complete: write the merged statics, ``rows_completed = rows_total``, ``state = "complete"``."""
    with h5py.File(path, "r+", locking=False) as h5:
        for name, value in statics.items():
            h5[name][...] = value
        for k, v in attrs.items():
            h5.attrs[k] = _attr_value(k, v)
        h5.attrs["rows_completed"] = int(h5.attrs["rows_total"])
        h5.attrs["finished"] = utc_now()
        h5.attrs["state"] = "complete"
