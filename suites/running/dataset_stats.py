"""``curvebench stats``: per-channel activation statistics over natural images.

For each requested layer and channel: mean and standard deviation of the post-ReLU
and the pre-ReLU activation over the spatial positions of every image - **all** of
them (the default) or only the **padding-free** ones (``positions="valid"``: units whose
receptive field lies entirely inside the image, as for the centre unit the sweeps
probe; :func:`probes.receptive.padding_free_units`) - the
fraction of positions that fire (pre-ReLU > 0), the pre-ReLU min/max, and a pre-ReLU
histogram (for the activation-distribution figure). Images are streamed in batches;
sums are merged in float64 (Chan et al.'s parallel mean/variance update, so no
catastrophic cancellation however many positions are seen).

The result is a small :class:`xarray.Dataset` saved as netCDF4/HDF5 (no pickle) whose
attributes say which model, weights (sha256), images and preprocessing it describes.

Convention:
    - Variables per layer ``L``: ``L_mean``, ``L_std`` (post-ReLU),
      ``L_pre_relu_mean``, ``L_pre_relu_std``, ``L_pre_relu_min``, ``L_pre_relu_max``,
      ``L_fraction_firing``, ``L_pre_relu_hist`` (counts per bin), with bin ``b`` of
      channel ``c`` covering ``[lo_c + b * w_c, lo_c + (b + 1) * w_c)`` where
      ``lo_c = L_pre_relu_hist_lo`` and ``w_c = (L_pre_relu_hist_hi - lo_c) / bins``;
      values outside are counted in ``L_pre_relu_hist_under`` / ``_over``.
    - Histogram range per channel: the first batch's [min, max] widened by half its
      span on each side.
    - std is the population std (divide by N).
    - Attribute ``positions``: ``"all"`` or ``"valid"``; ``positions_description`` says it in words.
    - **Both** position sets are always stored where the model has a receptive-field
      geometry: ``L_mean_all``, ``L_std_all``, ``L_pre_relu_mean_all``,
      ``L_pre_relu_std_all`` and the same with ``_valid`` (one pass over the images);
      ``L_mean``/``L_std`` are those of ``positions``. :mod:`suites.analysis.sigma` picks
      the set its definition names.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from probes.images import ImageSource, iter_batches
from suites.atomic import output_file
from suites.file_kinds import STATS_KIND
from suites.results.moments import merge_moments

DEFAULT_BINS = 200
#: which spatial positions of each map are counted (see the module docstring)
POSITIONS = {
    "all": "all spatial positions of each layer's map (SAME padding)",
    "valid": "padding-free positions only (receptive field entirely inside the image)",
}


class RunningChannelStats:
    """Streaming per-channel count/mean/M2 (float64), min/max, firing count and histogram."""

    def __init__(self, channels: int, bins: int = DEFAULT_BINS) -> None:
        self.channels, self.bins = channels, bins
        self.n = 0
        self.mean = {k: np.zeros(channels) for k in ("pre", "post")}
        self.m2 = {k: np.zeros(channels) for k in ("pre", "post")}
        self.lo = self.hi = None
        self.min = np.full(channels, np.inf)
        self.max = np.full(channels, -np.inf)
        self.firing = np.zeros(channels)
        self.hist = np.zeros((channels, bins + 2))  # [under, bins..., over]

    def update(self, pre: torch.Tensor) -> None:
        """Add a ``(B, C, h, w)`` (or ``(N, C)``) block of pre-ReLU values."""
        x = pre.detach().to(torch.float64)
        x = x.transpose(0, 1).reshape(self.channels, -1)  # (C, N)
        n = x.shape[1]
        if n == 0:
            return
        for key, v in (("pre", x), ("post", x.clamp_min(0))):
            bmean = v.mean(dim=1)
            bm2 = ((v - bmean[:, None]) ** 2).sum(dim=1)
            _, self.mean[key], self.m2[key] = merge_moments(self.n, self.mean[key], self.m2[key], n,
                                                            bmean.cpu().numpy(), bm2.cpu().numpy())
        self.min = np.minimum(self.min, x.min(dim=1).values.cpu().numpy())
        self.max = np.maximum(self.max, x.max(dim=1).values.cpu().numpy())
        self.firing += (x > 0).sum(dim=1).cpu().numpy()
        if self.lo is None:
            span = np.maximum(self.max - self.min, 1e-6)
            self.lo, self.hi = self.min - 0.5 * span, self.max + 0.5 * span
        lo = torch.as_tensor(self.lo, dtype=torch.float64, device=x.device)[:, None]
        width = torch.as_tensor((self.hi - self.lo) / self.bins, dtype=torch.float64, device=x.device)[:, None]
        idx = torch.floor((x - lo) / width).clamp(-1, self.bins).long() + 1
        idx = idx + torch.arange(self.channels, device=x.device)[:, None] * (self.bins + 2)
        counts = torch.bincount(idx.reshape(-1), minlength=self.channels * (self.bins + 2))
        self.hist += counts.reshape(self.channels, self.bins + 2).cpu().numpy()
        self.n += n

    def variables(self, layer: str) -> dict[str, tuple]:
        """Data variables for an :class:`xarray.Dataset` (dims ``<layer>_channel`` and ``<layer>_bin``)."""
        if self.n == 0:
            raise ValueError(f"stats: no activations seen for layer {layer!r}")
        c, b = f"{layer}_channel", f"{layer}_bin"
        return {
            f"{layer}_mean": ((c,), self.mean["post"]),
            f"{layer}_std": ((c,), np.sqrt(self.m2["post"] / self.n)),
            f"{layer}_pre_relu_mean": ((c,), self.mean["pre"]),
            f"{layer}_pre_relu_std": ((c,), np.sqrt(self.m2["pre"] / self.n)),
            f"{layer}_pre_relu_min": ((c,), self.min),
            f"{layer}_pre_relu_max": ((c,), self.max),
            f"{layer}_fraction_firing": ((c,), self.firing / self.n),
            f"{layer}_pre_relu_hist": ((c, b), self.hist[:, 1:-1]),
            f"{layer}_pre_relu_hist_lo": ((c,), self.lo),
            f"{layer}_pre_relu_hist_hi": ((c,), self.hi),
            f"{layer}_pre_relu_hist_under": ((c,), self.hist[:, 0]),
            f"{layer}_pre_relu_hist_over": ((c,), self.hist[:, -1]),
        }


def compute_stats(
    model,
    source: ImageSource,
    layers: Sequence[str],
    *,
    size: int = 224,
    batch_size: int = 8,
    bins: int = DEFAULT_BINS,
    progress: bool = True,
    positions: str = "all",
) -> xr.Dataset:
    """Per-channel statistics of ``layers`` of a :class:`probes` model over ``source``'s images.

    Args:
        model: from ``probes.load_model``.
        source: from :func:`probes.images.image_source`.
        layers: tap names of the model.
        size: images are resized (short side) and centre-cropped to ``size`` px.
        positions: ``"all"`` spatial positions of each map, or ``"valid"``: only units
            whose receptive field has no padding at this ``size`` (needs the model's
            receptive-field geometry).

    Raises:
        ValueError: unknown ``positions``; ``"valid"`` for a model without geometry or a
            layer with no padding-free unit at this size.
    """
    from tqdm.auto import tqdm

    if not layers:
        raise ValueError(f"layers: give at least one layer; the model has {model.layers}")
    bad = [l for l in layers if l not in model.layers]
    if bad:
        raise ValueError(f"layers: {bad} not in model {model.name!r}; allowed: {', '.join(model.layers)}")
    if positions not in POSITIONS:
        raise ValueError(f"positions: {positions!r} is not one of {', '.join(POSITIONS)}")
    keep = _valid_indices(model, layers, size) if positions == "valid" else _maybe_valid(model, layers, size)
    running = {l: RunningChannelStats(model.num_channels(l), bins) for l in layers}
    other = {l: RunningChannelStats(model.num_channels(l), 1) for l in keep}  # the other positions' moments
    n_images = 0
    bar = tqdm(total=len(source), desc=f"stats {model.name}", unit="img", disable=not progress)
    with torch.no_grad():
        for names, images in iter_batches(source, size, batch_size):
            out = model.probe(images.to(model.device), list(layers), full_map=True)
            for l in layers:
                _update(running[l], other.get(l), out.get(f"{l}_pre_relu", out[l]), keep.get(l), positions)
            n_images += len(names)
            bar.update(len(names))
    bar.close()
    data_vars: dict = {}
    coords: dict = {}
    for l in layers:
        data_vars.update(running[l].variables(l))
        data_vars.update(_both_positions(l, positions, running[l], other.get(l)))
        coords[f"{l}_channel"] = np.arange(model.num_channels(l))
    meta = model.meta
    attrs = {
        "file_kind": STATS_KIND,
        "model": str(meta.get("model", model.name)),
        "weights": str(meta.get("weights") or ""),
        "weights_sha256": str(meta.get("weights_sha256") or ""),
        "input_transform": str(meta.get("input_transform", {}).get("description", "")),
        "source": source.label,
        "proxy": int(source.proxy),
        "n_images": n_images,
        "image_size": size,
        "preprocessing": f"RGB in [0, 1]; short side resized to {size} px (bilinear, antialiased), centre crop {size}x{size}",
        "positions": positions,
        "positions_description": POSITIONS[positions],
        "layers": " ".join(layers),
        "positions_per_layer": " ".join(f"{l}={running[l].n}" for l in layers),
        "stds": "<L>_std_all and <L>_std_valid (and _mean_, _pre_relu_): both position sets, where the model has "
                "a geometry; <L>_std is the one named by 'positions'",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _update(main: RunningChannelStats, other: RunningChannelStats | None, pre: torch.Tensor,
            keep: torch.Tensor | None, positions: str) -> None:
    """Add one batch's ``pre`` maps (a tap without a ReLU is its own "pre-ReLU" value) to both position sets."""
    if keep is None:
        main.update(pre)
        return
    idx = keep.to(pre.device)
    valid = pre.index_select(2, idx).index_select(3, idx)
    main.update(valid if positions == "valid" else pre)
    if other is not None:
        other.update(pre if positions == "valid" else valid)


