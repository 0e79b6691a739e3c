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
from dataclasses import dataclass, replace
from typing import Any

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


# -- simulated measurements of a published curve family (validate's calibration) ----------
@dataclass(frozen=True)
class SimulatedErrors:
    """The errors :func:`simulate_family_curves` puts into a published family's curves (see there)."""

    rotation_sd: float = 12.0
    echo_gain: tuple[float, float] = (0.8, 1.25)
    amplitude_noise: float = 0.05
    shift: float | None = None
    reflect: bool | None = None
    random_orientations: bool = False
    permute: bool = False
    keep: float = 1.0


def simulate_family_curves(
    reference,
    orientations: np.ndarray,
    errors: SimulatedErrors | None = None,
    *,
    seed: int | np.random.Generator = 0,
    **overrides: Any,
) -> tuple[dict[int, np.ndarray], dict]:
    """Measured radial tuning curves built from a reference family's curves, with known errors.

    Each unit's reference curve (:class:`~suites.analysis.reference_curves.ReferenceFamily`,
    0.5-degree grid, article convention) is

    1. rotated by its own error ``eps ~ N(0, rotation_sd)`` degrees (or, with
       ``random_orientations``, by a uniform random angle);
    2. given an echo-lobe gain ``g`` (log-uniform in ``echo_gain``): the curve is multiplied
       by ``1 + (g - 1) * w`` with ``w`` a von Mises window of 90 degrees FWHM centred
       180 degrees from the unit's peak, so echoes grow or shrink (and near-equal echoes can win);
    3. scaled by a random gain in [0.5, 2], plus Gaussian noise of ``amplitude_noise`` times
       its peak per sample, then rectified (post-ReLU);
    4. sampled at ``orientations`` (curvebench's convention), where curvebench's ``theta``
       is the article's ``sign * theta + shift`` (``shift`` uniform in [0, 360) and the
       reflection a coin flip unless given).

    ``permute`` hands the curves to the channels in a random non-identity order;
    ``keep`` < 1 keeps only that fraction of the channels (rounded down, at least one).
    The errors are :class:`SimulatedErrors` (``errors``, or its fields by name as ``overrides``).

    Returns:
        ``({channel: (N,) curve}, truth)`` with ``truth`` holding ``shift``, ``reflected``,
        ``errors`` (per channel, degrees) and ``order`` (which reference curve each channel got).
    """
    e = replace(errors or SimulatedErrors(), **overrides)
    rotation_sd, echo_gain, amplitude_noise, keep = e.rotation_sd, e.echo_gain, e.amplitude_noise, e.keep
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    o = np.asarray(orientations, dtype=np.float64)
    n = len(reference.channels)
    grid = reference.orientations
    shift = float(rng.uniform(0.0, 360.0)) if e.shift is None else float(e.shift)
    reflect = bool(rng.integers(2)) if e.reflect is None else bool(e.reflect)
    sign = -1.0 if reflect else 1.0
    eps = rng.uniform(-180.0, 180.0, n) if e.random_orientations else rng.normal(0.0, rotation_sd, n)
    order = np.arange(n)
    if e.permute:
        while np.array_equal(order, np.arange(n)):
            order = rng.permutation(n)
    lo, hi = np.log(echo_gain[0]), np.log(echo_gain[1])
    kappa = np.log(2.0) / (1.0 - np.cos(np.deg2rad(45.0)))
    src = reference.curves[order]  # (n, 720)
    peaks = grid[np.argmax(src, axis=1)]
    gains = np.exp(rng.uniform(lo, hi, n))
    window = np.exp(kappa * (np.cos(np.deg2rad(grid[None, :] - peaks[:, None] - 180.0)) - 1.0))
    shaped = src * (1.0 + (gains[:, None] - 1.0) * window)
    # the unit's lobe sits errors[i] further on: its response at the article's angle phi is the
    # reference's at phi - eps (linear interpolation on the 0.5-degree grid)
    phi = sign * o[None, :] + shift - eps[:, None]
    pos = (phi % 360.0) / (grid[1] - grid[0])
    i0 = np.floor(pos).astype(np.int64) % grid.size
    frac = pos - np.floor(pos)
    rows = np.arange(n)[:, None]
    values = shaped[rows, i0] * (1.0 - frac) + shaped[rows, (i0 + 1) % grid.size] * frac
    values = values * rng.uniform(0.5, 2.0, (n, 1))
    values = np.maximum(values + rng.normal(0.0, 1.0, values.shape) * amplitude_noise * values.max(axis=1, keepdims=True), 0.0)
    curves = {int(c): values[i] for i, c in enumerate(reference.channels)}
    truth_errors = {int(c): float(eps[i]) for i, c in enumerate(reference.channels)}
    kept = list(curves)
    if keep < 1.0:
        m = max(1, int(np.floor(keep * n)))
        kept = sorted(rng.choice(kept, size=m, replace=False).tolist(), key=list(curves).index)
    return ({c: curves[c] for c in kept},
            {"shift": shift, "reflected": reflect, "errors": truth_errors, "order": [int(reference.channels[j]) for j in order]})


def family_results(curves: Mapping[int, np.ndarray], orientations: np.ndarray, *, layer: str,
                   curvatures: Sequence[float] = (0.0, 0.02, 0.04), attrs: Mapping[str, object] | None = None) -> xr.Dataset:
    """A results-file-shaped dataset whose radial tuning curves are ``curves``.

    The curve is the response at the last curvature; each earlier curvature responds with
    a smaller copy (gain 0.5 ... 1), so the maximum over curvature is ``curves`` itself.
    Pre-ReLU values equal the post-ReLU ones (the curves are already rectified).
    """
    o = np.asarray(orientations, dtype=np.float64)
    k = np.asarray(curvatures, dtype=np.float64)
    ids = list(curves)
    gains = np.linspace(0.5, 1.0, k.size)
    kk, oo = np.meshgrid(k, o, indexing="ij")
    post = np.stack([(gains[:, None] * np.asarray(curves[c])[None, :]).ravel() for c in ids], axis=1)
    cdim = f"{layer}_channel"
    ds = xr.Dataset(
        {layer: (("stimulus", cdim), post.astype(np.float32)), f"{layer}_pre_relu": (("stimulus", cdim), post.astype(np.float32))},
        coords={"orientation": ("stimulus", oo.ravel()), "curvature": ("stimulus", kk.ravel()), cdim: ids},
    )
    ds.attrs.update({"model": "inceptionv1", "weights_sha256": "", "state": "complete", "rows_completed": post.shape[0]})
    ds.attrs.update(dict(attrs or {}))
    return ds
