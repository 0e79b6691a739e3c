"""The parameter space :func:`suites.optimization.ascent.optimize` searches: names, bounds, projection.

A stimulus is a point of *coordinates* in natural units (the renderer's own):
``orientation`` (deg, counter-clockwise on screen, toward the side the curve opens to),
``curvature`` (1/px), ``length`` (px), ``width`` (px), ``dx, dy`` (px, offset of the
path's midpoint from the probed unit's receptive-field centre, x right, y down),
``fg_r, fg_g, fg_b`` and ``bg_r, bg_g, bg_b`` (RGB in [0, 1]), ``rounding`` and
``fill`` (in [0, 1]). Coordinates are grouped into the *parameters* a user names
(:data:`PARAMETERS`): ``position`` is ``(dx, dy)``, ``fg``/``bg`` are RGB triples.

The optimiser works on normalised coordinates ``u = (x - lo) / (hi - lo)``; after each
step :meth:`Space.project` keeps every parameter in range: orientation is periodic
(wrapped to [0, 360)), every other coordinate is clamped to its bounds, and curvature
also to ``|curvature| <= 2 pi / length`` (the renderer's full circle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from stimuli.draw import MAX_TURN
from suites.errors import OptimizeError

__all__ = ["Param", "PARAMETERS", "COORDINATES", "Space", "build_space"]


@dataclass(frozen=True)
class Param:
    """A parameter a user names: its coordinates, default bounds, start value and unit.

    ``bounds`` None means periodic (orientation). ``optional`` parameters (rounding,
    fill) are only optimised when asked for; otherwise they stay at ``start``.
    """

    name: str
    coords: tuple[str, ...]
    bounds: tuple[float, float] | None
    start: tuple[float, ...]
    unit: str
    optional: bool = False


#: Every parameter, in coordinate order. Default bounds: curvature from a straight line
#: to a closed circle of the 64 px default arc; length and width around the article's
#: stimuli; position within 8 px of the receptive-field centre.
PARAMETERS: dict[str, Param] = {p.name: p for p in (
    Param("orientation", ("orientation",), None, (0.0,), "deg"),
    Param("curvature", ("curvature",), (0.0, MAX_TURN / 64.0), (0.0,), "1/px"),
    Param("length", ("length",), (16.0, 96.0), (64.0,), "px"),
    Param("width", ("width",), (1.0, 8.0), (3.0,), "px"),
    Param("position", ("dx", "dy"), (-8.0, 8.0), (0.0, 0.0), "px from the receptive-field centre"),
    Param("fg", ("fg_r", "fg_g", "fg_b"), (0.0, 1.0), (0.0, 0.0, 0.0), "RGB"),
    Param("bg", ("bg_r", "bg_g", "bg_b"), (0.0, 1.0), (1.0, 1.0, 1.0), "RGB"),
    Param("rounding", ("rounding",), (0.0, 1.0), (1.0,), "", optional=True),
    Param("fill", ("fill",), (0.0, 1.0), (0.0,), "", optional=True),
)}
COORDINATES: tuple[str, ...] = tuple(c for p in PARAMETERS.values() for c in p.coords)
_INDEX = {c: i for i, c in enumerate(COORDINATES)}


def _allowed(name: str, size: int, min_length: float) -> tuple[float, float, str]:
    """The renderer's valid range of a parameter, ``(low, high, words)``."""
    if name == "orientation":
        return -math.inf, math.inf, "any finite degrees"
    if name == "curvature":
        k = MAX_TURN / min_length if min_length > 0 else math.inf
        return -k, k, f"|curvature| <= 2*pi/length = {k:.6g} 1/px for the shortest length {min_length:g} px"
    if name == "length":
        return 0.0, math.inf, "length >= 0 px"
    if name == "width":
        return 0.0, float(size), f"0 <= width <= {size} px (the probed input)"
    if name == "position":
        return -size / 2, size / 2, f"offsets within +-{size / 2:g} px of the receptive-field centre (the probed input)"
    return 0.0, 1.0, "values in [0, 1]"


