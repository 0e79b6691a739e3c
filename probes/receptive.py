"""Receptive-field geometry of strided conv/pool stacks with TensorFlow "SAME" padding.

A network's spatial structure is described once, as a :class:`Geometry`: an ordered
list of tap layers, each reached from the previous one by *steps*; a step is a set of
parallel *branches* (an Inception block) and a branch a chain of ``(kernel, stride)``
operations. From that description this module computes, for any input size,

* each layer's grid size, stride, receptive-field size and the pixel index of every
  unit's receptive-field centre (:func:`receptive_field`);
* the input pixels a unit reads, with or without padding (:func:`unit_footprint`);
* the smallest input on which the probed units see their whole receptive field and so
  give the same activation as on the full-size input (:func:`plan_input`).

Convention:
    * TF "SAME" padding for an op of kernel ``k`` and stride ``s`` on ``n`` inputs:
      ``out = ceil(n / s)``, ``pad = max((out - 1) * s + k - n, 0)``,
      ``pad_before = pad // 2`` (the extra pixel goes after). It depends on ``n``.
    * Pixel indices: pixel ``i`` covers ``[i, i + 1)``; its centre is at ``i + 0.5``.
      The centre of unit ``j`` of a layer is at pixel index ``offset + stride * j``
      (continuous coordinate ``offset + stride * j + 0.5``). ``offset`` may be a
      half-integer for even kernels.
    * Images are square along the probed axes; every function works per axis, and
      rows and columns use the same numbers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Op = tuple[int, int]  # (kernel, stride)
Branch = tuple[Op, ...]
Step = tuple[Branch, ...]


@dataclass(frozen=True)
class Geometry:
    """Spatial structure of a network: ``layers[i]`` is reached from ``layers[i-1]`` by ``steps[i]``.

    ``steps[i]`` is a tuple of steps applied in order; each step a tuple of parallel
    branches whose outputs share one grid (they are concatenated); each branch a tuple
    of ``(kernel, stride)`` ops. Channel-only ops (1x1 conv, LRN, ReLU) may be omitted
    or written as ``(1, 1)``.
    """

    layers: tuple[str, ...]
    steps: tuple[tuple[Step, ...], ...]

    def __post_init__(self) -> None:
        if len(self.layers) != len(self.steps):
            raise ValueError(f"Geometry: {len(self.layers)} layers but {len(self.steps)} step lists")


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer at one input size (pixels along one axis).

    Attributes:
        layer: tap name.
        input_size: input pixels along the axis.
        grid: number of units along the axis.
        stride: pixels between neighbouring unit centres.
        size: theoretical receptive-field width in pixels (kernel extents, padding ignored).
        offset: pixel index of unit 0's centre; unit ``j`` is centred on pixel index
            ``offset + stride * j`` (continuous coordinate ``+ 0.5``).
    """

    layer: str
    input_size: int
    grid: int
    stride: int
    size: int
    offset: float

    def centre(self, j: int) -> float:
        """Continuous pixel coordinate of unit ``j``'s receptive-field centre."""
        return self.offset + self.stride * j + 0.5

    def nearest_unit(self, coordinate: float) -> int:
        """Index of the unit whose centre is nearest ``coordinate`` (continuous px), ties to the lower index."""
        j = math.ceil((coordinate - 0.5 - self.offset) / self.stride - 0.5)
        return min(max(j, 0), self.grid - 1)

    def span(self, j: int) -> tuple[float, float]:
        """First and last pixel index covered by unit ``j``'s theoretical receptive field."""
        c = self.offset + self.stride * j
        half = (self.size - 1) / 2
        return c - half, c + half


