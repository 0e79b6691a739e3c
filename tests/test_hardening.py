"""Issue 14: no input, however wrong or hostile, destroys a file, hangs, or ends in a traceback.

Every case listed in the issue is a regression test here. Each command runs in-process
through :func:`curvebench.cli.main` (the error boundary) and must end with exit 0 (a correct
result) or exit 2 and exactly one line ``curvebench: error: ...`` on stderr, leave every
file that existed before byte-identical, leave no new file behind on failure, and finish
in seconds. The property version (generated values and files) is ``test_fuzz_cli.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import curve_suite_text, snapshot
from curvebench.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

TIME_BOUND_S = 20.0


def _id(value) -> str:
    """Readable test ids: the command line, not argv0."""
    return " ".join(map(str, value))[:70] if isinstance(value, list) else "re"



def cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """Run ``curvebench argv`` in-process; returns (exit code, stdout, stderr)."""
    t0 = time.perf_counter()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 2
    took = time.perf_counter() - t0
    cap = capsys.readouterr()
    assert took < TIME_BOUND_S, f"{argv} took {took:.1f} s"
    assert "Traceback" not in cap.err, cap.err
    return code, cap.out, cap.err


def refused(capsys, root: Path, argv: list[str], pattern: str) -> str:
    """Assert ``argv`` fails with one line matching ``pattern``, changing and leaving no file."""
    before = snapshot(root)
    code, out, err = cli(capsys, argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, out, err)
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), (pattern, lines[0])
    after = snapshot(root)
    assert after == before, (argv, set(after) ^ set(before),
                             [k for k in before if k in after and before[k] != after[k]])
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A folder with a complete and a partial results file and a few hostile files."""
    from suites.running.runner import run_suite
    from suites.specs.suite import parse_suite

    root = tmp_path_factory.mktemp("world")
    suite = parse_suite(curve_suite_text("tiny"), path="tiny.toml")
    (root / "tiny.toml").write_text(curve_suite_text("tiny"))
    run_suite(suite, out=root / "results.h5", progress=False, log=None)
    run_suite(suite, out=root / "partial.h5", progress=False, log=None, stop_after_batches=2)
    return root


@pytest.fixture
def w(world, tmp_path, monkeypatch) -> Path:
    """A fresh copy of :func:`world` as the working directory, with hostile files added."""
    root = tmp_path / "w"
    shutil.copytree(world, root)
    for lock in root.glob("*.lock"):
        lock.unlink()
    monkeypatch.chdir(root)
    monkeypatch.setenv("CURVEBENCH_HOME", str(tmp_path / "home"))
    np.save(root / "existing.npy", np.ones((1, 3, 8, 8), np.float32))
    (root / "existing.png").write_bytes(b"\x89PNG not really")
    (root / "afile").write_text("a file, not a folder\n")
    (root / "bad.pth").write_bytes(b"not a torch file at all")
    (root / "zero.npy").write_bytes(b"")
    np.save(root / "empty.npy", np.zeros((0, 3, 8, 8), np.float32))
    for name, data in (("zero", b""), ("truncated", _png_bytes()[:40]), ("corrupt", b"\x89PNG\r\n\x1a\n" + b"x" * 99)):
        d = root / f"imgs-{name}"
        d.mkdir()
        (d / "a.png").write_bytes(data)
    return root


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ existing files destroyed

def test_render_out_onto_a_results_file_is_refused(capsys, w):
    refused(capsys, w, ["render", "--curvature", "0.05", "--out", "results.h5"], r"results\.h5.*png")
    refused(capsys, w, ["render", "--curvature", "0.05", "--out", "existing.png"], r"existing\.png.*exists")


@pytest.mark.parametrize("command", ["tuning", "validate"])
def test_json_onto_the_input_is_refused(capsys, w, command):
    refused(capsys, w, [command, "results.h5", "--json", "results.h5"], r"results\.h5.*input")
    refused(capsys, w, [command, "results.h5", "--json", "results.h5", "--overwrite"], r"results\.h5.*input")


def test_stats_out_onto_an_existing_file_is_refused(capsys, w):
    refused(capsys, w, ["stats", "--images", "builtin", "--limit", "1", "--size", "16", "--out", "results.h5"],
            r"results\.h5.*exists.*--overwrite")


