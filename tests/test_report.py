"""``curvebench report``: page data, escaping, bad input, and the page itself in headless Chromium.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them
where missing) and Selenium (the ``dev`` extra); they are skipped, saying so, where either is absent.
"""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from curvebench.cli import main
from suites.analysis.arrays import grid
from suites.analysis.report import ReportOptions, report_data, report_html, script_json
from suites.analysis.sigma import to_sigma
from suites.analysis.synthetic import synthetic_results
from suites.analysis.tuning import layer_tuning
from suites.results.reading import open_results
from suites.running.runner import run_suite
from suites.report_stimuli import page_shapes, shape_outline, write_report
from suites.specs.suite import parse_suite

HOSTILE = "</script><script>alert(1)</script>"

SUITE = """name = "{name}"
description = "report test: {name}"
kind = "{kind}"
[sweep]
orientation = {{ start = 0, stop = 360, step = 12 }}
curvature = {{ start = 0, stop = {kmax}, num = 6 }}
{extra}
[fixed]
length = 32
width = 2
fg = [0, 0, 0]
bg = [1, 1, 1]
{fixed}
[model]
name = "groundtruth"
layers = ["curves"]
readout = "both"
[run]
batch_size = 1024
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two small ground-truth sweeps: plain curves (180 stimuli) and angles with a rounding series (360)."""
    root = tmp_path_factory.mktemp("report")
    out = {}
    # a full circle (2 pi / 32 px) for curves; angles turn by at most pi
    for name, kind, kmax, extra in (("curves", "curve", 2 * np.pi / 32, ""),
                                    ("rounding", "angle", np.pi / 32, "rounding = [0.0, 1.0]")):
        suite = parse_suite(SUITE.format(name=name, kind=kind, kmax=repr(float(kmax)), extra=extra, fixed=""))
        out[name] = run_suite(suite, out=root / f"{name}.h5", progress=False, log=None).path
    return out


