"""Per-pixel coverage of the stimulus primitive, in the stimulus' own frame.

All functions are pure tensor code on local coordinates ``(u, v)`` in pixels:
``v`` points from the path's midpoint toward its centre of curvature (the side the
curve opens to), ``u`` along the tangent at the midpoint. Per-stimulus parameters are
tensors shaped ``(B, 1, 1)`` that broadcast against pixel grids ``(B, h, w)``.

The primitive is a *rounded angle*: a circular fillet of curvature ``k / rho`` and
length ``rho * L`` centred on the midpoint, continued at both ends by straight arms of
length ``(1 - rho) * L / 2`` along the fillet's end tangents. ``rho = 1`` is the circular
arc of curvature ``k`` and length ``L`` (the curve; ``k = 0`` a line); ``rho = 0`` is the
sharp angle whose arms have the directions of the arc's end tangents. Total length
``L`` and total turning ``k * L`` do not depend on ``rho``.

Coverage is a box-filtered signed distance: ``ramp(d) = clamp(0.5 + d, 0, 1)``, where
``d`` is the signed distance (px) of the pixel centre inside an edge. Every formula is
smooth through ``k = 0`` (no ``1 / k``); square roots and ``sin(x) / x`` are evaluated
with safe branches so that no NaN reaches a gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

_SQRT_EPS = 1e-20  # floor under square roots: keeps the backward pass finite at 0


def sinc(x: Tensor) -> Tensor:
    """``sin(x) / x`` with value 1 and a finite gradient at ``x = 0`` (x in radians)."""
    return torch.sinc(x / math.pi)


def ramp(d: Tensor) -> Tensor:
    """Box-filter coverage of a pixel whose centre lies ``d`` px inside a straight edge."""
    return (d + 0.5).clamp(0.0, 1.0)


def band(d: Tensor, half_width: Tensor) -> Tensor:
    """Box-filter coverage of a straight band ``|d| <= half_width`` (px) at signed offset ``d``.

    ``ramp(hw - d) + ramp(hw + d) - 1`` in closed form: thin bands (width < 1 px) keep
    their exact ink (width per unit length) and width 0 draws nothing.
    """
    return (half_width + 0.5 - d.abs()).clamp(min=0.0).minimum((2.0 * half_width).clamp(max=1.0))


_FIELDS = ("k", "length", "half_width", "rho", "rho_safe", "a", "ca", "sa", "ex", "ey", "arm")


@dataclass
class Shape:
    """Per-stimulus constants of the primitive (see module docstring).

    Built once per batch with fields of shape ``(B,)`` (:meth:`build`), then viewed as
    ``(B, 1, 1)`` columns (:meth:`columns`) or gathered per tile (:meth:`take`).
    ``a`` is half the total turning (rad), ``ex, ey`` the fillet's end point (+ side),
    ``arm`` the arm length (px), ``rho`` the rounding; ``sharp`` marks ``rho == 0``,
    where the fillet is a point (whatever the curvature, also 0) and ``rho_safe`` is
    ``rho`` floored at 1e-6 for divisions. ``wraps`` marks paths turning by more than
    a half circle. ``has_arms`` / ``any_wraps`` say whether any stimulus of the batch
    needs those code paths.
    """

    k: Tensor
    length: Tensor
    half_width: Tensor
    rho: Tensor
    rho_safe: Tensor
    a: Tensor
    ca: Tensor
    sa: Tensor
    ex: Tensor
    ey: Tensor
    arm: Tensor
    has_arms: bool
    any_wraps: bool

    @property
    def sharp(self) -> Tensor:
        return self.rho <= 0

    @property
    def wraps(self) -> Tensor:
        return self.a.abs() > 0.5 * math.pi

    @staticmethod
    def build(k: Tensor, length: Tensor, width: Tensor, rho: Tensor, *, has_arms: bool, any_wraps: bool) -> "Shape":
        a = 0.5 * k * length
        half_fillet = 0.5 * rho * length
        return Shape(
            k=k,
            length=length,
            half_width=0.5 * width,
            rho=rho,
            rho_safe=rho.clamp(min=1e-6),
            a=a,
            ca=torch.cos(a),
            sa=torch.sin(a),
            ex=half_fillet * sinc(a),
            ey=half_fillet * (0.5 * a) * sinc(0.5 * a) ** 2,
            arm=0.5 * (1.0 - rho) * length,
            has_arms=has_arms,
            any_wraps=any_wraps,
        )

    def table(self) -> Tensor:
        """All per-stimulus fields as one ``(B, F)`` tensor (one gather serves them all)."""
        return torch.stack([getattr(self, f) for f in _FIELDS], dim=1)

    def from_table(self, table: Tensor) -> "Shape":
        """A Shape whose fields are the columns of ``table`` ``(N, F)``, viewed as ``(N, 1, 1)``."""
        cols = {f: table[:, i, None, None] for i, f in enumerate(_FIELDS)}
        return Shape(**cols, has_arms=self.has_arms, any_wraps=self.any_wraps)

    def columns(self) -> "Shape":
        """Fields viewed as ``(B, 1, 1)``."""
        return Shape(**{f: getattr(self, f)[:, None, None] for f in _FIELDS},
                     has_arms=self.has_arms, any_wraps=self.any_wraps)


def _safe_sqrt(x: Tensor) -> Tensor:
    return x.clamp(min=_SQRT_EPS).sqrt()


def fillet_distance(s: Shape, u: Tensor, v: Tensor) -> Tensor:
    """Signed distance (px) to the fillet's full circle, positive toward ``+v``.

    ``R - |p - C|`` written without ``1/k``: ``(2 rho v - k r^2) / (rho + |k (p - C)|)``;
    at ``k = 0`` it is exactly ``v`` (the line). For a sharp angle (``rho = 0``) the
    fillet is the vertex itself and the distance is ``-sign(k) |p|`` (``-|p|`` at k = 0).
    """
    k, rho = s.k, s.rho
    r2 = u * u + v * v
    num = 2.0 * rho * v - k * r2
    den = rho + _safe_sqrt((k * u) ** 2 + (rho - k * v) ** 2)
    if not s.has_arms:  # rho == 1 everywhere: den >= 1
        return num / den
    point = torch.where(k < 0, 1.0, -1.0).to(u.dtype) * _safe_sqrt(r2)
    return torch.where(s.sharp, point, num / torch.where(s.sharp, 1.0, den))


def stroke_and_frame(s: Shape, u: Tensor, v: Tensor, need_q: bool = False) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """Stroke coverage in ``[0, 1]`` plus ``(t, q, dc)`` reused by the fill.

    ``t``: distance beyond the fillet's end line (folded to the ``+u`` side),
    ``q``: distance toward ``+v`` from that end's tangent line (the arm's axis; ``None``
    unless there are arms or ``need_q``),
    ``dc``: :func:`fillet_distance`.
    """
    uf = u.abs()
    du = uf - s.ex
    dv = v - s.ey
    t = du * s.ca + dv * s.sa
    dc = fillet_distance(s, u, v)
    side = band(dc, s.half_width)
    end = ramp(-t)
    if s.any_wraps:
        # Beyond a half circle the end line also passes through the centre: on the far
        # side of the centre the point is inside the path, not past its end.
        kv = s.k * v - s.rho
        gate = s.k * uf * s.sa - kv * s.ca
        end = torch.where(s.wraps & (gate <= 0), torch.ones_like(end), end)
        # Near-closed paths: the other end (mirror image) covers the seam too.
        t_other = t - 2.0 * uf * s.ca
        gate_other = -s.k * uf * s.sa - kv * s.ca
        other = ramp(-t_other) * (s.wraps & (gate_other > 0))
        end = (end + other).clamp(max=1.0)
    cov = side * end
    if not (s.has_arms or need_q):
        return cov, t, None, dc
    q = dv * s.ca - du * s.sa
    if s.has_arms:
        arm = _arm(s, t, q)
        if s.any_wraps:
            # Past a half circle the arms cross the symmetry axis: the folded half also
            # holds the other arm, evaluated at the mirror image (-u, v).
            other_arm = _arm(s, t - 2.0 * uf * s.ca, q + 2.0 * uf * s.sa)
            arm = torch.maximum(arm, other_arm * s.wraps)
        cov = (cov + arm).clamp(max=1.0)
    return cov, t, q, dc


def _arm(s: Shape, t: Tensor, q: Tensor) -> Tensor:
    along = (ramp(t) + ramp(s.arm - t) - 1.0).clamp(min=0.0)
    return band(q, s.half_width) * along


def concave_side(s: Shape, t: Tensor, q: Tensor | None, dc: Tensor) -> Tensor:
    """Signed distance (px, positive inside) to the concave side of the path, extended.

    For a curve: the inside of its full circle (the half-plane ``v > 0`` at curvature 0).
    With arms: beyond the fillet's end lines the arms' half-planes, so an angle's region
    is the inside of its two arms extended without end. Negative curvature flips the
    side. Meaningful while the path turns by at most a half circle.
    """
    sign = torch.where(s.k < 0, -1.0, 1.0).to(dc.dtype)
    inside = torch.where((t > 0) & (s.arm > 0), q, dc) if s.has_arms else dc
    return sign * inside


def article_fill_coverage(s: Shape, t: Tensor, q: Tensor | None, dc: Tensor) -> Tensor:
    """Coverage of the article's fill: the concave side of the path (:func:`concave_side`).

    Unbounded here; the stimulus window (see :func:`window_coverage`) clips it.
    """
    return ramp(concave_side(s, t, q, dc))


def window_coverage(dx: Tensor, dy: Tensor, half_side: Tensor) -> Tensor:
    """Box-filter coverage of an axis-aligned square of half side ``half_side`` (px).

    ``dx``: ``(N, w)`` column offsets, ``dy``: ``(N, h)`` row offsets of pixel centres from
    the square's centre; ``half_side``: ``(N, 1)``. Returns ``(N, h, w)``.
    """
    return ramp(half_side - dy.abs())[:, :, None] * ramp(half_side - dx.abs())[:, None, :]


def fill_coverage(s: Shape, v: Tensor, t: Tensor, q: Tensor | None, dc: Tensor) -> Tensor:
    """Coverage of the region between the path and its chord (the circular segment for curves)."""
    sign = torch.where(s.k < 0, -1.0, 1.0).to(v.dtype)
    chord = s.ey + s.arm * s.sa
    # Inclusion-exclusion of two half-plane ramps: exact for a thin sliver (a nearly
    # straight arc), so a straight line gets no phantom fill.
    return (ramp(concave_side(s, t, q, dc)) + ramp(sign * (chord - v)) - 1.0).clamp(min=0.0)


def path_point(s: Shape, arc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Point ``(pu, pv)`` and tangent angle ``psi`` (rad) at signed arc length ``arc`` from the midpoint."""
    half = 0.5 * s.length
    sf = torch.maximum(torch.minimum(arc, s.rho * half), -s.rho * half)
    psi = s.k * torch.maximum(torch.minimum(arc / s.rho_safe, half), -half)
    pu = sf * sinc(psi)
    pv = sf * (0.5 * psi) * sinc(0.5 * psi) ** 2
    extra = arc - sf
    return pu + extra * torch.cos(psi), pv + extra * torch.sin(psi), psi


