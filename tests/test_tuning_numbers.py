"""Tuning numbers on synthetic tuning curves whose answers are known analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suites.analysis.synthetic import synthetic_results
from suites.analysis.tuning import (
    best_curvature_index,
    circular_mean,
    echo_index,
    family_coverage,
    fitted_peak,
    fwhm,
    invariance_score,
    is_circular,
    layer_tuning,
    wrap180,
)


def vm(o: np.ndarray, pref: float, c: float) -> np.ndarray:
    return np.exp(c * (np.cos(np.deg2rad(o - pref)) - 1.0))


@pytest.mark.parametrize("pref", [0.0, 2.5, 97.3, 181.0, 359.2])
def test_fitted_peak_recovers_off_grid_peak(pref: float) -> None:
    o = np.arange(0.0, 360.0, 5.0)
    got = fitted_peak(o, vm(o, pref, 8.0))
    assert abs(wrap180(got - pref)) < 0.5, got


def test_fitted_peak_open_interval_and_nan() -> None:
    o = np.arange(0.0, 181.0, 10.0)  # not circular: no wrap at the ends
    assert not is_circular(o)
    assert fitted_peak(o, vm(o, 0.0, 5.0)) == 0.0
    assert math.isnan(fitted_peak(o, np.full(o.size, np.nan)))


def test_fwhm_matches_von_mises_formula() -> None:
    o = np.arange(0.0, 360.0, 0.5)
    for c in (2.0, 8.0, 30.0):
        expected = 2 * np.rad2deg(np.arccos(1 - math.log(2) / c))
        assert fwhm(o, vm(o, 200.0, c)) == pytest.approx(expected, abs=0.3)
    assert fwhm(o, np.ones_like(o)) == 360.0
    assert math.isnan(fwhm(o, np.zeros_like(o)))


def test_echo_index_and_circular_mean() -> None:
    o = np.arange(0.0, 360.0, 2.0)
    clean = vm(o, 40.0, 10.0)
    echoed = clean + 0.4 * vm(o, 220.0, 10.0)
    assert echo_index(o, clean, 40.0) < 1e-3
    assert echo_index(o, echoed, 40.0) == pytest.approx(0.4, abs=0.01)
    assert circular_mean(o, clean) == pytest.approx(40.0, abs=1e-6)
    assert math.isnan(circular_mean(o, np.zeros_like(o)))


def test_invariance_score() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((6, 20))
    assert invariance_score(2 * a + 3, a) == pytest.approx(1.0)
    assert abs(invariance_score(rng.random((6, 20)), a)) < 0.4
    with pytest.raises(ValueError, match="differ in shape"):
        invariance_score(a, a[:3])


def test_family_coverage_and_gap() -> None:
    o = np.arange(0.0, 360.0, 1.0)
    prefs = [0.0, 90.0, 180.0, 270.0]
    narrow = np.stack([vm(o, p, 40.0) for p in prefs])  # FWHM ~ 21 deg each
    wide = np.stack([vm(o, p, 2.0) for p in prefs])
    n = family_coverage(o, narrow, prefs)
    w = family_coverage(o, wide, prefs)
    assert n["largest_gap_deg"] == pytest.approx(90.0)
    assert n["coverage"] == pytest.approx(4 * 2 * np.rad2deg(np.arccos(1 - math.log(2) / 40.0)) / 360.0, abs=0.02)
    assert w["coverage"] == 1.0 and w["largest_uncovered_deg"] == 0.0
    assert n["largest_uncovered_deg"] > 60.0


def test_best_curvature_skips_straight_line() -> None:
    k = np.array([0.0, 0.01, 0.02])
    h = np.array([[9.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    assert best_curvature_index(k, h) == 2
    with pytest.raises(ValueError, match="heatmap"):
        best_curvature_index(k, h[:2])


def test_layer_tuning_on_synthetic_results_any_row_order() -> None:
    units = [dict(preferred=17.0), dict(preferred=133.0, echo=0.5), dict(preferred=301.0)]
    ds = synthetic_results(units, layer="mixed3b", channel_ids=[379, 406, 385])
    shuffled = ds.isel(stimulus=np.random.default_rng(1).permutation(ds.sizes["stimulus"]))
    res = layer_tuning(shuffled, "mixed3b", families={"fam": [379, 406, 385]})
    for c, u in zip([379, 406, 385], units):
        got = res["channels"][c]
        assert abs(wrap180(got["preferred_orientation"] - u["preferred"])) < 1.0
        widths = [got["fwhm_by_curvature"][f"{k:.6g}"] for k in (0.02, 0.05, 0.1)]
        assert widths[0] < widths[1] < widths[2]  # the synthetic units broaden with curvature
    assert res["channels"][406]["echo_index"] > 0.3 > res["channels"][379]["echo_index"]
    assert res["families"]["fam"]["channels"] == [379, 406, 385]
    assert "sweep's own statistics" in res["statistics"]
    with pytest.raises(ValueError, match="channels"):
        layer_tuning(ds, "mixed3b", channels=[1])
    with pytest.raises(ValueError, match="mixed4a"):
        layer_tuning(ds, "mixed4a")


def test_layer_tuning_invariance_against_reference() -> None:
    units = [dict(preferred=40.0), dict(preferred=200.0)]
    plain = synthetic_results(units)
    filled = synthetic_results([dict(preferred=40.0, peak=7.0), dict(preferred=200.0, peak=7.0)])
    rotated = synthetic_results([dict(preferred=130.0), dict(preferred=20.0)])
    same = layer_tuning(filled, "mixed3b", reference=plain)
    other = layer_tuning(rotated, "mixed3b", reference=plain)
    for c in (0, 1):
        assert same["channels"][c]["invariance_score"] > 0.97
        assert other["channels"][c]["invariance_score"] < 0.2


def test_flat_curve_has_no_preferred_orientation() -> None:
    o = np.arange(0.0, 360.0, 10.0)
    assert math.isnan(fitted_peak(o, np.zeros_like(o)))


def test_pre_relu_only_run_gives_post_relu_view() -> None:
    from suites.analysis.arrays import layer_array, layer_names

    ds = synthetic_results([dict(preferred=50.0)]).drop_vars("mixed3b")
    assert layer_names(ds) == ["mixed3b"]
    assert float(layer_array(ds, "mixed3b").min()) == 0.0
    assert abs(layer_tuning(ds, "mixed3b")["channels"][0]["preferred_orientation"] - 50.0) < 1.0
