"""Turn a results dataset (one row per stimulus) into heatmap grids.

A results file has one dimension ``stimulus`` and one 1-D coordinate per swept
parameter (``orientation`` in degrees, ``curvature`` in 1/px, ``rounding``, ...).
The functions here reshape a layer's activations into ``(channel, y, x)`` grids by
the *values* of two coordinates, so they work for any row order, for incomplete
runs (missing cells are NaN) and for sweeps that vary other parameters alongside
(rows that share an ``(x, y)`` cell are averaged; select first to avoid that).

Convention:
    - Grid axes are the sorted unique coordinate values (ascending), so with the
      default ``y="curvature"`` row 0 is the straightest curve (the article's top).
    - Values are compared after rounding to ``decimals`` decimals, so coordinates
      computed in float32 and float64 land in the same cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

STIMULUS_DIM = "stimulus"
#: Coordinates that describe the stimulus but are not sweep axes of a heatmap.
_NOT_AXES = {"row", "index", "batch"}


def channel_dim(ds: xr.Dataset, layer: str) -> str:
    """Name of the channel dimension of ``layer`` (``"<layer>_channel"``)."""
    da = layer_array(ds, layer)
    dims = [d for d in da.dims if d != STIMULUS_DIM and d != "image"]
    if len(dims) != 1:
        raise ValueError(f"layer {layer!r}: expected dims (stimulus, <layer>_channel), got {da.dims}")
    return dims[0]


def layer_names(ds: xr.Dataset) -> list[str]:
    """Layers present in a results dataset (from ``<layer>`` and/or ``<layer>_pre_relu`` variables)."""
    names = []
    for name, da in ds.data_vars.items():
        if STIMULUS_DIM not in da.dims or da.ndim != 2:
            continue
        layer = str(name)[: -len("_pre_relu")] if str(name).endswith("_pre_relu") else str(name)
        if layer not in names:
            names.append(layer)
    return names


def layer_array(ds: xr.Dataset, layer: str, pre_relu: bool = False) -> xr.DataArray:
    """The ``<layer>`` (post-ReLU) or ``<layer>_pre_relu`` variable, with a clear error if absent.

    A run that stored only pre-ReLU values still has a post-ReLU view: ``max(pre, 0)``.
    """
    name = f"{layer}_pre_relu" if pre_relu else layer
    if name not in ds.data_vars:
        if not pre_relu and f"{layer}_pre_relu" in ds.data_vars:  # run with readout = "pre_relu"
            post = ds[f"{layer}_pre_relu"].clip(min=0)
            post.attrs = {**ds[f"{layer}_pre_relu"].attrs, "readout": "post_relu (computed as max(pre_relu, 0))"}
            return post
        raise ValueError(f"layer {layer!r}: variable {name!r} not in the results; available layers: {layer_names(ds)}")
    return ds[name]


def swept_parameters(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """1-D stimulus coordinates that take more than one value, with their sorted unique values."""
    out = {}
    for name, coord in ds.coords.items():
        if coord.dims != (STIMULUS_DIM,) or name in _NOT_AXES or name == STIMULUS_DIM:
            continue
        values = np.asarray(coord.values)
        if values.dtype.kind not in "fiu":
            continue
        uniq = np.unique(np.round(values.astype(np.float64), 6))
        if uniq.size > 1:
            out[str(name)] = uniq
    return out


def _axis(ds: xr.Dataset, name: str, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    if name not in ds.coords or ds.coords[name].dims != (STIMULUS_DIM,):
        raise ValueError(
            f"coordinate {name!r} is not a stimulus parameter of this results file; "
            f"swept parameters: {sorted(swept_parameters(ds))}"
        )
    values = np.round(np.asarray(ds.coords[name].values, dtype=np.float64), decimals)
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.reshape(-1)


def grid(
    ds: xr.Dataset,
    values: xr.DataArray | None = None,
    *,
    layer: str | None = None,
    pre_relu: bool = False,
    x: str = "orientation",
    y: str = "curvature",
    decimals: int = 6,
) -> xr.DataArray:
    """Reshape per-stimulus activations into a ``(channel, y, x)`` grid.

    Args:
        ds: results dataset (dimension ``stimulus``).
        values: a ``(stimulus, channel)`` array aligned with ``ds`` (e.g. sigma values);
            if ``None``, ``ds[layer]`` (or ``ds[layer + "_pre_relu"]``) is used.
        layer: layer name, needed when ``values`` is ``None``.
        x, y: coordinate names for the columns and rows.

    Returns:
        DataArray with dims ``(<layer>_channel, y, x)``; cells never measured are NaN,
        cells measured several times hold the mean.

    Not the same job as :func:`suites.results.reading.unstack_grid`, and neither can stand in for
    the other: this places rows by their coordinate *values*, so it takes any row order,
    subsets (:func:`select`) and datasets without the ``grid_axes`` attribute (e.g.
    :mod:`suites.analysis.synthetic`), averages rows that share a cell, and spans only the
    values present (an unfinished run gives a narrower grid, not NaN columns).
    ``unstack_grid`` places row ``i`` by its position in the grid stored in the file:
    every swept axis in the suite's order, every value (NaN where no row reached yet),
    every row variable, and it refuses rows that do not follow the stored grid.
    """
    if values is None:
        if layer is None:
            raise ValueError("grid: give either values or layer")
        values = layer_array(ds, layer, pre_relu)
    if STIMULUS_DIM not in values.dims or values.ndim != 2:
        raise ValueError(f"values: expected dims (stimulus, channel), got {values.dims}")
    values = values.transpose(STIMULUS_DIM, ...)
    cdim = values.dims[1]
    xs, xi = _axis(ds, x, decimals)
    ys, yi = _axis(ds, y, decimals)
    data = np.asarray(values.values, dtype=np.float64)
    n_ch = data.shape[1]
    cell = yi * xs.size + xi
    sums = np.zeros((ys.size * xs.size, n_ch))
    counts = np.zeros(ys.size * xs.size)
    np.add.at(sums, cell, data)
    np.add.at(counts, cell, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, None]
    mean[counts == 0] = np.nan
    out = mean.T.reshape(n_ch, ys.size, xs.size)
    coords = {cdim: values.coords[cdim].values if cdim in values.coords else np.arange(n_ch), y: ys, x: xs}
    attrs = dict(values.attrs)
    if "orientation_axis" in ds.attrs:  # see suites.analysis.orientation_axis
        attrs["orientation_axis"] = ds.attrs["orientation_axis"]
    return xr.DataArray(out, dims=(cdim, y, x), coords=coords, attrs=attrs)


def select(ds: xr.Dataset, **conditions: float) -> xr.Dataset:
    """Rows of ``ds`` whose coordinates equal the given values (to 1e-6), e.g. ``select(ds, rounding=0.5)``."""
    mask = np.ones(ds.sizes[STIMULUS_DIM], dtype=bool)
    for name, value in conditions.items():
        if name not in ds.coords:
            raise ValueError(f"select: coordinate {name!r} not in the results; swept parameters: {sorted(swept_parameters(ds))}")
        mask &= np.isclose(np.asarray(ds.coords[name].values, dtype=np.float64), float(value), atol=1e-6)
    if not mask.any():
        raise ValueError(f"select: no stimulus matches {conditions}")
    return ds.isel({STIMULUS_DIM: np.flatnonzero(mask)})


def series_values(ds: xr.Dataset, exclude: Sequence[str] = ("orientation", "curvature")) -> dict[str, np.ndarray]:
    """Swept parameters other than the heatmap axes (e.g. ``rounding`` levels), with their values."""
    return {k: v for k, v in swept_parameters(ds).items() if k not in exclude}
