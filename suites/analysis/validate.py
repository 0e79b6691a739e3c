"""Compare a measured curve family with a reference: whole tuning curves and peak positions.

The reference is the article's published radial tuning curves (InceptionV1: conv2d2,
mixed3a, mixed3b, mixed4a; Cammarata et al., "Curve Detectors", Distill 2020) or, for a
family known only by its peaks (the ground-truth model), bumps at the designed peaks
(see :mod:`.reference_curves`).

Method (all angles in degrees; residuals wrapped to ``[-180, 180)``):

1. **Measured radial tuning curve** of a channel: its post-ReLU response vs orientation,
   the maximum over the swept non-zero curvatures (curvature 0 draws theta and
   theta + 180 alike). The orientation sweep must cover the full circle.
2. **Coverage**: a family channel counts as measured when it is in the results and
   fires somewhere; fewer than ``min_measured`` (default 80%) of the family's channels
   measured fails the family, naming the missing ones.
3. **Convention mapping**, estimated once per layer: ``article = sign * measured + shift``
   (``sign`` = -1 is a reflection), the one maximising the sum over measured channels
   of the Pearson correlation between the measured curve and the reference curve at
   the mapped orientations (``shift`` on the reference's 0.5-degree grid; measured
   orientations are rounded to that grid).
4. **Per-unit residual**: with the layer's mapping fixed, the rotation (in the
   article's frame) that best aligns the unit's *whole* curve with its reference
   curve (maximum correlation). Main lobe and echo are aligned together, so an echo
   that wins by a little moves the argmax by ~180 degrees but not the residual. The
   argmax-based **peak residual** is reported alongside and flagged when the two
   disagree by more than 90 degrees ("echo wins").
5. **Curve correlation** per unit: Pearson correlation between the measured curve and
   the reference curve at the layer's mapping (no per-unit rotation).
6. **Order**: the circular order of the units' positions in the article's frame
   (reference peak + residual) against the reference peaks, as the fraction of
   channel triples with the same cyclic orientation, counting only triples whose
   reference peaks are pairwise at least ``tie_deg`` apart (closer pairs are
   near-ties whose order noise may swap).

Verdict: PASS when coverage >= ``min_measured``, the RMS residual <= ``max_rms``, the
order agreement >= ``min_order`` and (published curves only) the median curve
correlation >= ``min_corr``. The defaults are calibrated by simulation
(``tests/test_validate_article.py``; rates in ``docs/analysis.md``).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .reference_curves import STEP, ReferenceFamily

DEFAULT_MAX_RMS = 22.0
DEFAULT_MIN_ORDER = 0.8
DEFAULT_MIN_CORR = 0.5
DEFAULT_MIN_MEASURED = 0.8
DEFAULT_TIE_DEG = 30.0
#: a unit whose peak residual and whole-curve residual differ by more than this is flagged "echo wins"
ECHO_FLIP_DEG = 90.0

_N = round(360 / STEP)  # samples of a reference curve


def _wrap180(angle: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(angle, dtype=np.float64) + 180.0) % 360.0 - 180.0


def _deg360(angle: float) -> float:
    """``angle`` (degrees) rounded to the 0.1 degree shown, then wrapped to [0, 360): 359.96 shows as 0.0."""
    return round(round(angle, 1) % 360.0, 1) % 360.0 + 0.0  # + 0.0: no "-0.0"


@dataclass
class UnitComparison:
    """One family channel (angles in degrees; NaN where the channel is not measured)."""

    channel: int
    measured: bool
    reference_peak: float
    measured_peak: float = math.nan
    mapped_peak: float = math.nan
    peak_residual: float = math.nan
    residual: float = math.nan
    correlation: float = math.nan
    aligned_correlation: float = math.nan
    echo_wins: bool = False


@dataclass
class FamilyValidation:
    """Result of :func:`compare_curves` / :func:`validate_layer`."""

    layer: str
    reference: str
    source: str
    units: list[UnitComparison]
    missing: list[int]
    measured_fraction: float
    shift: float
    reflected: bool
    rms: float
    max_abs: float
    order_agreement: float
    order_triples: int
    median_correlation: float
    passed: bool
    criteria: dict[str, float]
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mapping(self) -> str:
        """The convention mapping as text, e.g. ``article = -measured + 123.0 deg``."""
        if not math.isfinite(self.shift):
            return "article = ? (too few channels measured)"
        return f"article = {'-' if self.reflected else '+'}measured + {_deg360(self.shift):.1f} deg"

    def table(self) -> str:
        """Per-channel table and the verdict, as plain text."""
        lines = [f"{self.layer}: against {self.source}", f"  mapping {self.mapping}",
                 f"  {'channel':>8} {'measured':>9} {'mapped':>8} {'article':>8} {'peak res':>9} "
                 f"{'residual':>9} {'corr':>6}"]
        for u in self.units:
            if not u.measured:
                lines.append(f"  {u.channel:>8d} {'missing':>9} {'':>8} {_deg360(u.reference_peak):>8.1f}")
                continue
            flag = "  echo wins" if u.echo_wins else ""
            lines.append(f"  {u.channel:>8d} {_deg360(u.measured_peak):>9.1f} {_deg360(u.mapped_peak):>8.1f} "
                         f"{_deg360(u.reference_peak):>8.1f} {round(u.peak_residual, 1) + 0.0:>+9.1f} "
                         f"{round(u.residual, 1) + 0.0:>+9.1f} {u.correlation:>6.2f}{flag}")
        c = self.criteria
        corr = (f"median curve correlation {self.median_correlation:.2f} (minimum {c['min_corr']:g})"
                if self.reference == "published" else "curve correlation not tested (designed peaks only)")
        lines.append(
            f"  measured {100 * self.measured_fraction:.0f}% of the family (minimum {100 * c['min_measured']:.0f}%); "
            f"RMS residual {self.rms:.1f} deg (max |{self.max_abs:.1f}|, tolerance {c['max_rms']:g}); "
            f"order agreement {self.order_agreement:.2f} over {self.order_triples} triples (minimum {c['min_order']:g}); "
            f"{corr} -> {'PASS' if self.passed else 'FAIL'}")
        lines.extend(f"  fails: {f}" for f in self.failures)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain-data view (for JSON)."""
        out = asdict(self)
        out["mapping"] = self.mapping
        return out


