"""Suite files: parsing, validation messages, grids, built-ins and colour parameters."""

from __future__ import annotations

import colorsys
import textwrap

import numpy as np
import pytest
import torch

from suites.specs.builtin import builtin_names
from suites.specs.grid import Grid
from stimuli.color import hue_to_rgb
from suites.specs.render_args import render_kwargs
from suites.specs.suite import SuiteError, load_suite, parse_suite

BASE = """
name = "t"
kind = "curve"
[sweep]
orientation = { start = 0, stop = 360, step = 90 }
curvature = [0.0, 0.05]
[model]
name = "groundtruth"
layers = ["curves"]
"""


def _suite(extra: str = "", base: str = BASE):
    return parse_suite(textwrap.dedent(base) + textwrap.dedent(extra), path="my.toml")


def test_valid_suite_axes_and_defaults():
    s = _suite()
    assert s.axis_names == ("orientation", "curvature")
    np.testing.assert_array_equal(s.axes[0][1], [0, 90, 180, 270])  # step: stop excluded
    assert s.shape == (4, 2) and s.num_stimuli == 8
    assert s.batch_size == 256 and s.readout == "both" and s.storage == "float32"
    s2 = parse_suite(BASE.replace("curvature = [0.0, 0.05]", "curvature = { start = 0, stop = 0.04, num = 5 }"))
    np.testing.assert_allclose(s2.axes[1][1], [0, 0.01, 0.02, 0.03, 0.04])  # num: stop included


@pytest.mark.parametrize(
    "extra, words",
    [
        ('[run]\nbatchsize = 3\n', ["my.toml", "[run].batchsize", "batch_size"]),
        ('[run]\nbatch_size = "big"\n', ["[run].batch_size", "integer", "'big'"]),
        ('[run]\nstorage = "int8"\n', ["[run].storage", "float16", "'int8'"]),
        ('[fixed]\nwidth = "thick"\n', ["[fixed].width", "number"]),
        ('[fixed]\nfg = [1, 2, 3]\n', ["[fixed].fg", "RGB"]),
        ('[fixed]\nwobble = 1\n', ["unknown key [fixed].wobble"]),
        ('[summary]\ntop_k = 0\n', ["[summary].top_k", ">= 1"]),
    ],
)
def test_errors_name_file_key_and_allowed(extra, words):
    with pytest.raises(SuiteError) as e:
        parse_suite(BASE + extra, path="my.toml")
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_top_level_and_model_errors():
    with pytest.raises(SuiteError, match=r"my.toml: unknown key 'colour'; allowed: name"):
        parse_suite("colour = 1\n" + BASE, path="my.toml")
    with pytest.raises(SuiteError, match=r"\[model\].readout must be one of both, pre_relu, post_relu, got 'relu'"):
        parse_suite(BASE + 'readout = "relu"\n')  # BASE ends inside [model]
    with pytest.raises(SuiteError, match=r"\[model\].channels\[1\] must be a channel id"):
        parse_suite(BASE + 'channels = [1, -2]\n')
    with pytest.raises(SuiteError, match=r"\[model\].layers is required"):
        parse_suite(BASE.replace('layers = ["curves"]', ""))


