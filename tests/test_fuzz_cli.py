"""Issue 14 as a property: every command, given generated bad values and hostile files, either
succeeds or ends in one line with exit 2; no pre-existing file changes, nothing is left behind
on failure, no traceback, and it finishes in seconds.

Hypothesis draws command lines from templates (``render``, ``run``, ``run --resume``,
``probe``, ``stats``, ``tuning``, ``validate``, ``plot``, ``report``, ``optimize``, ``compare``) whose values come
from a pool of hostile numbers, texts and paths (results files edited to disagree with
themselves, zero-byte and truncated files, folders where files are expected, the inputs
themselves as outputs). Each command runs in-process through :func:`curvebench.cli.main`,
so the examples are cheap. The run is reproducible and bounded: ``derandomize=True`` (a
fixed seed derived from the test) and ``max_examples`` per template family, no example
database; ``FUZZ_EXAMPLES`` scales the counts (``FUZZ_EXAMPLES=5 pytest tests/test_fuzz_cli.py``
for a 5x longer search). See ``docs/hardening.md``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import curve_suite_text, snapshot
from curvebench.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
TIME_BOUND_S = 20.0


NUMBERS = ["0", "-1", "1", "3", "0.5", "nan", "inf", "-inf", "1e9", "1e308", "-1e-300", "abc", "", " ", "1,", ",",
           "0:1:0", "0:1:3", "1:0:2", "0:1:1e9", "0:1:-3", "-max", "max", "-max:max:3", "0x10", "1_000", "\u0661",
           "9" * 40, "1:2", "::", "32", "100000", "8193"]
TEXTS = ["", "curves", "nosuch", "curves,curves", "a,b", ",", "../x", "mixed3b", "0", "-1", "curves,", "\x7f"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Inputs a user (or an attacker) may hand to a command: good, partial, edited and broken files."""
    from suites.running.runner import run_suite
    from suites.specs.suite import parse_suite

    root = tmp_path_factory.mktemp("fuzz")
    (root / "tiny.toml").write_text(curve_suite_text("tiny", step=60, batch_size=4))
    (root / "escape.toml").write_text(curve_suite_text("../../escape", step=60, batch_size=4))
    (root / "latin.toml").write_bytes(curve_suite_text("caf\xe9", step=60, batch_size=4).encode("latin-1"))
    (root / "bigbatch.toml").write_text(curve_suite_text("big", step=60, batch_size=10**9))
    suite = parse_suite(curve_suite_text("tiny", step=60, batch_size=4), path="tiny.toml")
    run_suite(suite, out=root / "results.h5", progress=False, log=None)
    run_suite(suite, out=root / "partial.h5", progress=False, log=None, stop_after_batches=2)
    for name, key, value in (("huge-rows.h5", "rows_completed", 10**6), ("neg-rows.h5", "rows_completed", -5),
                             ("frac-rows.h5", "rows_completed", 2.5), ("bad-shape.h5", "grid_shape", [7, 7]),
                             ("bad-state.h5", "state", "weird"), ("bad-suite.h5", "suite", "name = 3")):
        shutil.copy(root / "partial.h5", root / name)
        with h5py.File(root / name, "r+") as f:
            f.attrs[key] = np.asarray(value) if isinstance(value, list) else value
    for lock in root.glob("*.lock"):
        lock.unlink()
    data = (root / "results.h5").read_bytes()
    (root / "truncated.h5").write_bytes(data[: len(data) // 3])
    (root / "zero.h5").write_bytes(b"")
    (root / "text.txt").write_text("hello\n")
    (root / "zero.npy").write_bytes(b"")
    np.save(root / "empty.npy", np.zeros((0, 3, 8, 8), np.float32))
    np.save(root / "tiny.npy", np.zeros((2, 3, 2, 2), np.float32))
    np.save(root / "good.npy", np.full((2, 3, 16, 16), 0.5, np.float32))
    np.save(root / "outofrange.npy", np.full((1, 3, 16, 16), 7.0, np.float32))
    (root / "bad.pth").write_bytes(b"PK\x03\x04 not a torch file")
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(buf, format="PNG")
    for name, blob in (("imgs-zero", b""), ("imgs-trunc", buf.getvalue()[:30]), ("imgs-good", buf.getvalue())):
        (root / name).mkdir()
        (root / name / "a.png").write_bytes(blob)
    (root / "folder").mkdir()
    from suites.optimization.ascent import optimize, save

    save(optimize("groundtruth", "curves", [0, 3], restarts=1, steps=1, sweep_orientations=6, sweep_curvatures=2),
         root / "optimum.nc")
    return root


PATHS = ["results.h5", "partial.h5", "huge-rows.h5", "neg-rows.h5", "frac-rows.h5", "bad-shape.h5", "bad-state.h5",
         "bad-suite.h5", "truncated.h5", "zero.h5", "text.txt", "zero.npy", "empty.npy", "tiny.npy", "good.npy",
         "outofrange.npy", "bad.pth", "imgs-zero", "imgs-trunc", "imgs-good", "folder", "tiny.toml", "escape.toml",
         "latin.toml", "bigbatch.toml", "optimum.nc", "nosuch.h5", "text.txt/below", "new.out", "folder/new.json", "", "-"]
OUTS = ["results.h5", "partial.h5", "text.txt", "folder", "text.txt/x.png", "new.png", "new.npy", "new.json",
        "new.h5", "sub/new.nc", "zero.npy", "tiny.toml"]

numbers = st.sampled_from(NUMBERS)
texts = st.one_of(st.sampled_from(TEXTS), st.text(max_size=8))
paths = st.sampled_from(PATHS)
outs = st.sampled_from(OUTS)


def _opts(draw, table: dict[str, st.SearchStrategy]) -> list[str]:
    keys = draw(st.lists(st.sampled_from(sorted(table)), unique=True, max_size=4))
    argv: list[str] = []
    for k in keys:
        argv += [k, draw(table[k])]
    return argv


@st.composite
def render_argv(draw) -> list[str]:
    table = {f"--{k}": numbers for k in ("orientation", "curvature", "length", "width", "ticks", "x", "y", "fill",
                                         "rounding", "tick-length", "fg-hue", "cell", "gap")}
    table.update({"--size": st.sampled_from(["16", "0", "-3", "abc", "100000", "16,0", "8193", "24,16"]),
                  "--fg": texts, "--kind": st.sampled_from(["curve", "line", "angle", "nosuch"])})
    target = draw(st.sampled_from([["--out", draw(outs)], ["--npy", draw(outs)], []]))
    return ["render", "--size", "16", *_opts(draw, table), *target]


@st.composite
def analysis_argv(draw) -> list[str]:
    cmd = draw(st.sampled_from(["tuning", "validate", "plot"]))
    table = {"--stats": paths, "--layers": texts, "--json" if cmd != "plot" else "--out": outs}
    if cmd == "plot":
        table.update({"--channels": texts, "--vmax": numbers})
    else:
        table["--allow-partial"] = st.just("")
    argv = [cmd, draw(paths), *_opts(draw, table)]
    return [a for a in argv if a != ""] if "--allow-partial" in argv else argv


@st.composite
def run_argv(draw) -> list[str]:
    if draw(st.booleans()):
        return ["run", "--resume", draw(paths), "--no-progress", *_opts(draw, {"--device": texts})]
    table = {"--batch-size": numbers, "--limit": numbers, "--out": outs, "--layers": texts,
             "--device": st.sampled_from(["cpu", "meta", "nosuch", "cuda:7", ""]), "--weights": paths,
             "--model": st.sampled_from(["groundtruth", "inceptionv1", "nosuch"])}
    return ["run", draw(st.sampled_from(["tiny.toml", "escape.toml", "latin.toml", "bigbatch.toml", "text.txt",
                                         "zero.h5", "folder", "nosuch"])), "--no-progress", "--limit", "4",
            *_opts(draw, table)]


@st.composite
def images_argv(draw) -> list[str]:
    cmd = draw(st.sampled_from(["probe", "stats"]))
    table = {"--size": numbers, "--batch-size": numbers, "--device": st.sampled_from(["cpu", "meta", "nosuch", ""]),
             "--layers": texts}
    images = draw(st.sampled_from(["imgs-zero", "imgs-trunc", "imgs-good", "zero.npy", "empty.npy", "tiny.npy",
                                   "good.npy", "outofrange.npy", "folder", "text.txt", "nosuch", "builtin"]))
    if cmd == "probe":
        return ["probe", "--model", "groundtruth", "--layers", "curves", "--images", images, "--size", "16",
                "--no-progress", "--out", draw(outs), *_opts(draw, table)]
    return ["stats", "--images", images, "--limit", "1", "--size", "16", "--out", draw(outs), *_opts(draw, table)]


#: counts for optimize: hostile, but none that is valid and expensive (a valid 100000-step run is allowed work)
COUNTS = ["0", "-1", "1", "2", "nan", "inf", "abc", "", "1.5", "1e9", "9" * 40, "1001", "100001", "0x10"]
PAIRS = ["width=3", "nosuch=1", "width=nan", "width=1e9", "fg=0,0,0", "fg=2,0,0", "fg=a", "=", "width", "orientation=0",
         "curvature=0:0.08", "curvature=1:0", "curvature=0:1e9", "length=nan:3", "position=0", "width=3:3"]


@st.composite
def newer_argv(draw) -> list[str]:
    """The commands added after the first hardening pass: report, optimize, compare."""
    cmd = draw(st.sampled_from(["report", "optimize", "compare"]))
    if cmd == "report":
        table = {"--vmax": numbers, "--channels": texts, "--layers": texts, "--max-channels": numbers, "--stats": paths,
                 "--title": texts}
        out = draw(st.sampled_from([*OUTS, "new.html", "folder/new.html", "text.txt/r.html"]))
        return ["report", draw(paths), *_opts(draw, table), "--out", out]
    if cmd == "compare":
        return ["compare", draw(paths), "--out", draw(outs), *_opts(draw, {"--json": outs})]
    table = {"--steps": st.sampled_from(COUNTS), "--restarts": st.sampled_from(COUNTS),
             "--channels": st.sampled_from(["0", "all", "family", "99", "-1", "0,0", "a", ""]),
             "--fix": st.sampled_from(PAIRS), "--bounds": st.sampled_from(PAIRS), "--lr": numbers, "--tol": numbers,
             "--json": outs, "--figure": outs, "--sensitivity": numbers, "--chunk": st.sampled_from(COUNTS),
             "--stats": paths, "--device": st.sampled_from(["cpu", "meta", "nosuch", ""])}
    layer = draw(st.sampled_from(["curves", "curves", "nosuch"]))
    if draw(st.booleans()):  # a plausible request with one hostile choice: these often succeed
        table = {k: table[k] for k in ("--fix", "--bounds", "--json", "--figure", "--stats")}
        out = "new.nc"
    else:
        out = draw(outs)
    return ["optimize", "--model", "groundtruth", "--layer", layer, "--channels", "0", "--steps", "1", "--restarts", "1",
            "--quiet", "--out", out, *_opts(draw, table)]


def _check(world: Path, argv: list[str]) -> None:
    before = snapshot(world)
    cwd = os.getcwd()
    err, out = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    os.chdir(world)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(cwd)
    took = time.perf_counter() - t0
    after = snapshot(world)
    new = sorted(set(after) - set(before))
    # clean up what a successful command wrote, so the next example starts from the same world
    for name in new:
        (world / name).unlink()
    for d in sorted((p for p in world.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()) and d.name != "folder":
            d.rmdir()
    text = err.getvalue()
    if os.environ.get("FUZZ_LOG"):
        with open(os.environ["FUZZ_LOG"], "a") as log:
            log.write(f"{code} {took:.2f}s {argv} :: {text.strip().splitlines()[-1:] }\n")
    assert "Traceback" not in text, (argv, text)
    assert took < TIME_BOUND_S, (argv, took)
    changed = [k for k in before if k in after and before[k] != after[k]]
    assert not changed, (argv, "changed", changed, text)
    assert not [k for k in before if k not in after], (argv, "removed")
    assert code in (0, 1, 2), (argv, code, text)
    if code == 2:
        lines = text.strip().splitlines()
        assert len(lines) == 1 and ": error: " in lines[0], (argv, text)
        assert not new, (argv, "left behind", new)


FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


@settings(FUZZ, max_examples=int(60 * SCALE))
@given(argv=render_argv())
def test_fuzz_render(world, argv):
    _check(world, argv)


@settings(FUZZ, max_examples=int(40 * SCALE))
@given(argv=analysis_argv())
def test_fuzz_analysis(world, argv):
    _check(world, argv)


@settings(FUZZ, max_examples=int(25 * SCALE))
@given(argv=run_argv())
def test_fuzz_run(world, argv):
    _check(world, argv)


@settings(FUZZ, max_examples=int(25 * SCALE))
@given(argv=images_argv())
def test_fuzz_images(world, argv):
    _check(world, argv)


@settings(FUZZ, max_examples=int(40 * SCALE))
@given(argv=newer_argv())
def test_fuzz_report_optimize_compare(world, argv):
    _check(world, argv)


# ------------------------------------------------------------------ issue 21: folders, special files, middles

#: files of the world read through folder arguments, special files, results files tampered in their middle rows
FOLDER_PATHS = ["disc", "disc/summary.json", "disc/family.nc", "imgs-good", "imgs-good/a.png", "fifo", "fifo-dir",
                "/dev/zero", "nan-middle.h5", "scaled-middle.h5", "nan-act.h5", "no-channel.h5", "missing-shard.h5",
                "limited.h5", "results.h5", "x/../results.h5", "folder/../disc/summary.json"]


@pytest.fixture(scope="module")
def world2(world) -> Path:
    """:func:`world` plus a discover folder, FIFOs (alone and inside a folder) and results tampered in the middle."""
    root = world
    if (root / "disc").exists():
        return root
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["discover", "--model", "groundtruth", "--layers", "curves", "--orientations", "8",
                     "--curvatures", "3", "--length", "32", "--width", "2", "--positions", "1", "--no-figures",
                     "--no-progress", "--out", str(root / "disc"), "--cache", str(root / "cache")]) == 0
        assert main(["run", str(root / "tiny.toml"), "--limit", "5", "--no-progress",
                     "--out", str(root / "limited.h5")]) == 0
    os.mkfifo(root / "fifo")
    (root / "fifo-dir").mkdir()
    os.mkfifo(root / "fifo-dir" / "summary.json")

    def tamper(name: str, fn) -> None:
        shutil.copy(root / "results.h5", root / name)
        with h5py.File(root / name, "r+") as f:
            fn(f)
    tamper("nan-middle.h5", lambda f: f["orientation"].__setitem__(slice(3, 6), np.nan))
    tamper("scaled-middle.h5", lambda f: f["curvature"].__setitem__(slice(None), f["curvature"][:] * -1e6))
    tamper("nan-act.h5", lambda f: f["curves"].__setitem__(slice(4, 8), np.inf))
    tamper("no-channel.h5", lambda f: f.__delitem__("curves_channel"))
    tamper("missing-shard.h5", lambda f: (f.attrs.__setitem__("shards", "missing-shard.shards/r0.h5"),
                                          f.attrs.__setitem__("shard_rows", np.asarray([[0, 30]]))))
    for lock in root.glob("*.lock"):
        lock.unlink()
    return root


@st.composite
def folders_argv(draw) -> list[str]:
    """Outputs inside folder inputs or equal to inputs through ``..``; special files; tampered middle rows."""
    path = st.sampled_from(FOLDER_PATHS)
    outs2 = st.sampled_from([*FOLDER_PATHS, "new.json", "new.png", "x/../new.json", "fifo"])
    overwrite = draw(st.sampled_from([[], ["--overwrite"]]))
    cmd = draw(st.sampled_from(["compare", "stats", "tuning", "plot", "report", "discover"]))
    if cmd == "compare":
        return ["compare", draw(path), "--out", draw(outs2), "--json", draw(outs2), *overwrite]
    if cmd == "stats":
        return ["stats", "--images", draw(st.sampled_from(["imgs-good", "fifo-dir", "fifo", "/dev/zero"])),
                "--limit", "1", "--size", "16", "--out", draw(outs2), *overwrite]
    if cmd == "discover":
        return ["discover", "--model", "groundtruth", "--layers", "curves", "--orientations", "8", "--curvatures", "3",
                "--length", "32", "--width", "2", "--positions", "1", "--no-figures", "--no-progress",
                "--cache", draw(st.sampled_from(["cache", "fifo", "/dev/zero", "disc/summary.json"])),
                "--stats", draw(path), "--out", draw(st.sampled_from(["new-disc", "disc", "fifo-dir"])),
                "--json", draw(outs2), *overwrite]
    extra = {"tuning": ["--json", draw(outs2)], "plot": ["--out", draw(st.sampled_from(["figs", "disc"]))],
             "report": ["--out", draw(st.sampled_from(["new.html", "fifo", "x/../new.html"]))]}[cmd]
    stats = ["--stats", draw(path)] if draw(st.booleans()) else []
    partial = ["--allow-partial"] if cmd == "tuning" and draw(st.booleans()) else []
    return [cmd, draw(path), *extra, *stats, *partial, *overwrite]


@settings(FUZZ, max_examples=int(30 * SCALE))
@given(argv=folders_argv())
def test_fuzz_folders_special_files_and_middles(world2, argv):
    import stat

    _check(world2, argv)
    for fifo in (world2 / "fifo", world2 / "fifo-dir" / "summary.json"):
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), (argv, "replaced a FIFO")
