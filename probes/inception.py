"""InceptionV1 exactly as Lucid's "inception5h" TensorFlow graph, with every tap a named submodule.

Parameter names and shapes are those of Lucent's ``inception5h.pth`` (116 keys,
7,066,380 parameters, e.g. ``mixed3b_5x5_pre_relu_conv.weight``), so that file loads
with ``load_state_dict(strict=True)``. Two things follow the TensorFlow graph rather
than the PyTorch ports:

* **Padding** is TF "SAME" computed from the actual input size at every conv and
  max-pool (``pad = max((ceil(n/s) - 1) * s + k - n, 0)``, the odd pixel after),
  zeros for convs and ``-inf`` for max-pools. Lucent's fixed pads equal this only
  when every stride-2 input is even (input sizes that are multiples of 16).
* **Local response norm** is TF's ``depth_radius=5, alpha=1e-4, beta=0.5, bias=2``:
  ``x / (2 + 1e-4 * sum_{|c'-c|<=5} x_c'^2) ** 0.5``, i.e. torch
  ``local_response_norm(size=11, alpha=11e-4, beta=0.5, k=2)`` (torch divides alpha
  by ``size``). Lucent 0.1.8 uses ``size=9, alpha~1e-4, k=1``. :attr:`InceptionV1Net.lrn`
  holds the values so a test can switch them.

Taps, each the output of a submodule of the same name: ``conv2d0``, ``conv2d1``,
``conv2d2`` and ``mixed3a`` ... ``mixed5b`` (post-ReLU), and ``<layer>_pre_relu``.
A mixed layer's pre-ReLU is the concatenation of its branches' pre-ReLU outputs in
the order [1x1, 3x3, 5x5, pool_reduce]; its post-ReLU is the ReLU of that (the same
as Lucid's concatenation of the branch ReLUs).

Convention:
    input ``(B, 3, H, W)`` RGB in [0, 255] minus 117 (range [-117, 138]), any H, W
    (the :class:`~probes.base.ProbeModel` wrapper applies ``x * 255 - 117`` to
    renderer images in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from probes.receptive import Geometry
from probes.same import conv2d_same, max_pool_same

# (in, 1x1, 3x3_bottleneck, 3x3, 5x5_bottleneck, 5x5, pool_reduce) per mixed layer
MIXED: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "mixed3a": (192, 64, 96, 128, 16, 32, 32),
    "mixed3b": (256, 128, 128, 192, 32, 96, 64),
    "mixed4a": (480, 192, 96, 204, 16, 48, 64),
    "mixed4b": (508, 160, 112, 224, 24, 64, 64),
    "mixed4c": (512, 128, 128, 256, 24, 64, 64),
    "mixed4d": (512, 112, 144, 288, 32, 64, 64),
    "mixed4e": (528, 256, 160, 320, 32, 128, 128),
    "mixed5a": (832, 256, 160, 320, 48, 128, 128),
    "mixed5b": (832, 384, 192, 384, 48, 128, 128),
}
LAYERS: tuple[str, ...] = ("conv2d0", "conv2d1", "conv2d2", *MIXED)
CHANNELS: dict[str, int] = {
    "conv2d0": 64,
    "conv2d1": 64,
    "conv2d2": 192,
    **{k: v[1] + v[3] + v[5] + v[6] for k, v in MIXED.items()},
}
# max-pools with stride 2 that come right before these layers
_POOL_BEFORE = {"conv2d1": "maxpool0", "mixed3a": "maxpool1", "mixed4a": "maxpool4", "mixed5a": "maxpool10"}
NUM_PARAMETERS = 7_066_380
NUM_STATE_KEYS = 116


@dataclass(frozen=True)
class LRN:
    """TF local response normalisation parameters (``tf.nn.local_response_normalization``)."""

    depth_radius: int = 5
    alpha: float = 1e-4
    beta: float = 0.5
    bias: float = 2.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        size = 2 * self.depth_radius + 1
        return F.local_response_norm(x, size=size, alpha=self.alpha * size, beta=self.beta, k=self.bias)


TF_LRN = LRN()


def _geometry() -> Geometry:
    mixed_step = (((1, 1),), ((1, 1), (3, 1)), ((1, 1), (5, 1)), ((3, 1), (1, 1)))
    steps = []
    for layer in LAYERS:
        step: list = []
        if layer in _POOL_BEFORE:
            step.append((((3, 2),),))
        if layer == "conv2d0":
            step.append((((7, 2),),))
        elif layer == "conv2d1":
            step.append((((1, 1),),))
        elif layer == "conv2d2":
            step.append((((3, 1),),))
        else:
            step.append(mixed_step)
        steps.append(tuple(step))
    return Geometry(LAYERS, tuple(steps))


GEOMETRY = _geometry()


class Concat(nn.Module):
    """Concatenate along channels (a named module so that it can be tapped)."""

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.cat(tensors, dim=1)


_conv = conv2d_same  # TF "SAME" conv (probes/same.py)


class InceptionV1Net(nn.Module):
    """The network; ``forward(x)`` returns the 1008-way softmax (``softmax2``).

    ``forward(x, until="mixed3b")`` stops after that tap and returns its post-ReLU
    output (used by benchmarks; :meth:`ProbeModel.probe` stops via hooks instead).
    """

    def __init__(self, lrn: LRN = TF_LRN) -> None:
        super().__init__()
        self.lrn = lrn
        self.conv2d0_pre_relu_conv = nn.Conv2d(3, 64, 7, stride=2)
        self.conv2d1_pre_relu_conv = nn.Conv2d(64, 64, 1)
        self.conv2d2_pre_relu_conv = nn.Conv2d(64, 192, 3)
        for name, (cin, c1, c3r, c3, c5r, c5, cp) in MIXED.items():
            setattr(self, f"{name}_1x1_pre_relu_conv", nn.Conv2d(cin, c1, 1))
            setattr(self, f"{name}_3x3_bottleneck_pre_relu_conv", nn.Conv2d(cin, c3r, 1))
            setattr(self, f"{name}_5x5_bottleneck_pre_relu_conv", nn.Conv2d(cin, c5r, 1))
            setattr(self, f"{name}_pool_reduce_pre_relu_conv", nn.Conv2d(cin, cp, 1))
            setattr(self, f"{name}_3x3_pre_relu_conv", nn.Conv2d(c3r, c3, 3))
            setattr(self, f"{name}_5x5_pre_relu_conv", nn.Conv2d(c5r, c5, 5))
        self.softmax2_pre_activation_matmul = nn.Linear(1024, 1008)
        for layer in LAYERS:  # the tap modules
            setattr(self, f"{layer}_pre_relu", Concat() if layer in MIXED else nn.Identity())
            setattr(self, layer, nn.ReLU())
        for name in ("3x3_bottleneck", "5x5_bottleneck"):
            for layer in MIXED:
                setattr(self, f"{layer}_{name}", nn.ReLU())

    def _mixed(self, x: torch.Tensor, name: str) -> torch.Tensor:
        m = self.__dict__["_modules"]
        b1 = m[f"{name}_1x1_pre_relu_conv"](x)
        b3 = _conv(m[f"{name}_3x3_bottleneck"](m[f"{name}_3x3_bottleneck_pre_relu_conv"](x)), m[f"{name}_3x3_pre_relu_conv"])
        b5 = _conv(m[f"{name}_5x5_bottleneck"](m[f"{name}_5x5_bottleneck_pre_relu_conv"](x)), m[f"{name}_5x5_pre_relu_conv"])
        bp = m[f"{name}_pool_reduce_pre_relu_conv"](max_pool_same(x, 3, 1))
        return m[name](m[f"{name}_pre_relu"](b1, b3, b5, bp))

    def forward(self, x: torch.Tensor, until: str | None = None) -> torch.Tensor:
        if until is not None and until not in LAYERS:
            raise ValueError(f"until: unknown layer {until!r}; allowed: {', '.join(LAYERS)}")
        x = self.conv2d0(self.conv2d0_pre_relu(_conv(x, self.conv2d0_pre_relu_conv)))
        if until == "conv2d0":
            return x
        x = self.lrn(max_pool_same(x, 3, 2))
        x = self.conv2d1(self.conv2d1_pre_relu(self.conv2d1_pre_relu_conv(x)))
        if until == "conv2d1":
            return x
        x = self.conv2d2(self.conv2d2_pre_relu(_conv(x, self.conv2d2_pre_relu_conv)))
        if until == "conv2d2":
            return x
        x = max_pool_same(self.lrn(x), 3, 2)
        for name in MIXED:
            if name in ("mixed4a", "mixed5a"):
                x = max_pool_same(x, 3, 2)
            x = self._mixed(x, name)
            if until == name:
                return x
        # head: 7x7 VALID average pool, then the 1008-way classifier at every position left
        if min(x.shape[-2:]) < 7:
            raise ValueError(f"the classifier head needs mixed5b maps of at least 7x7 (input >= 193 px), got "
                             f"{list(x.shape[-2:])}; probe a layer instead of running the whole network")
        x = F.avg_pool2d(x, 7, 1)
        logits = torch.einsum("bchw,kc->bkhw", x, self.softmax2_pre_activation_matmul.weight)
        logits = logits + self.softmax2_pre_activation_matmul.bias.view(1, -1, 1, 1)
        return F.softmax(logits, dim=1).squeeze(-1).squeeze(-1)


