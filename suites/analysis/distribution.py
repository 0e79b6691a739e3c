"""Activation distributions over natural images: histogram, exponential tails, firing fraction.

The article observes that both tails of a curve detector's pre-ReLU distribution are
close to exponential (straight lines on a log-density plot) and that 3b:379 fires at
about 11% of ImageNet positions. This module fits both tails from the histograms that
``curvebench stats`` stores and draws the figure.

Convention:
    - Density = count / (positions counted x bin width), so it integrates to 1 over the
      whole real line (values outside the histogram range are counted in N).
    - Tails: the bins right (left) of the histogram's mode whose density has fallen
      to at most 10% of the densest bin on that side (the mode bin itself excluded),
      with at least 3 counts; ``log density = a + b x``
      is fitted by least squares weighted by ``sqrt(count)``. The exponential's scale is
      ``1 / |b|`` in activation units (density falls by e every ``scale``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from suites.atomic import output_file


TAIL_FRACTION = 0.1


@dataclass(frozen=True)
class TailFit:
    """``log density = intercept + slope * x`` over ``[x0, x1]``; ``scale = 1/|slope|``."""

    intercept: float
    slope: float
    x0: float
    x1: float
    bins: int

    @property
    def scale(self) -> float:
        return 1.0 / abs(self.slope) if self.slope else math.inf


def histogram(stats: xr.Dataset, layer: str, channel: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(bin centres, density, total count)`` of one channel's pre-ReLU histogram."""
    name = f"{layer}_pre_relu_hist"
    if name not in stats:
        raise ValueError(f"distribution: no histogram for layer {layer!r} in the statistics (layers: {stats.attrs.get('layers')})")
    cdim = f"{layer}_channel"
    ids = [int(c) for c in stats.coords[cdim].values]
    if int(channel) not in ids:
        raise ValueError(f"distribution: channel {channel} not in layer {layer!r} (0..{max(ids)})")
    sel = {cdim: int(channel)}
    counts = np.asarray(stats[name].sel(sel).values, dtype=np.float64)
    lo = float(stats[f"{name}_lo"].sel(sel))
    hi = float(stats[f"{name}_hi"].sel(sel))
    total = counts.sum() + float(stats[f"{name}_under"].sel(sel)) + float(stats[f"{name}_over"].sel(sel))
    width = (hi - lo) / counts.size
    centres = lo + (np.arange(counts.size) + 0.5) * width
    return centres, counts / max(total * width, 1e-300), total


def fit_tails(centres: np.ndarray, density: np.ndarray, counts: np.ndarray) -> tuple[TailFit | None, TailFit | None]:
    """Exponential fits ``(left, right)`` of a histogram's tails (``None`` where fewer than 3 bins qualify)."""
    x = np.asarray(centres, dtype=np.float64)
    d = np.asarray(density, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    mode = x[int(np.argmax(d))]
    fits = []
    for side in (-1, 1):
        beyond = side * (x - mode) > 0
        if not beyond.any():
            fits.append(None)
            continue
        # reference: the densest bin on this side, so that a spike at the mode (an atom,
        # e.g. blank image regions all giving the bias) does not swallow the shoulder
        ok = beyond & (d <= TAIL_FRACTION * d[beyond].max()) & (n >= 3) & (d > 0)
        if ok.sum() < 3:
            fits.append(None)
            continue
        w = np.sqrt(n[ok])
        slope, intercept = np.polyfit(x[ok], np.log(d[ok]), 1, w=w)
        fits.append(TailFit(float(intercept), float(slope), float(x[ok].min()), float(x[ok].max()), int(ok.sum())))
    return fits[0], fits[1]


def plot_activation_distribution(
    stats: xr.Dataset, layer: str, channels: Sequence[int], out_path: str | Path, *, model_label: str | None = None
) -> Path:
    """Pre-ReLU histograms (log density) with both exponential tail fits and the firing fraction, one panel per channel."""
    from .plots import short_layer
    from .sigma import POSITIONS_LABEL, stats_label, stats_positions

    channels = [int(c) for c in channels]
    if not channels:
        raise ValueError("distribution: give at least one channel")
    cols = min(3, len(channels))
    rows = math.ceil(len(channels) / cols)
    fig_h = 4.6 * rows + 0.8
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, fig_h), squeeze=False, dpi=100)
    for ax in axes.ravel()[len(channels):]:
        ax.set_visible(False)
    cdim = f"{layer}_channel"
    for ax, c in zip(axes.ravel(), channels):
        x, dens, total = histogram(stats, layer, c)
        counts = dens * total * (x[1] - x[0])
        mean = float(stats[f"{layer}_pre_relu_mean"].sel({cdim: c}))
        firing = float(stats[f"{layer}_fraction_firing"].sel({cdim: c}))
        pos = dens > 0
        ax.fill_between(x[pos], dens[pos], step="mid", color="0.7", lw=0)
        ax.step(x[pos], dens[pos], where="mid", color="0.25", lw=0.8, label="pre-ReLU density")
        ax.set_yscale("log")
        ax.axvspan(0, x.max(), color="tab:orange", alpha=0.08, lw=0)
        ax.axvline(0, color="tab:orange", lw=1.2, label=f"0: fires at {100 * firing:.1f}% of positions")
        ax.axvline(mean, color="tab:blue", lw=1, ls=":", label=f"mean {mean:.3g}")
        left, right = fit_tails(x, dens, counts)
        for fit, colour, name in ((left, "tab:green", "left"), (right, "tab:red", "right")):
            if fit is None:
                continue
            xx = np.linspace(fit.x0, fit.x1, 50)
            ax.plot(xx, np.exp(fit.intercept + fit.slope * xx), color=colour, lw=1.8, ls="--",
                    label=f"{name} tail: exp fit, scale {fit.scale:.3g}")
        ax.set_ylim(max(dens[pos].min() * 0.5, 1e-12), dens.max() * 3)
        pad = 2 * (x[1] - x[0])
        ax.set_xlim(x[pos].min() - pad, x[pos].max() + pad)
        ax.set_xlabel(f"pre-ReLU activation of {short_layer(layer)}:{c}")
        ax.set_ylabel("probability density (log scale)")
        ax.set_title(f"{short_layer(layer)}:{c}", fontsize=11, fontweight="bold")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    sha = str(stats.attrs.get("weights_sha256") or "")
    weights = f"weights sha256 {sha[:8]}" if sha else ("built-in weights" if stats.attrs.get("model") == "groundtruth" else "no weights file")
    label = model_label or f"{stats.attrs.get('model')}, {weights}"
    fig.suptitle(
        f"{label} - {layer} activation distribution over {POSITIONS_LABEL[stats_positions(stats)]}\n{stats_label(stats)}",
        fontsize=10, x=0.01, ha="left",
    )
    fig.subplots_adjust(top=1 - 0.85 / fig_h, bottom=1.25 / fig_h, hspace=0.75, wspace=0.3, left=0.07, right=0.98)
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    return out_path