@dataclass
class Space:
    """Which coordinates are free, their bounds and the fixed values of the others.

    Attributes:
        free: names of the optimised coordinates, in :data:`COORDINATES` order.
        lo, hi: ``(N,)`` bounds of every coordinate (fixed ones: ``lo == hi == value``;
            orientation when periodic: 0 and 360).
        periodic: whether orientation wraps.
        parameters: names of the free parameters.
        fixed: ``{parameter: value(s)}`` of the fixed ones.
        bounds: ``{parameter: (lo, hi)}`` of the free ones.
    """

    free: tuple[str, ...]
    lo: Tensor
    hi: Tensor
    periodic: bool
    parameters: tuple[str, ...]
    fixed: dict[str, tuple[float, ...]]
    bounds: dict[str, tuple[float, float]]

    @property
    def index(self) -> Tensor:
        """``(D,)`` positions of the free coordinates in :data:`COORDINATES`."""
        return torch.tensor([_INDEX[c] for c in self.free], dtype=torch.long)

    @property
    def span(self) -> Tensor:
        """``(D,)`` natural-unit range of each free coordinate (360 for a periodic orientation)."""
        i = self.index
        return (self.hi[i] - self.lo[i]).clamp(min=1e-12)

    def start(self) -> Tensor:
        """``(N,)`` start point: every parameter's start value clamped to its bounds."""
        x = torch.tensor([v for p in PARAMETERS.values() for v in p.start], dtype=torch.float64)
        for name, vals in self.fixed.items():
            for c, v in zip(PARAMETERS[name].coords, vals):
                x[_INDEX[c]] = v
        return self.clamp(x[None])[0]

    def full(self, free_values: Tensor, base: Tensor) -> Tensor:
        """``(B, N)`` points: ``base`` ``(B, N)`` or ``(N,)`` with the free coordinates replaced."""
        b = base.to(free_values.dtype).expand(free_values.shape[0], -1)
        return b.index_copy(1, self.index.to(free_values.device), free_values)

    def normalise(self, x: Tensor) -> Tensor:
        """Free coordinates of ``x`` ``(B, N)`` as ``u`` in [0, 1] ``(B, D)``."""
        i = self.index.to(x.device)
        return (x[:, i] - self.lo.to(x)[i]) / self.span.to(x)

    def natural(self, u: Tensor) -> Tensor:
        """``(B, D)`` normalised -> natural units (no projection)."""
        i = self.index.to(u.device)
        return self.lo.to(u)[i] + u * self.span.to(u)

    def clamp(self, x: Tensor) -> Tensor:
        """Project natural points ``(B, N)`` into range (see module docstring)."""
        x = x.clone()
        lo, hi = self.lo.to(x), self.hi.to(x)
        o = _INDEX["orientation"]
        keep = x[:, o].clone()
        x = torch.maximum(torch.minimum(x, hi), lo)
        x[:, o] = torch.remainder(keep, 360.0) if self.periodic else keep.clamp(float(lo[o]), float(hi[o]))
        k, n = _INDEX["curvature"], _INDEX["length"]
        cap = MAX_TURN / x[:, n].clamp(min=1e-9) * (1 - 1e-7)
        x[:, k] = torch.maximum(torch.minimum(x[:, k], cap), -cap)
        return x

    def project(self, u: Tensor, base: Tensor) -> Tensor:
        """Normalised free coordinates ``(B, D)`` projected into range (same shape)."""
        return self.normalise(self.clamp(self.full(self.natural(u), base)))

    def render_kwargs(self, x: Tensor, centre: tuple[float, float]) -> dict[str, object]:
        """Keyword arguments of ``stimuli.render`` for natural points ``x`` ``(B, N)``."""
        col = {c: x[:, i] for i, c in enumerate(COORDINATES)}
        cx, cy = centre
        return {
            "orientation": col["orientation"], "curvature": col["curvature"], "length": col["length"],
            "width": col["width"], "position": torch.stack([cx + col["dx"], cy + col["dy"]], dim=1),
            "fg": torch.stack([col["fg_r"], col["fg_g"], col["fg_b"]], dim=1),
            "bg": torch.stack([col["bg_r"], col["bg_g"], col["bg_b"]], dim=1),
            "rounding": col["rounding"], "fill": col["fill"],
        }


