"""A hand-built curve-detector network with known answers: the offline test oracle.

It is *not* InceptionV1. Two tap layers, both with pre- and post-ReLU values:

``edges`` (12 channels, stride 2 px, receptive field 13 px)
    Channel ``m`` prefers edges whose tangent has orientation ``15 * m`` degrees
    (mod 180, counter-clockwise on screen). Per RGB channel, a 9x9 anisotropic
    derivative-of-Gaussian across the edge (sigma 1 px across, 2 px along) with
    replicate padding; the absolute value (both contrast polarities), averaged over
    RGB; a 5x5 Gaussian pool (sigma 1 px) with stride 2; a divisive saturation
    ``e / (e + 0.15)`` so that strokes, filled shapes and any colour pair with a clear
    edge give similar values; minus 0.1 (pre-ReLU).

``curves`` (12 channels, stride 4 px, receptive field 53 px)
    A 21x21 conv (stride 2) on ``edges`` plus a bias. Unit ``k``'s weights are a
    template of an ideal circular arc (curvature ``CURVATURE`` = 0.05 /px, length
    ``TEMPLATE_LENGTH`` = 32 px, midpoint on the unit's centre) at orientation
    ``30 * k`` degrees: each ``edges`` tap gets ``exp(-d^2 / 8) * exp(2.5 *
    (cos 2(theta_m - tau) - 1))``, ``d`` the distance (px) from the tap's centre to
    the arc and ``tau`` the arc's tangent orientation at the closest point;
    templates sum to 1. Minus ``inhibition`` times the mean template of the opposite
    arcs (orientations ``30 k + 180 + d``, ``d`` in -45..45 step 15): 1.0 for even
    ``k`` (no echo: nothing within 45 degrees of the opposite orientation fires, and
    straight lines give 0), 0.25 for odd ``k`` (a weak "echo" about 180 degrees
    away, about 37% of the peak, from the parts the arcs share near the midpoint).
    Each unit's weights are scaled by ``3 * <t,t> / (<t,t> - inhibition * <t,o>)`` so
    that both kinds peak at similar values (about 1.2-1.6 for a 2-3 px black arc).

The templates are computed with numpy from the analytic arc (closest-point distance
to densely sampled points), independently of the renderer in ``stimuli/``.

Convention:
    * input: RGB in [0, 1] (the renderer's output) used as is, transform = identity;
    * orientation of an arc = direction from its midpoint toward its centre of
      curvature, degrees counter-clockwise on screen (0 = +x, 90 = up), as the renderer;
    * curvature in 1/px; every unit prefers ``CURVATURE``;
    * TF "SAME" geometry, so :meth:`ProbeModel.input_plan` gives the crop as for
      InceptionV1 (curves unit ``j`` is centred on pixel ``4 j + 3`` at 224 px).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from probes.base import InputTransform, ProbeModel
from probes.receptive import Geometry, same_pads

EDGE_ORIENTATIONS = tuple(15.0 * m for m in range(12))
UNIT_ORIENTATIONS = tuple(30.0 * k for k in range(12))
CURVATURE = 0.05
TEMPLATE_LENGTH = 32.0
ECHO = tuple(k % 2 == 1 for k in range(12))
INHIBITION = tuple(0.25 if e else 1.0 for e in ECHO)
INHIBITION_SPREAD = (-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0)
EDGE_KERNEL, POOL_KERNEL, CURVE_KERNEL = 9, 5, 21
EDGE_SIGMA_ACROSS, EDGE_SIGMA_ALONG, POOL_SIGMA = 1.0, 2.0, 1.0
SATURATION, EDGE_THRESHOLD = 0.15, 0.1
TEMPLATE_SIGMA, ORIENTATION_CONCENTRATION = 2.0, 2.5
CURVE_GAIN, CURVE_BIAS = 3.0, -0.15

GEOMETRY = Geometry(
    layers=("edges", "curves"),
    steps=(
        ((((EDGE_KERNEL, 1),),), (((POOL_KERNEL, 2),),)),
        ((((CURVE_KERNEL, 2),),),),
    ),
)


def _unit_vectors(theta_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Screen direction ``(cos, -sin)`` of an angle (y down) and its left normal."""
    t = math.radians(theta_deg)
    return np.array([math.cos(t), -math.sin(t)]), np.array([math.sin(t), math.cos(t)])


