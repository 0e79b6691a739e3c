"""``render``: draw batches of curves, lines, angles, fills, colours and combing ticks.

Convention:
    - Output ``(B, 3, H, W)`` RGB in ``[0, 1]``.
    - Pixel coordinates ``(x, y)`` in px: ``x`` to the right, ``y`` down, origin at the
      top-left corner of the image; pixel ``(row i, col j)`` covers ``[j, j+1] x [i, i+1]``,
      so its centre is ``(j + 0.5, i + 0.5)``.
    - Angles in degrees, counter-clockwise as seen on screen (0 = +x, 90 = up = -y).
    - ``orientation`` is the direction from the path's midpoint toward its centre of
      curvature, i.e. the side the curve opens to. A curve at orientation 0 looks like
      ``(``; at 90 like a ``U``. Lines at theta and theta + 180 are the same image.
    - Curvature in 1/px (0 = straight line); negative curvature opens toward
      ``orientation + 180`` (so curvature can be optimised through 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import _params as P
from . import kinds as D
from .errors import StimulusError
from .shapes import (
    Shape, article_fill_coverage, fill_coverage, stroke_and_frame, tick_coverage, tile_may_touch, window_coverage,
)

# The declarations live in stimuli.kinds; these names are kept for the public API.
#: Default arc length (px at 224 px input), see ``docs/stimuli.md``.
DEFAULT_LENGTH: float = D.param("length").default
#: Default stroke width (px): thin but well resolved at 224 px input.
DEFAULT_WIDTH: float = D.param("width").default
#: Default tick length for combing (px, on each drawn side of the path).
DEFAULT_TICK_LENGTH: float = D.param("tick_length").default
#: Largest total turning ``|curvature| * length`` (rad): a full circle.
MAX_TURN: float = D.MAX_TURN
#: Kinds :func:`render` draws.
KINDS: tuple[str, ...] = D.KINDS
#: Allowed values of ``tick_side``.
TICK_SIDES: tuple[str, ...] = D.choice("tick_side").choices


def max_curvature(length: float | Tensor = DEFAULT_LENGTH) -> float | Tensor:
    """Largest allowed ``|curvature|`` (1/px) for arc ``length`` (px): ``2 pi / length``, a full circle."""
    return MAX_TURN / length


def _parameter_doc() -> str:
    lines = []
    for p in D.PARAMS:
        lines.append(f"        {p.name}: {p.describe()}; allowed {p.allowed()}.")
    for c in D.CHOICES:
        lines.append(f"        {c.name}: {c.describe()}; one of {', '.join(map(repr, c.choices))}.")
    return "\n".join(lines)


def render(
    kind: str = "curve",
    *,
    position: P.ParamLike | None = None,
    fg: P.ParamLike = (0.0, 0.0, 0.0),
    bg: P.ParamLike = (1.0, 1.0, 1.0),
    size: int | Sequence[int] = 224,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    **params: P.ParamLike | str,
) -> Tensor:
    """Render a batch of stimuli, differentiable in every continuous parameter.

    One primitive covers every kind: a path of total length ``length`` turning by
    ``curvature * length``, whose middle fraction ``rounding`` is a circular fillet and
    the rest two straight arms (see :mod:`stimuli.shapes`). ``rounding = 1`` is the
    circular arc (the curve), ``rounding = 0`` the sharp angle whose arms run along the
    arc's end tangents, each ``length / 2`` long. The path's midpoint sits on ``position``.

    Args:
        kind: one of :data:`stimuli.kinds.KINDS`: ``"curve"`` (rounding defaults to 1),
            ``"angle"`` (rounding defaults to 0) or ``"line"`` (curvature must be 0).
        position: ``(x, y)`` px of the path's midpoint, or ``(B, 2)``; default the image
            centre ``(W / 2, H / 2)``. Pass the probed unit's receptive-field centre.
        fg, bg: RGB in ``[0, 1]``, shape ``(3,)`` or ``(B, 3)``.
        size: ``H = W = size`` or ``(H, W)``.
        device: default: the device of the first tensor argument, else CPU.
        dtype: output dtype. Geometry runs in float32 (float64 if ``dtype`` is float64).
        **params: the stimulus parameters declared in :mod:`stimuli.kinds` (listed
            below with defaults and ranges). Each numeric one is a Python number or a
            tensor broadcasting to ``(B,)``.

    Stimulus parameters (from :mod:`stimuli.kinds`):
{params}

    Returns:
        ``(B, 3, H, W)`` tensor in ``[0, 1]``.

    Raises:
        StimulusError (a ValueError): unknown kind, parameter or choice, non-finite
            values, values out of range, shapes that do not broadcast; the message names
            parameter, value, index and the allowed range.
    """
    if kind not in KINDS:
        raise StimulusError(f"kind = {kind!r} is unknown: allowed {', '.join(map(repr, KINDS))}")
    declared = {p.name for p in D.PARAMS} | {c.name for c in D.CHOICES}
    unknown = [k for k in params if k not in declared]
    if unknown:
        raise StimulusError(f"render() got an unknown parameter {unknown[0]!r}; allowed: "
                            f"{', '.join(sorted(declared | {'position', 'fg', 'bg', 'size', 'device', 'dtype'}))}")
    choices: dict[str, str] = {}
    for c in D.CHOICES:
        value = params.get(c.name, c.default)
        if value not in c.choices:
            raise StimulusError(f"{c.name} = {value!r} is unknown: allowed {', '.join(map(repr, c.choices))}")
        choices[c.name] = value  # type: ignore[assignment]
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise StimulusError(f"dtype = {dtype!r} is not allowed: use a floating dtype (float16, bfloat16, float32, float64)")
    H, W = P.image_size(size)
    raw = {p.name: params[p.name] if params.get(p.name) is not None else p.default_for(kind) for p in D.PARAMS}
    dev = P.infer_device([*raw.values(), position, fg, bg], device)
    gdt = torch.float64 if dtype == torch.float64 else torch.float32
    vals = {k: P.as_tensor(k, v, None, dtype=gdt, device=dev) for k, v in raw.items()}
    pos = (
        torch.tensor([W / 2.0, H / 2.0], dtype=gdt, device=dev)
        if position is None
        else P.as_tensor("position", position, 2, dtype=gdt, device=dev)
    )
    fg_t = P.as_tensor("fg", fg, 3, dtype=gdt, device=dev)
    bg_t = P.as_tensor("bg", bg, 3, dtype=gdt, device=dev)
    shapes = {k: tuple(v.shape) for k, v in vals.items()}
    shapes.update(position=tuple(pos.shape[:-1]), fg=tuple(fg_t.shape[:-1]), bg=tuple(bg_t.shape[:-1]))
    B = P.batch_size(shapes)
    if B == 0:
        return torch.empty((0, 3, H, W), device=dev, dtype=dtype)
    p = {k: v.expand(B) for k, v in vals.items()}
    given = (pos, fg_t, bg_t)  # as passed, for error messages
    pos, fg_t, bg_t = pos.expand(B, 2), fg_t.expand(B, 3), bg_t.expand(B, 3)

    # One pass on the device answers "is anything invalid?" and the batch-wide facts the
    # drawing needs, with a single transfer to the host. Messages come from _explain().
    with torch.no_grad():
        scalars = torch.stack(list(p.values()))  # (n_params, B) in the order of D.PARAMS
        lo = torch.tensor([d.low for d in D.PARAMS], dtype=gdt, device=dev)[:, None]
        hi = torch.tensor([d.high_for(min(H, W)) for d in D.PARAMS], dtype=gdt, device=dev)[:, None]
        integer = torch.tensor([d.integer for d in D.PARAMS], device=dev)[:, None]
        inf_ok = torch.tensor([d.allow_inf for d in D.PARAMS], device=dev)[:, None]
        colours = torch.cat([fg_t, bg_t], dim=1)
        k, n_ticks = p["curvature"], p["ticks"]
        invalid = (
            (torch.isnan(scalars) | (torch.isinf(scalars) & ~(inf_ok & (scalars > 0))) | (scalars < lo) | (scalars > hi) | (integer & (scalars != scalars.round()))).any()
            | ~torch.isfinite(pos).all()
            | (~torch.isfinite(colours) | (colours < 0) | (colours > 1)).any()
            | ((k * p["length"]).abs() > MAX_TURN * (1 + 1e-6)).any()
        )
        for name, value in D.kind(kind).pinned.items():
            invalid = invalid | (p[name] != value).any()
        tick_reach = torch.where(n_ticks > 0, p["tick_length"], 0.0)
        reach = 0.5 * p["length"] + 0.5 * p["width"] + tick_reach
        if choices["fill_mode"] == "article":
            # the concave side reaches the window's edge, or every pixel of the image
            span = torch.stack([pos[:, 0], W - pos[:, 0], pos[:, 1], H - pos[:, 1]]).abs().amax(0)
            reach = torch.maximum(reach, torch.where(p["fill"] > 0, span, 0.0))
        reach = torch.minimum(reach, 0.5 * p["window"] + 1.0)  # nothing is drawn outside the window
        facts = torch.stack([
            invalid.to(gdt), reach.nan_to_num(0.0).max(), n_ticks.max(), (p["rounding"] < 1).any().to(gdt),
            ((0.5 * k * p["length"]).abs() > 0.5 * math.pi).any().to(gdt), (p["fill"] > 0).any().to(gdt),
            (p["window"] < math.inf).any().to(gdt), (bg_t != bg_t[:1]).any().to(gdt), *bg_t[0].to(gdt),
        ]).tolist()
    if facts[0]:
        _explain(kind, H, W, vals, *given)
        raise StimulusError("render: invalid parameters")  # pragma: no cover - _explain raises first
    return _draw(H, W, p, pos, fg_t, bg_t, choices, dtype, facts[1:])


render.__doc__ = render.__doc__.format(params=_parameter_doc())  # type: ignore[union-attr]


def _explain(kind: str, H: int, W: int, vals: dict[str, Tensor], pos: Tensor, fg: Tensor, bg: Tensor) -> None:
    """Raise the StimulusError that names the first invalid parameter, value, index and allowed range."""
    for d in D.PARAMS:
        v = vals[d.name]
        P.check_finite(d.name, torch.where(v == math.inf, 0.0, v) if d.allow_inf else v)
    for k, v in (("position", pos), ("fg", fg), ("bg", bg)):
        P.check_finite(k, v, vector=True)
    for d in D.PARAMS:
        high = d.high_for(min(H, W))
        if d.low > -math.inf or high < math.inf:
            P.check_range(d.name, vals[d.name], d.low, high, d.allowed(min(H, W)), d.unit_suffix())
        if d.integer:
            P.check_integer(d.name, vals[d.name], d.allowed(min(H, W)))
    P.check_range("fg", fg, 0.0, 1.0, "RGB components in [0, 1]", vector=True)
    P.check_range("bg", bg, 0.0, 1.0, "RGB components in [0, 1]", vector=True)
    for name, value in D.kind(kind).pinned.items():
        d = D.param(name)
        P.check_range(name, vals[name], value, value, f"{value:g} for kind={kind!r} (use kind='curve')", d.unit_suffix())
    P.check_curvature(vals["curvature"], vals["length"], MAX_TURN)


#: Side (px) of the square tiles the stimulus window is cut into; tiles that cannot
#: be touched by the stimulus are skipped.
TILE: int = 8
_CULL: bool = True  # tests switch tile culling off to check it changes nothing


def _frame(dx: Tensor, dy: Tensor, cx: Tensor, cy: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel offsets ``dx`` (cols), ``dy`` (rows) from the midpoint in the path frame: u along the
    tangent (the normal rotated by -90 deg on screen), v toward the centre of curvature ``(cx, cy)``."""
    u = (dx * -cy[:, None])[:, None, :] + (dy * cx[:, None])[:, :, None]
    v = (dx * cx[:, None])[:, None, :] + (dy * cy[:, None])[:, :, None]
    return u, v


