"""Responses for ``curvebench discover``: curve sweeps, controls and sigma, per channel and position.

For a model and one or more tap layers this module renders, probes and returns, at each
of ``positions`` stimulus positions spread over one stride cell of the deepest layer
around the probed units' common receptive-field centre (an ``n`` x ``n`` grid, moved by
``offset``):

* the **curve sweep**: ``orientations`` x ``curvatures`` circular arcs (curvature 0, a
  straight line, to ``max_curvature``, by default ``pi / length``: a semicircle, the
  article's range), in both contrast polarities (black on white, white on black),
  path midpoint on the position;
* three **controls** in the black-on-white polarity: the article's sharp **angles**
  (``angle_turns`` 45, 90, 135 degrees: two straight arms along the end tangents of the
  arc turning by that much, ``kind="angle"``, as the ``angles`` suite), **rays** (straight
  lines of half the arc length that end at the position, one per direction: end-stop
  probe) and **spots** (a small square dot and a closed ring of circumference
  ``length``, centred on the position);
* the response to the **blank** image of each polarity (position-free);
* the per-channel **dataset statistics** (mean, std over all positions of natural
  images; ``builtin``: scikit-image's bundled photographs, a small proxy, not ImageNet),
  computed on the fly with :func:`suites.running.dataset_stats.compute_stats` and cached
  under ``cache_dir`` keyed by model, a hash of the model's parameters and buffers,
  images and size.

The selection test itself lives in :mod:`suites.analysis.curve_family` and works on the
returned dataset alone; :mod:`suites.discovery.pipeline` puts the two together (files, figures).

Convention:
    * orientation: degrees counter-clockwise on screen, toward the side the arc opens
      (0 = opens to +x, 90 = opens up), as :func:`stimuli.render`; a ray's orientation is
      the direction it leaves the centre in;
    * curvature in 1/px; lengths, widths and position offsets (dx, dy; image axes,
      y down) in px; images RGB in [0, 1];
    * activations are read at the unit of the channel nearest each stimulus
      (``Sweep.read_unit``; a position beyond the centre unit's stride cell is read by
      the neighbouring unit, computed as the centre unit's response to the stimulus at
      its phase: exact by translation by whole strides), on the exact receptive-field
      crop of a ``size`` input when the model has a geometry: post-ReLU, except for a
      tap that clips (ReLU6), which is read before the clip, ``max(pre, 0)`` (the value whose std the statistics store), so that no
      tuning is a plateau edge; ``<L>_clipped_fraction`` says how much of the curve
      sweep the clip would have flattened.

Dataset layout (one dataset, all layers; ``<L>`` a layer name):
    ``<L>_curve`` (position, polarity, curvature, orientation, <L>_channel),
    ``<L>_angle`` (position, angle_turn, orientation, <L>_channel),
    ``<L>_ray`` (position, orientation, <L>_channel), ``<L>_spot`` (position, spot,
    <L>_channel), ``<L>_blank`` (polarity, <L>_channel), ``<L>_clipped_fraction``,
    ``<L>_mean`` and ``<L>_std`` (<L>_channel), ``strip`` (strip_y, strip_x, rgb) uint8
    images of the sweep for figures; coordinates ``position_dx``/``position_dy`` (px);
    attributes carry model, weights, fingerprint, statistics label, sweep, positions
    and probing geometry.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from probes.weights_spec import RANDOM_TEXT, WeightsSpec
from suites.analysis.sigma import DEFAULT_SIGMA, SigmaDefinition, reference_moments
from suites.errors import SuitesError
from suites.file_kinds import DISCOVER_RESPONSES_KIND
from suites.results.attributes import stats_label

__all__ = ["Sweep", "DEMO_SWEEP", "DEFAULT_SWEEP", "measure", "model_fingerprint", "cached_stats", "discover_responses",
           "check_layers", "load_network", "DiscoverError", "POLARITIES", "READ_UNITS", "RESPONSES_KIND"]

RESPONSES_KIND = DISCOVER_RESPONSES_KIND
POLARITIES = ("black_on_white", "white_on_black")
#: which unit reads a stimulus (:attr:`Sweep.read_unit`)
READ_UNITS = ("nearest", "centre")
_COLOURS = {"black_on_white": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), "white_on_black": ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))}


class DiscoverError(SuitesError, ValueError):
    """Bad input to discover (layer maps too small for the stimulus, bad sweep values)."""


@dataclass(frozen=True)
class Sweep:
    """The stimuli of a discover run.

    Attributes:
        orientations: number of orientations, evenly spaced over 360 degrees.
        curvatures: number of curvatures from 0 (a straight line) to ``max_curvature``
            inclusive.
        length: arc length (px).
        width: stroke width (px).
        size: nominal square input size (px); with a model geometry the probe runs on
            the exact receptive-field crop of this size.
        max_curvature: largest curvature (1/px); None: ``pi / length``, a semicircle, the
            article's range (a line to a semicircle). Up to ``2 pi / length`` (a ring).
        angle_turns: turns (degrees) of the sharp-angle control: two straight arms along
            the end tangents of the arc turning by that much (``kind="angle"``), as the
            ``angles`` suite draws them (45, 90, 135: the article's angles).
        positions: stimulus positions, an ``n`` x ``n`` grid over one stride cell of the
            deepest layer around its receptive-field centre (1 = the centre only; 16, the
            default: a 4 x 4 grid, ``stride / 4`` apart, 4 px at stride 16).
        offset: ``(dx, dy)`` px added to every position (robustness checks).
        read_unit: which unit reads a stimulus: ``"nearest"`` (default), the unit of the
            channel whose receptive-field centre is nearest the stimulus, so a position
            moved by whole strides is read by the neighbouring unit and the test depends
            only on where the stimulus falls inside a stride cell; ``"centre"``, always the
            unit at the receptive-field centre (positions far from it are off-centre
            stimuli for that unit).
        spot_size: side (px) of the dot of the spot control.
        batch_size: stimuli per forward pass. 8 by default: on CPU, larger batches spend
            more time in the kernel (page faults of freshly mapped activation buffers)
            than they save (EfficientNet-Lite0 at the 154 px crop, one thread: 3.1 s of
            CPU per 256 stimuli at batch 8, 8.0 s at batch 64); with the allocator of
            ``probes/allocator.py`` batch 8 is still the fastest (360 arcs, 2 threads:
            1.14 s at 8, 1.35 s at 16).
        channels_last: run the convolutions in channels-last memory format (same numbers
            to float32 rounding, about 2x faster on CPU).
    """

    orientations: int = 36
    curvatures: int = 10
    length: float = 64.0
    width: float = 3.0
    size: int = 224
    max_curvature: float | None = None
    angle_turns: tuple[float, ...] = (45.0, 90.0, 135.0)
    positions: int = 16
    offset: tuple[float, float] = (0.0, 0.0)
    read_unit: str = "nearest"
    spot_size: float = 4.0
    batch_size: int = 8
    channels_last: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.orientations, int) and self.orientations >= 4):
            raise DiscoverError(f"sweep: orientations must be an int >= 4, got {self.orientations!r}")
        if not (isinstance(self.curvatures, int) and self.curvatures >= 2):
            raise DiscoverError(f"sweep: curvatures must be an int >= 2 (line to the largest), got {self.curvatures!r}")
        for name in ("length", "width", "spot_size"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise DiscoverError(f"sweep: {name} must be a positive number of px, got {v!r}")
        if not (isinstance(self.size, int) and self.size >= 16):
            raise DiscoverError(f"sweep: size must be an int >= 16 px, got {self.size!r}")
        ring = 2 * math.pi / self.length
        if self.max_curvature is not None and not (isinstance(self.max_curvature, (int, float))
                                                   and 0 < self.max_curvature <= ring * (1 + 1e-9)):
            raise DiscoverError(f"sweep: max_curvature must be in (0, {ring:.4g}] 1/px (2 pi / length, a ring), "
                                f"got {self.max_curvature!r}")
        turns = tuple(self.angle_turns)
        if not turns or not all(isinstance(t, (int, float)) and 0 < t < 180 for t in turns):
            raise DiscoverError(f"sweep: angle_turns must be degrees in (0, 180), got {self.angle_turns!r}")
        if not (isinstance(self.positions, int) and 1 <= self.positions <= 64
                and math.isqrt(self.positions) ** 2 == self.positions):
            raise DiscoverError(f"sweep: positions must be a square number (an n x n grid): 1, 4, 9, 16, ..., 64; "
                                f"got {self.positions!r}")
        if not (len(self.offset) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in self.offset)):
            raise DiscoverError(f"sweep: offset must be two finite numbers (dx, dy) px, got {self.offset!r}")
        if self.read_unit not in READ_UNITS:
            raise DiscoverError(f"sweep: read_unit must be one of {', '.join(READ_UNITS)}, got {self.read_unit!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise DiscoverError(f"sweep: batch_size must be an int >= 1, got {self.batch_size!r}")

    @property
    def top_curvature(self) -> float:
        """The largest swept curvature (1/px): ``max_curvature`` or ``pi / length``."""
        return float(self.max_curvature) if self.max_curvature is not None else math.pi / self.length

    def orientation_values(self) -> np.ndarray:
        return np.arange(self.orientations) * (360.0 / self.orientations)

    def curvature_values(self) -> np.ndarray:
        return np.linspace(0.0, self.top_curvature, self.curvatures)

    def angle_curvature_values(self) -> np.ndarray:
        """Curvatures (1/px) of the arcs whose end tangents the angle arms follow: ``turn / length``."""
        return np.deg2rad(np.asarray(self.angle_turns, dtype=np.float64)) / self.length

    def position_offsets(self, stride: float) -> np.ndarray:
        """``(positions, 2)`` offsets ``(dx, dy)`` px from the receptive-field centre, ``offset`` added.

        An ``n`` x ``n`` grid (``positions = n**2``) centred in the ``stride`` x ``stride``
        cell: offsets ``((i + 0.5) / n - 0.5) * stride``, so 1 is the centre and 4 the
        quarter points ``(+-stride/4, +-stride/4)``.
        """
        n = math.isqrt(self.positions)
        g = ((np.arange(n) + 0.5) / n - 0.5) * float(stride)
        dy, dx = np.meshgrid(g, g, indexing="ij")
        return np.stack([dx.ravel(), dy.ravel()], axis=1) + np.asarray(self.offset, dtype=np.float64)

    def read_positions(self, stride: float) -> tuple[np.ndarray, np.ndarray]:
        """Where each position is read: ``(phases, units)``, both ``(positions, 2)`` in image axes (x, y down).

        ``units`` is the unit that reads the stimulus, in strides from the centre unit
        (integers), and ``phases`` the stimulus position in px from that unit's
        receptive-field centre. With ``read_unit="nearest"`` the phase of every offset
        ``d`` of :meth:`position_offsets` is ``d`` wrapped into ``[-stride/2, stride/2)``
        (the unit nearest the stimulus; a tie goes to the unit on the +x / +y side); with
        ``"centre"`` the unit is always the centre one and the phase is ``d``.
        """
        d = self.position_offsets(stride)
        if self.read_unit == "centre" or stride <= 0:
            return d, np.zeros_like(d)
        units = np.floor(d / stride + 0.5)
        phases = d - units * stride
        return phases, units

    def position_order(self, stride: float) -> np.ndarray:
        """Indices sorting the positions by phase (``phase_dy``, then ``phase_dx``): the ``position`` axis order.

        Grids whose phases are the same set (an offset by whole grid steps, read by the
        nearest unit) then give the same arrays in the same order, and the same
        bootstrap interval.
        """
        phases, _ = self.read_positions(stride)
        return np.lexsort((np.round(phases[:, 0], 9), np.round(phases[:, 1], 9)))


#: the sweep of ``curvebench demo`` (and the default of ``discover``): 72 x 10, 64 px arcs, 3 px stroke.
DEFAULT_SWEEP = Sweep()
DEMO_SWEEP = DEFAULT_SWEEP


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (hex) of every parameter and buffer of ``model`` (names, dtypes, shapes, bytes).

    Identifies trained weights and seeded random initialisations alike, so cached
    statistics can never be reused for another network.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cached_stats(model, layers: Sequence[str], *, images: str = "builtin", size: int = 224,
                 cache_dir: str | Path | None = "results/cache", progress: bool = False) -> xr.Dataset:
    """Dataset statistics of ``layers`` (see :func:`suites.running.dataset_stats.compute_stats`), cached.

    The cache file is ``<cache_dir>/stats-<model>-<fingerprint[:16]>-<images>-<size>px.nc``;
    a cached file lacking a requested layer is recomputed for all of them. ``cache_dir``
    None computes without caching.
    """
    from probes.images import image_source
    from suites.running.dataset_stats import compute_stats, save_stats

    source = image_source(images)
    fp = model_fingerprint(model)
    path = None
    wanted = list(dict.fromkeys(layers))
    if cache_dir is not None:
        tag = "builtin" if source.builtin else hashlib.sha256("\n".join(source.names).encode()).hexdigest()[:12]
        path = Path(cache_dir) / f"stats-{model.name}-{fp[:16]}-{tag}-{size}px.nc"
        if path.exists():
            stats = _read_stats(path)
            if stats is not None and stats.attrs.get("fingerprint") == fp:
                if all(f"{l}_std" in stats and (f"{l}_std_all" in stats or model.geometry is None) for l in wanted):
                    stats.attrs["cache_file"] = str(path)
                    return stats
                wanted = list(dict.fromkeys([*str(stats.attrs.get("layers", "")).split(), *wanted]))
    stats = compute_stats(model, source, wanted, size=size, progress=progress)
    stats.attrs["fingerprint"] = fp
    if path is not None:
        from suites.atomic import unstaged

        with unstaged():  # a cache, not an output of the command: replaced atomically, kept on later failure
            save_stats(stats, path, what="--cache")
        stats.attrs["cache_file"] = str(path)
    return stats


def _read_stats(path: Path) -> xr.Dataset | None:
    """A cached statistics file, or None if it cannot be read or is not one."""
    from suites.errors import ResultsFileError
    from suites.file_kinds import STATS_KIND
    from suites.results.files import open_file

    try:
        return open_file(path, STATS_KIND, option="cache")
    except (OSError, ResultsFileError):
        return None


def _render_batches(kind: str, params: dict[str, np.ndarray], common: dict, size: int, batch: int, device,
                    channels_last: bool = False):
    import stimuli

    n = len(next(iter(params.values())))
    for s in range(0, n, batch):
        kw = {k: torch.as_tensor(v[s:s + batch], dtype=torch.float32) for k, v in params.items()}
        if "position" in kw and kw["position"].ndim == 1:
            kw["position"] = kw["position"][None]
        x = stimuli.render(kind, size=size, device=device, **kw, **common)
        yield x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _probe_all(model, layers, images_iter, plan, units) -> dict[str, np.ndarray]:
    """``{layer: (B, C)}`` of the tap and, where the model has it, ``{layer_pre_relu: (B, C)}``."""
    out: dict[str, list[np.ndarray]] = {}
    for images in images_iter:
        acts = model.probe(images, layers, plan=plan, units=units, pre_relu=True, check_range=False)
        for key, v in acts.items():
            out.setdefault(key, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


MIN_MAP = 3


def check_layers(model, layers: Sequence[str], sweep: Sweep) -> list[str]:
    """The layers as a list, after checking names, stimulus size and map sizes (:class:`DiscoverError`)."""
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise DiscoverError(f"layers: name at least one layer; the model has {', '.join(model.layers)}")
    bad = [l for l in layers if l not in model.layers]
    if bad:
        raise DiscoverError(f"layers: unknown layer {bad[0]!r} for model {model.name!r}; allowed: {', '.join(model.layers)}")
    _check_maps(model, layers, sweep)
    return layers


def _check_maps(model, layers: Sequence[str], sweep: Sweep) -> None:
    """Raise :class:`DiscoverError` unless the stimulus fits the input and every map is >= 3 x 3 units."""
    extent = sweep.length / 2 + sweep.width
    if 2 * extent > sweep.size:
        raise DiscoverError(f"sweep: a {sweep.length:g} px arc ({sweep.width:g} px stroke) does not fit a "
                            f"{sweep.size} px input; use --size >= {math.ceil(2 * extent)} or a shorter --length")
    blank = torch.ones(1, 3, sweep.size, sweep.size)
    maps = model.probe(blank, list(layers), full_map=True, pre_relu=False)
    for l in layers:
        h, w = maps[l].shape[-2:]
        if min(h, w) < MIN_MAP:
            raise DiscoverError(f"layer {l!r}: its maps are {h}x{w} units at a {sweep.size} px input, too small for "
                                f"a centred stimulus (need >= {MIN_MAP}x{MIN_MAP}); use a shallower layer or a larger --size")


def _where(model, layers: Sequence[str], sweep: Sweep):
    """(input size, receptive-field centre (x, y), plan or None, units or None, description, stride px).

    The stride is that of the deepest layer (largest), from the model's geometry (analytic
    or measured); 1 px for a model without one.
    """
    if model.geometry is not None:
        plan = model.input_plan(list(layers), sweep.size)
        desc = (f"exact receptive-field crop {plan.size} px of a {plan.full_size} px input"
                if plan.exact and plan.size < plan.full_size else f"full {plan.size} px input")
        stride = max(float(model.receptive_field(l, sweep.size).stride) for l in layers)
        return plan.size, plan.position, plan, None, desc, stride
    stride = 1.0
    if getattr(model, "measure_geometry", False):
        stride = max(float(model.receptive_field(l, sweep.size).stride) for l in layers)
    return (sweep.size, (sweep.size / 2, sweep.size / 2), None, None,
            f"full {sweep.size} px input, unit nearest the middle of each map", stride)


class _Prober:
    """Renders stimuli at one position and reads the probed units (post and pre-ReLU) of every layer."""

    def __init__(self, model, layers, sweep: Sweep, where, bar) -> None:
        self.model, self.layers, self.sweep, self.bar = model, list(layers), sweep, bar
        self.size, _, self.plan, self.units, _, _ = where

    def run(self, kind: str, params: dict[str, np.ndarray], **common) -> dict[str, np.ndarray]:
        """``{key: (B, C)}`` for the stimuli ``params`` (arrays of equal length) of ``kind``."""
        common = {"length": float(self.sweep.length), "width": float(self.sweep.width), **common}

        def batches():
            for x in _render_batches(kind, params, common, self.size, self.sweep.batch_size, self.model.device,
                                     self.sweep.channels_last):
                self.bar.update(x.shape[0])
                yield x

        return _probe_all(self.model, self.layers, batches(), self.plan, self.units)


def _measure_at(pr: _Prober, pos: tuple[float, float]) -> dict[str, dict[str, np.ndarray]]:
    """Every stimulus of the sweep with its path midpoint (the ring and dot: their centre) at ``pos``.

    Returns ``{"curve": {key: (P, K, O, C)}, "angle": {key: (T, O, C)}, "ray": {key: (O, C)},
    "spot": {key: (2, C)}}``, ``key`` a layer or ``<layer>_pre_relu``.
    """
    sw = pr.sweep
    o, k, ka = sw.orientation_values(), sw.curvature_values(), sw.angle_curvature_values()
    grid_o, grid_k = np.meshgrid(o, k)
    agrid_o, agrid_k = np.meshgrid(o, ka)
    fg, bg = _COLOURS["black_on_white"]
    out: dict[str, dict[str, np.ndarray]] = {}
    curve = [pr.run("curve", {"orientation": grid_o.ravel(), "curvature": grid_k.ravel()}, position=pos,
                    fg=_COLOURS[p][0], bg=_COLOURS[p][1]) for p in POLARITIES]
    out["curve"] = {key: np.stack([c[key].reshape(k.size, o.size, -1) for c in curve]) for key in curve[0]}
    ang = pr.run("angle", {"orientation": agrid_o.ravel(), "curvature": agrid_k.ravel()}, position=pos, fg=fg, bg=bg)
    out["angle"] = {key: v.reshape(ka.size, o.size, -1) for key, v in ang.items()}
    # rays: a straight line of length L/2 from the centre outward in direction phi
    phi = np.deg2rad(o)
    ray_pos = np.stack([pos[0] + sw.length / 4 * np.cos(phi), pos[1] - sw.length / 4 * np.sin(phi)], axis=1)
    out["ray"] = pr.run("line", {"orientation": o + 90.0, "position": ray_pos}, length=float(sw.length) / 2,
                        fg=fg, bg=bg)
    # spots: a square dot of side spot_size and a closed ring of circumference L, both centred on pos
    r = sw.length / (2 * math.pi)
    dot = pr.run("line", {"orientation": np.zeros(1), "position": np.array([pos])}, length=float(sw.spot_size),
                 width=float(sw.spot_size), fg=fg, bg=bg)
    ring = pr.run("curve", {"orientation": np.zeros(1), "curvature": np.array([1 / r]),
                            "position": np.array([[pos[0] - r, pos[1]]])}, fg=fg, bg=bg)
    out["spot"] = {key: np.concatenate([dot[key], ring[key]]) for key in dot}
    return out


def _activation(post: np.ndarray, pre: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The activation the test uses, the clipped mask (or None) and its description.

    A tap that clips (ReLU6: ``post == min(max(pre, 0), cap)`` with some ``pre > cap``) is
    measured before the clip, ``max(pre, 0)``, whose std the statistics store; any other
    tap as it is.
    """
    if pre is None:
        return post, None, "the tap's value (no pre-ReLU tap)"
    relu = np.maximum(pre, 0.0)
    tol = 1e-4 * max(1.0, float(np.abs(relu).max(initial=0.0)))
    if np.allclose(post, relu, atol=tol, rtol=0):
        return post, None, "post-ReLU"
    cap = float(post.max(initial=0.0))
    if np.allclose(post, np.minimum(relu, cap), atol=tol, rtol=0):
        return relu.astype(np.float32), relu > cap + tol, f"pre-clip max(pre, 0) (the tap clips at {cap:g})"
    return post, None, "the tap's value (not a function of its pre-ReLU value alone)"


