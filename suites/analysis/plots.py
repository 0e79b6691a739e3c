"""Figures in the article's style: heatmaps, series side by side, radial tuning curves.

Every figure states the model, weights, layer and which statistics its sigma values
come from, has labelled axes (orientation in degrees, curvature in 1/px), channel
ids and a colour bar, and is written as a PNG.

Convention:
    - Heatmaps: x = orientation (degrees, 0..360, counter-clockwise as seen on screen,
      0 = the curve opens toward +x), y = curvature (1/px), straight line at the top,
      tightest curve at the bottom; colour = post-ReLU activation in sigma on a fixed
      0..25 scale (the article's), values <= 0 (not firing) black; dark grey = no
      sigma value (a cell the run never measured, or a channel whose reference std is
      0, e.g. one that never fired in the sweep). Rows (channels) are ordered by
      preferred orientation; channels without one (flat) come last.
    - Radial plots: angle = orientation (0 = right, counter-clockwise), radius =
      post-ReLU sigma at each unit's best curvature (values below 0 drawn at 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.text import Text

from .arrays import grid, layer_names, select, series_values
from .channel_choice import ChosenChannels
from .sigma import to_sigma
from .tuning import best_curvature_index, echo_index, fitted_peak
from .strip_layout import StripRenderer
from suites.atomic import check_folder, output_file
from suites.specs.channel_selection import ChannelSelection

COMPARISON_LAYERS: tuple[str, ...] = ("conv2d2", "mixed3a", "mixed3b", "mixed4a")
DEFAULT_VMAX = 25.0
MAX_CHANNELS = 16
#: Most channel rows a heatmap figure draws (``--channels all`` on a wide layer is refused).
MAX_FIGURE_ROWS = 64
MAX_SERIES = 8


def article_cmap() -> matplotlib.colors.Colormap:
    """Colour map of the heatmaps: turbo-like (blue - green - yellow - red), black below 0, grey for NaN."""
    return matplotlib.colormaps["turbo"].with_extremes(under="black", bad=(0.22, 0.22, 0.22))


def short_layer(layer: str) -> str:
    """The article's short layer name: ``mixed3b`` -> ``3b``; other names unchanged."""
    return layer[len("mixed"):] if layer.startswith("mixed") else layer


def provenance(ds: xr.Dataset) -> str:
    """``model, weights`` description from a results file's attributes."""
    model = ds.attrs.get("model", "unknown model")
    weights = ds.attrs.get("weights") or ds.attrs.get("weights_file") or ""
    sha = str(ds.attrs.get("weights_sha256") or "")
    if weights:
        w = f"weights {Path(str(weights)).name}" + (f" ({sha[:8]})" if sha else "")
    elif sha:
        w = f"weights sha256 {sha[:8]}"
    else:
        w = "built-in weights" if model == "groundtruth" else "no weights file (random or built-in)"
    return f"{model}, {w}"


def _stem(ds: xr.Dataset) -> str:
    for key in ("suite_name", "suite", "name"):
        value = ds.attrs.get(key)
        if isinstance(value, str) and value and "\n" not in value and len(value) < 60:
            return value
    return "results"


def _display(values: np.ndarray) -> np.ma.MaskedArray:
    """Sigma values as drawn: <= 0 pushed below the colour range (black), NaN masked (grey)."""
    v = np.array(values, dtype=np.float64)
    v[np.isfinite(v) & (v <= 0)] = -1.0
    return np.ma.masked_invalid(v)


@dataclass
class Panel:
    """One column of a heatmap figure: a sigma grid ``(channel, curvature, orientation)`` and its strip."""

    title: str
    sigma: xr.DataArray
    strip: np.ndarray | None = None


def choose(ds: xr.Dataset, layer: str, g: xr.DataArray, channels: ChannelSelection | Sequence[int] | None,
           families: Mapping[str, Sequence[int]] | None) -> ChosenChannels:
    """:func:`suites.analysis.channel_choice.choose_channels` with the layer's known family.

    ``families``: layer -> channel ids (``None``: the model's known families from ``probes``).
    """
    from .channel_choice import choose_channels
    from .family_channels import family_channels

    known = families.get(layer) if families is not None else family_channels(ds, layer)
    return choose_channels(ds, layer, g, channels, known=known, max_channels=MAX_CHANNELS)


@dataclass(frozen=True)
class _Layout:
    """Sizes of a heatmap figure, inches."""

    n_rows: int
    n_cols: int
    panel_w: float
    row_h: float
    strip_h: float
    top: float
    left: float = 1.45
    right: float = 1.25
    gap_w: float = 0.25
    gap_h: float = 0.07
    bottom: float = 0.7

    @property
    def width(self) -> float:
        return self.left + self.n_cols * self.panel_w + (self.n_cols - 1) * self.gap_w + self.right

    @property
    def height(self) -> float:
        return self.top + self.strip_h + (0.08 if self.strip_h else 0) + self.n_rows * (self.row_h + self.gap_h) + self.bottom


