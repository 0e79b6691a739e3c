"""The atlas's figures: family size against relative depth, and the best layers' radial tuning side by side.

Drawn on :class:`matplotlib.figure.Figure` objects (no pyplot, no backend switch), saved
through :mod:`suites.atomic`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from suites.atomic import output_file
from suites.file_kinds import CURVE_FAMILY_KIND, DISCOVER_RESPONSES_KIND
from suites.results.files import open_file

__all__ = ["depth_figure", "best_radial_figure"]

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def _save(fig: Figure, path: Path) -> Path:
    with output_file(path) as tmp:
        fig.savefig(tmp, format="png", facecolor="white")
    return path


def depth_figure(atlas: dict, path: str | Path) -> Path:
    """Curve detectors (with their 95% interval) against relative depth: one colour per model, trained solid,
    random-weights control dashed. The line joins the depthwise activations (``...depthwise`` taps, filled
    markers); the other taps (block outputs, linear) are hollow markers on their own."""
    fig = Figure(figsize=(9.5, 5.2), dpi=100, facecolor="white")
    ax = fig.add_subplot(1, 1, 1)
    parts = [(atlas["models"], "-", "trained")]
    if "control" in atlas:
        parts.append((atlas["control"]["models"], "--", "random weights"))
    for i, model in enumerate(atlas["models"]):
        colour = _COLOURS[i % len(_COLOURS)]
        for models, style, what in parts:
            layers = sorted(models[model]["layers"].items(), key=lambda kv: kv[1]["depth"])
            for depthwise in (True, False):
                rows = [s for name, s in layers if name.endswith(".depthwise") == depthwise]
                if not rows:
                    continue
                x = np.array([s["depth"] for s in rows])
                y = np.array([s["detectors"] for s in rows])
                err = [y - np.array([s["detectors_ci"][0] for s in rows]), np.array([s["detectors_ci"][1] for s in rows]) - y]
                ax.errorbar(x, y, yerr=np.clip(err, 0, None), color=colour, ls=style if depthwise else "none",
                            marker="o", ms=4.5, mfc=colour if depthwise else "white", capsize=2, lw=1.4,
                            alpha=0.9 if style == "-" else 0.7,
                            label=f"{model} ({what})" if depthwise or len(rows) == len(layers) else None)
    ax.set_xlabel("relative depth (position among the spatial taps: stem 0, head 1)")
    ax.set_ylabel("curve detectors (95% interval over stimulus positions)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.set_title("curve families across depth and models (line, filled: depthwise activations; hollow: block "
                 "outputs)", fontsize=10)
    return _save(fig, Path(path))


def _tuning(resp: xr.Dataset, family: xr.Dataset, layer: str) -> tuple[np.ndarray, list[tuple[float, np.ndarray]]]:
    """Orientations (deg) and, per detector, ``(preferred orientation, tuning at its best curvature / peak)``."""
    from suites.analysis.curve_family import sigma_responses

    det = family.where(family.detector.astype(bool), drop=True)
    s = sigma_responses(resp, layer)["curve"]  # (channel, polarity, curvature, orientation)
    ids = {int(c): i for i, c in enumerate(resp.coords[f"{layer}_channel"].values)}
    curves = []
    for c, pref in zip(det.channel.values.astype(int), det.preferred_orientation.values):
        h = np.nan_to_num(s[ids[int(c)], 0], nan=0.0)
        row = np.clip(h[int(np.argmax(h.max(axis=1)))], 0, None)
        curves.append((float(pref), row / row.max() if row.max() > 0 else row))
    return np.asarray(resp.coords["orientation"].values, dtype=np.float64), curves


def best_radial_figure(atlas: dict, folder: str | Path, path: str | Path) -> Path:
    """One polar panel per model: the radial tuning of its best layer's detectors, coloured by preferred orientation."""
    import matplotlib

    folder = Path(folder)
    models = list(atlas["models"].items())
    fig = Figure(figsize=(4.6 * len(models), 5.0), dpi=100, facecolor="white")
    fig.subplots_adjust(left=0.03, right=0.97, bottom=0.05, top=0.72, wspace=0.35)
    cmap = matplotlib.colormaps["hsv"]
    for i, (model, m) in enumerate(models):
        ax = fig.add_subplot(1, len(models), i + 1, projection="polar")
        ax.set_theta_zero_location("E")
        ax.set_yticklabels([])
        layer = m["best_layer"]
        if layer is None:
            ax.set_title(f"{model}\nno curve detectors in the tested layers", fontsize=9)
            continue
        s = m["layers"][layer]
        o, curves = _tuning(open_file(folder / model / "trained" / "responses.nc", DISCOVER_RESPONSES_KIND),
                            open_file(folder / s["family_file"], CURVE_FAMILY_KIND), layer)
        theta = np.deg2rad(np.append(o, o[0] + 360.0))
        for pref, row in curves:
            ax.plot(theta, np.append(row, row[0]), color=cmap((pref % 360) / 360), lw=0.9, alpha=0.8)
        ax.set_title(f"{model}\n{layer}\n{s['detectors']} detectors (95% {s['detectors_ci'][0]}-{s['detectors_ci'][1]}), "
                     f"largest gap {s['largest_gap_deg']:.0f} deg", fontsize=8.5, pad=14)
    fig.suptitle("best layer per model: each detector's orientation tuning at its best curvature\n(normalised to its "
                 "peak, coloured by preferred orientation; black on white)", fontsize=10, y=0.995)
    return _save(fig, Path(path))
