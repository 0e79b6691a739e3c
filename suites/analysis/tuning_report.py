"""The tuning report of a results file (``curvebench tuning --json``), and JSON-safe values.

:func:`tuning_report` gathers :func:`suites.analysis.tuning.layer_tuning` of every layer
with the file's provenance and the units of each number; :func:`jsonable` turns numpy
values, tuples and non-finite floats into what ``json.dumps(..., allow_nan=False)`` takes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["tuning_report", "jsonable"]


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays as Python numbers/lists, non-finite floats as None, keys as text."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj if obj is None or isinstance(obj, str) else str(obj)


def tuning_report(ds: xr.Dataset, stats: xr.Dataset | None = None, layers: Sequence[str] | None = None,
                  reference: xr.Dataset | None = None, orientation_axis: str = "curvebench") -> dict:
    """Tuning numbers of every layer (see :func:`suites.analysis.tuning.layer_tuning`) plus provenance.

    Args:
        ds: a results dataset (orientation x curvature sweep).
        stats: dataset statistics for sigma (None: the sweep's own, labelled).
        layers: layers to report (default: every layer with per-stimulus activations).
        reference: another results dataset whose tuning each channel is compared with.
        orientation_axis: ``"curvebench"`` or ``"article"`` (see :mod:`suites.analysis.orientation_axis`);
            every orientation in the report is on that axis (degrees).
    """
    from .arrays import layer_names
    from .family_channels import family_channels
    from .orientation_axis import describe, with_orientation_axis
    from .plots import provenance
    from .tuning import PREFERRED_METHOD, layer_tuning

    ds = with_orientation_axis(ds, orientation_axis)
    if reference is not None:
        reference = with_orientation_axis(reference, orientation_axis)
    report: dict[str, Any] = {
        "model": str(ds.attrs.get("model", "")),
        "weights_sha256": str(ds.attrs.get("weights_sha256", "")),
        "provenance": provenance(ds),
        "preferred_orientation_method": PREFERRED_METHOD,
        "orientation_axis": orientation_axis,
        "units": {
            "orientation": describe(orientation_axis),
            "curvature": "1/px",
            "fwhm": "degrees (post-ReLU activation, baseline 0)",
            "peak_sigma": "post-ReLU sigma",
            "echo_index": "response within 30 deg of preferred+180 / peak response",
        },
        "layers": {},
    }
    for layer in layers or layer_names(ds):
        fam = family_channels(ds, layer)
        result = layer_tuning(ds, layer, stats, families={f"{layer} curve family": fam} if fam else None, reference=reference)
        report["statistics"] = result["statistics"]
        report["layers"][layer] = result
    return report