def _positions(orientations: np.ndarray) -> np.ndarray:
    """Reference-grid index of each measured orientation (rounded to 0.5 degree)."""
    o = np.asarray(orientations, dtype=np.float64)
    if o.ndim != 1 or o.size < 8 or not np.isfinite(o).all():
        raise ValueError(f"validate: need a 1-D orientation sweep of at least 8 finite values, got shape {o.shape}")
    k = np.round((o % 360.0) / STEP).astype(np.int64) % _N
    if np.unique(k).size != k.size:
        raise ValueError("validate: orientations closer than 0.5 deg (the reference's resolution); sweep coarser")
    gaps = np.diff(np.sort(k), append=np.sort(k)[0] + _N) * STEP
    if gaps.max() > 30.0:
        raise ValueError(f"validate: the orientation sweep leaves a gap of {gaps.max():g} deg; "
                         "sweep the full circle (e.g. 0..360 in steps of at most 10 deg)")
    return k


def correlation_by_shift(orientations: np.ndarray, curves: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Pearson correlation of each measured curve with its reference at ``sign * orientation + shift``.

    Args:
        orientations: (N,) degrees of the measured samples.
        curves: (U, N) measured responses (or one curve, (N,)).
        references: (U, 720) reference curves on the 0.5-degree grid (or one, (720,)).

    Returns:
        ``(U, 2, 720)`` (or ``(2, 720)`` for one curve): ``[:, 0]`` for sign +1, ``[:, 1]``
        for sign -1 (reflection); column ``j`` for shift ``j * 0.5`` degrees. NaN where
        either side is constant.
    """
    single = np.ndim(curves) == 1
    k = _positions(orientations)
    m = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    r = np.atleast_2d(np.asarray(references, dtype=np.float64))
    if m.shape[1] != k.size or r.shape != (m.shape[0], _N):
        raise ValueError(f"validate: curves {m.shape} and references {r.shape} do not match {k.size} orientations")
    m = m - m.mean(axis=1, keepdims=True)
    norm = np.sqrt((m * m).sum(axis=1, keepdims=True))
    a = np.zeros((m.shape[0], _N))
    with np.errstate(invalid="ignore", divide="ignore"):
        a[:, k] = np.where(norm > 0, m / norm, np.nan)
    ind = np.zeros(_N)
    ind[k] = 1.0
    fr, fr2 = np.fft.rfft(r, axis=1), np.fft.rfft(r * r, axis=1)
    fa, fi = np.fft.rfft(a, axis=1), np.fft.rfft(ind)[None, :]
    # sign +1: sum_k a[k] r[k + j] (cross-correlation, conjugate); sign -1: sum_k a[k] r[j - k] (convolution)
    spectra = np.stack([np.conj(fa) * fr, np.conj(fi) * fr, np.conj(fi) * fr2, fa * fr, fi * fr, fi * fr2])
    num_p, s1_p, s2_p, num_m, s1_m, s2_m = np.fft.irfft(spectra, _N, axis=-1)
    out = np.empty((m.shape[0], 2, _N))
    for row, (num, s1, s2) in enumerate(((num_p, s1_p, s2_p), (num_m, s1_m, s2_m))):
        var = s2 - s1 * s1 / k.size
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = var > 1e-12 * np.maximum(s2.max(axis=1, keepdims=True), 1e-300)
            out[:, row] = np.where(ok, num / np.sqrt(np.clip(var, 0, None)), np.nan)
    return out[0] if single else out


@functools.lru_cache(maxsize=64)
def _triples(n: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), 3)))


def cyclic_order_agreement(a: Sequence[float], b: Sequence[float], ties: Sequence[float] | None = None,
                           tie_deg: float = 0.0) -> tuple[float, int]:
    """Fraction of index triples with the same cyclic orientation in angle lists ``a`` and ``b``.

    Triples in which two angles of ``ties`` (default ``b``) lie within ``tie_deg`` of each
    other are skipped. Returns ``(fraction, triples counted)``; NaN when none is left.
    """
    a = np.asarray(a, dtype=np.float64) % 360.0
    b = np.asarray(b, dtype=np.float64) % 360.0
    t = b if ties is None else np.asarray(ties, dtype=np.float64)
    if a.shape != b.shape or t.shape != a.shape:
        raise ValueError(f"order: lists differ in length: {a.shape}, {b.shape}, {t.shape}")
    if a.size < 3:
        return math.nan, 0
    tr = _triples(a.size)
    i, j, k = tr.T

    def apart(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.abs(_wrap180(t[p] - t[q])) >= tie_deg

    tr = tr[apart(i, j) & apart(i, k) & apart(j, k)]
    if not len(tr):
        return math.nan, 0
    i, j, k = tr.T

    def orient(x: np.ndarray) -> np.ndarray:
        return ((x[j] - x[i]) % 360.0) < ((x[k] - x[i]) % 360.0)

    return float(np.mean(orient(a) == orient(b))), len(tr)


def _peaks(orientations: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Argmax of each (U, N) curve on a full-circle sweep, refined by a parabola through its
    neighbours when the sweep is uniform (as :func:`.tuning.fitted_peak`); degrees [0, 360)."""
    o = np.asarray(orientations, dtype=np.float64) % 360.0
    order = np.argsort(o)
    o, c = o[order], np.asarray(curves, dtype=np.float64)[:, order]
    n = o.size
    i = np.argmax(c, axis=1)
    rows = np.arange(c.shape[0])
    step = np.diff(o, append=o[0] + 360.0)
    if not np.allclose(step, step[0], atol=1e-3):
        return o[i]
    left, mid, right = c[rows, (i - 1) % n], c[rows, i], c[rows, (i + 1) % n]
    denom = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(denom < 0, np.clip(0.5 * (left - right) / denom, -0.5, 0.5), 0.0)
    return (o[i] + delta * step[0]) % 360.0


def compare_curves(
    layer: str,
    orientations: np.ndarray,
    curves: Mapping[int, np.ndarray],
    reference: ReferenceFamily,
    *,
    allow_reflection: bool = True,
    max_rms: float = DEFAULT_MAX_RMS,
    min_order: float = DEFAULT_MIN_ORDER,
    min_corr: float = DEFAULT_MIN_CORR,
    min_measured: float = DEFAULT_MIN_MEASURED,
    tie_deg: float = DEFAULT_TIE_DEG,
) -> FamilyValidation:
    """Validate one family from measured radial tuning curves (the array-level core of :func:`validate_layer`).

    Args:
        layer: tap name (for the report).
        orientations: (N,) degrees of the samples, covering the circle (curvebench's convention).
        curves: channel id -> (N,) post-ReLU responses; channels of the reference that are
            absent, all-NaN or never positive count as missing; other channels are ignored.
        reference: the family's reference curves.
    """
    criteria = dict(max_rms=max_rms, min_order=min_order, min_corr=min_corr, min_measured=min_measured, tie_deg=tie_deg)
    o = np.asarray(orientations, dtype=np.float64)
    ref_peaks = reference.peaks()
    measured, missing = [], []
    for c in reference.channels:
        v = curves.get(c)
        ok = v is not None and np.shape(v) == o.shape
        if ok:
            top = float(np.max(v))  # NaN if any sample is NaN
            ok = math.isfinite(top) and top > 0 and bool(np.isfinite(v).all())
        (measured if ok else missing).append(c)
    fraction = len(measured) / len(reference.channels)
    units = {c: UnitComparison(c, c in measured, ref_peaks[c]) for c in reference.channels}
    failures, notes = [], []
    if missing:
        notes.append(f"not measured (absent, non-finite or never firing): channels {missing}")
    if fraction < min_measured:
        failures.append(f"only {len(measured)} of {len(reference.channels)} family channels measured "
                        f"({100 * fraction:.0f}% < {100 * min_measured:.0f}%); missing {missing}")
    shift, reflected = math.nan, False
    rms = max_abs = order = median_corr = math.nan
    n_triples = 0
    if len(measured) >= 3:
        index = {c: i for i, c in enumerate(reference.channels)}
        stacked = np.stack([np.asarray(curves[c], dtype=np.float64) for c in measured])
        corr = correlation_by_shift(o, stacked, reference.curves[[index[c] for c in measured]])
        peaks = _peaks(o, stacked)
        total = np.nansum(corr, axis=0)
        if not allow_reflection:
            total[1] = -np.inf
        s, j = np.unravel_index(int(np.argmax(total)), total.shape)
        reflected, shift = bool(s == 1), float(j * STEP)
        sign = -1.0 if reflected else 1.0
        # residual rho: the unit's curve matches the reference at shift - rho (its lobe sits rho further on)
        rho = _wrap180((j - np.arange(_N)) * STEP)
        rows = corr[:, s]
        finite = np.isfinite(rows).any(axis=1)
        best = np.where(finite, np.argmax(np.where(np.isfinite(rows), rows, -np.inf), axis=1), j)
        mapped = (sign * peaks + shift) % 360.0
        peak_res = _wrap180(mapped - np.array([ref_peaks[c] for c in measured]))
        echo = np.abs(_wrap180(peak_res - rho[best])) > ECHO_FLIP_DEG
        for i, c in enumerate(measured):
            u = units[c]
            u.correlation, u.residual, u.aligned_correlation = float(rows[i, j]), float(rho[best[i]]), float(rows[i, best[i]])
            u.measured_peak, u.mapped_peak, u.peak_residual = float(peaks[i]), float(mapped[i]), float(peak_res[i])
            u.echo_wins = bool(echo[i])
        res = np.array([units[c].residual for c in measured])
        rms = float(np.sqrt(np.mean(res ** 2)))
        max_abs = float(np.max(np.abs(res)))
        ref = np.array([units[c].reference_peak for c in measured])
        order, n_triples = cyclic_order_agreement(ref + res, ref, tie_deg=tie_deg)
        median_corr = float(np.nanmedian([units[c].correlation for c in measured]))
        flipped = [c for c in measured if units[c].echo_wins]
        if flipped:
            notes.append(f"echo wins (strongest response ~180 deg from the main lobe; the whole-curve residual is "
                         f"used): channels {flipped}")
        if not rms <= max_rms:
            failures.append(f"RMS residual {rms:.1f} deg > {max_rms:g}")
        if not (order >= min_order or n_triples == 0):
            failures.append(f"order agreement {order:.2f} < {min_order:g}")
        if reference.kind == "published" and not median_corr >= min_corr:
            failures.append(f"median curve correlation {median_corr:.2f} < {min_corr:g}")
    else:
        failures.append(f"fewer than 3 family channels measured ({measured}): no mapping can be estimated")
    if n_triples == 0 and len(measured) >= 3:
        order = math.nan
        notes.append(f"no channel triple with reference peaks >= {tie_deg:g} deg apart: order not tested")
    return FamilyValidation(
        layer=layer, reference=reference.kind, source=reference.source,
        units=[units[c] for c in reference.channels], missing=missing, measured_fraction=fraction,
        shift=shift, reflected=reflected, rms=rms, max_abs=max_abs, order_agreement=order, order_triples=n_triples,
        median_correlation=median_corr, passed=not failures, criteria=criteria, failures=failures, notes=notes,
    )


def radial_curves(ds, layer: str) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """``(orientations, {channel: curve})``: each channel's post-ReLU response vs orientation,
    the maximum over the swept non-zero curvatures (all curvatures if only 0 was swept).
    Orientations no channel has a value for (an unfinished run) are left out, and of
    orientations equal modulo 360 (0 and 360) the first is kept."""
    from .arrays import channel_dim, grid

    post = grid(ds, layer=layer)  # (channel, curvature, orientation)
    k = post.coords["curvature"].values
    keep = np.abs(k) > 1e-12
    values = post.values[:, keep] if keep.any() else post.values
    with np.errstate(all="ignore"):
        radial = np.where(np.isfinite(values).any(axis=1), np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=1), np.nan)
    cdim = channel_dim(ds, layer)
    ids = [int(c) for c in post.coords[cdim].values]
    o = np.asarray(post.coords["orientation"].values, dtype=np.float64)
    swept = np.isfinite(radial).any(axis=0)  # an unfinished run: orientations not measured yet are left out
    # one sample per direction: a sweep with both 0 and 360 keeps the first
    _, first = np.unique(np.round(o % 360.0, 6), return_index=True)
    keep = np.zeros(o.size, dtype=bool)
    keep[first] = True
    keep &= swept
    return o[keep], dict(zip(ids, radial[:, keep]))


def validate_layer(ds, layer: str, reference: ReferenceFamily, **options) -> FamilyValidation:
    """Validate the curve family of ``layer`` in a results dataset against ``reference``.

    ``ds`` needs ``orientation`` (full circle) and ``curvature`` coordinates; ``options``
    are those of :func:`compare_curves`.
    """
    if "orientation" not in ds.coords or "curvature" not in ds.coords:
        raise ValueError("validate: the results need an orientation x curvature sweep (coordinates "
                         "'orientation' and 'curvature')")
    o, curves = radial_curves(ds, layer)
    return compare_curves(layer, o, curves, reference, **options)
