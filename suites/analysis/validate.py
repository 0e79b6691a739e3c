"""Compare measured preferred orientations of a curve family with the article's values.

The article's angle convention is not published, so measured angles are first mapped
onto the article's by the best **circular shift** and, optionally, a **reflection**
(``article ~ sign * measured + shift``); only what survives that mapping - the
spacing and circular order of the family - is tested.

Convention:
    - Angles in degrees; residuals are wrapped to ``[-180, 180)``.
    - The shift minimises the sum of squared wrapped residuals (searched on a
      0.05-degree grid, both signs tried; the better one wins).
    - **Circular-order agreement**: the fraction of channel triples whose cyclic
      order (clockwise or counter-clockwise) is the same in the mapped measurement
      as in the article: 1.0 = same circular order, ~0.5 = unrelated.
    - **Tolerance** (defaults, see :data:`DEFAULT_MAX_RMS` and
      :data:`DEFAULT_MIN_ORDER`): a family passes when the RMS residual is at most
      20 degrees and the order agreement is at least 0.9. The article's values are
      read off its radial plots (a few degrees of reading error) and its stimuli are
      not ours, so 20 degrees RMS is a "same tiling" test, not a precision test.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# `wrap180` is imported inside the functions: `.tuning` imports xarray, and the
# `curvebench` parser reads this module's defaults without wanting xarray.

DEFAULT_MAX_RMS = 20.0
DEFAULT_MIN_ORDER = 0.9


def _deg360(angle: float) -> float:
    """``angle`` (degrees) rounded to the 0.1 degree shown, then wrapped to [0, 360): 359.96 shows as 0.0."""
    return round(angle, 1) % 360.0 + 0.0  # + 0.0: no "-0.0"


@dataclass
class FamilyValidation:
    """Result of :func:`compare_family` (all angles in degrees)."""

    layer: str
    channels: list[int]
    measured: list[float]
    article: list[float]
    mapped: list[float]
    residuals: list[float]
    shift: float
    reflected: bool
    rms: float
    max_abs: float
    order_agreement: float
    passed: bool
    max_rms: float
    min_order: float
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """Per-channel residual table and the summary line, as plain text."""
        lines = [
            f"{self.layer}: mapping article = {'-' if self.reflected else '+'}measured + {_deg360(self.shift):.1f} deg",
            f"  {'channel':>8} {'measured':>9} {'mapped':>8} {'article':>8} {'residual':>9}",
        ]
        for c, m, p, a, r in zip(self.channels, self.measured, self.mapped, self.article, self.residuals):
            lines.append(f"  {c:>8d} {_deg360(m):>9.1f} {_deg360(p):>8.1f} {_deg360(a):>8.1f} {round(r, 1) + 0.0:>+9.1f}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"  RMS residual {self.rms:.1f} deg (max |{self.max_abs:.1f}|, tolerance {self.max_rms:g}); "
            f"circular-order agreement {self.order_agreement:.2f} (minimum {self.min_order:g}) -> {verdict}"
        )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def best_mapping(measured: Sequence[float], article: Sequence[float], allow_reflection: bool = True) -> tuple[float, bool]:
    """``(shift, reflected)`` minimising the squared wrapped residuals of ``sign*measured + shift - article``."""
    m = np.asarray(measured, dtype=np.float64)
    a = np.asarray(article, dtype=np.float64)
    if m.shape != a.shape or m.ndim != 1 or m.size == 0:
        raise ValueError(f"validate: measured and article angles must be equal-length 1-D lists, got {m.shape} and {a.shape}")
    from .tuning import wrap180

    shifts = np.arange(0.0, 360.0, 0.05)
    best = (math.inf, 0.0, False)
    for reflected in (False, True) if allow_reflection else (False,):
        sm = -m if reflected else m
        cost = (wrap180(sm[None, :] + shifts[:, None] - a[None, :]) ** 2).sum(axis=1)
        i = int(np.argmin(cost))
        if cost[i] < best[0] - 1e-9:
            best = (float(cost[i]), float(shifts[i]), reflected)
    return best[1], best[2]


def cyclic_order_agreement(a: Sequence[float], b: Sequence[float]) -> float:
    """Fraction of index triples with the same cyclic orientation in angle lists ``a`` and ``b``."""
    a = np.asarray(a, dtype=np.float64) % 360.0
    b = np.asarray(b, dtype=np.float64) % 360.0
    if a.shape != b.shape:
        raise ValueError(f"order: lists differ in length: {a.shape} vs {b.shape}")
    if a.size < 3:
        return math.nan

    def orient(x: np.ndarray, i: int, j: int, k: int) -> bool:
        return ((x[j] - x[i]) % 360.0) < ((x[k] - x[i]) % 360.0)

    triples = list(itertools.combinations(range(a.size), 3))
    same = sum(orient(a, *t) == orient(b, *t) for t in triples)
    return same / len(triples)


def compare_family(
    layer: str,
    measured: Mapping[int, float],
    article: Mapping[int, float],
    *,
    allow_reflection: bool = True,
    max_rms: float = DEFAULT_MAX_RMS,
    min_order: float = DEFAULT_MIN_ORDER,
) -> FamilyValidation:
    """Validate one family: ``measured`` and ``article`` map channel id -> preferred orientation (degrees)."""
    notes = []
    missing = [c for c in article if c not in measured or not math.isfinite(measured[c])]
    if missing:
        notes.append(f"channels {missing} have no measured preferred orientation and are left out")
    channels = [c for c in article if c not in missing]
    if len(channels) < 3:
        raise ValueError(f"validate: layer {layer!r} needs at least 3 family channels with measurements, got {channels}")
    m = np.array([measured[c] for c in channels], dtype=np.float64)
    a = np.array([article[c] for c in channels], dtype=np.float64)
    from .tuning import wrap180

    shift, reflected = best_mapping(m, a, allow_reflection)
    mapped = ((-m if reflected else m) + shift) % 360.0
    res = wrap180(mapped - a)
    rms = float(np.sqrt(np.mean(res**2)))
    order = cyclic_order_agreement(mapped, a)
    return FamilyValidation(
        layer=layer,
        channels=[int(c) for c in channels],
        measured=[float(v) for v in m],
        article=[float(v) for v in a],
        mapped=[float(v) for v in mapped],
        residuals=[float(v) for v in res],
        shift=shift,
        reflected=reflected,
        rms=rms,
        max_abs=float(np.max(np.abs(res))),
        order_agreement=float(order),
        passed=bool(rms <= max_rms and order >= min_order),
        max_rms=max_rms,
        min_order=min_order,
        notes=notes,
    )
