"""Dataset statistics (streamed) and sigma normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from suites.running.dataset_stats import RunningChannelStats, compute_stats, default_stats_path, save_stats
from suites.analysis.distribution import fit_tails, histogram
from probes.images import BUILTIN_LABEL, image_source, iter_batches, to_tensor
from suites.analysis.sigma import SWEEP_LABEL, STATS_KIND, channel_stats, to_sigma
from suites.results.files import load_stats
from suites.analysis.synthetic import synthetic_results


def _stats_ds(model: str = "synthetic", channels=(0, 1, 2), mean=(1.0, 2.0, 3.0), std=(2.0, 4.0, 0.0)) -> xr.Dataset:
    c = "mixed3b_channel"
    ds = xr.Dataset(
        {
            "mixed3b_mean": ((c,), np.array(mean)),
            "mixed3b_std": ((c,), np.array(std)),
            "mixed3b_pre_relu_mean": ((c,), np.zeros(len(channels))),
            "mixed3b_pre_relu_std": ((c,), np.ones(len(channels))),
        },
        coords={c: list(channels)},
    )
    ds.attrs.update(kind=STATS_KIND, model=model, weights_sha256="", source="unit test", n_images=3, proxy=0)
    return ds


def test_sweep_statistics_are_labelled_and_standardise() -> None:
    ds = synthetic_results([dict(preferred=10.0), dict(preferred=100.0)])
    sig = to_sigma(ds, "mixed3b")
    assert sig.attrs["statistics"] == SWEEP_LABEL
    assert np.allclose(sig.mean("stimulus"), 0.0, atol=1e-9)
    assert np.allclose(sig.std("stimulus"), 1.0, atol=1e-6)


def test_dataset_statistics_align_by_channel_id() -> None:
    ds = synthetic_results([dict(preferred=10.0), dict(preferred=100.0)], channel_ids=[2, 0])
    stats = _stats_ds()
    sig = to_sigma(ds, "mixed3b", stats)
    raw = ds["mixed3b"].values
    assert np.allclose(sig.sel(mixed3b_channel=0).values, (raw[:, 1] - 1.0) / 2.0)
    assert np.isnan(sig.sel(mixed3b_channel=2).values).all()  # std 0 -> NaN, never inf
    assert "unit test" in sig.attrs["statistics"]
    with pytest.raises(ValueError, match="model 'inceptionv1'"):
        to_sigma(ds, "mixed3b", _stats_ds(model="inceptionv1"))
    other = _stats_ds()
    other.attrs["weights_sha256"] = "ab" * 32
    with pytest.raises(ValueError, match="weights sha256 abab"):
        to_sigma(ds, "mixed3b", other)
    with pytest.raises(ValueError, match=r"channels \[2\]"):
        channel_stats(ds, "mixed3b", _stats_ds(channels=(0, 1, 5)))


def test_running_stats_match_numpy_over_uneven_batches() -> None:
    rng = np.random.default_rng(0)
    data = rng.laplace(-3.0, 2.0, size=(1000, 4)) + 1e4 * np.array([0, 1, 0, 0])  # large offset: no cancellation
    rs = RunningChannelStats(4, bins=50)
    for a, b in ((0, 7), (7, 300), (300, 1000)):
        rs.update(torch.from_numpy(data[a:b]))
    v = rs.variables("L")
    assert np.allclose(v["L_pre_relu_mean"][1], data.mean(0), rtol=0, atol=1e-9)
    assert np.allclose(v["L_pre_relu_std"][1], data.std(0), rtol=1e-10)
    post = np.maximum(data, 0)
    assert np.allclose(v["L_mean"][1], post.mean(0)) and np.allclose(v["L_std"][1], post.std(0))
    assert np.allclose(v["L_fraction_firing"][1], (data > 0).mean(0))
    total = v["L_pre_relu_hist"][1].sum(1) + v["L_pre_relu_hist_under"][1] + v["L_pre_relu_hist_over"][1]
    assert np.all(total == 1000)


def test_tail_fits_recover_laplace_scales() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([-rng.exponential(0.5, 200_000), rng.exponential(2.0, 200_000)])
    counts, edges = np.histogram(x, bins=200)
    centres = (edges[1:] + edges[:-1]) / 2
    dens = counts / (x.size * (edges[1] - edges[0]))
    left, right = fit_tails(centres, dens, counts)
    assert left.scale == pytest.approx(0.5, rel=0.1)
    assert right.scale == pytest.approx(2.0, rel=0.1)


def test_image_folder_nested_and_errors(tmp_path) -> None:
    from PIL import Image

    (tmp_path / "class_a").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "class_a" / "x.png")
    Image.fromarray(rng.integers(0, 255, (50, 30, 3), dtype=np.uint8)).save(tmp_path / "y.JPEG")
    (tmp_path / "notes.txt").write_text("not an image")
    src = image_source(tmp_path)
    assert len(src) == 2 and not src.proxy
    (names, imgs), = list(iter_batches(src, size=32, batch_size=4))
    assert imgs.shape == (2, 3, 32, 32) and 0 <= float(imgs.min()) and float(imgs.max()) <= 1
    with pytest.raises(FileNotFoundError, match="not found"):
        image_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .jpg"):
        image_source(tmp_path / "empty")


def test_resize_short_side_then_centre_crop() -> None:
    a = np.zeros((20, 40), dtype=np.uint8)
    a[:, 6:34] = 255  # white band: after the 2x downscale columns 3..17, past the crop 5..15
    t = to_tensor(a, 10)  # -> 10 x 20, centre crop = columns 5..15: all white
    assert float(to_tensor(np.fliplr(np.where(a > 0, 0, 255)).astype(np.uint8), 10).max()) < 0.01
    assert t.shape == (3, 10, 10) and float(t.min()) > 0.99


def test_compute_stats_on_groundtruth_matches_direct_probe(tmp_path) -> None:
    import probes

    model = probes.load_model("groundtruth")
    src = image_source("builtin", limit=2)
    assert src.label == BUILTIN_LABEL
    stats = compute_stats(model, src, ["curves"], size=64, batch_size=1, progress=False)
    _, imgs = next(iter_batches(src, size=64, batch_size=2))
    pre = model.probe(imgs, ["curves"], full_map=True)["curves_pre_relu"].double()
    flat = pre.transpose(0, 1).reshape(12, -1).numpy()
    assert np.allclose(stats["curves_pre_relu_mean"], flat.mean(1), atol=1e-6)
    assert np.allclose(stats["curves_std"], np.maximum(flat, 0).std(1), atol=1e-6)
    assert "proxy" in stats.attrs["source"] and stats.attrs["model"] == "groundtruth"
    path = save_stats(stats, tmp_path / default_stats_path(stats).name)
    assert path.name == "stats-groundtruth-noweightsfile-builtin-64px.nc"
    back = load_stats(path)
    assert np.allclose(back["curves_pre_relu_std"], stats["curves_pre_relu_std"])
    x, dens, total = histogram(back, "curves", 3)
    assert total == flat.shape[1] and np.isclose((dens * (x[1] - x[0])).sum(), 1.0)
    with pytest.raises(ValueError, match="layers"):
        compute_stats(model, src, ["mixed3b"], progress=False)


def test_padding_free_positions_option(tmp_path) -> None:
    """positions='valid' counts only units whose receptive field has no padding; files and labels say which."""
    import probes
    from probes.receptive import padding_free_units, unit_footprint
    from suites.analysis.sigma import stats_label

    model = probes.load_model("groundtruth")
    keep = padding_free_units(model.geometry, "curves", 64)
    assert keep == [6, 7, 8]  # 53 px receptive field, stride 4, 16 units on a 64 px input
    assert unit_footprint(model.geometry, "curves", 5, 64)[2] and not unit_footprint(model.geometry, "curves", 6, 64)[2]
    src = image_source("builtin", limit=2)
    stats = compute_stats(model, src, ["curves"], size=64, batch_size=2, progress=False, positions="valid")
    _, imgs = next(iter_batches(src, size=64, batch_size=2))
    pre = model.probe(imgs, ["curves"], full_map=True)["curves_pre_relu"].double()[:, :, 6:9, 6:9]
    flat = pre.transpose(0, 1).reshape(12, -1).numpy()
    assert int(stats.attrs["positions_per_layer"].split("=")[1]) == flat.shape[1] == 2 * 9
    assert np.allclose(stats["curves_pre_relu_mean"], flat.mean(1), atol=1e-6)
    assert np.allclose(stats["curves_std"], np.maximum(flat, 0).std(1), atol=1e-6)
    everywhere = compute_stats(model, src, ["curves"], size=64, batch_size=2, progress=False)
    assert not np.allclose(everywhere["curves_pre_relu_mean"], stats["curves_pre_relu_mean"])  # padding matters
    assert (stats.attrs["positions"], everywhere.attrs["positions"]) == ("valid", "all")
    path = save_stats(stats, tmp_path / default_stats_path(stats).name)
    assert path.name == "stats-groundtruth-noweightsfile-builtin-64px-valid.nc"
    assert "padding-free positions only" in stats_label(load_stats(path))
    assert "all positions" in stats_label(everywhere)
    old = everywhere.copy()
    old.attrs["positions"] = "all spatial positions of each layer's map (SAME padding)"  # files written before the option
    assert "all positions" in stats_label(old)
    ds = synthetic_results([dict(preferred=0.0)] * 12, layer="curves", attrs={"model": "groundtruth"})
    assert "padding-free positions only" in to_sigma(ds, "curves", stats).attrs["statistics"]
    with pytest.raises(ValueError, match="no unit of curves .receptive field 53 px. is free of padding"):
        compute_stats(model, src, ["curves"], size=40, progress=False, positions="valid")
    with pytest.raises(ValueError, match="positions: 'centre' is not one of all, valid"):
        compute_stats(model, src, ["curves"], size=64, progress=False, positions="centre")


def test_stats_cli_positions(tmp_path, capsys) -> None:
    from curvebench.cli import main

    out = tmp_path / "s.nc"
    assert main(["stats", "--images", "builtin", "--limit", "1", "--size", "64", "--layers", "curves",
                 "--positions", "valid", "--out", str(out)]) == 0
    assert "padding-free positions only" in capsys.readouterr().out
    assert load_stats(out).attrs["positions"] == "valid"
    assert main(["stats", "--images", "builtin", "--size", "40", "--layers", "curves", "--positions", "valid"]) == 2
    assert "use a larger --size" in capsys.readouterr().err


def test_stats_store_both_stds_and_sigma_uses_the_padding_free_one() -> None:
    """One pass stores the all-positions and the padding-free moments; the one sigma picks the padding-free std."""
    import probes
    from suites.analysis.sigma import DEFAULT_SIGMA, SigmaDefinition, channel_stats, reference_moments

    model = probes.load_model("groundtruth")
    src = image_source("builtin", limit=2)
    everywhere = compute_stats(model, src, ["curves"], size=64, batch_size=2, progress=False)
    valid = compute_stats(model, src, ["curves"], size=64, batch_size=2, progress=False, positions="valid")
    for name in ("curves", "curves_pre_relu"):
        for key in ("mean", "std"):
            np.testing.assert_allclose(everywhere[f"{name}_{key}_all"], everywhere[f"{name}_{key}"], rtol=1e-12)
            np.testing.assert_allclose(everywhere[f"{name}_{key}_valid"], valid[f"{name}_{key}"], rtol=1e-9)
            np.testing.assert_allclose(valid[f"{name}_{key}_all"], everywhere[f"{name}_{key}"], rtol=1e-9)
    assert (DEFAULT_SIGMA.baseline, DEFAULT_SIGMA.positions) == ("mean", "valid")
    mean, std, used = reference_moments(everywhere, "curves")
    assert used == "valid" and np.allclose(std, valid["curves_std"])
    assert reference_moments(everywhere, "curves", "all")[2] == "all"
    old = everywhere.drop_vars([v for v in everywhere.data_vars if str(v).endswith(("_all", "_valid"))])
    assert reference_moments(old, "curves")[2] == "all"  # an older file: the std it has, and it says so
    ds = synthetic_results([dict(preferred=0.0)] * 12, layer="curves", attrs={"model": "groundtruth"})
    label = channel_stats(ds, "curves", everywhere).label
    assert "padding-free positions only" in label and "dataset mean" in label
    assert "all positions" in channel_stats(ds, "curves", old).label
    assert "asked for padding-free" in SigmaDefinition().describe("all")
    # --sigma-positions all (plot, tuning, report, rotate-tuning): the statistics carry the choice
    from suites.analysis.sigma import choose_positions

    chosen = channel_stats(ds, "curves", choose_positions(everywhere, "all"))
    assert "all positions" in chosen.label and np.allclose(chosen.std, everywhere["curves_std_all"])
    assert np.allclose(channel_stats(ds, "curves", everywhere).std, everywhere["curves_std_valid"])
    with pytest.raises(ValueError, match="sigma positions: 'centre' is not one of valid, all"):
        choose_positions(everywhere, "centre")
    with pytest.raises(ValueError, match="sigma baseline: 'median' is not one of mean, blank"):
        SigmaDefinition(baseline="median")