def measure(model, layers: Sequence[str], sweep: Sweep = DEFAULT_SWEEP, *, progress: bool = False) -> xr.Dataset:
    """Raw responses of ``layers`` to the curve sweep, the controls and the blanks, at every position.

    Returns the dataset of the module docstring without ``<L>_mean``/``<L>_std`` (see
    :func:`discover_responses`). Raises :class:`DiscoverError` when a layer's units
    cannot see the whole stimulus (receptive field smaller than the arc, or a map
    smaller than one unit).
    """
    from tqdm.auto import tqdm

    layers = check_layers(model, layers, sweep)
    where = _where(model, layers, sweep)
    size, centre, stride = where[0], where[1], where[5]
    order = sweep.position_order(stride)
    offsets = sweep.position_offsets(stride)[order]
    phases, units = (a[order] for a in sweep.read_positions(stride))
    if sweep.channels_last:
        model.net.to(memory_format=torch.channels_last)
    per_pos = sweep.orientations * (2 * sweep.curvatures + len(sweep.angle_turns) + 1) + 2
    bar = tqdm(total=len(offsets) * per_pos + 2, desc=f"discover {model.name}", unit="stim", disable=not progress)
    pr = _Prober(model, layers, sweep, where, bar)
    # the unit `units` strides away reads the stimulus at `phases` from its centre; translation by whole
    # strides is exact (see _nearest_exact), so the centre unit reads the same stimulus drawn at the phase
    runs = [_measure_at(pr, (centre[0] + dx, centre[1] + dy)) for dx, dy in phases]
    blank_imgs = torch.stack([torch.tensor(_COLOURS[p][1], dtype=torch.float32).view(3, 1, 1).expand(3, size, size)
                              for p in POLARITIES]).to(model.device)
    blank = _probe_all(model, layers, [blank_imgs], where[2], where[3])
    bar.update(2)
    bar.close()
    ds = _responses_dataset(layers, sweep, runs, blank, offsets)
    ds = ds.assign_coords(phase_dx=(("position",), phases[:, 0]), phase_dy=(("position",), phases[:, 1]),
                          unit_dx=(("position",), units[:, 0].astype(np.int64)),
                          unit_dy=(("position",), units[:, 1].astype(np.int64)))
    for name, text in (("phase", "px from the receptive-field centre of the unit that reads the stimulus"),
                       ("unit", "the unit that reads the stimulus, in strides from the centre unit")):
        for axis in ("dx", "dy"):
            ds[f"{name}_{axis}"].attrs["long_name"] = text
    ds.attrs.update(_measure_attrs(model, layers, sweep, where, centre, offsets))
    ds.attrs["read_unit"] = _read_unit_text(model, layers, sweep, where, units)
    return ds