def _maybe_valid(model, layers: Sequence[str], size: int) -> dict[str, torch.Tensor]:
    """The padding-free unit indices of the layers that have some (empty without a geometry)."""
    try:
        return _valid_indices(model, layers, size)
    except ValueError:
        return {}


def _both_positions(layer: str, positions: str, main: RunningChannelStats,
                    other: RunningChannelStats | None) -> dict[str, tuple]:
    """``<layer>_{mean,std,pre_relu_mean,pre_relu_std}_{all,valid}`` for the position sets measured."""
    sets = {positions: main}
    if other is not None:
        sets["all" if positions == "valid" else "valid"] = other
    c = f"{layer}_channel"
    out: dict[str, tuple] = {}
    for name, r in sets.items():
        if r.n == 0:
            continue
        out[f"{layer}_mean_{name}"] = ((c,), r.mean["post"])
        out[f"{layer}_std_{name}"] = ((c,), np.sqrt(r.m2["post"] / r.n))
        out[f"{layer}_pre_relu_mean_{name}"] = ((c,), r.mean["pre"])
        out[f"{layer}_pre_relu_std_{name}"] = ((c,), np.sqrt(r.m2["pre"] / r.n))
    return out


def _valid_indices(model, layers: Sequence[str], size: int) -> dict[str, torch.Tensor]:
    """Per layer, the padding-free unit indices along each axis (square inputs)."""
    from probes.receptive import padding_free_units, receptive_field

    if getattr(model, "geometry", None) is None:
        raise ValueError(f"positions='valid' needs the receptive-field geometry of the model; {model.name!r} has none "
                         "(use positions='all')")
    keep, empty = {}, []
    for l in layers:
        units = padding_free_units(model.geometry, l, size)
        if not units:
            empty.append(f"{l} (receptive field {receptive_field(model.geometry, l, size).size} px)")
        keep[l] = torch.as_tensor(units, dtype=torch.long)
    if empty:
        raise ValueError(f"positions='valid': at {size} px no unit of {', '.join(empty)} is free of padding; "
                         "use a larger --size, fewer layers, or positions 'all'")
    return keep


def default_stats_path(stats: xr.Dataset, folder: str | Path = "results") -> Path:
    """``<folder>/stats-<model>-<sha256[:12] | builtin-weights>-<images>-<size>px[-valid].nc``."""
    sha = str(stats.attrs.get("weights_sha256") or "")[:12] or "noweightsfile"
    src = "builtin" if int(stats.attrs.get("proxy", 0)) else re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(stats.attrs["source"]).removeprefix("folder ")).name)
    suffix = "-valid" if stats.attrs.get("positions") == "valid" else ""
    return Path(folder) / f"stats-{stats.attrs['model']}-{sha}-{src}-{stats.attrs['image_size']}px{suffix}.nc"


def save_stats(stats: xr.Dataset, path: str | Path, what: str = "--out") -> Path:
    """Write a statistics dataset (netCDF4/HDF5 via h5netcdf); ``what`` names ``path`` in errors (``--cache``)."""
    path = Path(path)
    with output_file(path, what) as tmp:
        stats.to_netcdf(tmp, engine="h5netcdf")
    return path
