"""Sigma normalisation: activations in standard deviations of a reference distribution.

``sigma = (activation - mean) / std`` per channel, where mean and std come from
either

- a **dataset statistics file** written by ``curvebench stats`` (the article's unit:
  statistics over the spatial positions of natural images - all of them by default,
  or only the padding-free ones, ``--positions valid``; the label says which), or
- the **sweep's own statistics** (mean and std over the stimuli of the run itself),
  an explicitly labelled fallback used when no statistics file is given.

Every function here returns the label of the statistics it used; figures and tables
print it.

Convention:
    - Post-ReLU sigma uses the post-ReLU mean/std, pre-ReLU sigma the pre-ReLU ones.
    - Channels whose reference std is 0 (never varied) give NaN, never inf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .arrays import STIMULUS_DIM, channel_dim, layer_array

from suites.file_kinds import STATS_KIND

SWEEP_LABEL = "sweep's own statistics (no dataset statistics given)"


@dataclass(frozen=True)
class ChannelStats:
    """Mean and std per channel (1-D float64 arrays) and a human-readable label."""

    mean: np.ndarray
    std: np.ndarray
    label: str


def model_id(attrs: dict) -> tuple[str | None, str | None]:
    """``(model name, weights sha256)`` from a results or stats file's attributes (None if absent)."""
    model = attrs.get("model") or attrs.get("model_name")
    sha = attrs.get("weights_sha256") or attrs.get("weights_hash")
    return (str(model) if model else None, str(sha) if sha else None)


#: how each ``positions`` value of a statistics file is named in labels and figure titles
POSITIONS_LABEL = {"all": "all positions", "valid": "padding-free positions only"}


def stats_positions(stats: xr.Dataset) -> str:
    """``"valid"`` or ``"all"``: which spatial positions a statistics file counts (older files: all)."""
    return "valid" if stats.attrs.get("positions") == "valid" else "all"


def stats_label(stats: xr.Dataset) -> str:
    """One-line description of a statistics dataset, e.g. for figure titles; names the positions counted."""
    source = stats.attrs.get("source", "unknown images")
    n = stats.attrs.get("n_images", "?")
    proxy = " - small proxy, not ImageNet" if int(stats.attrs.get("proxy", 0)) and "proxy" not in str(source) else ""
    return f"dataset statistics: {source}, {n} images, {POSITIONS_LABEL[stats_positions(stats)]}{proxy}"


def load_stats(path: str | Path) -> xr.Dataset:
    """Open a statistics file written by :func:`suites.running.dataset_stats.save_stats`."""
    from suites.data_files import check_data_file

    path = check_data_file(path, "statistics file")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            stats = ds.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"stats: {path} is not a curvebench statistics file (not readable as netCDF/HDF5: "
                         f"{type(exc).__name__})") from None
    if stats.attrs.get("kind") != STATS_KIND:
        raise ValueError(f"stats: {path} is not a curvebench statistics file (attribute kind={stats.attrs.get('kind')!r})")
    return stats


def check_compatible(results: xr.Dataset, stats: xr.Dataset) -> None:
    """Raise ``ValueError`` if the statistics were computed for another model or weights."""
    r_model, r_sha = model_id(results.attrs)
    s_model, s_sha = model_id(stats.attrs)
    if r_model and s_model and r_model != s_model:
        raise ValueError(f"stats: computed for model {s_model!r}, but the results are from model {r_model!r}")
    if (r_sha or s_sha) and r_sha != s_sha:
        def describe(sha: str | None) -> str:
            return f"weights sha256 {sha[:12]}..." if sha else "no weights file (random or built-in weights)"

        raise ValueError(f"stats: computed for {describe(s_sha)}, but the results used {describe(r_sha)}")


def channel_stats(
    results: xr.Dataset, layer: str, stats: xr.Dataset | None = None, *, pre_relu: bool = False
) -> ChannelStats:
    """Per-channel mean/std for ``layer``, aligned to the channels present in ``results``.

    Without ``stats`` the sweep's own statistics are used (labelled :data:`SWEEP_LABEL`).
    """
    values = layer_array(results, layer, pre_relu)
    cdim = channel_dim(results, layer)
    if stats is None:
        data = np.asarray(values.transpose(STIMULUS_DIM, cdim).values, dtype=np.float64)
        return ChannelStats(np.nanmean(data, axis=0), np.nanstd(data, axis=0), SWEEP_LABEL)
    check_compatible(results, stats)
    name = f"{layer}_pre_relu" if pre_relu else layer
    if f"{name}_mean" not in stats or f"{name}_std" not in stats:
        have = sorted({str(v)[: -len("_mean")] for v in stats.data_vars if str(v).endswith("_mean")})
        raise ValueError(f"stats: no statistics for {name!r}; the file has {have}")
    mean, std = stats[f"{name}_mean"], stats[f"{name}_std"]
    sdim = mean.dims[0]
    wanted = values.coords[cdim].values if cdim in values.coords else np.arange(values.sizes[cdim])
    have = stats.coords[sdim].values if sdim in stats.coords else np.arange(mean.size)
    index = {int(c): i for i, c in enumerate(have)}
    missing = [int(c) for c in wanted if int(c) not in index]
    if missing:
        raise ValueError(f"stats: channels {missing[:8]} of layer {layer!r} are not in the statistics file")
    take = np.array([index[int(c)] for c in wanted])
    return ChannelStats(
        np.asarray(mean.values, dtype=np.float64)[take], np.asarray(std.values, dtype=np.float64)[take], stats_label(stats)
    )


def to_sigma(
    results: xr.Dataset, layer: str, stats: xr.Dataset | None = None, *, pre_relu: bool = False
) -> xr.DataArray:
    """Activations of ``layer`` in sigma, dims ``(stimulus, <layer>_channel)``.

    The returned array's ``attrs["statistics"]`` names the statistics used.
    """
    values = layer_array(results, layer, pre_relu)
    cdim = channel_dim(results, layer)
    cs = channel_stats(results, layer, stats, pre_relu=pre_relu)
    std = np.where(cs.std > 0, cs.std, np.nan)
    data = (np.asarray(values.transpose(STIMULUS_DIM, cdim).values, dtype=np.float64) - cs.mean) / std
    out = xr.DataArray(data, dims=(STIMULUS_DIM, cdim), coords=values.transpose(STIMULUS_DIM, cdim).coords)
    out.attrs.update(statistics=cs.label, units="sigma", activation="pre-ReLU" if pre_relu else "post-ReLU")
    return out