@pytest.mark.parametrize(
    "axis, words",
    [
        ("{ start = 10, stop = 0, step = 1 }", ["inverted", "stop (0)", "start (10)"]),
        ("{ start = 0, stop = 0, num = 5 }", ["empty or inverted"]),
        ("[]", ["empty list"]),
        ("{ start = 0, stop = 1 }", ["exactly one of 'num' or 'step'"]),
        ("{ start = 0, stop = 1, step = -1 }", ["step must be > 0"]),
        ('"wide"', ["list of numbers or a range table"]),
        ("{ start = 0, stop = 1, num = 0 }", ["num must be an integer >= 1"]),
    ],
)
def test_bad_ranges(axis, words):
    text = BASE.replace("orientation = { start = 0, stop = 360, step = 90 }", f"orientation = {axis}")
    with pytest.raises(SuiteError) as e:
        parse_suite(text, path="my.toml")
    assert "my.toml" in str(e.value) and "[sweep].orientation" in str(e.value)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_parameter_ranges_and_geometry_limits():
    with pytest.raises(SuiteError, match=r"\[sweep\].curvature.*full circle.*2\*pi"):
        parse_suite(BASE.replace("curvature = [0.0, 0.05]", "curvature = [0.0, 0.2]"))  # 0.2 * 64 px > 2 pi
    with pytest.raises(SuiteError, match=r"\[sweep\].rounding must lie in \[0, 1\]"):
        parse_suite(BASE.replace("curvature = [0.0, 0.05]", "rounding = [0, 2]"))
    with pytest.raises(SuiteError, match="kind 'line' needs curvature 0"):
        parse_suite(BASE.replace('kind = "curve"', 'kind = "line"'))
    with pytest.raises(SuiteError, match=r"unknown key \[sweep\].radius; allowed: orientation"):
        parse_suite(BASE.replace("curvature = [0.0, 0.05]", "radius = [1, 2]"))
    with pytest.raises(SuiteError, match="family 'wiggles' does not exist; allowed: curves"):
        parse_suite(BASE.replace('layers = ["curves"]', 'family = "wiggles"'))
    with pytest.raises(SuiteError, match="kind' must be one of line, curve, angle"):
        parse_suite(BASE.replace('kind = "curve"', 'kind = "spiral"'))
    with pytest.raises(SuiteError, match="not valid TOML"):
        parse_suite("name = ", path="x.toml")


def test_colour_modes_conflict():
    with pytest.raises(SuiteError, match="both as HSV"):
        _suite('[fixed]\nfg_hue = 30\nfg_r = 0.5\n')
    with pytest.raises(SuiteError, match="needs fg_hue"):
        _suite('[fixed]\nfg_saturation = 0.5\n')


def test_suites_read_the_stimulus_declaration():
    import stimuli
    from stimuli import kinds

    from suites.specs import suite as spec

    assert spec.KINDS == stimuli.KINDS == kinds.KINDS
    assert spec.RENDER_NUMERIC == tuple(p.name for p in kinds.PARAMS)
    assert set(spec.FIXED_ONLY) >= {c.name for c in kinds.CHOICES}
    # a range violation is reported with the declaration's allowed text
    with pytest.raises(SuiteError, match=r"\[fixed\].tick_length must satisfy tick_length >= 0 px"):
        _suite("[fixed]\ntick_length = -1\n")


def test_builtin_suites_parse_and_cover_the_article():
    names = builtin_names()
    for required in ("curves", "fill", "color", "angles", "rounding", "families", "combing"):
        assert required in names
    for n in names:
        s = load_suite(n)
        assert s.description and s.num_stimuli > 0
    curves = load_suite("curves")
    o, k = dict(curves.axes)["orientation"], dict(curves.axes)["curvature"]
    assert o.min() == 0 and o.max() < 360 and len(o) == 720  # 360 degrees
    assert k[0] == 0 and k[-1] * curves.fixed["length"] == pytest.approx(np.pi)  # line -> semicircle
    assert len(dict(load_suite("rounding").axes)["rounding"]) >= 4
    assert load_suite("families").family == "curves"
    q = curves.quick()
    assert q.shape == (12, 12) and q.axes[1][1][0] == 0 and q.axes[1][1][-1] == k[-1]


def test_unknown_builtin_and_missing_file():
    with pytest.raises(FileNotFoundError, match="no suite named 'nope'.*curves"):
        load_suite("nope")
    with pytest.raises(FileNotFoundError, match="suite file not found"):
        load_suite("/does/not/exist.toml")


