"""`curvebench discover`'s position-robust test on toy networks whose answer is known (tests/toy_detectors.py).

* A curve template read through a 16 px max-pool answers the curve anywhere in its
  stride cell: a detector at every position (stability 1).
* The same template read at every 16th pixel, with no blur (aliasing), is a detector
  when the curve sits exactly on its centre, and fails once the stimulus moves a
  quarter stride: a centre-only test counts it, the position grid does not.
* Units built to prefer the article's 90 degree angle or a closed ring are flagged
  ``corner`` and ``spot`` and not counted; a unit that ReLU6 clips is measured before
  the clip (its preferred orientation is the template's, its peak above 6).
"""

from __future__ import annotations

import numpy as np
import pytest

from suites.analysis.curve_family import Criteria, classify_all, layer_summary
from suites.discovery.responses import Sweep, discover_responses
from toy_detectors import LENGTH, SIZE, WIDTH, toy_model, unit_stats

LAYERS = ["pooled", "sampled"]


def _sweep(positions: int) -> Sweep:
    return Sweep(orientations=16, curvatures=5, length=LENGTH, width=WIDTH, size=SIZE, positions=positions)


@pytest.fixture(scope="module")
def toy():
    return toy_model()


@pytest.fixture(scope="module")
def families(toy):
    """The family at the centre only and on the default 2 x 2 grid over the stride cell."""
    out = {}
    for n in (1, 4):
        resp = discover_responses(toy, LAYERS, _sweep(n), stats=unit_stats(toy, LAYERS))
        out[n] = (resp, classify_all(resp, Criteria()))
    return out


def _unit(fam, layer, channel):
    return fam.isel(unit=int(np.flatnonzero((fam.layer.values == layer) & (fam.channel.values == channel))[0]))


def test_pooled_curve_unit_is_stable(families):
    for n in (1, 4):
        u = _unit(families[n][1], "pooled", 0)
        assert bool(u.detector) and float(u.stability) == 1.0
        assert abs((float(u.preferred_orientation) + 180) % 360 - 180) < 5


def test_aliasing_unit_passes_at_the_centre_only(families):
    centre = _unit(families[1][1], "sampled", 0)
    grid = _unit(families[4][1], "sampled", 0)
    assert bool(centre.detector) and float(centre.stability) == 1.0
    assert not bool(grid.detector) and float(grid.stability) < 0.8
    s = layer_summary(families[4][1], "sampled")
    assert s["detectors"] == 0 and s["positions"] == 4
    assert layer_summary(families[1][1], "sampled")["detectors"] == 1


def test_angle_and_spot_units_are_flagged_not_counted(families):
    fam = families[4][1]
    angle, spot = _unit(fam, "pooled", 1), _unit(fam, "pooled", 2)
    assert bool(angle.flag_corner) and float(angle.angle_ratio) > 1 and not bool(angle.detector)
    assert bool(spot.flag_spot) and float(spot.spot_ratio) > 1 and not bool(spot.detector)
    s = layer_summary(fam, "pooled")
    assert s["flagged"]["corner"] >= 1 and sorted(m["channel"] for m in s["family"]) == [0, 3]


def test_saturating_unit_is_measured_before_the_clip(families):
    resp, fam = families[4]
    u = _unit(fam, "pooled", 3)
    assert "pre-clip" in resp["pooled_curve"].attrs["activation"]
    assert float(resp["pooled_curve"].max()) > 6.0          # the clip (6) would flatten the top
    assert bool(u.saturated) and 0 < float(u.clipped_fraction) < 0.5
    assert bool(u.detector) and abs(float(u.preferred_orientation) - 90.0) < 5
    assert float(u.peak_sigma) > 6.0
    assert layer_summary(fam, "pooled")["saturated"] == 1
    # the sampled tap has no clip: read as it is
    assert float(resp["sampled_clipped_fraction"].max()) == 0.0


def test_detectors_ci_contains_the_count(families):
    for n in (1, 4):
        for layer in LAYERS:
            s = layer_summary(families[n][1], layer)
            lo, hi = s["detectors_ci"]
            assert lo <= s["detectors"] <= hi
            assert all(0.8 <= m["stability"] <= 1 for m in s["family"])


def test_classify_arrays_on_plain_sigma_arrays():
    """The test without a model or a responses file (a sweep results file's own data): von Mises tuned units."""
    from suites.analysis.curve_family import classify_arrays

    o = np.arange(36) * 10.0
    k = np.linspace(0, 0.05, 6)
    tuning = np.exp(3 * (np.cos(np.deg2rad(o - 90)) - 1))           # one lobe at 90 deg, FWHM ~ 55 deg
    curve = np.zeros((3, 2, k.size, o.size))
    curve[0] = 8 * tuning[None, None] * (k[:, None] / k.max())        # a curve unit (line response 0)
    curve[1] = 8 * tuning[None, None]                                 # answers lines as much as curves
    curve[2] = curve[0]
    angle = np.zeros((3, 1, 3, o.size))
    angle[2] = 12.0                                                   # prefers the angle: flagged
    fam = classify_arrays(o, k, curve, controls={"angle": angle}, channels=[5, 6, 7], layer="toy")
    assert list(fam.detector.values) == [True, False, False]
    assert abs(float(fam.preferred_orientation.values[0]) - 90) < 1 and fam.channel.values.tolist() == [5, 6, 7]
    assert float(fam.preferred_curvature.values[0]) == pytest.approx(0.05)
    assert bool(fam.flag_corner.values[2]) and fam.flags.values[2] == "corner"
    assert float(fam.curve_line_ratio.values[1]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expected .channel, .position,. 2 polarities"):
        classify_arrays(o, k, curve[:, :1])