def test_render_npy_with_a_bad_value_leaves_the_existing_file(capsys, w):
    refused(capsys, w, ["render", "--width", "-3", "--npy", "existing.npy", "--overwrite"], r"width")
    refused(capsys, w, ["render", "--npy", "existing.npy"], r"existing\.npy.*exists")


def test_render_huge_size_is_refused_before_any_file(capsys, w):
    refused(capsys, w, ["render", "--size", "100000", "--npy", "big.npy"], r"--size.*at most")


def test_overwrite_replaces_only_on_success(capsys, w):
    code, out, err = cli(capsys, ["render", "--size", "8", "--npy", "existing.npy", "--overwrite"])
    assert code == 0, err
    assert np.load(w / "existing.npy").shape == (1, 3, 8, 8)
    assert not [p for p in w.iterdir() if p.name.startswith(".")]  # no temporary left


# ------------------------------------------------------------------ hostile results files

def _set_attr(path: Path, key: str, value) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs[key] = value


@pytest.mark.parametrize("value", [10**6, -5, 1.5])
def test_hostile_rows_completed_is_refused(capsys, w, value):
    _set_attr(w / "partial.h5", "rows_completed", value)
    refused(capsys, w, ["run", "--resume", "partial.h5", "--no-progress"], r"rows_completed")
    refused(capsys, w, ["tuning", "partial.h5", "--allow-partial"], r"rows_completed")


def test_inconsistent_grid_attributes_are_refused(capsys, w):
    _set_attr(w / "results.h5", "grid_shape", np.asarray([7, 7], np.int64))
    refused(capsys, w, ["tuning", "results.h5"], r"grid_shape")
    refused(capsys, w, ["plot", "results.h5", "--out", "figs"], r"grid_shape")


def test_tuning_refuses_a_partial_sweep_unless_asked(capsys, w):
    refused(capsys, w, ["tuning", "partial.h5"], r"partial.*16 of 60 rows.*--allow-partial")
    refused(capsys, w, ["validate", "partial.h5"], r"partial.*--allow-partial")
    code, out, err = cli(capsys, ["tuning", "partial.h5", "--allow-partial"])
    assert code == 0, err
    assert "partial" in out and "16 of 60" in out


