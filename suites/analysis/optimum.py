"""Reports and figures of an ``optimize`` dataset (:func:`suites.optimization.ascent.optimize`).

Works on the dataset only (no model, no rendering): the optimal stimuli are stored in
it as ``image`` (the receptive-field crop the unit sees, uint8 RGB).

Convention: orientation in degrees [0, 360), counter-clockwise on screen, toward the
side the curve opens to; curvature 1/px; length, width, position px.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from suites.atomic import output_file

__all__ = ["report", "plot_sheet"]


def _num(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def report(ds: xr.Dataset) -> dict[str, Any]:
    """The JSON report: ``{"model", "layer", ..., "channels": [{"channel", "orientation", ...}]}``.

    Per channel: ``orientation`` (deg), ``curvature`` (1/px), ``length``, ``width`` (px),
    ``position`` ``[x, y]`` on the full input and ``offset`` ``[dx, dy]`` from the
    receptive-field centre (px), ``fg``/``bg`` (RGB), ``rounding``, ``fill``,
    ``activation`` (the objective, pre-ReLU), ``activation_relu``, ``activation_sigma``,
    ``sweep_max``, ``sweep_max_sigma``, ``steps``, ``converged``, ``ascent_activation``
    (before the polish; absent in older files) and, when computed,
    ``sensitivity`` ``{coordinate: {"predicted", "measured", "check_sigma"}}``.
    Non-finite numbers are written as null.
    """
    a = ds.attrs
    rows = []
    has_sens = "sensitivity_measured" in ds
    for i, ch in enumerate(ds.channel.values):
        row: dict[str, Any] = {
            "channel": int(ch),
            "orientation": float(ds.orientation.values[i]) % 360.0,
            "curvature": float(ds.curvature.values[i]),
            "length": float(ds.length.values[i]),
            "width": float(ds.width.values[i]),
            "position": [float(ds.x.values[i]), float(ds.y.values[i])],
            "offset": [float(ds.dx.values[i]), float(ds.dy.values[i])],
            "fg": [float(v) for v in ds.fg.values[i]],
            "bg": [float(v) for v in ds.bg.values[i]],
            "rounding": float(ds.rounding.values[i]),
            "fill": float(ds.fill.values[i]),
            "activation": float(ds.activation.values[i]),
            "activation_relu": float(ds.activation_relu.values[i]),
            "activation_sigma": _num(ds.activation_sigma.values[i]),
            "sweep_max": float(ds.sweep_max.values[i]),
            "sweep_max_sigma": _num(ds.sweep_max_sigma.values[i]),
            "steps": int(ds.steps.values[i]),
            "converged": bool(ds.converged.values[i]),
        }
        if "ascent_activation" in ds:  # files written before the polish existed lack it
            row["ascent_activation"] = float(ds.ascent_activation.values[i])
        if has_sens:
            row["sensitivity"] = {
                str(c): {"predicted": _num(ds.sensitivity_predicted.values[i, j]),
                         "measured": _num(ds.sensitivity_measured.values[i, j]),
                         "check_sigma": _num(ds.sensitivity_check_sigma.values[i, j])}
                for j, c in enumerate(ds.coordinate.values)
            }
        rows.append(row)
    out = {
        "model": str(a.get("model", "")),
        "layer": str(a.get("layer", "")),
        "weights": str(a.get("weights", "")),
        "weights_sha256": str(a.get("weights_sha256", "")),
        "readout": str(a.get("readout", "")),
        "statistics": str(a.get("statistics", "")),
        "free_parameters": str(a.get("free_parameters", "")).split(","),
        "steps_run": int(a.get("steps_run", 0)),
        "polish_iterations": int(a.get("polish_iterations", 0)),
        "forward_passes": int(a.get("forward_passes", 0)),
        "wall_s": float(a.get("wall_s", 0.0)),
        "channels": rows,
    }
    if has_sens:
        out["sensitivity_sigma"] = float(a.get("sensitivity_sigma", float("nan")))
    return out


def plot_sheet(ds: xr.Dataset, path: str | Path, columns: int = 8) -> Path:
    """Each channel's optimal stimulus in a grid, labelled with its parameters and activation.

    Like a feature-visualisation sheet, but parametric: the cell is the receptive-field
    crop the probed unit sees; the label gives channel, orientation (deg), curvature
    (1/px), length and width (px), activation and its sigma. Returns the PNG path.
    """
    path = Path(path)
    n = ds.sizes["channel"]
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.25 * rows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(ds.image.values[i], interpolation="nearest")
        sig = float(ds.activation_sigma.values[i])
        s = f" ({sig:.1f}σ)" if math.isfinite(sig) else ""
        ax.set_title(
            f"ch {int(ds.channel.values[i])}: {float(ds.activation.values[i]):.3g}{s}\n"
            f"{float(ds.orientation.values[i]) % 360:.1f}°  k={float(ds.curvature.values[i]):.3f}/px\n"
            f"L={float(ds.length.values[i]):.0f} w={float(ds.width.values[i]):.1f} px",
            fontsize=7,
        )
    a = ds.attrs
    sha = str(a.get("weights_sha256", ""))[:8]
    title = (f"optimal stimuli: {a.get('model')} {a.get('layer')} ({a.get('readout')}), weights "
             f"{Path(str(a.get('weights') or 'none')).name}{f' ({sha})' if sha else ''}; sigma: {a.get('statistics')}")
    lines = textwrap.wrap(title, width=max(40, 30 * cols))
    fig.suptitle("\n".join(lines), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.12 * len(lines) / (2.25 * rows + 0.5)))
    with output_file(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