def _responses_dataset(layers, sweep: Sweep, runs: list[dict], blank: dict[str, np.ndarray],
                       offsets: np.ndarray) -> xr.Dataset:
    """The responses dataset (module docstring) from the per-position runs; pre-clip where a tap clips."""
    coords: dict = {"polarity": list(POLARITIES), "curvature": sweep.curvature_values(),
                    "orientation": sweep.orientation_values(), "angle_turn": np.asarray(sweep.angle_turns, float),
                    "spot": ["dot", "ring"], "position": np.arange(len(offsets)),
                    "position_dx": (("position",), offsets[:, 0]), "position_dy": (("position",), offsets[:, 1])}
    coords["angle_curvature"] = (("angle_turn",), sweep.angle_curvature_values())
    dims = {"curve": ("polarity", "curvature", "orientation"), "angle": ("angle_turn", "orientation"),
            "ray": ("orientation",), "spot": ("spot",)}
    data_vars: dict = {}
    for l in layers:
        c = f"{l}_channel"
        coords[c] = np.arange(blank[l].shape[-1])
        pre_key = f"{l}_pre_relu" if f"{l}_pre_relu" in blank else None
        post_all = {what: np.stack([r[what][l] for r in runs]) for what in dims}
        pre_all = {what: np.stack([r[what][pre_key] for r in runs]) for what in dims} if pre_key else {}
        note = "post-ReLU"
        for what, d in dims.items():
            act, clipped, note_w = _activation(post_all[what], pre_all.get(what))
            note = note_w if what == "curve" else note
            data_vars[f"{l}_{what}"] = (("position", *d, c), act.astype(np.float32))
            if what == "curve":
                frac = (np.zeros(act.shape[-1]) if clipped is None
                        else clipped.reshape(-1, act.shape[-1]).mean(axis=0))
                data_vars[f"{l}_clipped_fraction"] = ((c,), frac.astype(np.float64))
        b, bclip, _ = _activation(blank[l], blank.get(pre_key) if pre_key else None)
        data_vars[f"{l}_blank"] = (("polarity", c), b.astype(np.float32))
        coords[f"{l}_activation"] = note
    data_vars["strip"] = (("strip_y", "strip_x", "rgb"), _strip(sweep))
    acts = {l: str(coords.pop(f"{l}_activation")) for l in layers}
    ds = xr.Dataset(data_vars, coords=coords)
    for l in layers:
        ds[f"{l}_curve"].attrs["activation"] = acts[l]
    ds.attrs["activations"] = "; ".join(f"{l}: {a}" for l, a in acts.items())
    return ds