def tick_coverage(
    s: Shape, u: Tensor, v: Tensor, count: Tensor, n_max: int, tick_length: Tensor, side: str
) -> Tensor:
    """Coverage of ``count`` ticks, evenly spaced along the path, perpendicular to it.

    Tick ``j`` of ``n`` sits at arc length ``L * ((j + 0.5) / n - 0.5)``. ``side``: ``"in"``
    (toward the centre of curvature), ``"out"`` or ``"both"``; ``tick_length`` is the
    length on each drawn side (px). Ticks have the stroke width.
    """
    sign = torch.where(s.k < 0, -1.0, 1.0).to(u.dtype)
    lo = torch.zeros_like(tick_length) if side == "in" else -tick_length
    hi = torch.zeros_like(tick_length) if side == "out" else tick_length
    n = count.clamp(min=1).to(u.dtype)
    total = torch.zeros_like(u)
    for j in range(n_max):
        arc = s.length * ((j + 0.5) / n - 0.5)
        pu, pv, psi = path_point(s, arc)
        c, sn = torch.cos(psi), torch.sin(psi)
        du, dv = u - pu, v - pv
        along_normal = sign * (dv * c - du * sn)
        across = du * c + dv * sn
        cov = band(across, s.half_width) * (ramp(along_normal - lo) + ramp(hi - along_normal) - 1.0).clamp(min=0.0)
        cov = cov * (count > j)
        total = torch.maximum(total, cov)
    return total


