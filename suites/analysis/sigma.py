"""Sigma normalisation: activations in standard deviations of a reference distribution.

**One definition** (:data:`DEFAULT_SIGMA`, used by ``discover``, ``plot``, ``tuning`` and
``report`` and stated in their outputs): ``sigma = (activation - baseline) / std`` per
channel with

- ``baseline`` = the channel's **dataset mean** (``"mean"``, the default) or its
  response to the **blank** image of the stimulus's background (``"blank"``; only where
  the run measured blanks: ``discover``);
- ``std`` over the **padding-free** positions of natural images (``"valid"``, the
  default: the receptive field entirely inside the image, like the centre unit every
  sweep probes) or over **all** positions (``"all"``, including units whose receptive
  field hangs over the zero padding). ``curvebench stats`` stores both; a statistics
  file without the requested set falls back to the one it has and the label says so.

The mean and std come from either

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
SIGMA_BASELINES = ("mean", "blank")
SIGMA_POSITIONS = ("valid", "all")


@dataclass(frozen=True)
class SigmaDefinition:
    """Which baseline and which std make a sigma (module docstring); ``describe()`` is stated in outputs."""

    baseline: str = "mean"
    positions: str = "valid"

    def __post_init__(self) -> None:
        if self.baseline not in SIGMA_BASELINES:
            raise ValueError(f"sigma baseline: {self.baseline!r} is not one of {', '.join(SIGMA_BASELINES)}")
        if self.positions not in SIGMA_POSITIONS:
            raise ValueError(f"sigma positions: {self.positions!r} is not one of {', '.join(SIGMA_POSITIONS)}")

    def describe(self, used_positions: str | None = None) -> str:
        base = "the dataset mean" if self.baseline == "mean" else "the blank image of the same background"
        pos = used_positions or self.positions
        text = f"sigma = (activation - {base}) / std over {POSITIONS_LABEL[pos]} of natural images"
        if used_positions and used_positions != self.positions:
            text += f" (asked for {POSITIONS_LABEL[self.positions]}; the statistics file has only {POSITIONS_LABEL[pos]})"
        return text


#: the one sigma of every command (``--sigma-baseline``/``--sigma-positions`` select the other)
DEFAULT_SIGMA = SigmaDefinition()


def reference_moments(stats: xr.Dataset, name: str, positions: str = DEFAULT_SIGMA.positions
                      ) -> tuple[xr.DataArray, xr.DataArray, str]:
    """``(mean, std, positions used)`` of tap ``name`` (``<layer>`` or ``<layer>_pre_relu``) from a statistics file.

    Prefers ``<name>_{mean,std}_<positions>`` (files of ``curvebench stats`` since both sets
    are stored); otherwise ``<name>_{mean,std}``, whose positions the file's attribute names.
    """
    if f"{name}_std_{positions}" in stats and f"{name}_mean_{positions}" in stats:
        return stats[f"{name}_mean_{positions}"], stats[f"{name}_std_{positions}"], positions
    if f"{name}_mean" not in stats or f"{name}_std" not in stats:
        have = sorted({str(v)[: -len("_mean")] for v in stats.data_vars if str(v).endswith("_mean")})
        raise ValueError(f"stats: no statistics for {name!r}; the file has {have}")
    return stats[f"{name}_mean"], stats[f"{name}_std"], stats_positions(stats)


@dataclass(frozen=True)
class ChannelStats:
    """Mean and std per channel (1-D float64 arrays) and a human-readable label."""

    mean: np.ndarray
    std: np.ndarray
    label: str


def check_compatible(results: xr.Dataset, stats: xr.Dataset) -> None:
    """Raise ``ValueError`` if the statistics were computed for another model or weights than ``results``."""
    check_same_model(stats.attrs, results.attrs, what="stats: computed", other="the results file")


def choose_positions(stats: xr.Dataset, positions: str) -> xr.Dataset:
    """``stats`` (a copy of its attributes) whose sigma uses the std over ``positions`` (``--sigma-positions``)."""
    SigmaDefinition(positions=positions)  # validates
    out = stats.copy()
    out.attrs["sigma_positions"] = positions
    return out


def channel_stats(
    results: xr.Dataset, layer: str, stats: xr.Dataset | None = None, *, pre_relu: bool = False,
    sigma: SigmaDefinition | None = None,
) -> ChannelStats:
    """Per-channel mean/std for ``layer``, aligned to the channels present in ``results``.

    The std is over the positions ``sigma.positions`` names (default: the statistics'
    ``sigma_positions`` attribute set by :func:`choose_positions`, else padding-free; see
    :func:`reference_moments`). Without ``stats`` the sweep's own statistics are used
    (labelled :data:`SWEEP_LABEL`).
    """
    values = layer_array(results, layer, pre_relu)
    cdim = channel_dim(results, layer)
    if stats is None:
        data = np.asarray(values.transpose(STIMULUS_DIM, cdim).values, dtype=np.float64)
        data[~np.isfinite(data)] = np.nan  # inf activations (counted and stated by results.verify) are not statistics
        seen = np.isfinite(data).any(axis=0)  # channels without a value (no rows yet): NaN, without numpy warnings
        mean = np.full(data.shape[1], np.nan)
        std = np.full(data.shape[1], np.nan)
        mean[seen] = np.nanmean(data[:, seen], axis=0)
        std[seen] = np.nanstd(data[:, seen], axis=0)
        return ChannelStats(mean, std, SWEEP_LABEL)
    check_compatible(results, stats)
    if sigma is None:
        sigma = SigmaDefinition(positions=str(stats.attrs.get("sigma_positions", DEFAULT_SIGMA.positions)))
    name = f"{layer}_pre_relu" if pre_relu else layer
    mean, std, used = reference_moments(stats, name, sigma.positions)
    sdim = mean.dims[0]
    wanted = values.coords[cdim].values if cdim in values.coords else np.arange(values.sizes[cdim])
    have = stats.coords[sdim].values if sdim in stats.coords else np.arange(mean.size)
    index = {int(c): i for i, c in enumerate(have)}
    missing = [int(c) for c in wanted if int(c) not in index]
    if missing:
        raise ValueError(f"stats: channels {missing[:8]} of layer {layer!r} are not in the statistics file")
    take = np.array([index[int(c)] for c in wanted])
    return ChannelStats(np.asarray(mean.values, dtype=np.float64)[take], np.asarray(std.values, dtype=np.float64)[take],
                        f"{stats_label(stats, used)}; {sigma.describe(used)}")


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