def edge_filters() -> np.ndarray:
    """``(12, 9, 9)`` derivative-of-Gaussian filters; channel m responds +1 to a unit step across an edge at 15 m deg."""
    r = np.arange(EDGE_KERNEL) - EDGE_KERNEL // 2
    dy, dx = np.meshgrid(r, r, indexing="ij")
    out = []
    for theta in EDGE_ORIENTATIONS:
        t, n = _unit_vectors(theta)
        a = dx * t[0] + dy * t[1]
        b = dx * n[0] + dy * n[1]
        g = -b * np.exp(-(a**2) / (2 * EDGE_SIGMA_ALONG**2) - b**2 / (2 * EDGE_SIGMA_ACROSS**2))
        out.append(g / (np.abs(g).sum() / 2))
    return np.stack(out)


def arc_points(orientation: float, curvature: float, length: float, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(M, 2)`` (x, y px, midpoint at 0) and tangent angles (rad, screen CCW) of an ideal arc."""
    s = np.arange(-length / 2, length / 2 + step / 2, step)
    u, t_mid = _unit_vectors(orientation)  # u: toward the centre of curvature; t_mid: tangent at the midpoint
    ks = curvature * s
    along = s * np.sinc(ks / np.pi)  # sin(k s) / k, exact at k = 0
    across = curvature * s**2 / 2 * np.sinc(ks / (2 * np.pi)) ** 2  # (1 - cos(k s)) / k
    pts = along[:, None] * t_mid + across[:, None] * u
    tang = np.cos(ks)[:, None] * t_mid + np.sin(ks)[:, None] * u
    return pts, np.arctan2(-tang[:, 1], tang[:, 0])


def arc_template(orientation: float, curvature: float = CURVATURE, length: float = TEMPLATE_LENGTH) -> np.ndarray:
    """``(12, 21, 21)`` template on the ``edges`` grid (2 px spacing) of an arc centred on the unit, sum 1."""
    pts, tangent = arc_points(orientation, curvature, length)
    r = (np.arange(CURVE_KERNEL) - CURVE_KERNEL // 2) * 2.0
    dy, dx = np.meshgrid(r, r, indexing="ij")
    grid = np.stack([dx.ravel(), dy.ravel()], axis=1)
    d2 = ((grid[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    nearest = d2.argmin(axis=1)
    spatial = np.exp(-d2[np.arange(len(grid)), nearest] / (2 * TEMPLATE_SIGMA**2))
    tau = tangent[nearest]
    theta = np.radians(np.array(EDGE_ORIENTATIONS))[:, None]
    orient = np.exp(ORIENTATION_CONCENTRATION * (np.cos(2 * (theta - tau[None, :])) - 1))
    t = (orient * spatial[None, :]).reshape(len(EDGE_ORIENTATIONS), CURVE_KERNEL, CURVE_KERNEL)
    return t / t.sum()


def curve_weights() -> np.ndarray:
    """``(12, 12, 21, 21)`` weights of the ``curves`` layer (see module docstring)."""
    w = []
    for phi, inh in zip(UNIT_ORIENTATIONS, INHIBITION):
        t = arc_template(phi)
        # opposite arcs, spread over +-45 deg around phi + 180 so that the whole far side is suppressed
        opposite = sum(arc_template(phi + 180.0 + d) for d in INHIBITION_SPREAD) / len(INHIBITION_SPREAD)
        # equalise the designed peak: divide by the template's own match minus inhibition
        match = (t * t).sum()
        w.append(CURVE_GAIN * (t - inh * opposite) * match / (match - inh * (t * opposite).sum()))
    return np.stack(w)


def _pad_same(x: torch.Tensor, k: int, s: int, mode: str) -> torch.Tensor:
    return F.pad(x, same_pads(x.shape[-2:], k, s), mode=mode)


class GroundTruthNet(nn.Module):
    """The network itself; taps are the submodules ``edges_pre_relu``, ``edges``, ``curves_pre_relu``, ``curves``."""

    def __init__(self) -> None:
        super().__init__()
        f = torch.from_numpy(edge_filters()).float()
        self.register_buffer("edge_weight", f.repeat(3, 1, 1).unsqueeze(1))  # (3*12, 1, 9, 9), grouped by RGB
        r = torch.arange(POOL_KERNEL) - POOL_KERNEL // 2
        g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * POOL_SIGMA**2))
        self.register_buffer("pool_weight", (g / g.sum()).expand(12, 1, -1, -1).clone())
        self.register_buffer("curve_weight", torch.from_numpy(curve_weights()).float())
        self.register_buffer("curve_bias", torch.full((12,), CURVE_BIAS))
        self.edges_pre_relu = nn.Identity()
        self.edges = nn.ReLU()
        self.curves_pre_relu = nn.Identity()
        self.curves = nn.ReLU()

    def edge_map(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-ReLU ``edges`` map ``(B, 12, ceil(H/2), ceil(W/2))`` of the network input ``x``."""
        e = F.conv2d(_pad_same(x, EDGE_KERNEL, 1, "replicate"), self.edge_weight, groups=3)
        e = e.abs().unflatten(1, (3, 12)).mean(dim=1)
        e = F.conv2d(_pad_same(e, POOL_KERNEL, 2, "constant"), self.pool_weight, stride=2, groups=12)
        return e / (e + SATURATION) - EDGE_THRESHOLD

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.edges(self.edges_pre_relu(self.edge_map(x)))
        c = F.conv2d(_pad_same(e, CURVE_KERNEL, 2, "constant"), self.curve_weight, self.curve_bias, stride=2)
        return self.curves(self.curves_pre_relu(c))


def unit_forward(net: GroundTruthNet, x: torch.Tensor, where: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    """Values ``(B, 12)`` of the units ``where[layer] = (row, col)`` without the whole ``curves`` map.

    The ``edges`` map is computed in full (it is cheap); a ``curves`` unit is the dot
    product of its 21 x 21 window of ``edges`` with the weights, the same arithmetic as
    the full forward's convolution. Raises :class:`probes.sliced.NeedsPadding` when that
    window reaches the convolution's padding (then only the full forward is exact).
    """
    from probes.sliced import NeedsPadding

    pre = net.edge_map(x)
    post = F.relu(pre)
    out: dict[str, torch.Tensor] = {}
    if "edges" in where:
        r, c = where["edges"]
        out["edges_pre_relu"], out["edges"] = pre[:, :, r, c].clone(), post[:, :, r, c].clone()
    if "curves" in where:
        r, c = where["curves"]
        h, w = post.shape[-2:]
        top = 2 * r - same_pads((h, w), CURVE_KERNEL, 2)[2]
        left = 2 * c - same_pads((h, w), CURVE_KERNEL, 2)[0]
        if top < 0 or left < 0 or top + CURVE_KERNEL > h or left + CURVE_KERNEL > w:
            raise NeedsPadding
        window = post[:, :, top : top + CURVE_KERNEL, left : left + CURVE_KERNEL]
        value = torch.einsum("bihw,oihw->bo", window, net.curve_weight) + net.curve_bias
        out["curves_pre_relu"], out["curves"] = value, F.relu(value)
    return out


def units() -> list[dict[str, object]]:
    """Designed properties of each ``curves`` channel (also in ``model.meta["units"]``)."""
    return [
        {
            "layer": "curves",
            "channel": k,
            "preferred_orientation": UNIT_ORIENTATIONS[k],
            "preferred_curvature": CURVATURE,
            "template_length": TEMPLATE_LENGTH,
            "has_echo": ECHO[k],
            "inhibition": INHIBITION[k],
        }
        for k in range(12)
    ]


def build(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> ProbeModel:
    """The ground-truth model as a :class:`ProbeModel` (no weight file)."""
    net = GroundTruthNet().to(device=device, dtype=dtype)
    return ProbeModel(
        net,
        name="groundtruth",
        layers=GEOMETRY.layers,
        channels={"edges": 12, "curves": 12},
        transform=InputTransform(1.0, 0.0, "identity: RGB in [0, 1] used as is"),
        geometry=GEOMETRY,
        unit_forward=unit_forward,  # type: ignore[arg-type]
        meta={
            "units": units(),
            "edge_orientations": list(EDGE_ORIENTATIONS),
            "description": "hand-built curve detectors (edges -> arc templates); not InceptionV1",
        },
    )