def _layout(panels: Sequence[Panel], n_rows: int, title: str) -> _Layout:
    n_cols = len(panels)
    panel_w = 10.0 if n_cols == 1 else max(3.2, 14.0 / n_cols)
    strip_h = max([panel_w * p.strip.shape[0] / p.strip.shape[1] for p in panels if p.strip is not None], default=0.0)
    lines = title.count("\n") + 1
    top = 0.3 + 0.19 * lines + (0.3 if n_cols > 1 else 0.0)
    return _Layout(n_rows, n_cols, panel_w, 0.62 if n_cols == 1 else 0.5, strip_h, top)


def fit_title(fig: Figure, text: Text, margin_px: float = 4.0) -> None:
    """Re-wrap a left-aligned title until it lies inside the figure's width (long names, long paths)."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    raw = text.get_text().split("\n")
    chars = max(len(line) for line in raw)
    for _ in range(40):
        box = text.get_window_extent(renderer)
        if box.x1 <= width - margin_px and box.x0 >= 0:
            return
        chars = max(20, int(chars * 0.9))
        text.set_text("\n".join(textwrap.fill(line, chars, break_long_words=True, break_on_hyphens=False)
                                for line in raw))


def _first_that_fits(fig: Figure, text: Text, candidates: Sequence[str]) -> None:
    """Give ``text`` the first of ``candidates`` that lies inside the figure (the last one otherwise)."""
    renderer = fig.canvas.get_renderer()
    for c in candidates:
        text.set_text(c)
        box = text.get_window_extent(renderer)
        if box.y0 >= 0 and box.y1 <= fig.bbox.height and box.x0 >= 0 and box.x1 <= fig.bbox.width:
            return


def build_heatmap_figure(panels: Sequence[Panel], channels: Sequence[int], layer: str, title: str, *,
                         vmax: float = DEFAULT_VMAX, colorbar_label: str = "post-ReLU activation (sigma)") -> Figure:
    """The figure of :func:`heatmap_figure`, not saved (every text inside the canvas)."""
    n_rows, n_cols = len(channels), len(panels)
    if not (isinstance(vmax, (int, float)) and math.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax: top of the colour scale must be a positive number of sigma, got {vmax!r}")
    if n_rows == 0 or n_cols == 0:
        raise ValueError("heatmap figure: nothing to draw (no channels or no panels)")
    if n_rows > MAX_FIGURE_ROWS:
        raise ValueError(f"--channels: {n_rows} channels of {layer} do not fit one figure (at most {MAX_FIGURE_ROWS}); "
                         "give auto, channel ids or a family")
    lay = _layout(panels, n_rows, title)
    fig = Figure(figsize=(lay.width, lay.height), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    norm = Normalize(vmin=0.0, vmax=vmax)
    im = None
    for j, p in enumerate(panels):
        im = _draw_panel(fig, lay, j, p, channels, layer, norm)
    w, h = lay.width, lay.height
    y_mid = (h - lay.top - lay.strip_h - n_rows * (lay.row_h + lay.gap_h) / 2) / h
    label = fig.text(0.08 / w, y_mid, "", rotation=90, ha="left", va="center", fontsize=8)
    _first_that_fits(fig, label, ("curvature (1/px): straight line at top of each row, tightest at bottom",
                                  "curvature (1/px): line at top, tightest at bottom", "curvature (1/px)"))
    bar_h = min(4.0, n_rows * (lay.row_h + lay.gap_h))
    cax = fig.add_axes([(w - lay.right + 0.25) / w, (h - lay.top - lay.strip_h - 0.08 - bar_h) / h, 0.16 / w, bar_h / h])
    cb = fig.colorbar(im, cax=cax, extend="both")
    cb.set_label(colorbar_label, fontsize=9)
    cb.ax.tick_params(labelsize=8)
    fit_title(fig, fig.suptitle(title, x=0.1 / w, y=1 - 0.1 / h, ha="left", va="top", fontsize=10))
    return fig


def _draw_panel(fig: Figure, lay: _Layout, j: int, p: Panel, channels: Sequence[int], layer: str, norm: Normalize):
    """One column: the strip, the column title (several columns) and one heatmap per channel."""
    w, h = lay.width, lay.height
    x0 = lay.left + j * (lay.panel_w + lay.gap_w)
    o = p.sigma.coords["orientation"].values
    k = p.sigma.coords["curvature"].values
    do = (o[-1] - o[0]) / max(o.size - 1, 1) if o.size > 1 else 1.0
    xext = (o[0] - do / 2, o[-1] + do / 2)
    y = h - lay.top
    if p.strip is not None:
        sh = lay.panel_w * p.strip.shape[0] / p.strip.shape[1]
        ax = fig.add_axes([x0 / w, (y - sh) / h, lay.panel_w / w, sh / h])
        ax.imshow(p.strip, extent=(xext[0], xext[1], 0, 1), aspect="auto", interpolation="antialiased")
        ax.set_axis_off()
    if lay.n_cols > 1:
        fig.text((x0 + lay.panel_w / 2) / w, (y + 0.08) / h, p.title, ha="center", va="bottom", fontsize=11)
    y -= lay.strip_h + (0.08 if lay.strip_h else 0)
    cdim = p.sigma.dims[0]
    short = short_layer(layer)
    im = None
    for i, c in enumerate(channels):
        yy = y - (i + 1) * lay.row_h - i * lay.gap_h
        ax = fig.add_axes([x0 / w, yy / h, lay.panel_w / w, lay.row_h / h])
        im = ax.imshow(_display(p.sigma.sel({cdim: c}).values), cmap=article_cmap(), norm=norm, aspect="auto",
                       interpolation="nearest", extent=(xext[0], xext[1], k.size - 0.5, -0.5))
        ax.set_xlim(*xext)
        ax.set_yticks([0, k.size - 1])
        if j == 0:
            ax.set_yticklabels([f"{k[0]:.3g}", f"{k[-1]:.3g}"], fontsize=7)
            ax.annotate(c_label(short, c), xy=(0, 0.5), xycoords="axes fraction", xytext=(-30, 0),
                        textcoords="offset points", ha="right", va="center", fontsize=10, fontweight="bold")
        else:
            ax.set_yticklabels([])
        ticks = np.arange(0, 361, 45 if lay.n_cols == 1 else 90)
        ax.set_xticks(ticks[(ticks >= xext[0]) & (ticks <= xext[1])])
        if i == lay.n_rows - 1:
            ax.set_xticklabels([f"{t:g}°" for t in ax.get_xticks()], fontsize=8)
            ax.set_xlabel(_orientation_label(p.sigma), fontsize=9)
        else:
            ax.set_xticklabels([])
        ax.tick_params(length=2)
        for sp in ax.spines.values():
            sp.set_visible(False)
    return im


def heatmap_figure(
    panels: Sequence[Panel],
    channels: Sequence[int],
    layer: str,
    title: str,
    out_path: str | Path,
    *,
    vmax: float = DEFAULT_VMAX,
    colorbar_label: str = "post-ReLU activation (sigma)",
) -> Path:
    """Draw panels side by side (one column each), one row per channel, and save a PNG.

    Rows are labelled with the channel (``3b:379`` for the article's short layer names,
    else ``ch 379``: the title names the layer); grey cells are cells without a value.
    """
    fig = build_heatmap_figure(panels, channels, layer, title, vmax=vmax, colorbar_label=colorbar_label)
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, dpi=100, facecolor="white")
    return out_path


def completeness(ds: xr.Dataset) -> str:
    """``""`` for a complete run, else e.g. ``" (incomplete run: 1,024 of 72,000 stimuli)"``."""
    done = ds.sizes.get("stimulus", 0)
    total = int(ds.attrs.get("rows_total", done) or done)
    if done < total:
        return f" (incomplete run: {done:,} of {total:,} stimuli)"
    return ""


def _title(ds: xr.Dataset, layer: str, what: str, statistics: str, how: str | None = None) -> str:
    """Figure title: provenance, layer, what is drawn; the statistics; how the channels were chosen."""
    text = f"{provenance(ds)} - {layer} - {what}{completeness(ds)}\nsigma from {statistics}"
    return text + (f"\nchannels: {how}" if how else "")


def _orientation_label(g: xr.DataArray | xr.Dataset) -> str:
    """x label of heatmaps: the orientation axis in use (see :mod:`suites.analysis.orientation_axis`)."""
    from .orientation_axis import AXIS_ATTR

    if g.attrs.get(AXIS_ATTR) == "article":
        return "orientation (degrees, the article's axis: clockwise on screen, 0 = opens right)"
    return "orientation (degrees, counter-clockwise on screen, 0 = opens right)"


def _strip(strip: StripRenderer | None, ds: xr.Dataset, o: np.ndarray, k: np.ndarray,
           fixed: Mapping[str, float] | None = None, columns: int = 36) -> np.ndarray | None:
    return strip(ds, o, k, fixed, columns) if strip is not None else None


def plot_heatmaps(
    ds: xr.Dataset,
    out_dir: str | Path,
    stats: xr.Dataset | None = None,
    *,
    layers: Sequence[str] | None = None,
    channels: ChannelSelection | Sequence[int] | None = None,
    families: Mapping[str, Sequence[int]] | None = None,
    vmax: float = DEFAULT_VMAX,
    strip: StripRenderer | None = None,
    name: str | None = None,
) -> list[Path]:
    """Orientation x curvature heatmaps of a results dataset, one PNG per layer.

    If the run sweeps a further parameter with at most 8 values (e.g. ``rounding``),
    a second PNG per layer shows one column per value, side by side (the article's
    angles-to-curves figure). Parameters swept alongside with more values (e.g. a hue
    tied to orientation) are averaged within each (orientation, curvature) cell.

    Args:
        ds: results dataset (or a file opened with ``suites.open_results``).
        out_dir: folder for the PNGs (created).
        stats: dataset statistics (``curvebench stats``); ``None`` = the sweep's own,
            labelled as such in every title.
        layers: layers to draw (default: every layer in the file).
        channels: a :class:`~suites.specs.channel_selection.ChannelSelection` or channel
            ids (default ``auto``: :mod:`suites.analysis.channel_choice`); the title's last
            line says how they were chosen.
        families: layer -> channel ids of its known family (default: from ``probes`` if
            the model is known there).
        vmax: top of the colour scale in sigma (the article uses 25).
        strip: draws the stimulus strip on top, e.g. :func:`suites.stimulus_strips.stimulus_strip`
            (renders the run's own stimuli); ``None`` = no strip.

    Returns:
        Paths of the PNGs written.

    Raises:
        suites.analysis.channel_choice.NoChannels: ``auto`` found no channel to show in a layer.
    """
    out_dir = Path(out_dir)
    paths: list[Path] = []
    stem = name or _stem(ds)
    for layer in layers or layer_names(ds):
        sig = to_sigma(ds, layer, stats)
        label = sig.attrs["statistics"]
        full = grid(ds, sig)
        chosen = choose(ds, layer, full, channels, families)
        chans = chosen.channels
        o, k = full.coords["orientation"].values, full.coords["curvature"].values
        extra = {n: v for n, v in series_values(ds).items() if 1 < v.size <= MAX_SERIES}
        averaged = sorted(series_values(ds))
        what = "orientation x curvature" + (f" (averaged over {', '.join(averaged)})" if averaged else "")
        panel = Panel(layer, full, _strip(strip, ds, o, k))
        paths.append(heatmap_figure([panel], chans, layer, _title(ds, layer, what, label, chosen.how),
                                    out_dir / f"{stem}-{layer}-heatmaps.png", vmax=vmax))
        for param, values in extra.items():
            panels = []
            for v in values:
                sub = select(ds, **{param: v})
                sub_sig = grid(sub, to_sigma(sub, layer, stats) if stats is not None else sig.isel(stimulus=_rows(ds, param, v)))
                panels.append(Panel(f"{param} = {v:g}", sub_sig, _strip(strip, sub, o, k, {param: v}, columns=18)))
            paths.append(
                heatmap_figure(
                    panels, chans, layer,
                    _title(ds, layer, f"series over {param}" + "".join(f" (averaged over {o_})" for o_ in averaged if o_ != param),
                           label, chosen.how),
                    out_dir / f"{stem}-{layer}-{param}-series.png", vmax=vmax,
                )
            )
    return paths


def _rows(ds: xr.Dataset, param: str, value: float) -> np.ndarray:
    return np.flatnonzero(np.isclose(np.asarray(ds.coords[param].values, dtype=np.float64), value, atol=1e-6))


def plot_side_by_side(
    runs: Sequence[tuple[str, xr.Dataset]],
    layer: str,
    out_path: str | Path,
    stats: xr.Dataset | None = None,
    *,
    channels: ChannelSelection | Sequence[int] | None = None,
    families: Sequence[int] | None = None,
    vmax: float = DEFAULT_VMAX,
    strip: StripRenderer | None = None,
) -> Path:
    """Heatmaps of several runs (e.g. curves, fill, colour, angles) as columns of one figure.

    ``channels``: as :func:`plot_heatmaps`, chosen on the first run; ``families``: the
    layer's known family (default from ``probes``).
    """
    if not runs:
        raise ValueError("side by side: no runs given")
    panels, labels = [], set()
    for title, ds in runs:
        sig = to_sigma(ds, layer, stats)
        labels.add(sig.attrs["statistics"])
        g = grid(ds, sig)
        strip_img = _strip(strip, ds, g.coords["orientation"].values, g.coords["curvature"].values, columns=18)
        averaged = sorted(series_values(ds))
        panels.append(Panel(title + (f" (averaged over {', '.join(averaged)})" if averaged else ""), g, strip_img))
    chosen = choose(runs[0][1], layer, panels[0].sigma, channels, None if families is None else {layer: families})
    title = _title(runs[0][1], layer, "runs side by side: " + ", ".join(t for t, _ in runs), "; ".join(sorted(labels)),
                   chosen.how + f" (in {runs[0][0]})")
    return heatmap_figure(panels, chosen.channels, layer, title, out_path, vmax=vmax)


def tuning_curves(sig_grid: xr.DataArray, channels: Sequence[int]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Orientation axis and, per channel, the sigma tuning curve at its best curvature (clipped at 0; NaN = not measured)."""
    cdim = sig_grid.dims[0]
    o = sig_grid.coords["orientation"].values
    k = sig_grid.coords["curvature"].values
    curves = {}
    for c in channels:
        h = sig_grid.sel({cdim: c}).values
        row = h[best_curvature_index(k, np.nan_to_num(h, nan=-np.inf))]
        curves[int(c)] = np.where(np.isfinite(row), np.clip(row, 0, None), np.nan)
    return o, curves


def _polar(ax: plt.Axes, o: np.ndarray, curves: Mapping[int, np.ndarray], short: str, normalise: bool) -> None:
    """Closed curves on a polar axis, coloured by preferred orientation; NaN samples leave gaps."""
    ax.set_theta_zero_location("E")
    ax.set_theta_direction(1)
    theta = np.deg2rad(np.append(o, o[0] + 360.0))
    prefs = {c: fitted_peak(o, np.nan_to_num(v)) for c, v in curves.items()}
    cmap = matplotlib.colormaps["hsv"]
    for c in sorted(curves, key=lambda c: prefs[c] if math.isfinite(prefs[c]) else 1e9):
        v = curves[c]
        top = float(np.max(v, initial=0.0, where=np.isfinite(v)))
        if normalise and top > 0:
            v = v / top
        colour = tuple(0.85 * np.asarray(cmap((prefs[c] % 360) / 360.0)[:3])) if math.isfinite(prefs[c]) else "grey"
        closed = np.append(v, v[0])
        ax.plot(theta, closed, color=colour, lw=1.6, label=c_label(short, c))
        if np.isfinite(closed).all():
            ax.fill(theta, closed, color=colour, alpha=0.08)
    ax.set_xticks(np.deg2rad(np.arange(0, 360, 45)))
    ax.set_xticklabels([f"{t}°" for t in range(0, 360, 45)], fontsize=8)
    ax.tick_params(axis="y", labelsize=7)


def build_radial_figure(ds: xr.Dataset, layer: str, g: xr.DataArray, channels: Sequence[int], title: str) -> Figure:
    """The radial tuning figure of :func:`plot_radial` for one layer, not saved (every text inside the canvas)."""
    o, curves = tuning_curves(g, channels)
    fig = Figure(figsize=(8.5, 7.0), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.06, 0.07, 0.6, 0.66], projection="polar")
    _polar(ax, o, curves, short_layer(layer), normalise=False)
    ax.set_title("post-ReLU sigma at each unit's best curvature (gaps: not measured)", fontsize=9, pad=18)
    ax.legend(loc="center left", bbox_to_anchor=(1.1, 0.5), fontsize=8, title="channel", frameon=False,
              ncol=1 if len(channels) <= 20 else 2)
    head = fig.suptitle(title, fontsize=10, x=0.02, y=0.985, ha="left", va="top")
    fit_title(fig, head)
    below = head.get_window_extent(fig.canvas.get_renderer()).y0 / fig.bbox.height  # the title's bottom
    top = min(0.73, below - 0.09)  # room for the axis title under it
    ax.set_position([0.06, 0.07, 0.6, max(0.3, top - 0.07)])
    return fig