def _decode(b64: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").reshape(shape)


# -- page data -------------------------------------------------------------------------
def test_page_data_holds_the_grid_and_tuning_of_every_channel(runs) -> None:
    ds = open_results(runs["curves"])
    data = report_data([("curves", ds)])
    run = data["runs"][0]
    layer = run["layers"][0]
    assert run["orientation"] == pytest.approx(list(np.arange(0, 360, 12.0)))
    assert len(run["curvature"]) == 6
    # all 12 units of the ground-truth family are shown, sorted by preferred orientation
    tuned = layer_tuning(ds, "curves")
    prefs = [tuned["channels"][c]["preferred_orientation"] for c in layer["shown"]]
    assert sorted(layer["shown"]) == list(range(12))
    assert prefs == sorted(prefs)
    # the stored grid is the post-ReLU cell mean, in the shown order
    post = grid(ds, layer="curves").sel(curves_channel=layer["shown"]).values
    got = _decode(layer["grids"][""], post.shape)
    np.testing.assert_allclose(got, post, rtol=1e-6, atol=1e-7)
    # sigma the page computes = analysis' to_sigma
    sig = grid(ds, to_sigma(ds, "curves")).sel(curves_channel=layer["shown"]).values
    page_sigma = (got - np.array(layer["mean"])[:, None, None]) / np.array(layer["std"])[:, None, None]
    np.testing.assert_allclose(page_sigma, sig, rtol=1e-4, atol=1e-4)
    # tuning table: every channel, the same numbers as `curvebench tuning`
    table = {row["channel"]: row for row in layer["tuning"]}
    assert set(table) == set(range(12))
    for c, u in tuned["channels"].items():
        assert table[c]["preferred_orientation"] == pytest.approx(u["preferred_orientation"])
        assert table[c]["fwhm_deg"] == pytest.approx(u["fwhm_deg"])
    assert run["stimulus"]["kind"] == "curve" and run["stimulus"]["fixed"]["length"] == 32
    keys = dict(run["provenance"])
    assert keys["model"] == "groundtruth" and "sweep's own statistics" in keys["sigma source"]


def test_series_values_get_their_own_grids(runs) -> None:
    ds = open_results(runs["rounding"])
    layer = report_data([("r", ds)])["runs"][0]["layers"][0]
    assert set(layer["grids"]) == {"", "rounding=0", "rounding=1"}
    shape = (12, 6, 30)
    sharp = _decode(layer["grids"]["rounding=0"], shape)
    from suites.analysis.arrays import select

    want = grid(select(ds, rounding=0.0), layer="curves").sel(curves_channel=layer["shown"]).values
    np.testing.assert_allclose(sharp, want, rtol=1e-6, atol=1e-7)
    assert not np.allclose(sharp, _decode(layer["grids"]["rounding=1"], shape))


def test_many_channels_show_the_test_passers_spread_and_table_lists_all() -> None:
    from suites.analysis import grid, to_sigma
    from suites.analysis.channel_choice import sweep_detectors

    # offset: lines answer far less than curves, so the units pass the curve-detector test (curve, not line)
    units = [{"preferred": 17.0 * i, "concentration": 2.0 + 3 * (i % 7), "offset": 4.5} for i in range(20)]
    ds = synthetic_results(units, layer="mixed4b", orientations=np.arange(0, 360, 10.0), curvatures=np.linspace(0, 0.1, 3))
    layer = report_data([("s", ds)], ReportOptions(max_channels=5))["runs"][0]["layers"][0]
    passed, _ = sweep_detectors(grid(ds, to_sigma(ds, "mixed4b", None)))
    assert len(passed) > 5
    assert len(layer["shown"]) == 5 and set(layer["shown"]) <= set(passed)
    assert "5 of them evenly spaced in preferred orientation" in layer["chosen"]
    prefs = np.sort([17.0 * c for c in layer["shown"]])
    assert np.max(np.diff(np.append(prefs, prefs[0] + 360))) < 2 * 360 / 5  # spread around the circle
    assert len(layer["tuning"]) == 20
    with pytest.raises(ValueError, match="not in the results"):
        report_data([("s", ds)], ReportOptions(channels=[99]))


# -- escaping --------------------------------------------------------------------------
def test_script_json_cannot_close_the_script_element() -> None:
    text = script_json({"a": HOSTILE, "b": "x\u2028y & <!--"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": HOSTILE, "b": "x\u2028y & <!--"}


def test_hostile_attributes_are_escaped_in_the_html(runs, tmp_path) -> None:
    ds = open_results(runs["curves"]).load()
    ds.attrs.update(suite_name=HOSTILE + "/*__CSS__*/", description=HOSTILE + "/*__JS__*/ __DATA__", model=HOSTILE,
                    suite=HOSTILE + '"\'&')
    path = write_report([(HOSTILE, ds)], tmp_path / "r.html")
    page = path.read_text()
    assert page.count('"use strict"') == 1 and page.count("--accent: #1a73e8") == 1  # placeholders in text are text
    assert "<script>alert" not in page
    assert page.lower().count("<script") == 2  # the data block and the page's own script
    assert page.lower().count("</script") == 2
    assert "&lt;/script&gt;" in page.split("</title>")[0]  # the title (from suite_name) is html-escaped


# -- command line ----------------------------------------------------------------------
def test_cli_writes_one_page_for_several_files(runs, tmp_path, capsys) -> None:
    out = tmp_path / "both.html"
    assert main(["report", str(runs["curves"]), str(runs["rounding"]), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "src=" not in page  # nothing fetched from outside


def _one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("curvebench: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_gives_one_line(tmp_path, capsys) -> None:
    junk = tmp_path / "notes.h5"
    junk.write_text("not a results file")
    assert "not a curvebench results file" in _one_line_error(["report", str(junk), "--out", str(tmp_path / "a.html")], capsys)
    # a curvebench file of a kind the report cannot show: rows over images, no orientation x curvature
    probe = xr.Dataset({"conv": (("image", "conv_channel"), np.ones((3, 2), np.float32))},
                       attrs={"rows_completed": 3, "row_dim": "image"})
    probe.to_netcdf(tmp_path / "probe.h5", engine="h5netcdf")
    err = _one_line_error(["report", str(tmp_path / "probe.h5"), "--out", str(tmp_path / "b.html")], capsys)
    assert "cannot show this kind of result" in err and "probe.h5" in err
    assert not (tmp_path / "a.html").exists() and not (tmp_path / "b.html").exists()
    err = _one_line_error(["report", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "c.html")], capsys)
    assert "not found" in err


def test_page_stays_light_for_a_72000_stimulus_10_channel_sweep(tmp_path) -> None:
    """The issue's budget: 720 orientations x 100 curvatures x 10 channels under 10 MB."""
    units = [{"preferred": 36.0 * i, "peak": 8.0} for i in range(10)]
    ds = synthetic_results(units, orientations=np.arange(0, 360, 0.5), curvatures=np.linspace(0, 0.098, 100))
    assert ds.sizes["stimulus"] == 72_000
    path = write_report([("big", ds)], tmp_path / "big.html")
    assert path.stat().st_size < 10e6


# -- in the browser --------------------------------------------------------------------
def _browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install '.[dev]'): browser tests of the report skipped")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver") or ("/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None)
    if binary is None or driver is None:
        pytest.skip("chromium or chromedriver not found (apt-get install chromium chromium-driver): "
                    "browser tests of the report skipped")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
              "--force-device-scale-factor=1"):
        opts.add_argument(a)
    try:
        return webdriver.Chrome(service=Service(driver), options=opts)
    except Exception as exc:  # a broken install: say why, do not fail the suite
        pytest.skip(f"chromium could not be started by chromedriver ({str(exc).splitlines()[0]}): browser tests skipped")


@pytest.fixture(scope="module")
def browser():
    d = _browser()
    yield d
    d.quit()


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory, browser):
    """The report of both runs (curves first), opened in the browser; the curves dataset carries a hostile name."""
    curves = open_results(runs["curves"]).load()
    curves.attrs["description"] = HOSTILE
    path = write_report([("curves", curves), ("rounding", open_results(runs["rounding"]))],
                        tmp_path_factory.mktemp("page") / "report.html")
    browser.get(path.as_uri())
    return browser, report_data([("curves", curves)])["runs"][0], curves


def _field(driver, name: str) -> str:
    return driver.find_element("css selector", f'#inspector tr[data-field="{name}"] td.value').text


def test_browser_one_heatmap_per_channel_and_no_script_injection(page) -> None:
    driver, run, _ = page
    assert driver.execute_script("return typeof window.__report") == "object"
    maps = driver.find_elements("css selector", "#run-0 .hm canvas.heatmap")
    assert len(maps) == len(run["layers"][0]["shown"]) == 12
    shown = [int(e.get_attribute("data-channel")) for e in driver.find_elements("css selector", "#run-0 .hm")]
    assert shown == run["layers"][0]["shown"]
    assert len(driver.find_elements("css selector", "#compare .card")) == 2  # two files: families side by side
    # the hostile description is shown as text, never run
    assert HOSTILE in driver.find_element("css selector", "#run-0 .meta").text
    assert driver.execute_script("return document.querySelectorAll('script').length") == 2


def test_browser_hovering_a_cell_shows_its_parameters_and_stimulus(page) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver, run, ds = page
    layer = run["layers"][0]
    ci, ik, io = 4, 3, 7  # channel index in shown order, curvature row, orientation column
    canvas = driver.find_elements("css selector", "#run-0 .hm canvas.heatmap")[ci]
    w, h = canvas.size["width"], canvas.size["height"]
    O, K = len(run["orientation"]), len(run["curvature"])
    ActionChains(driver).move_to_element_with_offset(canvas, int((io + 0.5) / O * w - w / 2), int((ik + 0.5) / K * h - h / 2)).perform()
    channel = layer["shown"][ci]
    assert _field(driver, "channel") == str(channel)
    assert float(_field(driver, "orientation").rstrip("°")) == pytest.approx(run["orientation"][io])
    assert float(_field(driver, "curvature").split()[0]) == pytest.approx(run["curvature"][ik], rel=1e-5)
    sig = grid(ds, to_sigma(ds, "curves")).sel(curves_channel=channel).values[ik, io]
    post = grid(ds, layer="curves").sel(curves_channel=channel).values[ik, io]
    assert float(_field(driver, "sigma")) == pytest.approx(sig, abs=1e-3)
    assert float(_field(driver, "activation")) == pytest.approx(post, abs=1e-5)
    # the stimulus drawn in the page matches the renderer's image of the same parameters
    import stimuli

    pixels = driver.execute_script(
        "const c = document.querySelector('#stim-row canvas'); "
        "return [c.width, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];")
    size, rgba = pixels
    drawn = np.asarray(rgba, dtype=np.float64).reshape(size, size, 4)[..., :3].mean(-1) / 255.0
    spec = run["stimulus"]
    ref = stimuli.render("curve", orientation=run["orientation"][io], curvature=run["curvature"][ik], length=32, width=2,
                         position=tuple(spec["position"]), size=spec["size"])[0].mean(0).numpy()
    assert size == spec["size"]
    ink_drawn, ink_ref = drawn < 0.5, ref < 0.5
    iou = (ink_drawn & ink_ref).sum() / max((ink_drawn | ink_ref).sum(), 1)
    assert ink_ref.sum() > 20 and iou > 0.9, f"page stimulus vs renderer: IoU {iou:.2f}"
    assert np.abs(drawn - ref).mean() < 0.01


def test_browser_radial_hover_isolates_a_unit_and_click_selects_its_heatmap(page) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver, run, _ = page
    paths = driver.find_elements("css selector", "#run-0 svg.radial path.curve")
    assert len(paths) == 12
    target = paths[2]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    ActionChains(driver).move_to_element(target).perform()
    opacity = [float(driver.execute_script("return getComputedStyle(arguments[0]).opacity", p)) for p in paths]
    assert opacity[2] == pytest.approx(1.0)
    assert all(o < 0.3 for i, o in enumerate(opacity) if i != 2)
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", target)
    selected = driver.find_elements("css selector", "#run-0 .hm.selected")
    assert [e.get_attribute("data-channel") for e in selected] == [target.get_attribute("data-channel")]
    ActionChains(driver).move_by_offset(0, 0).move_to_element(driver.find_element("css selector", "h1")).perform()
    assert all(float(driver.execute_script("return getComputedStyle(arguments[0]).opacity", p)) == 1.0 for p in paths)


def test_browser_tables_sort(page) -> None:
    driver, run, _ = page
    header = driver.find_element("css selector", '#run-0 table.tuning th[data-col="preferred_orientation"]')
    driver.execute_script("arguments[0].click()", header)
    col = [c.get_attribute("textContent") for c in driver.find_elements("css selector", "#run-0 table.tuning tbody tr td:nth-child(2)")]
    values = [float(v) for v in col]
    assert values == sorted(values) and len(values) == 12
    driver.execute_script("arguments[0].click()", header)
    col = [float(c.get_attribute("textContent")) for c in driver.find_elements("css selector", "#run-0 table.tuning tbody tr td:nth-child(2)")]
    assert col == sorted(col, reverse=True)
    rows = driver.find_elements("css selector", "#run-0 table.provenance tbody tr")
    assert any("groundtruth" in r.get_attribute("textContent") for r in rows)


def test_browser_screenshot_is_not_blank(page, tmp_path) -> None:
    from PIL import Image

    driver, run, _ = page
    driver.execute_script("window.scrollTo(0, 0)")
    canvas = driver.find_elements("css selector", "#run-0 .hm canvas.heatmap")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    png = driver.get_screenshot_as_png()
    (tmp_path / "report.png").write_bytes(png)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    assert img.std() > 20  # not a blank page
    # the first heatmap (lowest preferred orientation) is drawn: black background with coloured (turbo) cells
    r = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height]", canvas)
    x0, y0, w, h = (int(round(v)) for v in r)
    region = img[y0 + 2:y0 + h - 2, x0 + 2:x0 + w - 2]
    black = (region.max(-1) < 10).mean()
    coloured = (region.max(-1) - region.min(-1) > 60).mean()
    assert black > 0.2 and coloured > 0.02, (black, coloured)


STIMULUS_CASES = [
    ("curve", {"orientation": 30.0, "curvature": 0.1, "length": 32, "width": 2}),
    ("curve", {"orientation": 200.0, "curvature": -0.08, "length": 32, "width": 3}),
    ("curve", {"orientation": 90.0, "curvature": 0.19634954, "length": 32, "width": 2}),  # closed circle
    ("curve", {"orientation": 300.0, "curvature": 0.12, "length": 32, "width": 2, "fill": 1.0}),
    ("curve", {"orientation": 45.0, "curvature": 0.1, "length": 32, "width": 2, "fill": 1.0, "fg_hue": 120.0, "bg": "complement"}),
    ("curve", {"orientation": 120.0, "curvature": 0.08, "length": 32, "width": 2, "ticks": 5, "tick_length": 4, "tick_side": "both"}),
    ("curve", {"orientation": 10.0, "curvature": 0.08, "length": 32, "width": 2, "ticks": 3, "tick_length": 5, "tick_side": "out"}),
    ("angle", {"orientation": 250.0, "curvature": 0.1, "length": 32, "width": 2}),
    ("angle", {"orientation": 250.0, "curvature": 0.1, "length": 32, "width": 2, "rounding": 0.5}),
    # fills: the article's concave side (a line fills a half plane, an angle its wedge), the
    # chord segment, and the stimulus window clipping everything
    ("curve", {"orientation": 20.0, "curvature": 0.0, "length": 32, "width": 2, "fill": 1.0}),
    ("angle", {"orientation": 100.0, "curvature": 0.07, "length": 32, "width": 2, "fill": 1.0}),
    ("curve", {"orientation": 300.0, "curvature": 0.12, "length": 32, "width": 2, "fill": 1.0, "fill_mode": "segment"}),
    ("curve", {"orientation": 60.0, "curvature": -0.05, "length": 32, "width": 2, "fill": 1.0, "window": 30.0}),
]


def test_browser_stimulus_drawing_matches_the_renderer(page) -> None:
    """The page draws the shapes Python computed (suites.report_stimuli); each kind of parameter must give the
    renderer's picture."""
    import stimuli
    from suites.specs.render_args import render_kwargs

    driver = page[0]
    for kind, params in STIMULUS_CASES:
        shape = shape_outline(kind, {k: v for k, v in params.items() if k != "orientation"}, 48)
        rgba = driver.execute_script(
            "const c = document.createElement('canvas');"
            "window.__report.drawStimulus(c, {size: 48, position: [23.5, 25], shapes: {s: arguments[0]}},"
            " {shape: 's', orientation: arguments[1]});"
            "return Array.from(c.getContext('2d').getImageData(0, 0, 48, 48).data);", shape, params["orientation"])
        drawn = np.asarray(rgba, dtype=np.float64).reshape(48, 48, 4)[..., :3] / 255.0
        swept = {k: np.array([v]) for k, v in params.items() if not isinstance(v, str) and k not in ("fg", "bg", "tick_side")}
        fixed = {k: v for k, v in params.items() if isinstance(v, str)}
        ref = stimuli.render(kind, position=(23.5, 25.0), size=48, **render_kwargs(swept, fixed, 1))[0].permute(1, 2, 0).numpy()
        # ink = pixels far from the background colour
        bg = ref[0, 0]
        ink_ref = np.abs(ref - bg).sum(-1) > 0.5
        ink_drawn = np.abs(drawn - bg).sum(-1) > 0.5
        iou = (ink_drawn & ink_ref).sum() / max((ink_drawn | ink_ref).sum(), 1)
        err = np.abs(drawn - ref).mean()
        assert ink_ref.sum() > 30
        assert iou > 0.9 and err < 0.01, f"{kind} {params}: IoU {iou:.2f}, mean abs difference {err:.3f}"


# -- optimize results ------------------------------------------------------------------
@pytest.fixture(scope="module")
def optimum(tmp_path_factory) -> Path:
    """A short `curvebench optimize` run on the ground-truth model (12 channels, free position and fill)."""
    import probes
    from suites.optimization.ascent import optimize

    ds = optimize(probes.load_model("groundtruth"), "curves", restarts=1, steps=3, fill=True)
    path = tmp_path_factory.mktemp("opt") / "opt.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_cli_report_of_an_optimize_file(optimum, tmp_path, capsys) -> None:
    out = tmp_path / "opt.html"
    assert main(["report", str(optimum), "--out", str(out)]) == 0
    ds = xr.open_dataset(optimum, engine="h5netcdf")
    data = report_data([("opt", ds)])["runs"][0]
    assert data["kind"] == "optimum" and [c["channel"] for c in data["channels"]] == list(range(12))
    assert data["channels"][3]["orientation"] == pytest.approx(float(ds["orientation"][3]))


def test_browser_draws_each_optimum_as_the_unit_saw_it(optimum, tmp_path, browser) -> None:
    """The page's drawing of each optimal stimulus (from its parameters) matches the image stored by optimize."""
    ds = xr.open_dataset(optimum, engine="h5netcdf").load()
    path = write_report([("opt", ds)], tmp_path / "opt.html")
    browser.get(path.as_uri())
    cards = browser.find_elements("css selector", ".optimum-card")
    assert len(cards) == 12
    for card in cards[:4]:
        c = int(card.get_attribute("data-channel"))
        size, rgba = browser.execute_script(
            "const c = arguments[0].querySelector('canvas');"
            "return [c.width, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];", card)
        drawn = np.asarray(rgba, dtype=np.float64).reshape(size, size, 4)[..., :3] / 255.0
        stored = ds["image"].sel(channel=c).values / 255.0
        assert stored.shape == drawn.shape
        bg = np.asarray(ds["bg"].sel(channel=c).values)
        ink_s, ink_d = np.abs(stored - bg).sum(-1) > 0.5, np.abs(drawn - bg).sum(-1) > 0.5
        iou = (ink_s & ink_d).sum() / max((ink_s | ink_d).sum(), 1)
        assert ink_s.sum() > 30 and iou > 0.93 and np.abs(drawn - stored).mean() < 0.01, f"channel {c}: IoU {iou:.2f} between the page's drawing and the stored image"


# -- discover results ------------------------------------------------------------------
DISCOVER_LAYER = "blocks.3.2.depthwise"


@pytest.fixture(scope="module")
def discover_dir(tmp_path_factory) -> Path:
    """A discover output folder in the layout of ``suites.discovery.responses`` (responses.nc + family.nc), with known answers.

    Channels 0-2 are curve detectors preferring 20, 140 and 260 deg; channel 3 fires for
    everything (not a detector, flagged ``corner``).
    """
    from suites.analysis.synthetic import von_mises_unit

    o, k = np.arange(0, 360, 10.0), np.linspace(0, 0.19634954, 6)
    go, gk = np.meshgrid(o, k)  # (curvature, orientation)
    units = [von_mises_unit(go, gk, preferred=p) for p in (20.0, 140.0, 260.0)] + [np.full(go.shape, 3.0)]
    bw = np.clip(np.stack(units, axis=-1), 0, None)
    wb = np.clip(np.stack([von_mises_unit(go, gk, preferred=p + 5) for p in (20.0, 140.0, 260.0)] + [np.full(go.shape, 3.0)], -1), 0, None)
    cdim = f"{DISCOVER_LAYER}_channel"
    responses = xr.Dataset(
        {f"{DISCOVER_LAYER}_curve": (("polarity", "curvature", "orientation", cdim), np.stack([bw, wb]).astype(np.float32)),
         f"{DISCOVER_LAYER}_mean": ((cdim,), np.full(4, 0.5)), f"{DISCOVER_LAYER}_std": ((cdim,), np.full(4, 0.4)),
         f"{DISCOVER_LAYER}_blank": (("polarity", cdim), np.array([[0.1] * 4, [0.3] * 4]))},
        coords={"polarity": ["black_on_white", "white_on_black"], "curvature": k, "orientation": o, cdim: np.arange(4)},
        attrs={"kind": "curvebench-discover-responses", "model": "synthetic", "layers": DISCOVER_LAYER, "length": 32.0,
               "width": 2.0, "size": 224, "stimulus_position": "(27.5, 27.5) px on the 55 px input",
               "statistics": "dataset statistics: test images"},
    )
    family = xr.Dataset(
        {"detector": (("unit",), np.array([1, 1, 1, 0], np.int8)), "curve_line_ratio": (("unit",), [3.0, 3.1, 2.9, 1.0]),
         "polarity_diff_deg": (("unit",), [5.0, 5.0, 5.0, np.nan]), "flags": (("unit",), ["", "", "", "corner"])},
        coords={"layer": (("unit",), [DISCOVER_LAYER] * 4), "channel": (("unit",), np.arange(4))},
        attrs={"kind": "curvebench-curve-family", "test": "synthetic test " + HOSTILE},
    )
    root = tmp_path_factory.mktemp("discover") / "discover-synthetic"
    root.mkdir()
    responses.to_netcdf(root / "responses.nc", engine="h5netcdf")
    family.to_netcdf(root / "family.nc", engine="h5netcdf")
    return root


def test_report_of_a_discover_folder_shows_its_detectors(discover_dir, tmp_path, capsys) -> None:
    out = tmp_path / "d.html"
    assert main(["report", str(discover_dir), "--out", str(out)]) == 0
    for given in (discover_dir / "responses.nc", discover_dir / "family.nc"):  # either file finds the other
        assert main(["report", str(given), "--out", str(tmp_path / f"e-{given.stem}.html")]) == 0
    from suites.results.files import open_for_report

    run = report_data([("d", open_for_report(str(discover_dir)))])["runs"][0]
    layer = run["layers"][0]
    assert layer["name"] == DISCOVER_LAYER and layer["shown"] == [0, 1, 2]  # detectors only, by preferred orientation
    assert set(layer["grids"]) == {"", "polarity=black_on_white", "polarity=white_on_black"}
    bw = _decode(layer["grids"]["polarity=black_on_white"], (3, 6, 36))
    want = xr.open_dataset(discover_dir / "responses.nc", engine="h5netcdf")[f"{DISCOVER_LAYER}_curve"].values[0]
    np.testing.assert_allclose(bw, np.moveaxis(want, -1, 0)[:3], rtol=1e-6)
    table = {r["channel"]: r for r in layer["tuning"]}
    assert [round(table[c]["preferred_orientation"]) for c in (0, 1, 2)] == [20, 140, 260]
    assert table[3]["flags"] == "corner" and table[3]["detector"] == 0
    assert run["stimulus"]["size"] == 55 and run["stimulus"]["position"] == [27.5, 27.5]
    assert "3 of 4 channels" in layer["families"][0]["name"]


def test_browser_discover_page_draws_each_polarity(discover_dir, tmp_path, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    from suites.results.files import open_for_report

    path = write_report([("d", open_for_report(str(discover_dir)))], tmp_path / "d.html")
    browser.get(path.as_uri())
    assert len(browser.find_elements("css selector", "#run-0 .hm canvas.heatmap")) == 3
    assert HOSTILE in browser.find_element("css selector", "#run-0 .meta").text  # the family test text, as text
    corners = []
    for polarity in ("black_on_white", "white_on_black"):
        browser.execute_script("const s = document.querySelector('#run-0 .series-select'); s.value = arguments[0];"
                               "s.dispatchEvent(new Event('change'));", f"polarity={polarity}")
        canvas = browser.find_elements("css selector", "#run-0 .hm canvas.heatmap")[0]
        w, h = canvas.size["width"], canvas.size["height"]
        ActionChains(browser).move_to_element_with_offset(canvas, int(2.5 / 36 * w - w / 2), int(4.5 / 6 * h - h / 2)).perform()
        assert _field(browser, "polarity") == polarity
        assert float(_field(browser, "orientation").rstrip("°")) == pytest.approx(20.0)
        blank = 0.1 if polarity == "black_on_white" else 0.3  # discover's sigma: above the blank, over the std
        assert float(_field(browser, "sigma")) == pytest.approx((float(_field(browser, "activation")) - blank) / 0.4, abs=2e-3)
        corners.append(browser.execute_script(
            "const c = document.querySelector('#stim-row canvas'); return Array.from(c.getContext('2d').getImageData(0, 0, 1, 1).data)"))
    assert corners[0][:3] == [255, 255, 255] and corners[1][:3] == [0, 0, 0]  # background of each polarity


# -- stimulus geometry once ----------------------------------------------------------------
def test_page_embeds_shapes_computed_by_stimuli_and_ports_no_geometry(runs) -> None:
    """The page's script has no copy of stimuli's geometry, colour rules or defaults: the shapes come from Python."""
    from importlib import resources

    js = resources.files("suites.analysis").joinpath("report_assets", "report.js").read_text(encoding="utf-8")
    for ported in ("pathPoint", "sinc", "hsv(", "complement", "tick_length", "fill_mode", "_hue"):
        assert ported not in js, f"report.js spells {ported!r}: stimulus geometry belongs to stimuli"
    report_py = resources.files("suites.analysis").joinpath("report.py").read_text(encoding="utf-8")
    assert '"angle", "line"' not in report_py and "'angle', 'line'" not in report_py  # no kind list of its own
    rounding = open_results(runs["rounding"]).load()
    page = report_data([("rounding", rounding)], ReportOptions(shapes=page_shapes))["runs"][0]
    shapes = page["stimulus"]["shapes"]
    K, series = len(page["curvature"]), page["series"]
    assert len(shapes) == K * (1 + sum(len(v) - 1 for v in series.values()))
    # a shape is the renderer's path: the sampled points lie on the stimulus drawn by stimuli.render
    import stimuli

    ik, name = K - 1, next(iter(series))
    last = len(series[name]) - 1
    shape = shapes[f"{ik}|{last}"]
    path = np.asarray(shape["path"]).reshape(-1, 2)
    img = stimuli.render("angle", orientation=90.0, curvature=page["curvature"][ik], position=(48.0, 48.0), size=96,
                         length=32, width=2, **{name: series[name][last]})[0, 0].numpy()
    cols, rows = 48.0 + path[:, 0], 48.0 - path[:, 1]  # orientation 90: u along +x, v up the screen
    ink = img[np.clip(rows.astype(int), 0, 95), np.clip(cols.astype(int), 0, 95)] < 0.5
    assert ink.mean() > 0.9, f"{ink.mean():.2f} of the page's path points lie on the rendered stroke"
    assert shape["fg"] == [0.0, 0.0, 0.0] and shape["bg"] == [1.0, 1.0, 1.0] and shape["width"] == 2.0