class _Tiles(NamedTuple):
    """The active tiles: stimulus ``b``, tile row/column in its window, the windows' origins (px), pixel rows/cols."""

    b: Tensor
    ty: Tensor
    tx: Tensor
    x0: Tensor
    y0: Tensor
    rows: Tensor  # (N, TILE)
    cols: Tensor


def _active_tiles(H: int, W: int, p: dict[str, Tensor], pos: Tensor, shape: Shape, normal: tuple[Tensor, Tensor],
                  facts: list[float], article: bool) -> _Tiles:
    """Which tiles of each stimulus's window can the stimulus touch (tested at tile centres, no gradient)?

    The window is nt x nt tiles, aligned to the image's TILE grid, around each stimulus: it
    holds every pixel the stimulus can touch; tiles outside the image are skipped.
    """
    dev, gdt = pos.device, pos.dtype
    reach_max, n_ticks, _, _, any_fill, any_window, *_ = facts
    nx, ny = normal
    nt = math.ceil((2.0 * reach_max + 3.0) / TILE) + 1
    side = nt * TILE
    tick_reach = torch.where(p["ticks"] > 0, p["tick_length"], 0.0)
    with torch.no_grad():
        x0 = torch.div(torch.floor(pos[:, 0] - 0.5 * (side - TILE)), TILE, rounding_mode="floor").long() * TILE
        y0 = torch.div(torch.floor(pos[:, 1] - 0.5 * (side - TILE)), TILE, rounding_mode="floor").long() * TILE
        starts = torch.arange(nt, device=dev) * TILE
        centres = starts.to(gdt) + 0.5 * TILE
        tu, tv = _frame(x0[:, None].to(gdt) + centres - pos[:, 0:1], y0[:, None].to(gdt) + centres - pos[:, 1:2], nx, ny)
        hit = tile_may_touch(
            shape.columns(), tu, tv, (TILE - 1) / math.sqrt(2.0),
            tick_reach[:, None, None] if n_ticks > 0 else None,
            (p["fill"] > 0)[:, None, None] if any_fill else None,
            article_fill=article,
        )
        if any_window:  # tiles wholly outside the square window
            reach_w = 0.5 * p["window"][:, None] + 0.5 + 0.5 * TILE
            hit &= ((x0[:, None].to(gdt) + centres - pos[:, 0:1]).abs() <= reach_w)[:, None, :]
            hit &= ((y0[:, None].to(gdt) + centres - pos[:, 1:2]).abs() <= reach_w)[:, :, None]
        if not _CULL:
            hit = torch.ones_like(hit)
        hit &= ((x0[:, None] + starts >= 0) & (x0[:, None] + starts < W))[:, None, :]
        hit &= ((y0[:, None] + starts >= 0) & (y0[:, None] + starts < H))[:, :, None]
        tb, ty, tx = hit.nonzero(as_tuple=True)
    offs = torch.arange(TILE, device=dev)
    return _Tiles(tb, ty, tx, x0, y0, (y0[tb] + ty * TILE)[:, None] + offs, (x0[tb] + tx * TILE)[:, None] + offs)