def plot_radial(
    ds: xr.Dataset,
    out_dir: str | Path,
    stats: xr.Dataset | None = None,
    *,
    layers: Sequence[str] | None = None,
    channels: ChannelSelection | Sequence[int] | None = None,
    families: Mapping[str, Sequence[int]] | None = None,
    name: str | None = None,
) -> list[Path]:
    """Radial tuning curves (sigma vs orientation on a circle) of each layer's chosen channels, one PNG per layer.

    ``channels`` and ``families`` as in :func:`plot_heatmaps` (the same channels are chosen).
    """
    out_dir = Path(out_dir)
    check_folder(out_dir)
    paths = []
    for layer in layers or layer_names(ds):
        sig = to_sigma(ds, layer, stats)
        g = grid(ds, sig)
        chosen = choose(ds, layer, g, channels, families)
        fig = build_radial_figure(ds, layer, g, chosen.channels,
                                  _title(ds, layer, "radial tuning curves", sig.attrs["statistics"], chosen.how))
        path = out_dir / f"{name or _stem(ds)}-{layer}-radial.png"
        with output_file(path) as tmp:
            fig.savefig(tmp, facecolor="white")
        paths.append(path)
    return paths


def plot_layer_comparison(
    ds: xr.Dataset,
    out_path: str | Path,
    stats: xr.Dataset | None = None,
    *,
    layers: Sequence[str] = COMPARISON_LAYERS,
    families: Mapping[str, Sequence[int]] | None = None,
) -> Path:
    """Radial tuning curves of conv2d2, mixed3a, mixed3b, mixed4a side by side (those in the file).

    Each unit's curve is normalised to its own peak so that shapes (width, echoes)
    compare across layers; the mean echo index of the layer's units is in the title.
    Channels: each layer's known family, else ``auto`` (:mod:`suites.analysis.channel_choice`).
    """
    present = [layer for layer in layers if layer in layer_names(ds)]
    if not present:
        raise ValueError(f"layer comparison: none of the layers {list(layers)} is in the results (it has {layer_names(ds)})")
    fig = plt.figure(figsize=(4.2 * len(present) + 0.4, 7.0), dpi=100)
    label = ""
    for i, layer in enumerate(present):
        sig = to_sigma(ds, layer, stats)
        label = sig.attrs["statistics"]
        g = grid(ds, sig)
        chans = choose(ds, layer, g, None, families).channels
        o, curves = tuning_curves(g, chans)
        echoes = [echo_index(o, np.nan_to_num(v), fitted_peak(o, np.nan_to_num(v))) for v in curves.values()]
        finite = [e for e in echoes if math.isfinite(e)]
        ax = fig.add_subplot(1, len(present), i + 1, projection="polar")
        _polar(ax, o, curves, short_layer(layer), normalise=True)
        ax.set_title(f"{layer} ({len(chans)} units)\nmean echo index "
                     f"{np.mean(finite) if finite else math.nan:.2f}", fontsize=10, pad=14)
        ax.set_yticklabels([])
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=7, frameon=False, handlelength=1.2)
    fig.suptitle(
        f"{provenance(ds)} - curve families by layer (each unit normalised to its peak)\nsigma from {label}",
        fontsize=10, x=0.02, ha="left",
    )
    fig.subplots_adjust(top=0.78, bottom=0.22, left=0.04, right=0.98, wspace=0.35)
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    return out_path


