"""The figure of ``curvebench characterize``: one panel per claim, per-unit values beside the article's statement."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import xarray as xr

from suites.atomic import output_file

__all__ = ["characterize_figure"]

#: (claim, per-unit variables drawn, reference line: the value "invariant"/"no effect" predicts)
_PANELS = (
    ("fill", ("fill_ratio", "fill_heatmap_r"), 1.0),
    ("colour", ("colour_ratio_red_on_green", "colour_ratio_green_on_red", "colour_ratio_blue_on_yellow",
                "colour_ratio_yellow_on_blue"), 1.0),
    ("polarity", ("polarity_ratio",), 1.0),
    ("rounding", (), 1.0),
    ("combing", ("combing_ratio",), 1.0),
)


def _rounding_panel(ax, ds: xr.Dataset) -> None:
    """Each unit's response (sigma) against rounding (0 = the sharp angle, 1 = the arc), over its arc response."""
    r = np.asarray(ds.rounding_sigma.values, dtype=np.float64)
    top = r[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(top > 0, r / top, np.nan)
    x = ds.rounding.values
    for row in norm:
        ax.plot(x, row, color="tab:blue", alpha=0.35, lw=0.8)
    ax.plot(x, np.nanmedian(norm, axis=0), color="black", lw=2, marker="o")
    ax.set_xticks(x)
    ax.set_xlabel("rounding (0 = angle, 1 = arc)", fontsize=7)


def _panel(ax, ds: xr.Dataset, summ: dict, claim: str, names, ref: float) -> None:
    ax.ticklabel_format(axis="y", useOffset=False)
    if claim == "rounding":
        _rounding_panel(ax, ds)
    else:
        _points(ax, ds, summ, claim, names)
    ax.axhline(ref, color="grey", lw=0.8, ls="--")
    extra = ""
    if claim == "rounding":
        r = summ["claims"]["rounding"]["rounding_rises"]
        extra = f": rises at every step in {r['count']}/{r['of']}"
    if claim == "combing":
        r = summ["claims"]["combing"]["combing_helps"]
        extra = f": helps in {r['count']}/{r['of']}"
    article = textwrap.fill("article: " + summ["claims"][claim]["article"], 48)
    ax.set_title(f"{claim}{extra}\n{article}", fontsize=7.5, loc="left")


def _points(ax, ds: xr.Dataset, summ: dict, claim: str, names) -> None:
    rng = np.random.default_rng(0)
    for i, n in enumerate(names):
        v = np.asarray(ds[n].values, dtype=np.float64)
        v = v[np.isfinite(v)]
        ax.scatter(i + rng.uniform(-0.15, 0.15, v.size), v, s=10, alpha=0.6, color="tab:blue")
        s = summ["claims"][claim][n]
        if s.get("median") is not None:
            lo, hi = s["ci95"]
            ax.errorbar([i + 0.3], [s["median"]], yerr=[[s["median"] - lo], [hi - s["median"]]], fmt="o", color="black",
                        capsize=3)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("colour_ratio_", "").replace("_", " ") for n in names], fontsize=7, rotation=20)


def characterize_figure(ds: xr.Dataset, summ: dict, out_path: str | Path) -> Path:
    """Five panels (fill, colour, polarity, rounding, combing): per-unit ratios (dots), family median with 95% CI
    (black), the invariance line (1, dashed); written through :mod:`suites.atomic`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(_PANELS), figsize=(16, 4.8), dpi=100, facecolor="white")
    for ax, (claim, names, ref) in zip(axes, _PANELS):
        _panel(ax, ds, summ, claim, names, ref)
    axes[0].set_ylabel("ratio (sigma / sigma), or heatmap r")
    axes[3].set_ylabel("response / arc response")
    fig.suptitle(f"{summ['model']} {summ['layer']}: {summ['members']} curve detectors vs the article's claims "
                 f"(dots: units; black: median, 95% bootstrap CI)", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    return out_path
