"""Validation against the article's family orientations, on synthetic files with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import probes
from suites.analysis.synthetic import synthetic_results
from suites.analysis.validate import best_mapping, compare_family, cyclic_order_agreement
from curvebench.cli import main

ARTICLE_3B = probes.get_family("inceptionv1", "mixed3b").peaks()


def test_best_mapping_recovers_shift_and_reflection() -> None:
    a = np.array(list(ARTICLE_3B.values()))
    measured = (-(a - 37.0)) % 360.0  # article = -measured + 37
    shift, reflected = best_mapping(measured, a)
    assert reflected and shift == pytest.approx(37.0, abs=0.05)
    shift, reflected = best_mapping((a + 250.0) % 360.0, a)
    assert not reflected and shift == pytest.approx(110.0, abs=0.05)


def test_cyclic_order_agreement() -> None:
    a = np.array([0.0, 50.0, 120.0, 200.0, 300.0])
    assert cyclic_order_agreement(a, (a + 33) % 360) == 1.0
    assert cyclic_order_agreement(a, -a) == 0.0  # a reflection reverses every triple
    assert 0.0 < cyclic_order_agreement(a, a[[0, 3, 1, 4, 2]]) < 1.0


def test_compare_family_pass_and_fail() -> None:
    rng = np.random.default_rng(0)
    noisy = {c: (-(p) + 80.0 + rng.normal(0, 4.0)) % 360.0 for c, p in ARTICLE_3B.items()}
    ok = compare_family("mixed3b", noisy, ARTICLE_3B)
    assert ok.passed and ok.reflected and ok.rms < 8.0 and ok.order_agreement == 1.0
    assert "379" in ok.table() and "PASS" in ok.table()
    chans = list(ARTICLE_3B)
    perm = rng.permutation(len(chans))
    scrambled = {c: ARTICLE_3B[chans[j]] for c, j in zip(chans, perm)}
    bad = compare_family("mixed3b", scrambled, ARTICLE_3B)
    assert not bad.passed and "FAIL" in bad.table()
    with pytest.raises(ValueError, match="at least 3"):
        compare_family("mixed3b", {379: 1.0}, ARTICLE_3B)


def _family_file(tmp_path, peaks: dict[int, float], name: str) -> str:
    ds = synthetic_results([dict(preferred=p) for p in peaks.values()], layer="mixed3b", channel_ids=list(peaks),
                           orientations=np.arange(0.0, 360.0, 3.0), curvatures=np.linspace(0, 0.1, 5),
                           attrs={"model": "inceptionv1"})
    path = tmp_path / name
    ds.to_netcdf(path, engine="h5netcdf")
    return str(path)


def test_validate_cli_exit_codes(tmp_path, capsys) -> None:
    # Known answer: the measured angles are the article's reflected and shifted -> pass.
    good = _family_file(tmp_path, {c: (-p + 123.0) % 360.0 for c, p in ARTICLE_3B.items()}, "good.h5")
    assert main(["validate", good, "--json", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out
    assert "mapping article = -measured" in out and "validation passed" in out
    report = json.loads((tmp_path / "v.json").read_text())
    assert report[0]["rms"] < 2.0 and report[0]["order_agreement"] == 1.0
    # Without reflection the same file cannot match.
    assert main(["validate", good, "--no-reflection"]) == 1
    # Channels swapped around the circle: wrong order -> non-zero exit.
    chans = list(ARTICLE_3B)
    swapped = {c: ARTICLE_3B[chans[(i * 3) % len(chans)]] for i, c in enumerate(chans)}
    assert main(["validate", _family_file(tmp_path, swapped, "bad.h5")]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_table_shows_angles_wrapped_to_0_360_after_rounding() -> None:
    article = {0: 10.0, 1: 100.0, 2: 200.0, 3: 300.0}
    v = compare_family("mixed3b", {c: a + 0.04 for c, a in article.items()}, article, allow_reflection=False)
    assert v.shift == pytest.approx(359.95)  # the search grid's value; only the display wraps
    table = v.table()
    assert "+measured + 0.0 deg" in table and "360.0" not in table and "-0.0" not in table
    w = compare_family("mixed3b", {0: 10.0, 1: 100.0, 2: 200.0, 3: 359.99}, {0: 10.0, 1: 100.0, 2: 200.0, 3: 0.0},
                       allow_reflection=False)
    assert "360.0" not in w.table() and "-0.0" not in w.table()
