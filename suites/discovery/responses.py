"""Responses for ``curvebench discover``: curve sweeps, controls and sigma, per channel.

For a model and one or more tap layers this module renders, probes and returns

* the **curve sweep**: ``orientations`` x ``curvatures`` circular arcs (curvature 0, a
  straight line, to a closed ring), in both contrast polarities (black on white,
  white on black), midpoint on the probed units' common receptive-field centre;
* two **controls** in the black-on-white polarity: sharp **angles** matched to every
  non-zero curvature of the sweep (arms along the arc's end tangents: ``kind="angle"``,
  rounding 0) and **rays**, straight lines of half the arc length that end at the
  centre, one per direction (end-stop probe);
* the response to the **blank** image of each polarity;
* the per-channel **dataset statistics** (mean, std of the post-ReLU activation over
  all positions of natural images; ``builtin``: scikit-image's bundled photographs, a
  small proxy, not ImageNet), computed on the fly with
  :func:`suites.running.dataset_stats.compute_stats` and cached under ``cache_dir`` keyed by
  model, a hash of the model's parameters and buffers, images and size.

The selection test itself lives in :mod:`suites.analysis.curve_family` and works on the
returned dataset alone; :mod:`suites.discovery.pipeline` puts the two together (files, figures).

Convention:
    * orientation: degrees counter-clockwise on screen, toward the side the arc opens
      (0 = opens to +x, 90 = opens up), as :func:`stimuli.render`; a ray's orientation is
      the direction it leaves the centre in;
    * curvature in 1/px; lengths and widths in px; images RGB in [0, 1];
    * activations are post-ReLU (post-ReLU6 where the model's tap is), read at the
      unit whose receptive-field centre is the stimulus position (the exact receptive
      field crop of a ``size`` input when the model has a geometry).

Dataset layout (one dataset, all layers; ``<L>`` a layer name):
    ``<L>_curve`` (polarity, curvature, orientation, <L>_channel),
    ``<L>_angle`` (angle_curvature, orientation, <L>_channel),
    ``<L>_ray`` (orientation, <L>_channel), ``<L>_blank`` (polarity, <L>_channel),
    ``<L>_mean`` and ``<L>_std`` (<L>_channel), ``strip`` (strip_y, strip_x, rgb) uint8
    images of the sweep for figures; attributes carry model, weights, fingerprint,
    statistics label, sweep and probing geometry.
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

from suites.errors import SuitesError
from suites.file_kinds import DISCOVER_RESPONSES_KIND
from suites.results.attributes import stats_label

__all__ = ["Sweep", "DEMO_SWEEP", "DEFAULT_SWEEP", "measure", "model_fingerprint", "cached_stats", "discover_responses",
           "check_layers", "load_network", "DiscoverError", "POLARITIES", "RESPONSES_KIND"]

RESPONSES_KIND = DISCOVER_RESPONSES_KIND
POLARITIES = ("black_on_white", "white_on_black")
_COLOURS = {"black_on_white": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), "white_on_black": ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))}


class DiscoverError(SuitesError, ValueError):
    """Bad input to discover (layer maps too small for the stimulus, bad sweep values)."""


@dataclass(frozen=True)
class Sweep:
    """The stimuli of a discover run.

    Attributes:
        orientations: number of orientations, evenly spaced over 360 degrees.
        curvatures: number of curvatures from 0 (a straight line) to ``2 pi / length``
            (a closed ring), inclusive.
        length: arc length (px).
        width: stroke width (px).
        size: nominal square input size (px); with a model geometry the probe runs on
            the exact receptive-field crop of this size.
        angle_curvatures: how many of the non-zero curvatures (evenly picked, tightest
            included) the angle control uses.
        batch_size: stimuli per forward pass. 8 by default: on CPU, larger batches spend
            more time in the kernel (page faults of freshly mapped activation buffers)
            than they save (EfficientNet-Lite0 at the 154 px crop, one thread: 3.1 s of
            CPU per 256 stimuli at batch 8, 8.0 s at batch 64).
        channels_last: run the convolutions in channels-last memory format (same numbers
            to float32 rounding, about 2x faster on CPU).
    """

    orientations: int = 72
    curvatures: int = 10
    length: float = 64.0
    width: float = 3.0
    size: int = 224
    angle_curvatures: int = 3
    batch_size: int = 8
    channels_last: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.orientations, int) and self.orientations >= 4):
            raise DiscoverError(f"sweep: orientations must be an int >= 4, got {self.orientations!r}")
        if not (isinstance(self.curvatures, int) and self.curvatures >= 2):
            raise DiscoverError(f"sweep: curvatures must be an int >= 2 (line to ring), got {self.curvatures!r}")
        for name in ("length", "width"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise DiscoverError(f"sweep: {name} must be a positive number of px, got {v!r}")
        if not (isinstance(self.size, int) and self.size >= 16):
            raise DiscoverError(f"sweep: size must be an int >= 16 px, got {self.size!r}")
        if not (isinstance(self.angle_curvatures, int) and 1 <= self.angle_curvatures < self.curvatures):
            raise DiscoverError(f"sweep: angle_curvatures must be an int in 1..{self.curvatures - 1}, "
                                f"got {self.angle_curvatures!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise DiscoverError(f"sweep: batch_size must be an int >= 1, got {self.batch_size!r}")

    def orientation_values(self) -> np.ndarray:
        return np.arange(self.orientations) * (360.0 / self.orientations)

    def curvature_values(self) -> np.ndarray:
        return np.linspace(0.0, 2 * math.pi / self.length, self.curvatures)

    def angle_curvature_values(self) -> np.ndarray:
        k = self.curvature_values()
        idx = np.unique(np.round(np.linspace(1, self.curvatures - 1, self.angle_curvatures)).astype(int))
        return k[idx]


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
                if all(f"{l}_std" in stats for l in wanted):
                    stats.attrs["cache_file"] = str(path)
                    return stats
                wanted = list(dict.fromkeys([*str(stats.attrs.get("layers", "")).split(), *wanted]))
    stats = compute_stats(model, source, wanted, size=size, progress=progress)
    stats.attrs["fingerprint"] = fp
    if path is not None:
        from suites.atomic import unstaged

        with unstaged():  # a cache, not an output of the command: replaced atomically, kept on later failure
            save_stats(stats, path)
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
    out: dict[str, list[np.ndarray]] = {l: [] for l in layers}
    for images in images_iter:
        acts = model.probe(images, layers, plan=plan, units=units, pre_relu=False, check_range=False)
        for l in layers:
            out[l].append(acts[l].float().cpu().numpy())
    return {l: np.concatenate(v) for l, v in out.items()}


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
    """(input size, stimulus position (x, y), plan or None, units or None, description)."""
    if model.geometry is not None:
        plan = model.input_plan(list(layers), sweep.size)
        desc = (f"exact receptive-field crop {plan.size} px of a {plan.full_size} px input"
                if plan.exact and plan.size < plan.full_size else f"full {plan.size} px input")
        return plan.size, plan.position, plan, None, desc
    return sweep.size, (sweep.size / 2, sweep.size / 2), None, None, f"full {sweep.size} px input, middle unit of each map"


def measure(model, layers: Sequence[str], sweep: Sweep = DEFAULT_SWEEP, *, progress: bool = False) -> xr.Dataset:
    """Raw post-ReLU responses of ``layers`` to the curve sweep, the controls and the blanks.

    Returns the dataset of the module docstring without ``<L>_mean``/``<L>_std`` (see
    :func:`discover_responses`). Raises :class:`DiscoverError` when a layer's units
    cannot see the whole stimulus (receptive field smaller than the arc, or a map
    smaller than one unit).
    """
    from tqdm.auto import tqdm

    layers = check_layers(model, layers, sweep)
    size, pos, plan, units, where = _where(model, layers, sweep)
    device = model.device
    o = sweep.orientation_values()
    k = sweep.curvature_values()
    knz = sweep.angle_curvature_values()
    if sweep.channels_last:
        model.net.to(memory_format=torch.channels_last)
    grid_o, grid_k = np.meshgrid(o, k)          # (curvature, orientation)
    agrid_o, agrid_k = np.meshgrid(o, knz)
    common = dict(length=float(sweep.length), width=float(sweep.width), position=pos)
    n_total = 2 * grid_o.size + agrid_o.size + o.size + 2
    bar = tqdm(total=n_total, desc=f"discover {model.name}", unit="stim", disable=not progress)

    def batches(kind, params, **extra):
        for x in _render_batches(kind, params, {**common, **extra}, size, sweep.batch_size, device,
                                    sweep.channels_last):
            bar.update(x.shape[0])
            yield x

    curve = {}
    for pol in POLARITIES:
        fg, bg = _COLOURS[pol]
        r = _probe_all(model, layers, batches("curve", {"orientation": grid_o.ravel(), "curvature": grid_k.ravel()},
                                              fg=fg, bg=bg), plan, units)
        curve[pol] = {l: v.reshape(k.size, o.size, -1) for l, v in r.items()}
    fg, bg = _COLOURS["black_on_white"]
    angle = _probe_all(model, layers, batches("angle", {"orientation": agrid_o.ravel(), "curvature": agrid_k.ravel()},
                                              fg=fg, bg=bg), plan, units)
    # rays: a straight line of length L/2 from the centre outward in direction phi
    phi = np.deg2rad(o)
    ray_pos = np.stack([pos[0] + sweep.length / 4 * np.cos(phi), pos[1] - sweep.length / 4 * np.sin(phi)], axis=1)
    ray_common = dict(common, length=float(sweep.length) / 2)
    ray_common.pop("position")
    ray_iter = (x for x in _render_batches("line", {"orientation": o + 90.0, "position": ray_pos},
                                           {**ray_common, "fg": fg, "bg": bg}, size, sweep.batch_size, device,
                                           sweep.channels_last))
    ray = _probe_all(model, layers, ray_iter, plan, units)
    bar.update(o.size)
    blank_imgs = torch.stack([torch.tensor(_COLOURS[p][1], dtype=torch.float32).view(3, 1, 1).expand(3, size, size)
                              for p in POLARITIES]).to(device)
    blank = _probe_all(model, layers, [blank_imgs], plan, units)
    bar.update(2)
    bar.close()

    data_vars = {}
    coords: dict = {"polarity": list(POLARITIES), "curvature": k, "orientation": o, "angle_curvature": knz}
    for l in layers:
        c = f"{l}_channel"
        coords[c] = np.arange(curve[POLARITIES[0]][l].shape[-1])
        data_vars[f"{l}_curve"] = (("polarity", "curvature", "orientation", c),
                                   np.stack([curve[p][l] for p in POLARITIES]).astype(np.float32))
        data_vars[f"{l}_angle"] = (("angle_curvature", "orientation", c), angle[l].reshape(knz.size, o.size, -1).astype(np.float32))
        data_vars[f"{l}_ray"] = (("orientation", c), ray[l].astype(np.float32))
        data_vars[f"{l}_blank"] = (("polarity", c), blank[l].astype(np.float32))
    data_vars["strip"] = (("strip_y", "strip_x", "rgb"), _strip(sweep))
    meta = model.meta
    attrs = {
        "file_kind": RESPONSES_KIND,
        "model": str(meta.get("model", model.name)),
        "weights": str(meta.get("weights") or ("random" if meta.get("random_weights") else "")),
        "weights_sha256": str(meta.get("weights_sha256") or ""),
        "random_weights": int(bool(meta.get("random_weights"))),
        "layers": " ".join(layers),
        "sweep": str(asdict(sweep)),
        "length": float(sweep.length), "width": float(sweep.width), "size": int(sweep.size),
        "probe_input": where,
        "stimulus_position": f"({pos[0]:g}, {pos[1]:g}) px on the {size} px input",
        "activation": "post-ReLU (post-ReLU6 where the tap is) at the unit centred on the stimulus",
        "orientation_convention": "degrees counter-clockwise on screen toward the side the arc opens (0 = +x, 90 = up); "
                                  "rays: the direction the ray leaves the centre",
        "controls": "angle: arms along the matched arc's end tangents (rounding 0), black on white; "
                    "ray: a straight line of length L/2 ending at the centre, black on white",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _strip(sweep: Sweep, columns: int = 24, rows: int = 3, tile: int = 28) -> np.ndarray:
    """``(rows * tile, columns * tile, 3)`` uint8: curves across orientation (columns) and curvature (rows)."""
    import stimuli
    import torch.nn.functional as F

    o = (np.arange(columns) + 0.5) * 360.0 / columns
    k = np.linspace(0.0, 2 * math.pi / sweep.length, rows)
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
) -> xr.Dataset:
    """:func:`measure` plus per-channel dataset statistics (``<L>_mean``, ``<L>_std``).

    Args:
        model: a ``probes`` model (``probes.load_model(...)``).
        layers: tap names.
        sweep: the stimuli.
        images: ``"builtin"`` or a folder, for the statistics (ignored if ``stats`` given).
        stats: precomputed statistics (``curvebench stats``) for the same network.
        cache_dir: where computed statistics are cached (None: no cache).

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
    for l in dict.fromkeys(layers):
        c = f"{l}_channel"
        # a tap without a ReLU (a linear block output): the statistics of the value itself
        key = l if f"{l}_pre_relu" in model.taps else f"{l}_pre_relu"
        ds[f"{l}_mean"] = ((c,), np.asarray(stats[f"{key}_mean"].values, dtype=np.float64))
        ds[f"{l}_std"] = ((c,), np.asarray(stats[f"{key}_std"].values, dtype=np.float64))
        ds[f"{l}_std"].attrs["statistics_of"] = ("post-ReLU activation" if key == l
                                                 else "the tap's own (linear) value: it has no ReLU")
    ds.attrs["statistics"] = stats_label(stats)
    ds.attrs["statistics_proxy"] = int(stats.attrs.get("proxy", 0))
    ds.attrs["fingerprint"] = fp
    if "cache_file" in stats.attrs:
        ds.attrs["statistics_file"] = str(stats.attrs["cache_file"])
    return ds


def load_network(model: str, weights: str | Path | None, *, seed: int = 0, device: str = "cpu"):
    """``probes.load_model`` with the random initialisation seeded (``weights="random"``): the control is reproducible."""
    import probes

    if isinstance(weights, str) and weights == "random":
        torch.manual_seed(seed)
    return probes.load_model(model, weights=weights, device=device)
