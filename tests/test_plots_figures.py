"""Figures: files exist, have the expected size and drawn (non-blank) content."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from suites.analysis.distribution import plot_activation_distribution
from suites.analysis.plots import plot_heatmaps, plot_layer_comparison, plot_radial, plot_side_by_side
from suites.analysis.synthetic import synthetic_results


def _drawn(path, min_colours: int = 40) -> np.ndarray:
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 500, img.shape
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours, f"{path.name}: only {len(colours)} colours"
    assert (img.min(axis=2) < 240).mean() > 0.05, f"{path.name}: almost blank"
    return img


@pytest.fixture
def family() -> xr.Dataset:
    prefs = [243, 268.5, 290, 358, 22.5, 66.5]
    ds = synthetic_results([dict(preferred=p, peak=40.0) for p in prefs], channel_ids=[379, 406, 385, 343, 342, 388],
                           orientations=np.arange(0, 360, 4.0), curvatures=np.linspace(0, 0.1, 8),
                           extra={"rounding": [0.0, 0.5, 1.0]}, modulate={"rounding": [0.4, 0.7, 1.0]})
    ds.attrs["model"] = "inceptionv1"  # six channels of the article's mixed3b family: chosen by `auto`
    return ds


def test_heatmaps_and_series(family, tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no suite text in a synthetic file: no stimulus strip (warned)
        paths = plot_heatmaps(family, tmp_path, name="syn")
    assert [p.name for p in paths] == ["syn-mixed3b-heatmaps.png", "syn-mixed3b-rounding-series.png"]
    for p in paths:
        _drawn(p)
    wide = np.asarray(Image.open(paths[1]))
    assert wide.shape[1] > np.asarray(Image.open(paths[0])).shape[1]  # three columns side by side
    with pytest.raises(ValueError, match="channels"):
        plot_heatmaps(family, tmp_path, channels=[1])


def test_strip_warns_without_suite(family, tmp_path) -> None:
    from suites.stimulus_strips import stimulus_strip

    with pytest.warns(UserWarning, match="no suite text"):
        plot_heatmaps(family, tmp_path, layers=["mixed3b"], strip=stimulus_strip)


def test_radial_side_by_side_and_layer_comparison(family, tmp_path) -> None:
    (radial,) = plot_radial(family, tmp_path)
    _drawn(radial)
    p = plot_side_by_side([("a", family), ("b", family)], "mixed3b", tmp_path / "sbs.png")
    _drawn(p)
    two = synthetic_results([dict(preferred=p, echo=0.4) for p in (0, 120, 240)], layer="conv2d2")
    both = xr.merge([two, synthetic_results([dict(preferred=p) for p in (60, 180, 300)], layer="mixed3b")], compat="override")
    both.attrs.update(two.attrs)
    _drawn(plot_layer_comparison(both, tmp_path / "layers.png"))
    with pytest.raises(ValueError, match="none of the layers"):
        plot_layer_comparison(synthetic_results([dict(preferred=0)], layer="edges"), tmp_path / "x.png")


def test_distribution_figure(tmp_path) -> None:
    import torch

    from suites.running.dataset_stats import RunningChannelStats
    from suites.analysis.sigma import STATS_KIND

    rng = np.random.default_rng(0)
    rs = RunningChannelStats(2, bins=120)
    for _ in range(3):
        rs.update(torch.from_numpy(np.stack([rng.laplace(-1, 1, 20000), rng.laplace(0.5, 0.3, 20000)], 1)))
    ds = xr.Dataset(rs.variables("mixed3b"), coords={"mixed3b_channel": [379, 406]})
    ds.attrs.update(kind=STATS_KIND, model="synthetic", source="unit test", n_images=1, proxy=0)
    _drawn(plot_activation_distribution(ds, "mixed3b", [379, 406], tmp_path / "d.png"))
    with pytest.raises(ValueError, match="channel 5"):
        plot_activation_distribution(ds, "mixed3b", [5], tmp_path / "e.png")


def test_incomplete_run_is_labelled() -> None:
    from suites.analysis.plots import completeness

    ds = synthetic_results([dict(preferred=0.0)])
    assert completeness(ds) == ""
    ds.attrs["rows_total"] = 10 * ds.sizes["stimulus"]
    assert "incomplete run" in completeness(ds.isel(stimulus=slice(0, 5)))