# ----------------------------------------------------------------------------- discovered families

def _family_members(family: xr.Dataset, layer: str) -> tuple[list[int], list[float]]:
    """Detector channels of ``layer`` sorted by preferred orientation, and those orientations."""
    sub = family.where((family.layer == layer) & family.detector.astype(bool), drop=True)
    if sub.sizes.get("unit", 0) == 0:
        return [], []
    prefs = np.asarray(sub.preferred_orientation.values, dtype=np.float64)
    order = np.argsort(prefs)
    return [int(sub.channel.values[i]) for i in order], [float(prefs[i]) for i in order]


def _family_cell(ax, label: str, preferred: float, last: bool) -> None:
    """Axes dressing of one unit's heatmap: orientation ticks on the last row, preferred-orientation line, label."""
    ax.set_yticks([])
    ax.set_xticks([0, 90, 180, 270])
    ax.set_xticklabels([f"{t}°" for t in (0, 90, 180, 270)] if last else [], fontsize=7)
    ax.tick_params(length=2)
    ax.axvline(preferred, color="white", lw=0.6, alpha=0.7)
    ax.text(-0.02, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize=7)
    for sp in ax.spines.values():
        sp.set_visible(False)


def _family_titles(fig, resp: xr.Dataset, head: str, short: str, box: tuple[float, float, float]) -> None:
    """Title (one line, shrunk to fit) and the subtitle (provenance, sigma, layout) of the family heatmap figure."""
    import textwrap

    left, fig_w, fig_h = box
    kmax = float(resp.coords["curvature"].max()) * float(resp.attrs.get("length", 64.0))
    bottom = "closed ring" if kmax > 6.0 else ("semicircle" if abs(kmax - np.pi) < 0.05 else f"turn {np.degrees(kmax):.0f} deg")
    sub = (f"{provenance(resp)}; {resp.attrs.get('sigma', 'sigma')}; {resp.attrs.get('statistics', '?')}\n"
           f"each row: orientation (x, 0-360°, counter-clockwise) x curvature (y, straight line at top, {bottom} "
           f"at bottom), black on white, averaged over the stimulus positions; labels: "
           f"{'channel' if len(short) > 6 else 'layer:channel'} and preferred orientation (white line), sorted by it")
    head_size = min(12.0, (fig_w - left - 0.2) * 100 / (0.85 * max(1, len(head))))  # one line, within the figure
    fig.text(left / fig_w, 1 - 0.15 / fig_h, head, ha="left", va="top", fontsize=head_size, fontweight="bold")
    width = max(60, int((fig_w - left - 0.2) * 100 / 6.4))
    sub = "\n".join(textwrap.fill(line, width) for line in sub.split("\n"))
    fig.text(left / fig_w, 1 - 0.45 / fig_h, sub, ha="left", va="top", fontsize=8)