def _nearest_exact(model, layers: Sequence[str], where, units: np.ndarray) -> bool | None:
    """Are the units read (``units`` strides from the centre unit) padding-free on the full input, like the centre one?

    Then a stimulus moved by whole strides and read by the neighbouring unit gives
    exactly the centre unit's response to the unmoved stimulus (the convolutions see
    the same pixels, translated). None when the model has no analytic geometry to check.
    """
    plan, stride = where[2], where[5]
    geometry = getattr(model, "geometry", None)
    if plan is None or geometry is None:
        return None
    if not plan.exact:  # the centre unit itself reads padding: its neighbours read it differently
        return False
    from probes.receptive import padding_free_units

    for layer in layers:
        rf = plan.receptive_fields.get(layer) or model.receptive_field(layer, plan.size)
        free = set(padding_free_units(geometry, layer, plan.full_size))
        row, col = plan.full_units[layer]
        for ux, uy in units:
            dr, dc = uy * stride / rf.stride, ux * stride / rf.stride
            if not (float(dr).is_integer() and float(dc).is_integer()) or {int(row + dr), int(col + dc)} - free:
                return False
    return True


def _read_unit_text(model, layers, sweep: Sweep, where, units: np.ndarray) -> str:
    if sweep.read_unit == "centre":
        return "centre: every stimulus is read at the unit centred on the receptive-field centre"
    text = ("nearest: each stimulus is read by the channel's unit whose receptive-field centre is nearest it; "
            "drawn at its phase (offset wrapped into the stride cell) and read at the centre unit")
    if not np.any(units):
        return text + " (every position lies in the centre unit's stride cell)"
    exact = _nearest_exact(model, layers, where, units)
    return text + {True: ", exact: every unit read is padding-free, so translation by whole strides is exact",
                   False: ", approximate: some unit read touches the input's padding",
                   None: ", exact for a translation-equivariant layer away from the border (no geometry to check)"}[exact]


