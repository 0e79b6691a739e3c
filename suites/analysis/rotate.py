"""``curvebench rotate-tuning``, the analysis half: a curve family's joint tuning to rotated crops.

The article's "joint tuning curve": take the dataset examples that excite each family
neuron most, rotate them from 0 to 360 degrees, record the whole family's responses
(measured by :func:`suites.running.rotation_responses.measure_rotation_responses`), shift each
example so the neurons' responses line up, and average. This module does the last two
steps on the measured dataset:

**Alignment.** Rotating a crop that excites neuron ``s`` by ``a`` presents the orientation
``pref_s + a``. Relative preferred orientations are estimated from the data (where each
neuron peaks, on average, for each source neuron's crops, solved self-consistently on the
circle), anchored so that the first channel sits at its known peak orientation
(``probes.families``; 0 if unknown). Every example is then placed on the common axis
``pref_s + a`` and averaged per responding neuron.

Convention:
    Angles in degrees; responses are post-ReLU (sigma if a statistics file is given).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import xarray as xr

from .tuning import circular_mean, fitted_peak, fwhm
from suites.atomic import output_file
from suites.file_kinds import ROTATION_TUNING_KIND


def align(responses: np.ndarray, angles: np.ndarray, anchor: float = 0.0, iterations: int = 5) -> np.ndarray:
    """Preferred orientation per family channel (degrees) from ``responses[s, e, a, d]``.

    ``responses``: source channel ``s`` (whose crops), example ``e``, rotation ``a``,
    responding channel ``d`` (same channel order as ``s``). The first channel with a
    preferred orientation is anchored at ``anchor``; channels that never respond get NaN.
    """
    mean = responses.mean(axis=1)  # (S, A, D)
    n = mean.shape[0]
    # offset[s, d]: rotation at which d peaks for s's crops = pref_d - pref_s
    offset = np.array([[fitted_peak(angles, mean[s, :, d]) for d in range(n)] for s in range(n)])
    weight = np.nan_to_num(mean.max(axis=1), nan=0.0)  # (S, D)
    finite = np.isfinite(offset)
    if not finite.any():
        return np.full(n, math.nan)
    ref = int(np.argmax(finite.sum(axis=1)))  # the source whose crops drive the most channels
    pref = (offset[ref] - (offset[ref, ref] if finite[ref, ref] else 0.0)) % 360.0
    for _ in range(iterations):
        new = np.full(n, math.nan)
        for d in range(n):
            cand = (pref + offset[:, d]) % 360.0
            ok = np.isfinite(cand) & (weight[:, d] > 0)
            if ok.any():
                new[d] = circular_mean(cand[ok], weight[ok, d])
        if np.isfinite(new[ref]) and np.isfinite(pref[ref]):
            new = (new - new[ref] + pref[ref]) % 360.0
        pref = new
    first = np.flatnonzero(np.isfinite(pref))
    if first.size == 0:
        return pref
    return (pref - pref[first[0]] + anchor) % 360.0


def rotation_tuning(
    measured: xr.Dataset,
    *,
    stats: xr.Dataset | None = None,
    anchor: float | None = None,
) -> xr.Dataset:
    """Align and average measured rotation responses (see the module docstring).

    Args:
        measured: from :func:`suites.running.rotation_responses.measure_rotation_responses`.
        stats: dataset statistics (``curvebench stats``) to express responses in sigma.
        anchor: orientation (degrees) of the first responsive channel; default its known
            peak in the article's family table, else 0.

    Returns the measured variables plus ``aligned(source, example, orientation, channel)``
    (on the common axis), ``tuning(orientation, channel)`` (mean of ``aligned``),
    ``typical(relative_orientation)``, ``preferred(channel)``, and attributes describing
    units and statistics.
    """
    from .family_channels import article_families

    layer = str(measured.attrs["layer"])
    channels = [int(c) for c in measured.coords["channel"].values]
    angles = np.asarray(measured.coords["rotation"].values, dtype=np.float64)
    step = float(measured.attrs["step_deg"])
    resp = np.asarray(measured["responses"].values, dtype=np.float64)
    label = "raw post-ReLU activation"
    if stats is not None:
        from .sigma import stats_label

        mean = stats[f"{layer}_mean"].sel({f"{layer}_channel": channels}).values
        std = stats[f"{layer}_std"].sel({f"{layer}_channel": channels}).values
        resp = (resp - mean) / np.where(std > 0, std, np.nan)
        label = f"post-ReLU sigma ({stats_label(stats)})"
    k_eff = resp.shape[1]
    # anchor: the first channel that has a preferred orientation, at its known peak (probes.families)
    probe_pref = align(resp, angles, 0.0)
    usable = [i for i in range(len(channels)) if math.isfinite(probe_pref[i])]
    if not usable:
        raise ValueError(f"rotate-tuning: none of the channels {channels} of {layer!r} responded to the rotated crops")
    anchor_channel = channels[usable[0]]
    if anchor is None:
        anchor = article_families(str(measured.attrs.get("model", ""))).get(layer, {}).get(anchor_channel) or 0.0
    pref = align(resp, angles, anchor)
    aligned = np.full_like(resp, np.nan)
    for s in usable:
        x = (pref[s] + angles) % 360.0
        for e in range(k_eff):
            for d in range(len(channels)):
                aligned[s, e, :, d] = np.interp(angles, x, resp[s, e, :, d], period=360.0)
    tuning = np.nanmean(aligned[usable], axis=(0, 1))
    typical = np.mean([np.roll(tuning[:, d], -int(round(pref[d] / step))) for d in usable], axis=0)
    ds = measured.copy()
    ds["responses"] = (("source", "example", "rotation", "channel"), resp)
    ds = ds.assign_coords(orientation=angles, relative_orientation=angles)
    ds["aligned"] = (("source", "example", "orientation", "channel"), aligned)
    ds["tuning"] = (("orientation", "channel"), tuning)
    ds["typical"] = (("relative_orientation",), typical)
    ds["preferred"] = (("channel",), pref)
    ds.attrs.update(
        file_kind=ROTATION_TUNING_KIND,
        response_units=label,
        typical_fwhm_deg=float(fwhm(angles, np.clip(typical, 0, None))),
        anchor=f"channel {anchor_channel} placed at {anchor:g} deg",
        unresponsive=" ".join(str(channels[i]) for i in range(len(channels)) if i not in usable),
    )
    return ds


def plot_rotation_tuning(result: xr.Dataset, out_path: str | Path) -> Path:
    """The article's figure: one row per neuron, thin lines = single examples, thick = mean; peak ticks below."""
    import matplotlib
    import matplotlib.pyplot as plt

    from .plots import short_layer

    channels = [int(c) for c in result.coords["channel"].values]
    pref = result["preferred"].values
    order = np.argsort(np.where(np.isfinite(pref), pref, np.inf))
    o = result.coords["orientation"].values
    layer = result.attrs["layer"]
    n = len(channels)
    fig = plt.figure(figsize=(7.5, 1.05 * n + 1.9), dpi=100)
    cmap = matplotlib.colormaps["hsv"]
    top = 1 - 1.4 / fig.get_figheight()
    bottom = 1.0 / fig.get_figheight()
    h = (top - bottom) / n
    aligned = result["aligned"].values
    ymax = max(float(np.nanmax(np.clip(aligned, 0, None))), 1e-9)
    xs = np.append(o, 360.0)
    for row, i in enumerate(order):
        ax = fig.add_axes([0.13, top - (row + 1) * h, 0.84, h * 0.92])
        colour = tuple(0.85 * np.array(cmap((pref[i] % 360) / 360.0)[:3])) if np.isfinite(pref[i]) else (0.5, 0.5, 0.5)
        thin = aligned[:, :, :, i].reshape(-1, o.size)
        thin = thin[np.isfinite(thin).all(axis=1)]
        for line in thin:
            ax.plot(xs, np.append(line, line[0]), color=colour, alpha=0.15, lw=0.7)
        mean = result["tuning"].values[:, i]
        ax.plot(xs, np.append(mean, mean[0]), color=colour, lw=2.2)
        ax.set_xlim(0, 360)
        ax.set_ylim(min(0.0, float(np.nanmin(aligned))), ymax * 1.05)
        ax.set_yticks([])
        ax.set_xticks([])
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.text(-0.01, 0.35, f"{short_layer(layer)}:{channels[i]}", transform=ax.transAxes, ha="right", fontsize=9, fontweight="bold", color=colour)
    ax = fig.add_axes([0.13, bottom - 0.45 / fig.get_figheight(), 0.84, 0.3 / fig.get_figheight()])
    for i in order:
        if not np.isfinite(pref[i]):
            continue
        ax.bar(pref[i] % 360, 1, width=3, color=tuple(0.85 * np.array(cmap((pref[i] % 360) / 360.0)[:3])))
    ax.set_xlim(0, 360)
    ax.set_yticks([])
    ax.set_xticks(np.arange(0, 361, 45))
    ax.set_xticklabels([f"{t}°" for t in range(0, 361, 45)], fontsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("orientation of the rotated crops on the common axis (degrees); ticks = each neuron's peak", fontsize=8)
    a = result.attrs
    title = (
        f"{a['model']} {layer}: responses to rotated dataset examples (top {a['k']} crops per neuron, {a['step_deg']:g} deg steps)\n"
        f"images: {a['images']}\nresponses: {a['response_units']}\nthin = single examples, thick = mean; "
        f"typical tuning FWHM {a['typical_fwhm_deg']:.0f} deg; {a['anchor']}"
    )
    title = "\n".join(textwrap.fill(line, 105) for line in title.split("\n"))
    fig.suptitle(title, fontsize=8.5, x=0.02, ha="left")
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    return out_path
