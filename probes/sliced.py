"""InceptionV1 computed only where the probed units need it ("sliced" forward).

A probe reads one unit per layer. Its value depends on a window of every earlier
map (the receptive field, layer by layer). When no op on the way reads padding (the
case for every exact :class:`~probes.receptive.InputPlan` and for centre units whose
receptive field fits the image), each op can run without padding on just that window
and gives the same numbers as the full forward: the same multiply-adds on the same
inputs. For a mixed3b centre probe that skips most of mixed3a/mixed3b and part of
conv2d2, on top of the receptive-field crop.

Convention:
    intervals are inclusive ``(first, last)`` absolute indices on a layer's full grid
    (at the actual input size), per axis; a sliced tensor carries the absolute index
    of its element ``[0, 0]``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from probes.receptive import _same
from probes.inception import LAYERS, InceptionV1Net

Interval = tuple[int, int]

# ops leading from the previous tap (or the image) to each tap's pre-ReLU value
_PROGRAM: dict[str, tuple[tuple, ...]] = {
    "conv2d0": (("conv", "conv2d0_pre_relu_conv", 7, 2),),
    "conv2d1": (("pool", 3, 2), ("lrn",), ("conv", "conv2d1_pre_relu_conv", 1, 1)),
    "conv2d2": (("conv", "conv2d2_pre_relu_conv", 3, 1),),
    "mixed3a": (("lrn",), ("pool", 3, 2), ("mixed", "mixed3a")),
    "mixed4a": (("pool", 3, 2), ("mixed", "mixed4a")),
    "mixed5a": (("pool", 3, 2), ("mixed", "mixed5a")),
}
for _name in LAYERS:
    _PROGRAM.setdefault(_name, (("mixed", _name),))


class NeedsPadding(Exception):
    """The requested units read padding somewhere: use the full forward instead."""


def _kernel(op: tuple) -> tuple[int, int]:
    if op[0] == "conv":
        return op[2], op[3]
    if op[0] == "pool":
        return op[1], op[2]
    return 1, 1  # lrn, mixed (mixed handled separately)


def _back(op: tuple, out: Interval, n_in: int) -> Interval:
    """Input interval an op needs for output interval ``out`` on an ``n_in`` grid; raises if it needs padding."""
    if op[0] == "mixed":
        need = (out[0] - 2, out[1] + 2)  # 5x5 branch (SAME, stride 1) is the widest
    else:
        k, s = _kernel(op)
        p = _same(n_in, k, s)[1]
        need = (s * out[0] - p, s * out[1] - p + k - 1)
    if need[0] < 0 or need[1] > n_in - 1:
        raise NeedsPadding
    return need


def _grids(n: int, upto: str) -> dict[str, list[int]]:
    """Input grid size of every op of every layer up to ``upto`` (one axis)."""
    out: dict[str, list[int]] = {}
    for layer in LAYERS:
        sizes = []
        for op in _PROGRAM[layer]:
            sizes.append(n)
            k, s = _kernel(op)
            n = -(-n // s)
        out[layer] = sizes
        if layer == upto:
            break
    return out


def _cut(t: torch.Tensor, origin: tuple[int, int], rows: Interval, cols: Interval) -> torch.Tensor:
    r0, c0 = origin
    return t[..., rows[0] - r0 : rows[1] - r0 + 1, cols[0] - c0 : cols[1] - c0 + 1]


def _widen(iv: Interval, d: int) -> Interval:
    return iv[0] - d, iv[1] + d


def _mixed(net: InceptionV1Net, name: str, t: torch.Tensor, origin: tuple[int, int],
           rows: Interval, cols: Interval) -> torch.Tensor:
    m = net.__dict__["_modules"]

    def conv(x: torch.Tensor, key: str) -> torch.Tensor:
        c = m[f"{name}_{key}_pre_relu_conv"]
        return F.conv2d(x, c.weight, c.bias)

    b1 = conv(_cut(t, origin, rows, cols), "1x1")
    b3 = conv(F.relu(conv(_cut(t, origin, _widen(rows, 1), _widen(cols, 1)), "3x3_bottleneck")), "3x3")
    b5 = conv(F.relu(conv(_cut(t, origin, _widen(rows, 2), _widen(cols, 2)), "5x5_bottleneck")), "5x5")
    bp = conv(F.max_pool2d(_cut(t, origin, _widen(rows, 1), _widen(cols, 1)), 3, 1), "pool_reduce")
    return torch.cat((b1, b3, b5, bp), dim=1)


def probe_units(net: InceptionV1Net, x: torch.Tensor, units: Mapping[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    """Pre- and post-ReLU values ``(B, C)`` of ``units[layer] = (row, col)`` without computing whole maps.

    ``x`` is the network input (already transformed). Raises :class:`NeedsPadding` when
    some unit's receptive field reaches padding (then only the full forward is exact).
    Returns ``{"<layer>": post, "<layer>_pre_relu": pre}``.
    """
    order = [layer for layer in LAYERS if layer in units]
    deepest = order[-1]
    h, w = x.shape[-2:]
    grids = (_grids(h, deepest), _grids(w, deepest))
    layers = LAYERS[: LAYERS.index(deepest) + 1]

    # backward: the window of every op's output that the requested units need
    needs: dict[str, list[tuple[Interval, Interval]]] = {}
    want: tuple[Interval, Interval] | None = None
    for layer in reversed(layers):
        if layer in units:
            r, c = units[layer]
            own = ((r, r), (c, c))
            want = own if want is None else ((min(want[0][0], r), max(want[0][1], r)),
                                             (min(want[1][0], c), max(want[1][1], c)))
        assert want is not None
        outs = [want]
        for i in reversed(range(len(_PROGRAM[layer]))):
            op = _PROGRAM[layer][i]
            rows = _back(op, outs[0][0], grids[0][layer][i])
            cols = _back(op, outs[0][1], grids[1][layer][i])
            outs.insert(0, (rows, cols))
        needs[layer] = outs  # needs[layer][i]: input window of op i; [-1]: the layer's output window
        want = outs[0]

    # forward on the windows only
    out: dict[str, torch.Tensor] = {}
    t, origin = x, (0, 0)
    for layer in layers:
        for i, op in enumerate(_PROGRAM[layer]):
            rows_in, cols_in = needs[layer][i]
            rows_out, cols_out = needs[layer][i + 1]
            if op[0] == "conv":
                c = net.__dict__["_modules"][op[1]]
                t = F.conv2d(_cut(t, origin, rows_in, cols_in), c.weight, c.bias, stride=op[3])
            elif op[0] == "pool":
                t = F.max_pool2d(_cut(t, origin, rows_in, cols_in), op[1], op[2])
            elif op[0] == "lrn":
                t = net.lrn(_cut(t, origin, rows_out, cols_out))
            else:
                t = _mixed(net, op[1], t, origin, rows_out, cols_out)
            origin = (rows_out[0], cols_out[0])
        pre, t = t, F.relu(t)
        if layer in units:
            r, c = units[layer]
            out[f"{layer}_pre_relu"] = pre[:, :, r - origin[0], c - origin[1]].clone()
            out[layer] = t[:, :, r - origin[0], c - origin[1]].clone()
    return out
