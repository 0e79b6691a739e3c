"""Issue 21 (hardening II): folder inputs, special files, tampered middles, subsets of a grid, exit 3.

Every case listed in the issue is a regression test here, run in-process through
:func:`curvebench.cli.main` with the helpers of ``test_hardening.py``: exit 0 with a correct
result, or exit 2 with exactly one line naming the bad file, key, module or value; every
file that existed before byte-identical; nothing left behind; a time bound (so a hang fails).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import curve_suite_text, snapshot
from test_hardening import cli, refused, w, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")

DISCOVER_TINY = ["--orientations", "12", "--curvatures", "4", "--length", "32", "--width", "2",
                 "--angle-curvatures", "1", "--no-figures", "--no-progress"]


@pytest.fixture(scope="module")
def disc_world(tmp_path_factory) -> Path:
    """A discover output folder of the ground truth (tiny sweep) and a statistics cache."""
    import contextlib
    import io

    from curvebench.cli import main

    root = tmp_path_factory.mktemp("disc")
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["discover", "--model", "groundtruth", "--layers", "curves", *DISCOVER_TINY,
                   "--out", str(root / "disc"), "--cache", str(root / "cache")])
    assert rc == 0
    return root


@pytest.fixture
def d(w, disc_world) -> Path:
    """The hostile world of ``test_hardening`` plus a discover folder and a folder of photographs."""
    from PIL import Image

    shutil.copytree(disc_world / "disc", w / "disc")
    shutil.copytree(disc_world / "cache", w / "cache")
    (w / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(w / "imgs" / f"p{i}.png")
    return w


# ------------------------------------------------------------------ 1. inputs and outputs by identity

def test_a_file_read_through_a_folder_argument_is_never_overwritten(capsys, d):
    refused(capsys, d, ["compare", "disc", "--json", "disc/summary.json", "--overwrite", "--out", "c.png"],
            r"--json = 'disc/summary\.json' is inside 'disc', a folder this command reads")
    refused(capsys, d, ["stats", "--images", "imgs", "--out", "imgs/p0.png", "--overwrite", "--size", "32"],
            r"--out = 'imgs/p0\.png' is inside 'imgs'")


def test_a_file_read_from_inside_a_folder_is_refused_at_commit_too(tmp_path, monkeypatch):
    """The run-time record (check_data_file) catches what the argument scan cannot see."""
    from suites.atomic import OutputError, output_file, staging
    from suites.data_files import check_data_file

    monkeypatch.chdir(tmp_path)
    Path("cached.nc").write_bytes(b"original")
    with pytest.raises(OutputError, match=r"cached\.nc.*also an input.*it read 'sub/\.\./cached\.nc'"):
        with staging(overwrite=True):
            Path("sub").mkdir()
            check_data_file("sub/../cached.nc", "cache")
            with output_file("cached.nc") as tmp:
                tmp.write_bytes(b"clobbered")
    assert Path("cached.nc").read_bytes() == b"original"


def test_two_outputs_that_are_one_file_through_dotdot_are_refused_before_work(capsys, w):
    base = ["optimize", "--model", "groundtruth", "--layer", "curves", "--channels", "0", "--steps", "1",
            "--restarts", "1", "--quiet", "--out", "r2.nc"]
    line = refused(capsys, w, [*base, "--json", "x/../r2.nc"], r"--json = 'x/\.\./r2\.nc' is the same file as --out")
    assert "figure" not in line
    refused(capsys, w, [*base, "--json", "r2.nc"], r"--json = 'r2\.nc' is the same file as --out")


@pytest.fixture
def fifo(w) -> Path:
    os.mkfifo(w / "fifo")
    return w / "fifo"


@pytest.mark.parametrize("argv", ids=lambda a: " ".join(a)[:60], argvalues=[
    ["tuning", "results.h5", "--stats", "fifo"],
    ["plot", "results.h5", "--stats", "fifo", "--out", "figs"],
    ["report", "results.h5", "--stats", "fifo", "--out", "r.html"],
    ["discover", "--model", "groundtruth", "--layers", "curves", "--stats", "fifo", "--out", "dd"],
    ["compare", "fifo"],
    ["tuning", "fifo"],
    ["run", "fifo", "--out", "r.h5"],
])
def test_a_fifo_as_an_input_is_refused_without_opening_it(capsys, w, fifo, argv):
    refused(capsys, w, argv, r"'fifo' is a FIFO .*never read")


def test_a_fifo_inside_a_folder_argument_is_refused_without_opening_it(capsys, d):
    (d / "d5").mkdir()
    os.mkfifo(d / "d5" / "summary.json")
    refused(capsys, d, ["compare", "d5"], r"d5/summary\.json' is a FIFO")


@pytest.mark.parametrize("target", ["fifo", "/dev/null"])
def test_overwrite_never_replaces_a_fifo_or_a_device(capsys, w, fifo, target):
    refused(capsys, w, ["render", "--curvature", "0.05", "--out", target, "--overwrite"],
            rf"--out = '{target}' is a (FIFO|character device).*; only regular files")
    assert fifo.exists() and os.path.exists("/dev/null") and not Path("/dev/null").is_file()


def test_a_device_as_cache_is_named_as_cache(capsys, w):
    refused(capsys, w, ["discover", "--model", "groundtruth", "--layers", "curves", "--cache", "/dev/full",
                        "--out", "dd"], r"--cache = '/dev/full' is a character device")


def test_the_one_regular_file_check(tmp_path, fifo):
    from suites.data_files import DataFileError, check_data_file

    (tmp_path / "f").write_text("x")
    assert check_data_file(tmp_path / "f") == tmp_path / "f"
    for bad, why in ((fifo, "FIFO"), (Path("/dev/zero"), "character device"), (tmp_path, "folder"),
                     (tmp_path / "nope", "not found"), ("a\0b", "cannot be read")):
        with pytest.raises(DataFileError, match=why):
            check_data_file(bad, "--stats")
