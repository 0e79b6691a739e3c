"""`curvebench probe`: arbitrary images into an xarray-readable file with the runs' naming."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image

import probes
from curvebench.cli import main as cli_main
from suites.running.probe_images import load_npy_images


pytestmark = pytest.mark.usefixtures("one_thread")


def test_probe_npy_centre_unit_matches_the_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    imgs = (rng.random((5, 40, 48, 3)) * 255).astype(np.uint8)  # non-square, channels last
    np.save(tmp_path / "x.npy", imgs)
    out = tmp_path / "p.h5"
    assert cli_main(["probe", "--model", "groundtruth", "--layers", "edges,curves", "--images",
                     str(tmp_path / "x.npy"), "--out", str(out), "--no-progress", "--batch-size", "2"]) == 0
    assert "5 images" in capsys.readouterr().out
    with xr.open_dataset(out) as ds:
        assert ds["curves"].dims == ("image", "curves_channel")
        assert ds["edges_pre_relu"].dims == ("image", "edges_channel")
        assert list(ds["source"].values) == [f"x.npy[{i}]" for i in range(5)]
        assert ds.attrs["state"] == "complete"
        net = probes.load_model("groundtruth")
        ref = net.probe(torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255, ["curves"])
        np.testing.assert_allclose(ds["curves_pre_relu"].values, ref["curves_pre_relu"].numpy(), rtol=1e-5, atol=1e-6)


def test_probe_folder_full_map(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray((rng.random((70 + 10 * i, 60, 3)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "m.h5"
    assert cli_main(["probe", "--model", "groundtruth", "--layers", "curves", "--images", str(folder),
                     "--out", str(out), "--full-map", "--size", "64", "--no-progress"]) == 0
    with xr.open_dataset(out) as ds:
        assert ds["curves"].dims == ("image", "curves_channel", "curves_y", "curves_x")
        assert ds["curves"].shape == (3, 12, 16, 16)
        # coordinates are receptive-field centres in input pixels (stride 4, unit j at 4 j + 3 + 0.5)
        np.testing.assert_allclose(ds["curves_x"].values, 4 * np.arange(16) + 3.5)
        assert [s.endswith(f"{i}.png") for i, s in enumerate(ds["source"].values)] == [True] * 3


def test_probe_errors(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 5, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"must have shape \(N, H, W, 3\) or \(N, 3, H, W\)"):
        load_npy_images(tmp_path / "bad.npy")
    np.save(tmp_path / "f.npy", np.full((2, 8, 8, 3), 2.0, dtype=np.float32))
    assert cli_main(["probe", "--model", "groundtruth", "--layers", "nope", "--images", str(tmp_path / "f.npy"),
                     "--out", str(tmp_path / "o.h5")]) == 2
    assert cli_main(["probe", "--model", "groundtruth", "--layers", "edges", "--images", str(tmp_path / "f.npy"),
                     "--out", str(tmp_path / "o2.h5"), "--no-progress"]) == 2


def test_probe_with_a_wrong_weights_file_ends_in_one_line(tmp_path, capsys):
    """Issue 10: `curvebench probe --weights WRONG_FILE` says what is wrong in one line, no traceback."""
    import subprocess
    import sys

    np.save(tmp_path / "x.npy", np.zeros((1, 3, 32, 32), dtype=np.float32))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>this is not a weights file</html>")
    foreign = tmp_path / "foreign.pt"
    torch.save({"conv.weight": torch.zeros(2, 2)}, foreign)
    truncated = tmp_path / "truncated.pt"
    torch.save({"conv.weight": torch.zeros(64, 64)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    cases = [
        ("inceptionv1", garbage, "is not a readable torch state dict"),
        ("inceptionv1", foreign, "does not match inception5h"),
        ("inceptionv1", truncated, "is not a readable torch state dict"),
        ("inceptionv1", tmp_path / "missing.pth", "weights file not found"),
        ("inceptionv1", tmp_path, "is a folder, not a weights file"),
        ("groundtruth", garbage, "takes no weights file"),
    ]
    for i, (model, weights, message) in enumerate(cases):
        out = tmp_path / f"o{i}.h5"
        rc = cli_main(["probe", "--model", model, "--weights", str(weights), "--layers", "mixed3b" if model == "inceptionv1" else "curves",
                       "--images", str(tmp_path / "x.npy"), "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and err.startswith("curvebench: error: ") and message in err, (weights, err)
        assert not out.exists()
    # and through the installed entry point, as a user runs it
    proc = subprocess.run([sys.executable, "-m", "curvebench", "probe", "--model", "inceptionv1", "--weights", str(garbage),
                           "--layers", "mixed3b", "--images", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.h5")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"curvebench: error: {garbage} is not a readable torch state dict "
                                                "(torch.load with weights_only=True failed: UnpicklingError); "
                                                "expected inception5h for inceptionv1"]