def _measure_attrs(model, layers, sweep: Sweep, where, centre, offsets: np.ndarray) -> dict:
    meta = model.meta
    size, stride = where[0], where[5]
    return {
        "file_kind": RESPONSES_KIND,
        "model": str(meta.get("model", model.name)),
        "weights": str(meta.get("weights") or (RANDOM_TEXT if meta.get("random_weights") else "")),
        "weights_sha256": str(meta.get("weights_sha256") or ""),
        "random_weights": int(bool(meta.get("random_weights"))),
        "layers": " ".join(layers),
        "sweep": str(asdict(sweep)),
        "length": float(sweep.length), "width": float(sweep.width), "size": int(sweep.size),
        "probe_input": where[4],
        "stimulus_position": f"receptive-field centre ({centre[0]:g}, {centre[1]:g}) px on the {size} px input",
        "positions": (f"{len(offsets)} positions, an n x n grid over the {stride:g} px stride cell of the deepest "
                      f"layer, offset {sweep.offset[0]:g},{sweep.offset[1]:g} px, read by the {sweep.read_unit} unit; "
                      f"(dx, dy) px from the centre, image axes (y down): "
                      + " ".join(f"({dx:g},{dy:g})" for dx, dy in offsets)),
        "stride": float(stride),
        "activation": "at the unit that reads each stimulus (see 'read_unit'); post-ReLU, or before the clip "
                      "(max(pre, 0)) where the tap clips (ReLU6): see 'activations'",
        "orientation_convention": "degrees counter-clockwise on screen toward the side the arc opens (0 = +x, 90 = up); "
                                  "rays: the direction the ray leaves the centre",
        "controls": "angle: arms along the end tangents of the arc turning by angle_turn degrees (rounding 0); "
                    "ray: a straight line of length L/2 ending at the centre; spot: a square dot of side "
                    f"{sweep.spot_size:g} px and a closed ring of circumference L centred on the position; "
                    "all black on white",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _strip(sweep: Sweep, columns: int = 24, rows: int = 3, tile: int = 28) -> np.ndarray:
    """``(rows * tile, columns * tile, 3)`` uint8: curves across orientation (columns) and curvature (rows)."""
    import stimuli
    import torch.nn.functional as F

    o = (np.arange(columns) + 0.5) * 360.0 / columns
    k = np.linspace(0.0, sweep.top_curvature, rows)
    go, gk = np.meshgrid(o, k)
    px = int(min(256, max(32, round(1.3 * sweep.length))))
    with torch.no_grad():
        img = stimuli.render("curve", orientation=torch.as_tensor(go.ravel(), dtype=torch.float32),
                             curvature=torch.as_tensor(gk.ravel(), dtype=torch.float32),
                             length=float(sweep.length), width=float(sweep.width), size=px)
        img = F.interpolate(img, size=(tile, tile), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    img[:, :, :1, :] = 1.0
    img[:, :, :, :1] = 1.0
    arr = img.permute(0, 2, 3, 1).numpy().reshape(rows, columns, tile, tile, 3).transpose(0, 2, 1, 3, 4)
    return (arr.reshape(rows * tile, columns * tile, 3) * 255).round().astype(np.uint8)


def discover_responses(
    model,
    layers: Sequence[str],
    sweep: Sweep = DEFAULT_SWEEP,
    *,
    images: str = "builtin",
    stats: xr.Dataset | None = None,
    cache_dir: str | Path | None = "results/cache",
    progress: bool = False,
    sigma: SigmaDefinition = DEFAULT_SIGMA,
) -> xr.Dataset:
    """:func:`measure` plus per-channel dataset statistics (``<L>_mean``, ``<L>_std``) of ``sigma``'s positions.

    Args:
        model: a ``probes`` model (``probes.load_model(...)``).
        layers: tap names.
        sweep: the stimuli.
        images: ``"builtin"`` or a folder, for the statistics (ignored if ``stats`` given).
        stats: precomputed statistics (``curvebench stats``) for the same network.
        cache_dir: where computed statistics are cached (None: no cache).
        sigma: which baseline (dataset mean or blank) and which std (padding-free or all
            positions) the test's sigma uses (:mod:`suites.analysis.sigma`); stored in the
            attributes ``sigma``, ``sigma_baseline``, ``sigma_positions``.

    Example (a notebook)::

        import probes
        from suites.discovery.responses import discover_responses, Sweep
        from suites.analysis.curve_family import classify_all, summary
        model = probes.load_model("groundtruth")
        resp = discover_responses(model, ["curves", "edges"], Sweep(orientations=36, curvatures=8, length=32, width=2))
        family = classify_all(resp)           # one row per channel, with the test's numbers and flags
    """
    layers = check_layers(model, layers, sweep)
    fp = model_fingerprint(model)
    if stats is None:
        stats = cached_stats(model, layers, images=images, size=sweep.size, cache_dir=cache_dir, progress=progress)
    else:
        sha = str(model.meta.get("weights_sha256") or "")
        s_sha = str(stats.attrs.get("weights_sha256") or "")
        if stats.attrs.get("model") not in (None, model.name) or (sha and s_sha and sha != s_sha):
            raise DiscoverError(f"stats: computed for model {stats.attrs.get('model')!r} weights {s_sha[:12]!r}, "
                                f"not for {model.name!r} weights {sha[:12]!r}")
    missing = [l for l in layers if f"{l}_std" not in stats]
    if missing:
        raise DiscoverError(f"stats: no statistics for layer {missing[0]!r}")
    ds = measure(model, layers, sweep, progress=progress)
    used = set()
    for l in dict.fromkeys(layers):
        c = f"{l}_channel"
        # a tap without a ReLU (a linear block output): the statistics of the value itself
        key = l if f"{l}_pre_relu" in model.taps else f"{l}_pre_relu"
        mean, std, pos = reference_moments(stats, key, sigma.positions)
        used.add(pos)
        ds[f"{l}_mean"] = ((c,), np.asarray(mean.values, dtype=np.float64))
        ds[f"{l}_std"] = ((c,), np.asarray(std.values, dtype=np.float64))
        ds[f"{l}_std"].attrs["statistics_of"] = ("post-ReLU activation (max(pre, 0) for a clipping tap)" if key == l
                                                 else "the tap's own (linear) value: it has no ReLU")
        ds[f"{l}_std"].attrs["positions"] = pos
    pos = used.pop() if len(used) == 1 else sigma.positions
    ds.attrs["sigma_baseline"] = sigma.baseline
    ds.attrs["sigma_positions"] = pos
    ds.attrs["sigma"] = sigma.describe(pos)
    ds.attrs["statistics"] = stats_label(stats, pos)
    ds.attrs["statistics_proxy"] = int(stats.attrs.get("proxy", 0))
    ds.attrs["fingerprint"] = fp
    if "cache_file" in stats.attrs:
        ds.attrs["statistics_file"] = str(stats.attrs["cache_file"])
    return ds


def load_network(model: str, weights: str | Path | None, *, seed: int = 0, device: str = "cpu"):
    """``probes.load_model`` with the random initialisation seeded (``weights="random"``): the control is reproducible."""
    import probes

    if WeightsSpec.parse(weights).is_random:
        torch.manual_seed(seed)
    return probes.load_model(model, weights=weights, device=device)
