"""Provenance every results file records: the versions of the software that wrote it, and when."""

from __future__ import annotations

import platform
from datetime import datetime, timezone

__all__ = ["versions", "utc_now"]


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds, e.g. ``2026-11-26T06:30:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def versions() -> dict[str, str]:
    """Versions of curvebench, torch, numpy, h5py, HDF5 and Python (results-file attributes ``*_version``)."""
    from importlib.metadata import PackageNotFoundError, version

    import h5py
    import numpy as np
    import torch

    try:
        cb = version("curvebench")
    except PackageNotFoundError:  # pragma: no cover
        cb = "unknown"
    return {
        "curvebench_version": cb,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "hdf5_version": h5py.version.hdf5_version,
        "python_version": platform.python_version(),
    }
