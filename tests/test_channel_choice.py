"""Which channels sweep figures show (``--channels``), figure text inside the canvas, NaN cells, quick grids."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
import xarray as xr

import stimuli
from suites.analysis import grid, to_sigma
from suites.analysis.channel_choice import NoChannels, choose_channels, spread, sweep_detectors
from suites.analysis.plots import (Panel, build_heatmap_figure, build_radial_figure, plot_heatmaps, plot_radial,
                                   tuning_curves)
from suites.analysis.synthetic import synthetic_results
from suites.results.family_file import with_family_files
from suites.specs.channel_selection import ChannelSelection, parse_channels

pytestmark = pytest.mark.usefixtures("one_thread")

SPIKE = 12  # channel of the toy model's spike unit


def toy_sweep(orientations: np.ndarray, curvatures: np.ndarray) -> xr.Dataset:
    """A results-like dataset of ``toy_nets.SpikeAndCurves`` at the unit nearest the image centre.

    Ground-truth ``curves`` unit 27 is centred on pixel 111 (4 j + 3), the stimuli on it.
    """
    import toy_nets

    net = toy_nets.SpikeAndCurves().eval()
    oo, kk = np.meshgrid(orientations, curvatures, indexing="ij")
    o, k = oo.ravel(), kk.ravel()
    pre = []
    with torch.no_grad():
        for s in range(0, o.size, 64):
            x = stimuli.render("curve", orientation=torch.tensor(o[s:s + 64]), curvature=torch.tensor(k[s:s + 64]),
                               length=64.0, width=3.0, size=224, position=(111.0, 111.0))
            pre.append(net(x)[:, :, 27, 27].double().numpy())
    act = np.concatenate(pre)
    ds = xr.Dataset({"units": (("stimulus", "units_channel"), np.maximum(act, 0)),
                     "units_pre_relu": (("stimulus", "units_channel"), act)},
                    coords={"stimulus": np.arange(o.size), "orientation": ("stimulus", o), "curvature": ("stimulus", k),
                            "units_channel": np.arange(act.shape[1])})
    ds.attrs.update(model="toy_nets:spike_and_curves", weights_sha256="", suite_name="toy")
    return ds


@pytest.fixture(scope="module")
def toy() -> xr.Dataset:
    # 10-degree steps over the circle x 7 curvatures (0 .. 0.06 /px); the spike's stimulus is on the grid
    return toy_sweep(np.arange(0, 360, 10.0), np.linspace(0, 0.06, 7))


def test_toy_spike_is_the_strongest_unit_but_never_chosen(toy) -> None:
    g = grid(toy, to_sigma(toy, "units", None))
    peak = np.nanmax(g.values.reshape(g.shape[0], -1), axis=1)
    # the spike answers one stimulus only, and would top a ranking by one cell's value
    assert (g.values[SPIKE] > 0).sum() == 1
    assert int(np.argmax(peak)) == SPIKE
    passed, crit = sweep_detectors(g)
    assert SPIKE not in passed
    # the designed curve units: every echo-free one passes (odd units keep an echo of 0.42 and may pass)
    assert set(range(0, 12, 2)) <= set(passed)
    chosen = choose_channels(toy, "units", g)
    assert SPIKE not in chosen.channels and chosen.source == "sweep test"
    assert "curve-detector test" in chosen.how and "one polarity" in chosen.how
    # ordered by preferred orientation around the circle (the designed peaks are 30 j degrees; 0 may sit at 359.9)
    prefs = [30.0 * c for c in chosen.channels]
    assert sum(b < a for a, b in zip(prefs, prefs[1:])) <= 1


def test_toy_spike_never_chosen_on_a_coarse_grid() -> None:
    # the quick grid's 30-degree steps: a one-sample lobe (the spike, or a unit narrower than the step) does not pass
    ds = toy_sweep(np.arange(0, 360, 30.0), np.linspace(0, 0.06, 7))
    g = grid(ds, to_sigma(ds, "units", None))
    assert SPIKE not in sweep_detectors(g)[0]
    assert sweep_detectors(g)[1].min_tuning_width == pytest.approx(45.0)


def test_auto_prefers_known_then_discovered_family(toy, tmp_path) -> None:
    from suites.file_kinds import CURVE_FAMILY_KIND

    g = grid(toy, to_sigma(toy, "units", None))
    known = choose_channels(toy, "units", g, known=[4, 2, 9])
    assert known.source == "known family" and sorted(known.channels) == [2, 4, 9]
    fam = xr.Dataset({"detector": ("unit", np.array([True, False, True])),
                      "preferred_orientation": ("unit", np.array([240.0, 0.0, 30.0]))},
                     coords={"layer": ("unit", np.array(["units"] * 3)), "channel": ("unit", np.array([8, 3, 1]))})
    fam.attrs.update(kind=CURVE_FAMILY_KIND, model="toy_nets:spike_and_curves", weights_sha256="", random_weights=0)
    folder = tmp_path / "discover-toy"
    folder.mkdir()
    fam.to_netcdf(folder / "family.nc", engine="h5netcdf")
    found = choose_channels(toy, "units", g, with_family_files(ChannelSelection(), [tmp_path]))
    assert found.source == "discovered family" and found.channels == [1, 8]
    assert str(folder / "family.nc") in found.how
    given = choose_channels(toy, "units", g, with_family_files(parse_channels(str(folder / "family.nc")), []))
    assert given.source == "family file" and given.channels == [1, 8]
    # another network's family is passed over by auto and refused when given
    other = fam.copy()
    other.attrs["model"] = "groundtruth"
    other.to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="discovered in model 'groundtruth'"):
        choose_channels(toy, "units", g, with_family_files(parse_channels(str(tmp_path / "other.nc")), []))
    (folder / "family.nc").unlink()
    (tmp_path / "other.nc").rename(folder / "family.nc")
    assert choose_channels(toy, "units", g, with_family_files(ChannelSelection(), [tmp_path])).source == "sweep test"
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        with_family_files(parse_channels(str(tmp_path / "missing.nc")), [])


def test_selection_errors_and_modes(toy) -> None:
    g = grid(toy, to_sigma(toy, "units", None))
    assert choose_channels(toy, "units", g, parse_channels("all")).channels.__len__() == 13
    assert choose_channels(toy, "units", g, parse_channels("3,0")).how.startswith("channels 3, 0")
    with pytest.raises(ValueError, match=r"channels \[99\] not in the results"):
        choose_channels(toy, "units", g, parse_channels("3,99"))
    with pytest.raises(ValueError, match="no known curve family"):
        choose_channels(toy, "units", g, parse_channels("family"))
    # auto with curvatures below the test's minimum: says why, no figure
    flat = toy.where(toy.curvature < 0.015, drop=True)
    with pytest.raises(NoChannels, match="below the curve-detector test"):
        choose_channels(flat, "units", grid(flat, to_sigma(flat, "units", None)))


@pytest.mark.parametrize("text, allowed, message", [
    ("foo", None, r"expected auto, all, family, channel ids like 3,17,42 or a FAMILY.nc"),
    ("3,-1", None, r"channel ids are >= 0, got -1"),
    ("3,3", None, r"channel 3 is given twice"),
    (" , ", None, r"expected auto"),
    ("auto", ("all", "family", "ids", "file"), r"'auto' is not allowed here; expected all, family"),
])
def test_parse_channels_errors(text, allowed, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_channels(text, allowed) if allowed else parse_channels(text)


def test_parse_channels_forms(tmp_path) -> None:
    assert parse_channels("auto") == ChannelSelection()
    assert parse_channels(" 3, 17,42 ").ids == (3, 17, 42)
    assert parse_channels("fam/family.nc").path.name == "family.nc"
    assert parse_channels("all").describe() == "all"


def test_optimize_and_report_share_the_vocabulary() -> None:
    from curvebench.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["optimize", "--model", "groundtruth", "--layer", "curves", "--out", "x.nc",
                              "--channels", "2,9"])
    assert args.channels == ChannelSelection(mode="ids", ids=(2, 9))
    args = parser.parse_args(["report", "a.h5", "--out", "r.html", "--channels", "fam.nc"])
    assert args.channels.mode == "file"
    with pytest.raises(SystemExit):
        parser.parse_args(["optimize", "--model", "groundtruth", "--layer", "curves", "--out", "x.nc",
                           "--channels", "auto"])


def test_spread_keeps_orientation_order() -> None:
    prefs = {c: float(10 * c) for c in range(20)}
    assert spread(list(range(20))[::-1], prefs, 5) == [0, 4, 8, 12, 16]
    assert spread([3, 1], {1: float("nan"), 3: 5.0}, 4) == [3, 1]


# -- figures -------------------------------------------------------------------------------
def _texts_outside(fig) -> list[str]:
    """Visible, non-empty text artists whose drawn extent leaves the figure (1 px slack)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    bad = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1:
            bad.append(f"{t.get_text()[:40]!r} at {e}")
    return bad