def _same(n: int, k: int, s: int) -> tuple[int, int]:
    """(output size, pad before) of a TF "SAME" op with kernel ``k``, stride ``s`` on ``n`` inputs."""
    out = -(-n // s)
    pad = max((out - 1) * s + k - n, 0)
    return out, pad // 2


def same_pads(hw: Sequence[int], k: int, s: int) -> tuple[int, int, int, int]:
    """``F.pad`` tuple ``(left, right, top, bottom)`` for TF "SAME" padding of an ``(H, W)`` map."""
    pads: list[int] = []
    for n in (hw[-1], hw[-2]):
        out, before = _same(n, k, s)
        total = max((out - 1) * s + k - n, 0)
        pads += [before, total - before]
    return pads[0], pads[1], pads[2], pads[3]


def _walk(geometry: Geometry, n: int) -> Iterable[tuple[str, int, int, int, float, list[tuple[int, Step]]]]:
    """Yield ``(layer, grid, stride, size, offset, trace)`` for every layer at input size ``n``.

    ``trace`` lists ``(input grid, step)`` for every step from the input up to the layer,
    which :func:`unit_footprint` walks backwards.
    """
    grid, stride, size, offset = n, 1, 1, 0.0
    trace: list[tuple[int, Step]] = []
    for layer, steps in zip(geometry.layers, geometry.steps):
        for step in steps:
            results = []
            for branch in step:
                g, st, sz, off = grid, stride, size, offset
                for k, s in branch:
                    out, pad_before = _same(g, k, s)
                    off = off + st * (-pad_before + (k - 1) / 2)
                    sz = sz + (k - 1) * st
                    st = st * s
                    g = out
                results.append((g, st, sz, off))
            grids = {(r[0], r[1], r[3]) for r in results}
            if len(grids) != 1:
                raise ValueError(f"Geometry: branches of a step before {layer!r} end on different grids {sorted(grids)}")
            trace.append((grid, step))
            grid, stride, offset = results[0][0], results[0][1], results[0][3]
            size = max(r[2] for r in results)
        yield layer, grid, stride, size, offset, list(trace)


def _check_size(n: int, name: str = "size") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int (input pixels), got {n!r}")
    return n


@functools.lru_cache(maxsize=4096)
def receptive_field(geometry: Geometry, layer: str, size: int = 224) -> ReceptiveField:
    """Receptive field of ``layer`` for a ``size`` x ``size`` input (see :class:`ReceptiveField`)."""
    _check_size(size)
    for name, grid, stride, rf, offset, _ in _walk(geometry, size):
        if name == layer:
            return ReceptiveField(layer, size, grid, stride, rf, offset)
    raise ValueError(f"layer {layer!r} is not a tap of this model; allowed: {', '.join(geometry.layers)}")


@functools.lru_cache(maxsize=4096)
def unit_footprint(geometry: Geometry, layer: str, j: int, size: int = 224) -> tuple[int, int, bool]:
    """Input pixel indices ``(first, last)`` that unit ``j`` of ``layer`` reads, and whether it reads padding.

    Walks the exact index intervals backwards through every op (with the SAME padding
    of this input size); ``touches_padding`` is true when any op on the way needs an
    index outside its input grid. Unit ``j`` then differs from a translated copy of
    itself on a larger image, so no crop can reproduce it.
    """
    _check_size(size)
    for name, grid, _stride, _rf, _offset, trace in _walk(geometry, size):
        if name != layer:
            continue
        if not 0 <= j < grid:
            raise ValueError(f"unit index j={j} out of range for {layer!r} at size {size} (grid {grid})")
        lo, hi, padded = j, j, False
        for n_in, step in reversed(trace):
            los, his = [], []
            for branch in step:
                # forward grids of this branch, to know each op's padding
                grids = [n_in]
                for k, s in branch:
                    grids.append(_same(grids[-1], k, s)[0])
                a, b = lo, hi
                for (k, s), g_in in zip(reversed(branch), reversed(grids[:-1])):
                    pad_before = _same(g_in, k, s)[1]
                    a, b = a * s - pad_before, b * s - pad_before + k - 1
                    if a < 0 or b > g_in - 1:
                        padded = True
                    a, b = max(a, 0), min(b, g_in - 1)
                los.append(a)
                his.append(b)
            lo, hi = min(los), max(his)
        return lo, hi, padded
    raise ValueError(f"layer {layer!r} is not a tap of this model; allowed: {', '.join(geometry.layers)}")


def padding_free_units(geometry: Geometry, layer: str, size: int = 224) -> list[int]:
    """Indices ``j`` (along one axis) of the units of ``layer`` whose receptive field lies
    entirely inside a ``size`` px input: no op on the way reads SAME padding (the situation
    of the centre unit the sweeps probe). Empty when the receptive field is wider than the
    input allows."""
    grid = receptive_field(geometry, layer, size).grid
    return [j for j in range(grid) if not unit_footprint(geometry, layer, j, size)[2]]


@dataclass(frozen=True)
class InputPlan:
    """Where to draw and which units to read, on the smallest input that gives full-size activations.

    Attributes:
        layers: the probed layers.
        size: input pixels (square) to render and run.
        position: ``(x, y)`` continuous pixel coordinates, on the ``size`` image, of the
            probed units' common receptive-field centre: draw the stimulus there.
        units: ``{layer: (row, col)}`` unit to read on the ``size`` input.
        full_size: the nominal input size the plan reproduces.
        full_position: ``(x, y)`` of the same point on the ``full_size`` image.
        full_units: ``{layer: (row, col)}`` the equivalent units on the full input.
        crop_origin: ``(x0, y0)`` pixel index on the full image of the plan image's
            pixel ``(0, 0)``: ``full[..., y0:y0+size, x0:x0+size]`` is the plan's input.
        exact: True when the plan's activations equal the full-size ones (every probed
            unit sees its whole receptive field without padding in both). When False the
            plan is the full input itself (``size == full_size``).
    """

    layers: tuple[str, ...]
    size: int
    position: tuple[float, float]
    units: dict[str, tuple[int, int]]
    full_size: int
    full_position: tuple[float, float]
    full_units: dict[str, tuple[int, int]]
    crop_origin: tuple[int, int] = (0, 0)
    exact: bool = True
    receptive_fields: dict[str, ReceptiveField] = field(default_factory=dict, repr=False)

    def crop(self, images):  # type: ignore[no-untyped-def]
        """Cut the plan's input out of full-size images ``(..., full_size, full_size)``."""
        x0, y0 = self.crop_origin
        return images[..., y0 : y0 + self.size, x0 : x0 + self.size]


def _centre_units(geometry: Geometry, layers: Sequence[str], size: int, centre_index: float) -> dict[str, int] | None:
    """Units of every layer centred exactly on pixel index ``centre_index`` and free of padding, else None."""
    units = {}
    for layer in layers:
        rf = receptive_field(geometry, layer, size)
        j = (centre_index - rf.offset) / rf.stride
        if j != int(j) or not 0 <= j < rf.grid:
            return None
        j = int(j)
        if unit_footprint(geometry, layer, j, size)[2]:
            return None
        units[layer] = j
    return units


def plan_input(geometry: Geometry, layers: Sequence[str], size: int = 224) -> InputPlan:
    """Smallest square input whose probed units reproduce the centre units of a ``size`` input.

    The reference is the unit of the deepest requested layer whose centre is nearest the
    image centre at ``size``; the other layers are read at the same point. A crop of
    ``s`` pixels is accepted when every requested layer has a unit centred on one common
    pixel, none of them reads padding, and the same holds on the full input (then the
    two computations are the same arithmetic on the same pixels). Otherwise the plan is
    the full input, ``exact=False``.
    """
    _check_size(size)
    layers = tuple(dict.fromkeys(layers))
    if not layers:
        raise ValueError("layers must name at least one tap layer, got an empty list")
    order = {name: i for i, name in enumerate(geometry.layers)}
    for layer in layers:
        if layer not in order:
            raise ValueError(f"layer {layer!r} is not a tap of this model; allowed: {', '.join(geometry.layers)}")
    deepest = max(layers, key=order.__getitem__)
    rf_full = receptive_field(geometry, deepest, size)
    j_full = rf_full.nearest_unit(size / 2)
    c_full = rf_full.offset + rf_full.stride * j_full
    fields = {layer: receptive_field(geometry, layer, size) for layer in layers}

    full_units = _centre_units(geometry, layers, size, c_full)
    if full_units is None:  # the full-size units read padding (or do not share a centre): no crop
        units = {layer: fields[layer].nearest_unit(c_full + 0.5) for layer in layers}
        pos = (c_full + 0.5, c_full + 0.5)
        return InputPlan(
            layers, size, pos, {k: (v, v) for k, v in units.items()}, size, pos,
            {k: (v, v) for k, v in units.items()}, (0, 0), False, fields,
        )
    for s in range(min(rf_full.size, size), size + 1):
        rf = receptive_field(geometry, deepest, s)
        # try the deepest layer's units from the middle outwards
        for j in sorted(range(rf.grid), key=lambda j: abs(rf.offset + rf.stride * j - (s - 1) / 2)):
            c = rf.offset + rf.stride * j
            shift = c_full - c
            if shift != int(shift) or shift < 0 or shift + s > size:
                continue
            units = _centre_units(geometry, layers, s, c)
            if units is None:
                continue
            return InputPlan(
                layers, s, (c + 0.5, c + 0.5), {k: (v, v) for k, v in units.items()}, size,
                (c_full + 0.5, c_full + 0.5), {k: (v, v) for k, v in full_units.items()},
                (int(shift), int(shift)), True, {layer: receptive_field(geometry, layer, s) for layer in layers},
            )
    raise AssertionError("unreachable: the full size itself satisfies the plan")  # pragma: no cover
