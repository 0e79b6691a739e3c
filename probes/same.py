"""TensorFlow "SAME" padding for torch convolutions and max-pools at any input size.

Shared by every TF-converted network (InceptionV1, EfficientNet-Lite0). The padding
of an op depends on the size of its input (see :func:`probes.receptive.same_pads`):
``pad = max((ceil(n / s) - 1) * s + k - n, 0)``, the odd pixel after. Symmetric pads
are handed to the conv/pool itself (no padded copy); asymmetric ones go through
``F.pad`` first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from probes.receptive import same_pads

__all__ = ["conv2d_same", "max_pool_same"]


def conv2d_same(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv`` (square kernel, any ``groups``, dilation 1) with TF "SAME" zero padding for ``x``'s size."""
    k, s = conv.kernel_size[0], conv.stride[0]
    if k == 1 and s == 1:
        return conv(x)
    left, right, top, bottom = same_pads(x.shape[-2:], k, s)
    if left == right and top == bottom:
        return F.conv2d(x, conv.weight, conv.bias, s, (top, left), 1, conv.groups)
    return F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, s, 0, 1, conv.groups)


def max_pool_same(x: torch.Tensor, k: int = 3, s: int = 1) -> torch.Tensor:
    """TF "SAME" max-pool: padded positions never win (``-inf``)."""
    left, right, top, bottom = same_pads(x.shape[-2:], k, s)
    if left == right and top == bottom and 2 * top <= k:  # torch pads max-pools with -inf itself
        return F.max_pool2d(x, k, s, (top, left))
    return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), k, s)
