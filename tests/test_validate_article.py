"""`validate` against the article's published radial tuning curves: known answers and calibration."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

import probes
from curvebench.cli import main
from suites.analysis.reference_curves import PUBLISHED_LAYERS, published, reference_family
from suites.analysis.synthetic import family_results, simulate_family_curves
from suites.analysis.validate import compare_curves, correlation_by_shift, cyclic_order_agreement, validate_layer
from suites.analysis.validate_calibration import pass_rates

STEP = 2.0
ORIENTATIONS = np.arange(0.0, 360.0, STEP)


def exact(layer: str, shift: float, reflect: bool) -> dict[int, np.ndarray]:
    """The published curves as curvebench would measure them: article angle = sign * theta + shift."""
    ref = published(layer)
    curves, _ = simulate_family_curves(ref, ORIENTATIONS, rotation_sd=0.0, echo_gain=(1.0, 1.0), amplitude_noise=0.0,
                                       shift=shift, reflect=reflect)
    return curves


def test_reference_is_the_articles_family_and_ships_as_package_data() -> None:
    for layer in PUBLISHED_LAYERS:
        ref = published(layer)
        fam = probes.get_family("inceptionv1", layer)
        assert ref.channels == fam.channels and ref.curves.shape == (len(fam), 720)
        if fam.peak_orientations is not None:  # the table in probes is read off these curves
            assert ref.peaks() == pytest.approx(fam.peaks(), abs=0.01)
        assert reference_family("inceptionv1", layer) is ref
    assert "Distill" in ref.source
    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "reference/*.json" in data["suites.analysis"]
    assert reference_family("groundtruth", "curves").kind == "designed"
    assert reference_family("groundtruth", "edges") is None


def test_correlation_by_shift_finds_shift_and_reflection() -> None:
    ref = published("mixed3b")
    for reflect, shift in ((False, 40.0), (True, 301.5)):
        curves = exact("mixed3b", shift, reflect)
        corr = correlation_by_shift(ORIENTATIONS, curves[343], ref.curves[ref.channels.index(343)])
        s, j = np.unravel_index(int(np.nanargmax(corr)), corr.shape)
        assert (bool(s), j * 0.5) == (reflect, shift) and corr[s, j] > 0.999


@pytest.mark.parametrize("layer", PUBLISHED_LAYERS)
def test_published_curves_pass_reflected_and_shifted(layer: str) -> None:
    for reflect, shift in ((False, 0.0), (True, 123.5), (False, 250.0), (True, 7.0)):
        ds = family_results(exact(layer, shift, reflect), ORIENTATIONS, layer=layer)
        v = validate_layer(ds, layer, published(layer))
        assert v.passed, v.table()
        assert (v.reflected, v.shift) == (reflect, shift)
        assert v.rms < 0.6 and v.order_agreement == 1.0 and not v.missing
        assert min(u.correlation for u in v.units) > 0.99


def test_unfinished_runs_use_the_orientations_measured_so_far() -> None:
    ds = family_results(exact("mixed3b", 40.0, False), ORIENTATIONS, layer="mixed3b")
    done = ds.copy(deep=True)
    later = ds.orientation.values % 10 >= 5  # rows of a results file not written yet read as NaN
    for var in ("mixed3b", "mixed3b_pre_relu"):
        done[var].values[later] = np.nan
    v = validate_layer(done, "mixed3b", published("mixed3b"))
    assert v.passed and v.shift == 40.0 and not v.missing
    ends = np.arange(0.0, 360.1, 2.0)
    curves, _ = simulate_family_curves(published("mixed3b"), ends, rotation_sd=0.0, echo_gain=(1.0, 1.0),
                                       amplitude_noise=0.0, shift=40.0, reflect=False)
    both_ends = family_results(curves, ends, layer="mixed3b")
    assert validate_layer(both_ends, "mixed3b", published("mixed3b")).passed  # 0 and 360 both swept
    with pytest.raises(ValueError, match="gap of 42 deg"):  # 358 -> 40
        validate_layer(ds.isel(stimulus=np.flatnonzero(ds.orientation.values >= 40)), "mixed3b", published("mixed3b"))


def test_an_echo_that_wins_by_a_little_does_not_flip_the_unit() -> None:
    # conv2d2:63 has the strongest echo (0.88 of its peak); made to win by 10%
    ref = published("conv2d2")
    curves, _ = simulate_family_curves(ref, ORIENTATIONS, rotation_sd=0.0, echo_gain=(1.0, 1.0), amplitude_noise=0.0,
                                       shift=90.0, reflect=True)
    echo = simulate_family_curves(ref, ORIENTATIONS, rotation_sd=0.0, echo_gain=(1.25, 1.25), amplitude_noise=0.0,
                                  shift=90.0, reflect=True)[0][63]
    assert echo.max() > 1.05 * curves[63].max()
    curves[63] = echo
    v = compare_curves("conv2d2", ORIENTATIONS, curves, ref)
    unit = next(u for u in v.units if u.channel == 63)
    assert abs(abs(unit.peak_residual) - 180.0) < 10.0  # the argmax sits on the echo...
    assert abs(unit.residual) <= 1.0 and unit.echo_wins  # ...the whole curve does not move
    assert v.passed and v.rms < 1.0 and "echo wins" in v.table()


def test_near_ties_may_swap_but_distant_units_may_not() -> None:
    ref = published("mixed3a")  # 95 / 163 peak 8.5 deg apart, 189 / 137 6 deg apart
    curves = exact("mixed3a", 200.0, False)
    tied = dict(curves)
    tied[95], tied[163], tied[189], tied[137] = curves[163], curves[95], curves[137], curves[189]
    v = compare_curves("mixed3a", ORIENTATIONS, tied, ref)
    assert v.passed and v.order_agreement == 1.0 and v.rms < 15.0, v.table()
    far = dict(curves)
    far[104], far[147] = curves[147], curves[104]  # 128 deg apart
    w = compare_curves("mixed3a", ORIENTATIONS, far, ref)
    assert not w.passed and w.rms > 22.0 and w.order_agreement < 0.8


def test_cyclic_order_agreement_and_ties() -> None:
    a = np.array([0.0, 50.0, 120.0, 200.0, 300.0])
    assert cyclic_order_agreement((a + 33) % 360, a) == (1.0, 10)
    assert cyclic_order_agreement(-a, a) == (0.0, 10)  # a reflection reverses every triple
    assert 0.0 < cyclic_order_agreement(a[[0, 3, 1, 4, 2]], a)[0] < 1.0
    b = np.array([0.0, 10.0, 120.0, 240.0])
    assert cyclic_order_agreement(b[[1, 0, 2, 3]], b, tie_deg=30.0) == (1.0, 2)  # triples with the tie are skipped
    assert cyclic_order_agreement(b[[1, 0, 2, 3]], b)[0] == 0.5


def test_missing_channels_are_named_and_most_of_the_family_is_required() -> None:
    ref = published("conv2d2")
    curves = exact("conv2d2", 10.0, False)
    two = {c: v for c, v in curves.items() if c not in (39, 182)}  # 9 of 11 = 82% measured
    v = compare_curves("conv2d2", ORIENTATIONS, two, ref)
    assert v.passed and v.missing == [39, 182] and "[39, 182]" in v.table()
    three = dict(two)
    three[63] = np.zeros_like(three[63])  # never fires: not measured either -> 8 of 11 = 73%
    w = compare_curves("conv2d2", ORIENTATIONS, three, ref)
    assert not w.passed and w.missing == [39, 63, 182] and w.rms < 1.0
    assert "only 8 of 11 family channels measured" in w.table()


def test_calibration_pass_and_fail_rates(capsys) -> None:
    """The calibration of docs/analysis.md, smaller: >= 99% of correct runs pass, >= 99% of wrong ones fail."""
    rates = pass_rates(runs={"noise": 200, "random": 100, "scrambled": 100, "third": 100}, step=STEP, seed=0)
    with capsys.disabled():
        print("\nvalidate calibration (pass rates; noise should pass, the others fail):")
        for layer, r in rates.items():
            print(f"  {layer:8s} " + "  ".join(f"{k} {100 * v:5.1f}%" for k, v in r.items()))
    for layer in PUBLISHED_LAYERS:
        assert rates[layer]["noise"] >= 0.99, (layer, rates[layer])
        for wrong in ("random", "scrambled", "third"):
            assert rates[layer][wrong] <= 0.01, (layer, wrong, rates[layer])


def test_validate_cli(tmp_path, capsys) -> None:
    good = tmp_path / "good.h5"
    family_results(exact("mixed3b", 123.0, True), ORIENTATIONS, layer="mixed3b").to_netcdf(good, engine="h5netcdf")
    assert main(["validate", str(good), "--json", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out
    assert "mapping article = -measured + 123.0 deg" in out and "validation passed" in out and "Distill" in out
    report = json.loads((tmp_path / "v.json").read_text())[0]
    assert report["rms"] < 1.0 and report["order_agreement"] == 1.0 and report["reflected"]
    assert {u["channel"] for u in report["units"]} == set(published("mixed3b").channels)
    # without reflection the same file cannot match
    assert main(["validate", str(good), "--no-reflection"]) == 1
    # a scrambled family fails
    curves = exact("mixed3b", 123.0, True)
    ids = list(curves)
    bad = tmp_path / "bad.h5"
    family_results({c: curves[ids[(i * 3) % len(ids)]] for i, c in enumerate(ids)}, ORIENTATIONS,
                   layer="mixed3b").to_netcdf(bad, engine="h5netcdf")
    assert main(["validate", str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out
    # a third of the family: fails and names what is missing
    few = tmp_path / "few.h5"
    family_results({c: curves[c] for c in ids[:3]}, ORIENTATIONS, layer="mixed3b").to_netcdf(few, engine="h5netcdf")
    assert main(["validate", str(few)]) == 1
    assert "missing [343, 342, 388, 324, 340, 330, 349]" in capsys.readouterr().out
    assert main(["validate", str(good), "--min-measured", "2"]) == 2
    assert "--min-measured = 2: allowed a fraction in [0, 1]" in capsys.readouterr().err


def test_table_shows_angles_wrapped_to_0_360_after_rounding() -> None:
    v = compare_curves("mixed3b", ORIENTATIONS, exact("mixed3b", 359.5, False), published("mixed3b"))
    assert v.shift == pytest.approx(359.5)
    table = v.table()
    assert "+measured + 359.5 deg" in table and "360.0" not in table and "-0.0" not in table