def test_grid_rows_are_unravelled_c_order_and_batches_aligned():
    g = Grid([("a", [1.0, 2.0, 3.0]), ("b", [10.0, 20.0])])
    rows = g.rows(0, 6)
    np.testing.assert_array_equal(rows["a"], [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(rows["b"], [10, 20, 10, 20, 10, 20])
    spans = [(b.start, b.stop) for b in g.batches(4, start=1)]
    assert spans == [(1, 4), (4, 6)]  # aligned to multiples of the batch size from row 0
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(g.batches(0))


def test_hsv_matches_colorsys_and_complement():
    hues = np.array([0.0, 45.0, 130.0, 200.0, 299.0, 359.0, 420.0])
    ours = hue_to_rgb(hues, 0.7, 0.9, dtype=torch.float64).numpy()
    ref = np.array([colorsys.hsv_to_rgb((h % 360) / 360, 0.7, 0.9) for h in hues])
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    s = load_suite("color")
    batch = Grid(s.axes).rows(0, 6)
    kw = render_kwargs(batch, s.fixed, 6)
    fg, bg = kw["fg"].numpy(), kw["bg"].numpy()
    np.testing.assert_allclose(fg + bg, 1.0, atol=1e-6)
    np.testing.assert_allclose(fg[0], [1, 0, 0], atol=1e-6)  # hue 0 = red
    np.testing.assert_allclose(fg[2], [0, 1, 0], atol=1e-6)  # hue 120 = green


def test_every_builtin_suite_stays_in_the_article_range():
    for name in builtin_names():
        d = load_suite(name).describe()
        length = d["fixed"]["length"]
        k = d["axes"]["curvature"]
        turn = 0.75 * np.pi if d["kind"] == "angle" else np.pi  # the article's sharpest angle; a semicircle
        assert k["min"] == 0 and k["max"] * length == pytest.approx(turn), name
        o = d["axes"]["orientation"]
        assert o["min"] == 0 and o["max"] < 360 and o["count"] * (o["max"] - o["min"]) / (o["count"] - 1) == pytest.approx(360)
    for name in ("fill", "color"):
        fixed = load_suite(name).describe()["fixed"]
        assert fixed["fill"] == 1.0 and fixed["fill_mode"] == "article" and fixed["window"] == 45.0


def test_sweeps_into_the_repeating_range_are_errors():
    angle = BASE.replace('kind = "curve"', 'kind = "angle"')
    _suite(base=angle.replace("curvature = [0.0, 0.05]", "curvature = [0.0, 0.049]"))  # turn 3.14 < pi at 64 px
    with pytest.raises(SuiteError, match=r"angles repeat beyond a turn of pi.*curvature <= pi/length = 0.0490874"):
        _suite(base=angle.replace("curvature = [0.0, 0.05]", "curvature = [0.0, 0.06]"))
    with pytest.raises(SuiteError, match=r"angles repeat"):  # a curve suite sweeping rounding is an angle suite
        _suite("[fixed]\nrounding = 0.5\n", base=BASE.replace("curvature = [0.0, 0.05]", "curvature = [0.0, 0.08]"))
    _suite(base=BASE.replace("curvature = [0.0, 0.05]", "curvature = [0.0, 0.08]"))  # curves may pass pi
    with pytest.raises(SuiteError, match=r"orientation has the values 0 and 360, which draw the same stimuli \(orientation is periodic"):
        _suite(base=BASE.replace("step = 90 }", "step = 90 }\n").replace(
            "orientation = { start = 0, stop = 360, step = 90 }", "orientation = { start = 0, stop = 360, num = 5 }"))
    with pytest.raises(SuiteError, match=r"curvature has the values 0.05 and 0.05"):
        _suite(base=BASE.replace("curvature = [0.0, 0.05]", "curvature = [0.0, 0.05, 0.05]"))
    with pytest.raises(SuiteError, match=r"fg_hue has the values -60 and 300"):
        _suite(base=BASE.replace("curvature = [0.0, 0.05]", "fg_hue = [-60, 0, 300]"))


def test_suites_json_lists_axes_and_every_fixed_render_parameter(capsys):
    import json

    from curvebench.cli import main
    from stimuli import kinds

    assert main(["suites", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and {r["name"] for r in rows} == set(builtin_names())
    for r in rows:
        assert {"name", "kind", "axes", "fixed"} <= set(r)
        for axis in r["axes"].values():
            assert set(axis) == {"min", "max", "count"} and axis["min"] <= axis["max"] and axis["count"] >= 1
        rendered = {p.name for p in kinds.PARAMS} | {c.name for c in kinds.CHOICES}
        assert rendered - set(r["axes"]) <= set(r["fixed"]), r["name"]
        assert "length" in r["fixed"] and not (set(r["axes"]) & set(r["fixed"]))
    curves = next(r for r in rows if r["name"] == "curves")
    assert curves["fixed"]["window"] is None and curves["fixed"]["rounding"] == 1.0
    assert curves["axes"]["curvature"] == {"min": 0.0, "max": pytest.approx(np.pi / 64), "count": 100}
