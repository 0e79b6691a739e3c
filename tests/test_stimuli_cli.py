"""``curvebench render`` and ``curvebench bench render`` through ``curvebench.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stimuli
from curvebench.cli.render import parse_colour, parse_values
from curvebench.cli import main


def test_parse_values_and_colours() -> None:
    assert parse_values("orientation", "30") == [30.0]
    assert parse_values("orientation", "0,90,180") == [0.0, 90.0, 180.0]
    assert parse_values("orientation", "0:90:4") == [0.0, 30.0, 60.0, 90.0]
    with pytest.raises(ValueError, match=r"--tick-length = '1:2': .*start:stop:count"):
        parse_values("tick_length", "1:2")
    assert parse_colour("fg", "#ff8000") == (1.0, 128 / 255, 0.0)
    assert parse_colour("fg", "0,0.5,1") == (0.0, 0.5, 1.0)
    with pytest.raises(ValueError, match=r"--bg = '2,0,0'"):
        parse_colour("bg", "2,0,0")


def test_render_single_stimulus_png_and_npy(tmp_path: Path) -> None:
    png, npy = tmp_path / "one.png", tmp_path / "one.npy"
    assert main(["render", "--curvature", "0.05", "--orientation", "90", "--size", "64",
                 "--length", "40", "--out", str(png), "--npy", str(npy)]) == 0
    arr = np.load(npy)
    assert arr.shape == (1, 3, 64, 64) and arr.dtype == np.float32
    expected = stimuli.render("curve", orientation=90.0, curvature=0.05, length=40.0, size=64).numpy()
    assert np.abs(arr - expected).max() < 1e-6
    img = np.asarray(Image.open(png))
    assert img.shape == (64, 64, 3)
    assert np.abs(img / 255.0 - expected[0].transpose(1, 2, 0)).max() <= 0.5 / 255 + 1e-6
    # default colours: black stroke on white, stimulus at the centre
    assert img[0, 0].tolist() == [255, 255, 255] and img.min() == 0


def test_render_sweep_writes_contact_sheet_laid_out_like_the_article(tmp_path: Path) -> None:
    png, npy = tmp_path / "sheet.png", tmp_path / "sheet.npy"
    assert main(["render", "--kind", "curve", "--curvature", "0:max:3", "--orientation", "0:270:4", "--length", "30",
                 "--size", "48", "--cell", "40", "--out", str(png), "--npy", str(npy)]) == 0
    arr = np.load(npy)
    assert arr.shape == (12, 3, 48, 48)
    # rows = curvature (line at the top), columns = orientation, row-major
    ref = stimuli.render("curve", orientation=180.0, curvature=2 * np.pi / 30 / 2, length=30.0, size=48).numpy()
    assert np.abs(arr[1 * 4 + 2] - ref[0]).max() < 1e-5
    sheet = np.asarray(Image.open(png))
    assert sheet.shape == (3 * 40, 4 * 40, 3)
    # the top-left cell is a vertical line (orientation 0, curvature 0): dark pixels in one column band
    cell = sheet[:40, :40, 0]
    cols = np.nonzero((cell < 128).any(axis=0))[0]
    rows = np.nonzero((cell < 128).any(axis=1))[0]
    assert cols.max() - cols.min() <= 3 and rows.max() - rows.min() >= 25


def test_render_angles_colours_ticks(tmp_path: Path) -> None:
    npy = tmp_path / "c.npy"
    assert main(["render", "--kind", "angle", "--rounding", "0:1:3", "--curvature", "0.05", "--fill", "1",
                 "--fg-hue", "120", "--bg-hue-offset", "180", "--ticks", "3", "--tick-side", "out",
                 "--size", "40,56", "--length", "30", "--npy", str(npy)]) == 0
    arr = np.load(npy)
    assert arr.shape == (3, 3, 40, 56)
    assert np.allclose(arr[:, :, 0, 0], [1.0, 0.0, 1.0], atol=1e-5)  # magenta background (hue 300)
    assert np.isclose(arr[..., 1].max(), 1.0)  # green stroke present


@pytest.mark.parametrize(
    "argv,message",
    [
        (["render", "--curvature", "0.5", "--length", "30"], "curvature = 0.5 1/px is out of range for length 30 px"),
        (["render", "--orientation", "0:90:3", "--curvature", "0:0.1:3", "--width", "1:3:2"], "at most two options"),
        (["render", "--width", "-1"], "width = -1 px is out of range"),
        (["render", "--orientation", "a:b:c"], "--orientation = 'a:b:c'"),
        (["render", "--fg", "purple"], "--fg = 'purple'"),
    ],
)
def test_render_bad_input_is_one_clean_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv + ["--size", "64", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bench_render_json_small(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "render", "--json", str(out), "--device", "cpu", "--repeats", "2", "--n-ours", "32",
                 "--n-cairo", "8", "--n-pil", "2", "--quiet"]) == 0
    report = json.loads(out.read_text())
    for key in ("ours", "cairo", "pil"):
        rates = report[key]["images_per_s"]
        assert rates["median"] > 0 and rates["iqr"] >= 0 and len(rates["repeats"]) == 2
    assert report["ratio_vs_pil"] == pytest.approx(report["ours"]["images_per_s"]["median"] / report["pil"]["images_per_s"]["median"])
    assert report["ratio_vs_cairo"] == pytest.approx(report["ours"]["images_per_s"]["median"] / report["cairo"]["images_per_s"]["median"])
    assert report["meta"]["torch"] == torch.__version__ and report["ours"]["threads"] == 1
    assert report["stimuli"]["seed"] == 0 and report["ours"]["batch_size"] == 32
    # the baselines draw the same curves (or the ratio would compare different work)
    assert report["agreement"]["mean_abs_diff_vs_cairo"] < 1e-3
    assert abs(report["agreement"]["ink_ratio_vs_cairo"] - 1) < 0.01


def test_bench_render_without_cairo_still_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import curvebench.benches.render as bench

    def missing(*args: object, **kwargs: object) -> None:
        raise OSError("no library called 'cairo-2' was found")

    monkeypatch.setattr(bench, "CairoCanvas", missing)
    out = tmp_path / "bench.json"
    assert main(["bench", "render", "--json", str(out), "--device", "cpu", "--repeats", "1", "--n-ours", "8",
                 "--n-cairo", "2", "--n-pil", "1", "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["ratio_vs_cairo"] is None and "cairo-2" in report["cairo"]["error"]
    assert report["ratio_vs_pil"] > 0