def family_heatmap_figure(
    resp: xr.Dataset,
    family: xr.Dataset,
    layer: str,
    out_path: str | Path,
    *,
    title: str | None = None,
    columns: int | None = None,
    vmax: float | None = None,
) -> Path:
    """The discovered family's heatmaps, sorted by preferred orientation, in the article's layout.

    One small orientation x curvature heatmap per detector (black on white, post-ReLU
    sigma above the blank image; x = orientation 0..360 degrees, y = curvature, straight
    line at the top), read down the columns in order of preferred orientation, under
    the stimulus strip of the sweep. ``vmax`` (sigma) defaults to the 90th percentile of
    the detectors' peaks, rounded up.
    """
    from .curve_family import sigma_responses

    chans, prefs = _family_members(family, layer)
    if not chans:
        raise ValueError(f"family figure: no curve detectors in layer {layer!r} to draw")
    s = sigma_responses(resp, layer)["curve"]  # (C, P, K, O)
    ids = {int(c): i for i, c in enumerate(resp.coords[f"{layer}_channel"].values)}
    o = resp.coords["orientation"].values
    k = resp.coords["curvature"].values
    heats = [s[ids[c], 0] for c in chans]
    peaks = np.array([np.nanmax(h) for h in heats])
    if vmax is None:
        vmax = float(max(1.0, math.ceil(np.percentile(peaks, 90))))
    n = len(chans)
    ncol = columns or (1 if n <= 6 else 2 if n <= 16 else 3 if n <= 36 else 4)
    nrow = math.ceil(n / ncol)
    cell_w, cell_h, gap_w, gap_h = 3.3, 0.62, 0.75, 0.12
    left, right, top, bottom = 0.9, 1.1, 1.45, 0.55
    strip = resp["strip"].values if "strip" in resp else None
    strip_h = (cell_w * strip.shape[0] / strip.shape[1]) if strip is not None else 0.0
    fig_w = left + ncol * cell_w + (ncol - 1) * gap_w + right
    fig_h = top + strip_h + 0.1 + nrow * (cell_h + gap_h) + bottom
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=100, facecolor="white")
    cmap, norm = article_cmap(), Normalize(vmin=0.0, vmax=vmax)
    do = (o[-1] - o[0]) / max(o.size - 1, 1)
    xext = (o[0] - do / 2, o[-1] + do / 2)
    im = None
    short = short_layer(layer)
    for j in range(ncol):
        x0 = left + j * (cell_w + gap_w)
        y = fig_h - top
        if strip is not None:
            ax = fig.add_axes([x0 / fig_w, (y - strip_h) / fig_h, cell_w / fig_w, strip_h / fig_h])
            ax.imshow(strip, extent=(0, 360, 0, 1), aspect="auto", interpolation="antialiased")
            ax.set_xlim(*xext)
            ax.set_axis_off()
        y -= strip_h + 0.1
        for r in range(nrow):
            i = j * nrow + r
            if i >= n:
                break
            yy = y - (r + 1) * cell_h - r * gap_h
            ax = fig.add_axes([x0 / fig_w, yy / fig_h, cell_w / fig_w, cell_h / fig_h])
            im = ax.imshow(_display(heats[i]), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest",
                           extent=(xext[0], xext[1], k.size - 0.5, -0.5))
            _family_cell(ax, f"{c_label(short, chans[i])}\n{prefs[i]:.0f}°", prefs[i], r == nrow - 1 or i == n - 1)
    cax = fig.add_axes([(fig_w - right + 0.35) / fig_w, (fig_h - top - strip_h - 0.1 - min(4.0, nrow * (cell_h + gap_h))) / fig_h,
                        0.15 / fig_w, min(4.0, nrow * (cell_h + gap_h)) / fig_h])
    cb = fig.colorbar(im, cax=cax, extend="both")
    baseline = "blank" if resp.attrs.get("sigma_baseline", "blank") == "blank" else "dataset mean"
    cb.set_label(f"sigma above the {baseline}", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    _family_titles(fig, resp, title or f"{n} curve detectors in {layer}", short, (left, fig_w, fig_h))
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, dpi=100, facecolor="white")
    plt.close(fig)
    return out_path