def _background(B: int, H: int, W: int, bg: Tensor, dtype: torch.dtype, facts: list[float]) -> Tensor:
    """``(B, 3, H, W)`` filled with the background (one fill when every stimulus has the same grey)."""
    bg_varies, *bg_first = facts[6:]
    out = torch.empty((B, 3, H, W), device=bg.device, dtype=dtype)
    if bg_varies or bg.requires_grad:
        out.copy_(bg.to(dtype)[:, :, None, None].expand(B, 3, H, W))
    elif bg_first[0] == bg_first[1] == bg_first[2]:
        out.fill_(bg_first[0])
    else:
        for c, value in enumerate(bg_first):
            out[:, c].fill_(value)
    return out


def _blend(out: Tensor, cov: Tensor, t_fg: Tensor, t_bg: Tensor, tiles: _Tiles) -> None:
    """Write the active tiles, background blended toward foreground by coverage, into ``out`` in place."""
    B, _, H, W = out.shape
    dtype = out.dtype
    if H % TILE != 0 or W % TILE != 0:  # border tiles stick out of the image
        px = (t_bg[:, None, None, :] + cov[..., None] * (t_fg - t_bg)[:, None, None, :]).to(dtype)  # (N, T, T, 3)
        r_idx, c_idx = tiles.rows[:, :, None], tiles.cols[:, None, :]
        keep = (r_idx < H) & (c_idx < W)
        hwc = out.permute(0, 2, 3, 1)  # (B, H, W, 3) view
        b_idx = tiles.b[:, None, None].expand_as(keep)[keep]
        hwc[b_idx, r_idx.expand_as(keep)[keep], c_idx.expand_as(keep)[keep]] = px[keep]
    else:
        # Tiles are aligned to the image's TILE grid: write whole (3, T, T) blocks.
        px = (t_bg[:, :, None, None] + cov[:, None] * (t_fg - t_bg)[:, :, None, None]).to(dtype)  # (N, 3, T, T)
        blocks = out.view(B, 3, H // TILE, TILE, W // TILE, TILE).permute(0, 2, 4, 1, 3, 5)
        tb = tiles.b
        blocks[tb, torch.div(tiles.y0[tb], TILE, rounding_mode="floor") + tiles.ty,
               torch.div(tiles.x0[tb], TILE, rounding_mode="floor") + tiles.tx] = px


def _draw(
    H: int, W: int, p: dict[str, Tensor], pos: Tensor, fg: Tensor, bg: Tensor, choices: dict[str, str],
    dtype: torch.dtype, facts: list[float],
) -> Tensor:
    """Draw a validated batch: parameters ``(B,)``, ``pos`` ``(B, 2)``, colours ``(B, 3)``."""
    gdt = pos.dtype
    B = pos.shape[0]
    _, n_ticks, has_arms, any_wraps, any_fill, any_window, *_ = facts
    tick_side, article = choices["tick_side"], choices["fill_mode"] == "article"
    theta = torch.deg2rad(p["orientation"])
    nx, ny = torch.cos(theta), -torch.sin(theta)  # unit vector toward the centre of curvature
    shape = Shape.build(p["curvature"], p["length"], p["width"], p["rounding"],
                        has_arms=bool(has_arms), any_wraps=bool(any_wraps))
    # 1. the tiles each stimulus can touch
    tiles = _active_tiles(H, W, p, pos, shape, (nx, ny), facts, article)
    # 2. Coverage of the pixels of the active tiles only; one gather brings every
    #    per-stimulus value to its tiles.
    extra = [nx, ny, pos[:, 0], pos[:, 1], p["ticks"], p["tick_length"], p["fill"], p["window"]]
    table = torch.cat([shape.table(), torch.stack(extra, dim=1), fg, bg], dim=1)[tiles.b]
    nf = table.shape[1] - 14
    t_shape = shape.from_table(table[:, :nf])
    t_nx, t_ny, t_px, t_py, t_ticks, t_tlen, t_fill, t_win = table[:, nf : nf + 8].unbind(1)
    t_fg, t_bg = table[:, nf + 8 : nf + 11], table[:, nf + 11 :]
    dx, dy = tiles.cols.to(gdt) + 0.5 - t_px[:, None], tiles.rows.to(gdt) + 0.5 - t_py[:, None]
    u, v = _frame(dx, dy, t_nx, t_ny)
    cov, t, q, dc = stroke_and_frame(t_shape, u, v)
    if n_ticks > 0:
        cov = torch.maximum(
            cov, tick_coverage(t_shape, u, v, t_ticks[:, None, None], int(n_ticks), t_tlen[:, None, None], tick_side)
        )
    if any_fill:
        region = article_fill_coverage(t_shape, t, q, dc) if article else fill_coverage(t_shape, v, t, q, dc)
        cov = torch.maximum(cov, t_fill[:, None, None] * region)
    if any_window:
        cov = cov * window_coverage(dx, dy, 0.5 * t_win[:, None])
    # 3. Background everywhere, then the blended tiles on top.
    out = _background(B, H, W, bg, dtype, facts)
    _blend(out, cov, t_fg, t_bg, tiles)
    return out


class Renderer(nn.Module):
    """``nn.Module`` wrapper of :func:`render` with fixed defaults.

    Keyword arguments given at construction become defaults; ``forward(**params)``
    overrides them and returns ``render(**merged)``. It has no learnable parameters;
    optimise stimulus parameters by passing tensors with ``requires_grad=True``.
    """

    def __init__(self, kind: str = "curve", **defaults: object) -> None:
        super().__init__()
        if kind not in KINDS:
            raise StimulusError(f"kind = {kind!r} is unknown: allowed {', '.join(map(repr, KINDS))}")
        self.kind = kind
        self.defaults = dict(defaults)

    def forward(self, **params: object) -> Tensor:
        merged = {**self.defaults, **params}
        return render(self.kind, **merged)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}" + "".join(f", {k}={v!r}" for k, v in self.defaults.items())
