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

import numpy as np
import xarray as xr

from .arrays import STIMULUS_DIM, channel_dim, layer_array

# STATS_KIND, model_id, stats_label, stats_positions, POSITIONS_LABEL: re-exported from
# suites.results.attributes, where a statistics file's attributes are read and named.
from suites.file_kinds import STATS_KIND
from suites.results.attributes import POSITIONS_LABEL, check_same_model, model_id, stats_label, stats_positions

SWEEP_LABEL = "sweep's own statistics (no dataset statistics given)"


@dataclass(frozen=True)
class ChannelStats:
    """Mean and std per channel (1-D float64 arrays) and a human-readable label."""

    mean: np.ndarray
    std: np.ndarray
    label: str


def check_compatible(results: xr.Dataset, stats: xr.Dataset) -> None:
    """Raise ``ValueError`` if the statistics were computed for another model or weights than ``results``."""
    check_same_model(stats.attrs, results.attrs, what="stats: computed", other="the results file")


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