def c_label(short: str, channel: int) -> str:
    """Label of a unit: ``"3b:379"`` for the article's short layer names, else the channel (the title names the layer)."""
    return f"{short}:{channel}" if len(short) <= 6 else f"ch {channel}"


def family_radial_figure(
    resp: xr.Dataset,
    family: xr.Dataset,
    layer: str,
    out_path: str | Path,
    *,
    control: xr.Dataset | None = None,
    title: str | None = None,
) -> Path:
    """Radial tuning curves of the family (each normalised to its peak, at its best curvature) and a rose of
    preferred orientations (trained, and the random-weights control when given)."""
    from .curve_family import sigma_responses

    chans, prefs = _family_members(family, layer)
    if not chans:
        raise ValueError(f"radial figure: no curve detectors in layer {layer!r} to draw")
    s = sigma_responses(resp, layer)["curve"]
    ids = {int(c): i for i, c in enumerate(resp.coords[f"{layer}_channel"].values)}
    o = resp.coords["orientation"].values
    k = resp.coords["curvature"].values
    curves = {}
    for c in chans:
        h = s[ids[c], 0]
        curves[c] = np.clip(np.nan_to_num(h[best_curvature_index(k, np.nan_to_num(h, nan=-np.inf))]), 0, None)
    fig = plt.figure(figsize=(11.5, 6.0), dpi=100, facecolor="white")
    ax = fig.add_axes([0.04, 0.08, 0.4, 0.7], projection="polar")
    _polar(ax, o, curves, short_layer(layer), normalise=True)
    ax.set_yticklabels([])
    ax.set_title("tuning at each unit's best curvature\n(normalised to its peak, coloured by preferred orientation)",
                 fontsize=9, pad=16)
    ax2 = fig.add_axes([0.55, 0.08, 0.4, 0.7], projection="polar")
    ax2.set_theta_zero_location("E")
    ax2.set_theta_direction(1)
    bins = np.deg2rad(np.arange(0, 361, 15))
    ax2.hist(np.deg2rad(np.asarray(prefs) % 360), bins=bins, color="tab:blue", alpha=0.75, label=f"trained ({len(prefs)})")
    if control is not None:
        _, cprefs = _family_members(control, layer)
        if cprefs:
            ax2.hist(np.deg2rad(np.asarray(cprefs) % 360), bins=bins, color="tab:red", alpha=0.75)
        ax2.plot([], [], color="tab:red", lw=6, alpha=0.75, label=f"random-weights control ({len(cprefs)})")
    ax2.set_xticks(np.deg2rad(np.arange(0, 360, 45)))
    ax2.set_xticklabels([f"{t}°" for t in range(0, 360, 45)], fontsize=8)
    ax2.tick_params(axis="y", labelsize=7)
    ax2.set_title("preferred orientations (15° bins)", fontsize=9, pad=16)
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), fontsize=8, frameon=False, ncol=2)
    fig.suptitle(title or f"{provenance(resp)} - {layer}: {len(chans)} curve detectors", fontsize=10, x=0.02, ha="left")
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    return out_path


