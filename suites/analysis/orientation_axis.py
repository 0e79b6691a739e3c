"""The orientation axis of figures and tables: curvebench's convention or the article's.

curvebench (the renderer, the results files): ``orientation`` is the direction from the
path's midpoint toward its centre of curvature (the side the curve opens to), in degrees
**counter-clockwise on screen**, 0 = opens to the right (+x), 90 = opens up.

The article (Distill, *Curve Detectors*, its stimulus strips and heatmaps): 0 is the same
stimulus (its first column is a vertical line over a curve opening to the right), but the
angle runs **clockwise on screen**: 90 = opens down, 180 = opens left, 270 = opens up.

The exact mapping, its own inverse::

    article = (360 - curvebench) mod 360        curvebench = (360 - article) mod 360

Checked by rendering against the article's fill strip (``tests/test_orientation_axis.py``):
the side each of its 36 columns fills, measured on the published figure, is the side
curvebench fills at the mapped orientation.

Only heatmap/strip orientation is meant. The article's radial tuning data (the peak
angles quoted in ``probes.article_families``) use yet another zero; ``validate``
estimates that shift and reflection from the data.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["AXES", "AXIS_ATTR", "axis_of", "describe", "from_axis", "to_axis", "with_orientation_axis"]

#: Orientation axes figures and tables can use.
AXES: tuple[str, ...] = ("curvebench", "article")
#: Dataset attribute naming the axis of its ``orientation`` coordinate (absent = curvebench).
AXIS_ATTR = "orientation_axis"

_DESCRIPTIONS = {
    "curvebench": "degrees, counter-clockwise on screen, 0 = opening toward +x (right), 90 = opening up",
    "article": "degrees, the article's axis: clockwise on screen, 0 = opening toward +x (right), 90 = opening down "
               "(= (360 - curvebench orientation) mod 360)",
}


def _check(axis: str) -> None:
    if axis not in AXES:
        raise ValueError(f"orientation axis {axis!r} is unknown: allowed {', '.join(AXES)}")


def to_axis(orientation: np.ndarray | float, axis: str) -> np.ndarray:
    """curvebench orientations (degrees) on ``axis``, in ``[0, 360)`` for the article's axis."""
    _check(axis)
    o = np.asarray(orientation, dtype=np.float64)
    if axis == "curvebench":
        return o
    return np.mod(360.0 - np.mod(o, 360.0), 360.0)


def from_axis(orientation: np.ndarray | float, axis: str) -> np.ndarray:
    """Orientations (degrees) given on ``axis`` as curvebench orientations (the mapping is an involution)."""
    return to_axis(orientation, axis)


def describe(axis: str) -> str:
    """The unit text of orientations on ``axis``."""
    _check(axis)
    return _DESCRIPTIONS[axis]


def axis_of(ds: xr.Dataset) -> str:
    """The orientation axis of a dataset's ``orientation`` coordinate (``"curvebench"`` unless marked)."""
    return str(ds.attrs.get(AXIS_ATTR, "curvebench"))


def with_orientation_axis(ds: xr.Dataset, axis: str) -> xr.Dataset:
    """``ds`` with its ``orientation`` coordinate on ``axis`` (and ``attrs[AXIS_ATTR]`` saying so).

    Grids built from the result (:func:`suites.analysis.arrays.grid`) sort by the new values,
    so heatmaps and tuning numbers come out on that axis. A dataset without an
    ``orientation`` coordinate is returned unchanged.
    """
    _check(axis)
    if "orientation" not in ds.coords or axis_of(ds) == axis:
        return ds
    curvebench = from_axis(ds.coords["orientation"].values, axis_of(ds))
    out = ds.assign_coords(orientation=(ds.coords["orientation"].dims, to_axis(curvebench, axis),
                                        {**ds.coords["orientation"].attrs, "units": describe(axis)}))
    out.attrs = {**ds.attrs, AXIS_ATTR: axis}
    return out
