"""Synthetic results datasets whose tuning is known in advance (for tests and demos).

Builds an in-memory :class:`xarray.Dataset` laid out exactly like a results file
(dimension ``stimulus``, 1-D coordinates ``orientation``/``curvature``/..., data
variables ``<layer>`` and ``<layer>_pre_relu`` with dims ``(stimulus, <layer>_channel)``)
from von-Mises-tuned units.

Convention:
    Unit response before the ReLU, for orientation theta (degrees) and curvature k (1/px)::

        gain(k) * peak * [vm(theta - preferred; c(k)) + echo * vm(theta - preferred - 180; c(k))] - offset

    with ``vm(d; c) = exp(c * (cos d - 1))`` (1 at d = 0) and the concentration
    ``c(k) = concentration / (1 + k / k_half)``: tuning gets broader as curvature
    grows (the article's triangles). ``gain(k) = 0.6 + 0.4 * k / max(k)`` so the
    best curvature is the tightest one. Post-ReLU = max(pre, 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr


def von_mises_unit(
    orientation: np.ndarray,
    curvature: np.ndarray,
    *,
    preferred: float,
    peak: float = 10.0,
    echo: float = 0.0,
    concentration: float = 20.0,
    k_half: float = 0.02,
    offset: float = 1.0,
) -> np.ndarray:
    """Pre-ReLU response of one synthetic unit at each (orientation, curvature) stimulus."""
    o = np.deg2rad(np.asarray(orientation, dtype=np.float64) - preferred)
    k = np.asarray(curvature, dtype=np.float64)
    kmax = max(float(np.max(k)), 1e-12)
    c = concentration / (1.0 + k / k_half)
    shape = np.exp(c * (np.cos(o) - 1.0)) + echo * np.exp(c * (np.cos(o - np.pi) - 1.0))
    gain = 0.6 + 0.4 * k / kmax
    return gain * peak * shape - offset


def synthetic_results(
    units: Sequence[Mapping[str, float]],
    *,
    layer: str = "mixed3b",
    channel_ids: Sequence[int] | None = None,
    orientations: np.ndarray | None = None,
    curvatures: np.ndarray | None = None,
    extra: Mapping[str, Sequence[float]] | None = None,
    modulate: Mapping[str, Sequence[float]] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    attrs: Mapping[str, object] | None = None,
) -> xr.Dataset:
    """A results-file-shaped dataset for a grid of curves and the given units.

    Args:
        units: one dict of :func:`von_mises_unit` keyword arguments per channel.
        channel_ids: channel ids (default ``0..len(units)-1``).
        orientations: degrees (default 0..355 step 5).
        curvatures: 1/px (default 0..0.1 in 11 steps).
        extra: further swept parameters (full outer product), e.g. ``{"rounding": [0, 1]}``.
        modulate: per extra parameter, a multiplicative gain per value (same length).
        noise: std of Gaussian noise added to pre-ReLU values.
    """
    o = np.arange(0.0, 360.0, 5.0) if orientations is None else np.asarray(orientations, dtype=np.float64)
    k = np.linspace(0.0, 0.1, 11) if curvatures is None else np.asarray(curvatures, dtype=np.float64)
    axes = {"orientation": o, "curvature": k}
    for name, values in (extra or {}).items():
        axes[name] = np.asarray(values, dtype=np.float64)
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    coords = {name: m.ravel() for name, m in zip(axes, mesh)}
    n = coords["orientation"].size
    ids = list(range(len(units))) if channel_ids is None else [int(c) for c in channel_ids]
    pre = np.stack([von_mises_unit(coords["orientation"], coords["curvature"], **u) for u in units], axis=1)
    for name, gains in (modulate or {}).items():
        idx = np.searchsorted(axes[name], coords[name])
        pre = (pre + np.array([u.get("offset", 1.0) for u in units])) * np.asarray(gains)[idx][:, None] - np.array(
            [u.get("offset", 1.0) for u in units]
        )
    if noise:
        pre = pre + np.random.default_rng(seed).normal(0.0, noise, pre.shape)
    cdim = f"{layer}_channel"
    ds = xr.Dataset(
        {
            layer: (("stimulus", cdim), np.maximum(pre, 0.0).astype(np.float32)),
            f"{layer}_pre_relu": (("stimulus", cdim), pre.astype(np.float32)),
        },
        coords={**{name: ("stimulus", v) for name, v in coords.items()}, cdim: ids},
    )
    ds.attrs.update({"model": "synthetic", "weights_sha256": "", "state": "complete", "rows_completed": n})
    ds.attrs.update(dict(attrs or {}))
    return ds