COMPARE_METRICS: tuple[tuple[str, str], ...] = (
    ("detectors", "curve detectors"),
    ("largest_gap_deg", "largest orientation gap (deg)"),
    ("median_tuning_width_deg", "median tuning width, FWHM (deg)"),
    ("median_preferred_curvature", "median preferred curvature (1/px)"),
)


def compare_figure(rows: Sequence[Mapping], out_path: str | Path, *, title: str = "curve families compared") -> Path:
    """Bar charts side by side: family size, largest orientation gap, tuning width and curvature preference.

    ``rows``: dicts with ``label`` (e.g. ``"efficientnet-lite0 blocks.3.2.depthwise"``),
    ``control`` (bool: random weights) and the numbers of :data:`COMPARE_METRICS`
    (None where undefined, e.g. no detectors).
    """
    if not rows:
        raise ValueError("compare: nothing to compare")
    labels = [str(r["label"]) for r in rows]
    fig, axes = plt.subplots(1, len(COMPARE_METRICS), figsize=(3.3 * len(COMPARE_METRICS) + 1.5, 0.32 * len(rows) + 2.2),
                             dpi=100, sharey=True, facecolor="white")
    y = np.arange(len(rows))
    for ax, (key, name) in zip(axes, COMPARE_METRICS):
        vals = [r.get(key) for r in rows]
        v = np.array([np.nan if x is None else float(x) for x in vals])
        colours = ["tab:red" if r.get("control") else "tab:blue" for r in rows]
        ax.barh(y, np.nan_to_num(v), color=colours, alpha=0.8)
        for yi, vi in zip(y, v):
            ax.text(0 if not np.isfinite(vi) else vi, yi, " n/a" if not np.isfinite(vi) else f" {vi:.3g}",
                    va="center", fontsize=7)
        if key == "largest_gap_deg":
            ax.axvline(45, color="grey", lw=0.8, ls="--")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.invert_yaxis() if ax is axes[0] else None
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(labels, fontsize=8)
    fig.suptitle(title + "  (blue: trained, red: random-weights control)", fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    return out_path
