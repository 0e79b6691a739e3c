"""Toy networks whose curve-family answer is known, for ``curvebench discover``'s test (tests/test_discover_toys.py).

Every unit is a template match on the grey image: ``gain * (|<image patch, T>| / c0) ** 3``
with ``T`` a zero-mean, lightly blurred rendering of one stimulus (so a blank gives 0,
either contrast polarity gives the same value, and ``c0`` is ``T``'s match with its own
stimulus: 1 at the designed stimulus), computed at every pixel (stride 1, "SAME").

* ``pooled`` (stride 16): the match map max-pooled over each 16 x 16 cell: a unit
  answers its stimulus anywhere in its cell (no aliasing). Channels: 0 a curve
  (opens to 0 deg), 1 the article's 90 degree angle, 2 a closed ring (a spot), 3 a
  curve (opens to 90 deg) with a gain that ReLU6 clips. The tap is clipped at 6
  (``pooled_pre_relu``: before the clip).
* ``sampled`` (stride 16): the same curve match read at every 16th pixel, with no blur
  or pooling: it answers the stimulus only near the cell's centre (aliasing).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

K = 33          # template size (px)
LENGTH = 24.0   # stimulus length (px)
WIDTH = 2.0     # stroke width (px)
CURVATURE = 0.75 * math.pi / LENGTH  # a 135 degree turn
SIZE = 80       # input size: the middle unit's cell (px 32..47) is centred on the image centre


def _template(kind: str, orientation: float, curvature: float, *, ring: bool = False) -> torch.Tensor:
    import stimuli

    kw = {}
    if ring:  # a closed ring centred on the kernel's centre
        r = LENGTH / (2 * math.pi)
        kind, curvature, kw = "curve", 1 / r, {"position": (K / 2 - r, K / 2)}
    img = stimuli.render(kind, orientation=orientation, curvature=curvature, length=LENGTH, width=WIDTH, size=K, **kw)
    g = img.mean(1, keepdim=True)
    g = F.avg_pool2d(g, 3, 1, 1, count_include_pad=False)  # a light blur
    t = g - g.mean()
    c0 = (t * (img.mean(1, keepdim=True) - 1.0)).sum().abs()  # the match with the stimulus itself
    return t / c0


class ToyDetectors(nn.Module):
    """See the module docstring; taps ``pooled`` (with ``pooled_pre_relu``) and ``sampled``."""

    def __init__(self) -> None:
        super().__init__()
        pooled = [_template("curve", 0.0, CURVATURE), _template("angle", 0.0, math.pi / 2 / LENGTH),
                  _template("curve", 0.0, 0.0, ring=True), _template("curve", 90.0, CURVATURE)]
        self.register_buffer("pooled_weight", torch.cat(pooled))
        self.register_buffer("gain", torch.tensor([4.0, 4.0, 4.0, 12.0]).view(1, -1, 1, 1))
        self.pre = nn.Identity()
        self.pooled = nn.Identity()
        self.sampled = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(1, keepdim=True)
        match = F.conv2d(g, self.pooled_weight, padding=K // 2).abs() ** 3 * self.gain
        pre = self.pre(F.max_pool2d(match, 16, 16))
        out = self.pooled(pre.clamp(0.0, 6.0))
        self.sampled(match[:, :1, 8::16, 8::16])
        return out


def toy_model():
    """The wrapped :class:`ToyDetectors` (``probes.wrap_module``, geometry measured from the network)."""
    import probes

    return probes.wrap_module(ToyDetectors(), {"pooled": "pooled", "sampled": "sampled"},
                              pre_relu={"pooled": "pre"}, name="toy-detectors")


def unit_stats(model, layers) -> "object":
    """Statistics with std 1 and mean 0 for every channel (sigma = the raw activation), in the stats layout."""
    import numpy as np
    import xarray as xr

    data = {}
    for layer in layers:
        n = model.num_channels(layer)
        for key in (layer, f"{layer}_pre_relu"):
            data[f"{key}_mean"] = ((f"{key}_channel",), np.zeros(n))
            data[f"{key}_std"] = ((f"{key}_channel",), np.ones(n))
    return xr.Dataset(data, attrs={"model": model.name, "source": "unit std (toy)", "n_images": 0})