LONG = "blocks.3.2.depthwise_with_a_very_long_layer_name"


@pytest.fixture
def long_named() -> xr.Dataset:
    ds = synthetic_results([dict(preferred=p, peak=30.0) for p in (0, 120, 240)], layer=LONG, channel_ids=[284, 7, 45],
                           orientations=np.arange(0, 360, 10.0), curvatures=np.linspace(0, 0.08, 5))
    ds.attrs.update(model="efficientnet-lite0", weights="/a/long/path/to/the/weights/efficientnet-lite0-57934424.pth",
                    weights_sha256="57934424" * 8)
    return ds


def test_every_text_inside_the_heatmap_and_radial_figures(long_named) -> None:
    from suites.analysis.plots import _title

    g = grid(long_named, to_sigma(long_named, LONG, None))
    how = "channels 284, 7, 45, as given in a long explanation " * 4
    title = _title(long_named, LONG, "orientation x curvature", "sweep's own statistics (no dataset statistics given)", how)
    for panels in ([Panel(LONG, g)], [Panel("a = 1", g), Panel("a = 2", g), Panel("a = 3", g)]):
        fig = build_heatmap_figure(panels, [284, 7, 45], LONG, title)
        assert _texts_outside(fig) == []
        labels = [t.get_text() for t in fig.texts] + [a.get_text() for ax in fig.axes for a in ax.texts]
        assert "ch 284" in labels and not any(LONG + ":" in s for s in labels)  # the layer is in the title
    fig = build_radial_figure(long_named, LONG, g, [284, 7, 45], title)
    assert _texts_outside(fig) == []