def tile_may_touch(
    s: Shape, u: Tensor, v: Tensor, radius: float, ticks_reach: Tensor | None, fill_on: Tensor | None,
    article_fill: bool = False,
) -> Tensor:
    """Conservative test: can any pixel centre within ``radius`` px of ``(u, v)`` get coverage?

    Uses 1-Lipschitz lower bounds on the distance to the path (distance to the full
    fillet circle, to the end lines, to the arm lines), so a ``False`` is always safe to
    skip. ``ticks_reach``: extra reach (px) of the ticks per stimulus, ``None`` if no
    ticks; ``fill_on``: bool per stimulus where the fill is drawn, ``None`` if none;
    ``article_fill``: the fill is the unbounded concave side (:func:`article_fill_coverage`)
    rather than the segment.
    """
    uf = u.abs()
    du = uf - s.ex
    dv = v - s.ey
    t = du * s.ca + dv * s.sa
    q = dv * s.ca - du * s.sa
    dc = fillet_distance(s, u, v)
    t_end = t
    t_other = t - 2.0 * uf * s.ca
    if s.any_wraps:
        t_end = torch.where(s.wraps, torch.minimum(t, t_other), t)
    lower = torch.maximum(dc.abs(), t_end)
    if s.any_wraps:
        # Past a half circle the end gating (see stroke_and_frame) lets the circle alone decide.
        lower = torch.where(s.wraps, dc.abs(), lower)
    if s.has_arms:
        arm = torch.maximum(q.abs(), torch.maximum(-t, t - s.arm))
        if s.any_wraps:
            q_other = q + 2.0 * uf * s.sa
            arm_o = torch.maximum(q_other.abs(), torch.maximum(-t_other, t_other - s.arm))
            arm = torch.where(s.wraps, torch.minimum(arm, arm_o), arm)
        lower = torch.minimum(lower, arm)
    reach = s.half_width + 0.5 + radius
    if ticks_reach is not None:
        reach = reach + ticks_reach
    hit = lower <= reach
    if fill_on is not None:
        sign = torch.where(s.k < 0, -1.0, 1.0).to(v.dtype)
        inside = torch.where((t > 0) & (s.arm > 0), q, dc) if s.has_arms else dc
        chord = s.ey + s.arm * s.sa
        slack = -0.5 - radius
        in_fill = sign * inside >= slack
        if not article_fill:
            in_fill = in_fill & (sign * (chord - v) >= slack)
        if s.any_wraps and s.has_arms:
            in_fill = in_fill | (s.wraps & (s.arm > 0))
        hit = hit | (fill_on & in_fill)
    return hit
