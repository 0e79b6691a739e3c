"""Small networks for the wrapped-model tests, built by ``module:factory`` specs (``toy_nets:tf_same``)."""

from __future__ import annotations

import torch
from torch import nn

from probes.receptive import Geometry
from probes.same import conv2d_same


class TFSame(nn.Module):
    """Four 3x3 stride-2 convs with TF "SAME" padding (stride 16, like EfficientNet's stage 3)."""

    GEOMETRY = Geometry(("c1", "c2", "c3", "c4"), tuple(((((3, 2),),),) for _ in range(4)))

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3 if i == 0 else 4, 4, 3, 2) for i in range(4))
        self.c1, self.c2, self.c3, self.c4 = (nn.ReLU() for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, (self.c1, self.c2, self.c3, self.c4)):
            x = act(conv2d_same(x, conv))
        return x


class TorchPad(nn.Module):
    """PyTorch-style symmetric padding, a max-pool and a final global pool (a (B, C) output)."""

    input_transform = "pm1"

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5, stride=2, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.features(x))))


class Corner(nn.Module):
    """Maps that cover only the top-left corner of the image (no unit under a centred stimulus)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.corner = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.corner(self.conv(x)[..., :4, :4])


def tf_same() -> nn.Module:
    return TFSame()


def torch_pad() -> nn.Module:
    return TorchPad()


def corner() -> nn.Module:
    return Corner()


def valid() -> nn.Module:
    """Two 7x7 convs without padding: an 8x8 input is too small for the second."""
    return nn.Sequential(nn.Conv2d(3, 4, 7), nn.ReLU(), nn.Conv2d(4, 4, 7), nn.ReLU())


def not_a_module() -> object:
    return {"weights": 1}


def broken() -> nn.Module:
    raise RuntimeError("cannot build")


NOT_CALLABLE = 3


class SpikeAndCurves(nn.Module):
    """The ground-truth model's 12 designed curve units plus one *spike* unit (channel 12), tap ``units``.

    The spike unit answers one stimulus only: the normalised cross-correlation of the image
    with a rendered curve (orientation :data:`SPIKE_ORIENTATION` degrees, curvature
    :data:`SPIKE_CURVATURE` /px, 64 px long, 3 px wide, black on white, midpoint at
    :data:`SPIKE_POSITION` of a 224 px image: the centre of ``curves`` unit (27, 27))
    above 0.99, scaled so that its one response is far stronger than any curve unit's.
    """

    SPIKE_ORIENTATION = 100.0
    SPIKE_CURVATURE = 0.03
    SPIKE_POSITION = (111.0, 111.0)

    def __init__(self) -> None:
        super().__init__()
        import stimuli
        from probes.groundtruth import GroundTruthNet

        self.gt = GroundTruthNet()
        t = stimuli.render("curve", orientation=self.SPIKE_ORIENTATION, curvature=self.SPIKE_CURVATURE, length=64.0,
                           width=3.0, size=224, position=self.SPIKE_POSITION)[0]
        t = t - t.mean()
        self.register_buffer("template", t / t.norm())
        self.units = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        curves = self.gt(x)
        if x.shape[-2:] != self.template.shape[-2:]:  # a receptive-field crop: no spike (it needs the full image)
            spike = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        else:
            v = x - x.mean(dim=(1, 2, 3), keepdim=True)
            ncc = (v * self.template).sum(dim=(1, 2, 3)) / v.flatten(1).norm(dim=1).clamp_min(1e-9)
            spike = 5000.0 * torch.relu(ncc - 0.99)
        spike_map = spike[:, None, None, None].expand(-1, 1, *curves.shape[-2:])
        return self.units(torch.cat([curves, spike_map], dim=1))


def spike_and_curves() -> nn.Module:
    return SpikeAndCurves()
