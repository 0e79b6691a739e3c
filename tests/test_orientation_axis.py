"""The article's orientation axis: the exact mapping, checked by rendering against the article's strips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import stimuli
from curvebench.cli import main
from suites.analysis.tuning_report import tuning_report
from suites.analysis.orientation_axis import from_axis, to_axis, with_orientation_axis
from suites.analysis.synthetic import synthetic_results

# Side each column of the article's fill strip fills (../shared/reference/fill-3b-heatmaps.png,
# 36 columns of 28.46 px, rows y = 4..32 (straight) and 89..118 (semicircle)): the direction
# of the cell's darkness centroid from the cell centre, degrees counter-clockwise on screen:
#   s = 1 - asarray(Image.open(png).convert("L"))[:125] / 255; x0 = 136; p = (1160.5 - 164.5) / 35
#   cell = s[y0:y1, round(x0 + c p):round(x0 + (c + 1) p)]; atan2(-cy, cx) of its centroid (cx, cy)
ARTICLE_FILL_SIDE = {
    "straight": [0, 353, 345, 336, 322, 307, 294, 284, 277, 270, 263, 256, 247, 233, 218, 204, 195, 187, 180,
                 173, 165, 156, 142, 125, 114, 104, 97, 90, 83, 77, 67, 55, 38, 25, 15, 7],
    "semicircle": [359, 344, 335, 326, 320, 312, 305, 296, 285, 270, 255, 246, 237, 228, 222, 214, 207, 196,
                   181, 167, 154, 147, 137, 132, 124, 116, 105, 90, 75, 65, 57, 49, 41, 34, 25, 13],
}


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def test_mapping_is_exact_and_its_own_inverse() -> None:
    o = np.array([0.0, 0.5, 90.0, 180.0, 270.0, 359.5, 360.0, -30.0, 725.0])
    np.testing.assert_allclose(to_axis(o, "article"), [0, 359.5, 270, 180, 90, 0.5, 0, 30, 355])
    np.testing.assert_allclose(from_axis(to_axis(o, "article"), "article"), np.mod(o, 360.0))
    np.testing.assert_array_equal(to_axis(o, "curvebench"), o)
    with pytest.raises(ValueError, match="allowed curvebench, article"):
        to_axis(o, "clockwise")


@pytest.mark.parametrize("row,turn", [("straight", 0.0), ("semicircle", math.pi)])
def test_article_axis_fills_the_side_the_article_strip_fills(row: str, turn: float) -> None:
    article = np.arange(0.0, 360.0, 10.0)  # the strip's 36 columns
    radius = 12.7
    length = math.pi * radius
    img = stimuli.render("curve", orientation=torch.tensor(from_axis(article, "article")), curvature=turn / length,
                         length=length, width=0.0, fill=1.0, window=28.0, position=(16.0, 16.0), size=32,
                         dtype=torch.float64)
    cov = 1.0 - img[:, 0]
    centre = torch.arange(32, dtype=torch.float64) + 0.5 - 16.0
    cx = (cov.sum(1) * centre).sum(-1) / cov.sum((1, 2))
    cy = (cov.sum(2) * centre).sum(-1) / cov.sum((1, 2))
    ours = np.degrees(np.arctan2(-cy.numpy(), cx.numpy())) % 360.0
    assert _angle_diff(ours, ARTICLE_FILL_SIDE[row]).max() < 6.0
    # on curvebench's own axis the same columns would fill the mirrored side
    assert _angle_diff(np.mod(article, 360), ARTICLE_FILL_SIDE[row]).max() > 90.0


def test_article_strip_first_column_is_a_vertical_line_over_a_curve_opening_right(tmp_path) -> None:
    npy = tmp_path / "strip.npy"
    assert main(["render", "--orientation-axis", "article", "--orientation", "0,90", "--curvature", "0,0.049",
                 "--size", "96", "--npy", str(npy)]) == 0
    img = np.load(npy)  # rows: curvature 0, 0.049 (a semicircle of the 64 px arc); columns: article 0, 90
    ink = 1.0 - img[:, 0]
    xs = np.arange(96) + 0.5 - 48.0
    cx = (ink.sum(1) * xs).sum(-1) / ink.sum((1, 2))
    cy = (ink.sum(2) * xs).sum(-1) / ink.sum((1, 2))
    line = ink[0]
    assert line[:, 46:50].sum() > 0.95 * line.sum()  # article 0, straight: a vertical line
    assert cx[2] > 5 and abs(cy[2]) < 0.5  # article 0, semicircle: ink centroid R (1 - 2/pi) right: opens right
    assert cy[3] > 5 and abs(cx[3]) < 0.5  # article 90: opens down (clockwise from right)


def test_tuning_report_on_the_article_axis() -> None:
    ds = synthetic_results([dict(preferred=30.0)], orientations=np.arange(0.0, 360.0, 2.0))
    ours = tuning_report(ds)["layers"]["mixed3b"]["channels"]
    art = tuning_report(ds, orientation_axis="article")
    pref = lambda r: next(iter(r.values()))["preferred_orientation"]  # noqa: E731
    assert pref(ours) == pytest.approx(30.0, abs=1.0)
    assert pref(art["layers"]["mixed3b"]["channels"]) == pytest.approx(330.0, abs=1.0)
    assert art["orientation_axis"] == "article" and "clockwise on screen" in art["units"]["orientation"]
    moved = with_orientation_axis(ds, "article")
    assert moved.attrs["orientation_axis"] == "article" and with_orientation_axis(moved, "article") is moved
    np.testing.assert_allclose(with_orientation_axis(moved, "curvebench").orientation.values, ds.orientation.values)


def test_heatmap_grid_and_label_on_the_article_axis() -> None:
    from suites.analysis.arrays import grid
    from suites.analysis.plots import _orientation_label

    ds = synthetic_results([dict(preferred=30.0), dict(preferred=200.0)], orientations=np.arange(0.0, 360.0, 5.0))
    g, a = grid(ds, layer="mixed3b"), grid(with_orientation_axis(ds, "article"), layer="mixed3b")
    np.testing.assert_array_equal(a.orientation.values, g.orientation.values)  # both 0..355, ascending
    mirrored = (360 - g.orientation.values) % 360
    np.testing.assert_array_equal(a.sel(orientation=mirrored).values, g.values)
    assert "clockwise on screen" in _orientation_label(a) and "counter-clockwise" in _orientation_label(g)