def test_nan_cells_are_missing_and_no_numpy_warnings(long_named, tmp_path) -> None:
    ds = long_named.copy(deep=True)
    # a subset sweep: the tightest curve not measured at orientations < 200 (20 cells); one channel never
    # fires (std 0 -> NaN sigma)
    k, o = ds.curvature.values, ds.orientation.values
    ds = ds.isel(stimulus=np.flatnonzero(~((k == k.max()) & (o < 200))))
    ds[LONG].values[:, 1] = 0.0
    ds[f"{LONG}_pre_relu"].values[:, 1] = -1.0
    g = grid(ds, to_sigma(ds, LONG, None))
    assert np.isnan(g.values[0]).sum() == 20
    _, curves = tuning_curves(g, [284, 7])
    assert np.isnan(curves[7]).all()  # not drawn as zero
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = plot_heatmaps(ds, tmp_path, channels=ChannelSelection(mode="ids", ids=(284, 7, 45)), name="p")
        paths += plot_radial(ds, tmp_path, channels=[284, 7, 45], name="p")
        with pytest.raises(NoChannels):
            plot_heatmaps(ds.isel(stimulus=slice(0, 0)), tmp_path, name="empty")
    assert len(paths) == 2
    from suites.analysis.plots import _display

    shown = _display(g.sel({g.dims[0]: 284}).values)
    assert shown.mask.sum() == 20 and not shown.mask[0, 0] and shown.mask[-1, 0]


def test_quick_grid_of_periodic_axes_has_no_end_point() -> None:
    from suites.specs.suite import load_suite

    s = load_suite("curves").quick()
    axes = dict(s.axes)
    np.testing.assert_allclose(axes["orientation"], np.arange(0, 360, 30.0))
    assert axes["curvature"][0] == 0 and axes["curvature"][-1] == pytest.approx(0.049087385212)  # both ends kept
    legacy = dict(load_suite("curves").quick(legacy=True).axes)
    assert legacy["orientation"][-1] == 359.5  # what files written before hold (they still verify)
    part = replace(s, axes=(("orientation", np.arange(0, 90, 1.0)), ("curvature", np.array([0.01]))))
    o = dict(part.quick().axes)["orientation"]
    assert o[0] == 0 and o[-1] == 89  # a periodic axis that does not cover the circle keeps both ends


def test_report_sweep_page_chooses_like_plot_and_says_how(toy) -> None:
    from suites.analysis.report import ReportOptions, report_data

    layer = report_data([("toy", toy)], ReportOptions())["runs"][0]["layers"][0]
    assert SPIKE not in layer["shown"] and "curve-detector test" in layer["chosen"]
    layer = report_data([("toy", toy)], ReportOptions(channels=parse_channels("5,1")))["runs"][0]["layers"][0]
    assert sorted(layer["shown"]) == [1, 5] and layer["chosen"].startswith("channels 5, 1")


def test_suite_channels_take_the_same_family_word() -> None:
    from conftest import curve_suite_text

    from suites.specs.suite import parse_suite

    s = parse_suite(curve_suite_text("fam", model_extra='channels = "family"'), path="fam.toml")
    assert s.channels == "curves"  # the family kind: the model's curve family of each layer
    s = parse_suite(curve_suite_text("fam", model_extra='channels = { curves = "family" }'), path="fam.toml")
    assert s.channels == {"curves": "curves"}


def test_report_layer_without_detectors_lists_tuning_and_says_why() -> None:
    from suites.analysis.report import ReportOptions, report_data

    # curvatures below the test's 0.02/px: the test cannot be applied, no heatmap, the page says why
    ds = synthetic_results([dict(preferred=p) for p in (0, 90, 180)], layer="mixed4b",
                           orientations=np.arange(0, 360, 10.0), curvatures=np.linspace(0, 0.01, 3))
    layer = report_data([("s", ds)], ReportOptions())["runs"][0]["layers"][0]
    assert layer["shown"] == [] and layer["chosen"].startswith("none (the sweep's curvatures reach 0.01/px")
    assert len(layer["tuning"]) == 3