def _values(name: str, value: float | Sequence[float]) -> tuple[float, ...]:
    n = len(PARAMETERS[name].coords)
    vals = (float(value),) * n if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if len(vals) == 1:
        vals = vals * n
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise OptimizeError(f"fix: {name} takes {'one number' if n == 1 else f'one number or {n} numbers'}, "
                            f"got {value!r}")
    return vals


def _check_name(name: str, what: str) -> None:
    if name not in PARAMETERS:
        raise OptimizeError(f"{what}: unknown parameter {name!r}; allowed: {', '.join(PARAMETERS)}")


def build_space(
    *,
    size: int,
    fix: Mapping[str, float | Sequence[float]] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    rounding: bool = False,
    fill: bool = False,
) -> Space:
    """Check a request and build its :class:`Space`.

    Args:
        size: side (px) of the probed input; bounds of width and position must fit in it.
        fix: ``{parameter: value}`` held constant (colours and position take one number
            for every component or one per component).
        bounds: ``{parameter: (lo, hi)}`` replacing the defaults of :data:`PARAMETERS`
            (orientation given bounds is searched in them instead of periodically).
        rounding, fill: also optimise the rounding / fill (otherwise 1 / 0).

    Raises:
        OptimizeError: an unknown parameter name, a bound or value outside the renderer's
            valid range, ``lo >= hi``, a parameter both fixed and bounded.
    """
    fix = dict(fix or {})
    bounds = {k: (float(v[0]), float(v[1])) for k, v in (bounds or {}).items()}
    for name in fix:
        _check_name(name, "fix")
    for name in bounds:
        _check_name(name, "bounds")
        if name in fix:
            raise OptimizeError(f"bounds: {name!r} is also fixed; give either a bound or a fixed value")
    for name, flag in (("rounding", rounding), ("fill", fill)):
        if not flag and name not in fix:
            fix[name] = PARAMETERS[name].start[0]
        if not flag and name in bounds:
            raise OptimizeError(f"bounds: {name!r} is only optimised with --{name} (rounding=True/fill=True)")
    fixed = {name: _values(name, v) for name, v in fix.items()}
    free_params = tuple(n for n in PARAMETERS if n not in fixed)
    if not free_params:
        raise OptimizeError("fix: every parameter is fixed; leave at least one free")

    chosen: dict[str, tuple[float, float]] = {}
    for name in free_params:
        b = bounds.get(name, PARAMETERS[name].bounds)
        if b is not None:
            if not (math.isfinite(b[0]) and math.isfinite(b[1])) or b[0] >= b[1]:
                raise OptimizeError(f"bounds: {name} = {b[0]:g}:{b[1]:g} must be finite numbers with lo < hi")
            chosen[name] = b
    periodic = "orientation" in free_params and "orientation" not in bounds
    if "orientation" in chosen and chosen["orientation"][1] - chosen["orientation"][0] > 360:
        raise OptimizeError("bounds: orientation spans more than 360 deg; leave it unbounded (periodic) instead")

    min_length = fixed["length"][0] if "length" in fixed else chosen["length"][0]
    for name in PARAMETERS:
        low, high, words = _allowed(name, size, min_length)
        if name in chosen:
            lo, hi = chosen[name]
            if lo < low or hi > high:
                raise OptimizeError(f"bounds: {name} = {lo:g}:{hi:g} is outside the renderer's valid range: {words}")
        elif name in fixed:
            bad = [v for v in fixed[name] if not low <= v <= high]
            if bad:
                raise OptimizeError(f"fix: {name} = {bad[0]:g} is outside the renderer's valid range: {words}")

    lo = torch.zeros(len(COORDINATES), dtype=torch.float64)
    hi = torch.zeros(len(COORDINATES), dtype=torch.float64)
    for name, p in PARAMETERS.items():
        for j, c in enumerate(p.coords):
            if name in fixed:
                lo[_INDEX[c]] = hi[_INDEX[c]] = fixed[name][j]
            elif name in chosen:
                lo[_INDEX[c]], hi[_INDEX[c]] = chosen[name]
            else:  # periodic orientation
                lo[_INDEX[c]], hi[_INDEX[c]] = 0.0, 360.0
    free = tuple(c for n in free_params for c in PARAMETERS[n].coords)
    return Space(free=free, lo=lo, hi=hi, periodic=periodic, parameters=free_params, fixed=fixed, bounds=chosen)