def test_a_file_still_being_written_is_said_to_be(capsys, w):
    import fcntl

    _set_attr(w / "partial.h5", "state", "running")
    fd = os.open(w / "partial.h5.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, out, err = cli(capsys, ["tuning", "partial.h5", "--allow-partial"])
    finally:
        os.close(fd)
        os.unlink(w / "partial.h5.lock")
    assert code == 0, err
    assert "still being written" in out


def test_resume_of_a_complete_file_leaves_it_alone(capsys, w):
    refused(capsys, w, ["run", "--resume", "results.h5", "--no-progress"], r"complete.*nothing to resume")


# ------------------------------------------------------------------ paths

@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs-escape", "a/b"])
def test_suite_names_become_file_names(capsys, w, name):
    from suites.running.runner import default_out_path
    from suites.specs.suite import parse_suite

    s = parse_suite(curve_suite_text(name), path="x.toml")
    p = default_out_path(s, root=w / "results")
    assert p.parent == w / "results" and "/" not in p.name and not p.name.startswith(".")


# ------------------------------------------------------------------ unbounded work

@pytest.mark.parametrize("argv, pattern", ids=_id, argvalues=[
    (["run", "tiny.toml", "--batch-size", "1000000000", "--limit", "50", "--out", "b.h5"], r"batch.size.*at most"),
    (["render", "--ticks", "1e9", "--npy", "t.npy"], r"ticks.*<= 1000"),
    (["render", "--length", "1e9", "--npy", "t.npy"], r"length"),
    (["render", "--cell", "100000", "--curvature", "0:0.1:3", "--out", "t.png"], r"--cell.*at most"),
    (["render", "--orientation", "0:360:1000000000", "--out", "t.png"], r"at most"),
    (["render", "--orientation", "0:360:3000", "--curvature", "0:0.1:3000", "--npy", "t.npy"], r"at most"),
    (["stats", "--images", "builtin", "--size", "100000", "--out", "s.nc"], r"--size.*at most"),
    (["probe", "--model", "groundtruth", "--layers", "curves", "--images", "builtin", "--size", "100000",
      "--out", "p.h5"], r"--size.*at most"),
    (["bench", "probe", "--model", "groundtruth", "--batch", "100000000"], r"batch.*at most"),
])
def test_unbounded_requests_are_refused_up_front(capsys, w, argv, pattern):
    refused(capsys, w, argv, pattern)


# ------------------------------------------------------------------ tracebacks

@pytest.mark.parametrize("argv, pattern", ids=_id, argvalues=[
    (["render", "--length", "inf", "--npy", "t.npy"], r"length.*finite"),
    (["render", "--length", "nan", "--npy", "t.npy"], r"length.*(finite|NaN)"),
    (["render", "--length", "0", "--curvature", "max", "--npy", "t.npy"], r"length"),
    (["run", "tiny.toml", "--model", "inceptionv1", "--weights", "bad.pth", "--out", "r.h5"], r"bad\.pth"),
    (["probe", "--model", "inceptionv1", "--weights", "bad.pth", "--layers", "mixed3b", "--images", "builtin",
      "--out", "p.h5"], r"bad\.pth"),
    (["bench", "probe", "--weights", "bad.pth"], r"bad\.pth"),
    (["bench", "run", "--weights", "bad.pth", "--stimuli", "8"], r"bad\.pth"),
    (["probe", "--model", "groundtruth", "--layers", "curves", "--images", "imgs-zero", "--out", "p.h5"], r"a\.png"),
    (["probe", "--model", "groundtruth", "--layers", "curves", "--images", "imgs-truncated", "--out", "p.h5"],
     r"a\.png"),
    (["stats", "--images", "imgs-corrupt", "--out", "s.nc"], r"a\.png"),
    (["rotate-tuning", "--images", "imgs-zero", "--out", "rt"], r"a\.png"),
    (["probe", "--model", "groundtruth", "--layers", "curves", "--images", "zero.npy", "--out", "p.h5"],
     r"zero\.npy"),
    (["probe", "--model", "groundtruth", "--layers", "curves", "--images", "empty.npy", "--out", "p.h5"],
     r"empty\.npy.*no images"),
    (["plot", "results.h5", "--out", "afile"], r"afile.*not a folder"),
    (["rotate-tuning", "--images", "builtin", "--limit", "1", "--out", "afile"], r"afile.*not a folder"),
    (["demo", "--quick", "--out", "afile/x.h5", "--no-progress"], r"afile"),
    (["tuning", "results.h5", "--stats", "afile"], r"afile"),
    (["plot", "results.h5", "--channels", "a,b"], r"--channels"),
    (["probe", "--model", "groundtruth", "--layers", "curves", "--images", "builtin", "--device", "meta",
      "--out", "p.h5"], r"meta"),
    (["probe", "--model", "groundtruth", "--layers", "curves", "--images", "builtin", "--device", "nosuch",
      "--out", "p.h5"], r"nosuch"),
    (["stats", "--images", "builtin", "--device", "meta", "--out", "s.nc"], r"meta"),
    (["run", "tiny.toml", "--device", "meta", "--out", "r.h5"], r"meta"),
    (["bench", "render", "--device", "nosuch"], r"nosuch"),
])
def test_former_tracebacks_end_in_one_line(capsys, w, argv, pattern):
    refused(capsys, w, argv, pattern)


def test_results_folder_being_a_file(capsys, w):
    (w / "results").write_text("not a folder")
    refused(capsys, w, ["run", "tiny.toml", "--no-progress"], r"results.*not a folder")


def test_curvebench_home_being_a_file(capsys, w, monkeypatch):
    monkeypatch.setenv("CURVEBENCH_HOME", str(w / "afile"))
    refused(capsys, w, ["probe", "--model", "inceptionv1", "--layers", "mixed3b", "--images", "builtin",
                        "--out", "p.h5"], r"afile")


# ------------------------------------------------------------------ silently wrong

def test_tiny_images_are_refused(capsys, w):
    np.save(w / "tiny.npy", np.zeros((2, 3, 2, 2), np.float32))
    refused(capsys, w, ["probe", "--model", "groundtruth", "--layers", "curves", "--images", "tiny.npy",
                        "--out", "p.h5"], r"tiny\.npy.*2 x 2.*at least")


def test_render_outside_the_image_is_refused(capsys, w):
    refused(capsys, w, ["render", "--x", "1e9", "--npy", "t.npy"], r"--x|position")


# ------------------------------------------------------------------ misleading messages

def test_non_utf8_toml_names_the_file(capsys, w):
    (w / "latin.toml").write_bytes(curve_suite_text("caf\xe9").encode("latin-1"))
    refused(capsys, w, ["run", "latin.toml", "--out", "r.h5"], r"latin\.toml.*UTF-8")


def test_refused_local_port_is_not_called_offline(capsys, w):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = refused(capsys, w, ["weights", "download", "--url", f"http://127.0.0.1:{port}/x.pth",
                               "--weights", "dl.pth", "--timeout", "5", "--quiet"], r"refused the connection")
    assert "offline" not in line


def test_zero_rows_failure_does_not_advise_resume(tmp_path):
    from suites.results.writer import _after_failure

    hint = f"`curvebench run --resume {tmp_path / 'x.h5'}`"
    assert "--resume" not in _after_failure(0, hint)
    assert "--resume" in _after_failure(8, hint) and "intact" in _after_failure(8, hint)


def test_one_line_for_argparse_errors_and_internal_errors(capsys, w, monkeypatch):
    code, out, err = cli(capsys, ["render", "--cell", "abc"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--cell" in err
    import curvebench.cli.render as r

    monkeypatch.setattr(r, "_render", lambda args, stack: 1 / 0)
    code, out, err = cli(capsys, ["render", "--npy", "x.npy"])
    assert code == 3 and len(err.strip().splitlines()) == 1 and "internal error: ZeroDivisionError" in err
    assert not (w / "x.npy").exists()


# ------------------------------------------------------------------ the newer commands

def test_discover_refuses_existing_outputs_before_measuring(capsys, w):
    (w / "disc").mkdir()
    (w / "disc" / "summary.json").write_text("{}")
    # refused in well under the time of a measurement (the model is not even loaded)
    refused(capsys, w, ["discover", "--model", "groundtruth", "--layers", "curves", "--out", "disc"],
            r"disc/summary\.json.*already exists.*--overwrite")
    refused(capsys, w, ["discover", "--model", "groundtruth", "--layers", "curves", "--out", "afile"],
            r"afile.*not a folder")
    refused(capsys, w, ["demo", "--model", "groundtruth", "--out", "results.h5"], r"results\.h5.*already exists")


def test_compare_and_report_refuse_existing_targets_and_inputs(capsys, w):
    (w / "page.html").write_text("<p>mine</p>")
    refused(capsys, w, ["report", "results.h5", "--out", "page.html"], r"page\.html.*already exists.*--overwrite")
    code, out, err = cli(capsys, ["report", "results.h5", "--out", "page.html", "--overwrite"])
    assert code == 0, err
    assert "mine" not in (w / "page.html").read_text() and "curvebench report" in (w / "page.html").read_text()
    assert "wrote page.html" in out
    refused(capsys, w, ["compare", "results.h5", "--out", "existing.png"], r"existing\.png.*already exists")


def test_optimize_outputs_and_limits(capsys, w):
    base = ["optimize", "--model", "groundtruth", "--layer", "curves", "--channels", "0", "--steps", "1",
            "--restarts", "1", "--quiet"]
    refused(capsys, w, [*base, "--out", "results.h5"], r"results\.h5.*already exists")
    refused(capsys, w, [*base, "--out", "new.nc", "--figure", "existing.png"], r"--figure.*existing\.png.*exists")
    refused(capsys, w, [*base, "--out", "new.nc", "--steps", "1000000000"], r"steps = 1,000,000,000 .*at most 100,000")
    refused(capsys, w, [*base, "--out", "new.nc", "--restarts", "5000"], r"restarts = 5,000 .*at most 1,000")
    code, out, err = cli(capsys, [*base, "--out", "new.nc", "--json", "new.json"])
    assert code == 0, err
    assert {"new.nc", "new.png", "new.json"} <= {p.name for p in w.iterdir()}
    # the optimize file is a report input (opened by its kind, not as a sweep)
    code, out, err = cli(capsys, ["report", "new.nc", "--out", "opt.html"])
    assert code == 0, err
