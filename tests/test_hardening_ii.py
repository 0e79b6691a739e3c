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

DISCOVER_TINY = ["--orientations", "12", "--curvatures", "4", "--length", "32", "--width", "2", "--positions", "1",
                 "--no-figures", "--no-progress"]


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


def test_a_commands_own_output_folder_inside_its_input_folder_may_be_replaced(capsys, d):
    """characterize DIR writes DIR/characterize/: rerun with --overwrite, not refused as DIR's content."""
    code, out, err = cli(capsys, ["characterize", "disc"])
    assert code == 0, err
    refused(capsys, d, ["characterize", "disc"], r"disc/characterize/characterize\.json' already exists")
    code, out, err = cli(capsys, ["characterize", "disc", "--overwrite"])
    assert code == 0, err
    code, out, err = cli(capsys, ["characterize", "disc", "--out", "disc"])  # new files in the input folder: fine
    assert code == 0, err
    refused(capsys, d, ["characterize", "disc", "--out", "disc", "--overwrite"],  # replacing them: not
            r"is inside 'disc', a folder this command reads")


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


# ------------------------------------------------------------------ 2. tampered or incomplete middles

def _edit(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize("name, tamper, pattern", ids=lambda v: v if isinstance(v, str) else "", argvalues=[
    ("nan-orientations", lambda f: f["orientation"].__setitem__(slice(5, 40), np.nan),
     r"row 5 .*orientation = nan, which is not finite \(35 such rows"),
    ("scaled-curvatures", lambda f: f["curvature"].__setitem__(slice(None), f["curvature"][:] * -1e6),
     r"curvature = -\d+, which is off the grid"),
    ("no-channel-dataset", lambda f: f.__delitem__("curves_channel"),
     r"dataset 'curves' has lost the coordinate dataset of its axis 1 .*curves_channel"),
])
@pytest.mark.parametrize("command", ["tuning", "report", "plot"])
def test_tampered_middle_rows_are_refused_by_every_reader(capsys, w, name, tamper, pattern, command):
    _edit(w / "results.h5", tamper)
    extra = {"tuning": [], "report": ["--out", "r.html"], "plot": ["--out", "figs"]}[command]
    refused(capsys, w, [command, "results.h5", *extra], pattern)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # stated in one line, no numpy warnings on the way
def test_non_finite_activations_are_counted_and_refused_or_stated(capsys, w):
    def spoil(f):
        f["curves"][3:7] = np.nan
        f["curves"][9, 0] = np.inf
    _edit(w / "results.h5", spoil)
    n = 4 * 12 + 1
    refused(capsys, w, ["tuning", "results.h5"], rf"non-finite activations \({n} NaN/inf values in 'curves'\).*--allow-partial")
    code, out, err = cli(capsys, ["tuning", "results.h5", "--allow-partial"])
    assert code == 0, err
    assert f"{n} NaN/inf values in 'curves'" in out
    code, out, err = cli(capsys, ["report", "results.h5", "--out", "r.html"])
    assert code == 0 and f"{n} NaN/inf values" in out, err


def test_a_missing_or_short_shard_is_refused(capsys, w):
    """A combined (torchrun) file whose middle shard is gone would read its rows as NaN: refused by name."""
    comb = w / "comb.h5"
    shutil.copy(w / "results.h5", comb)
    names = [f"comb.shards/rank-{r:05d}-of-00003.h5" for r in range(3)]
    _edit(comb, lambda f: (f.attrs.__setitem__("shards", " ".join(names)),
                           f.attrs.__setitem__("shard_rows", np.asarray([[0, 20], [20, 40], [40, 60]]))))
    (w / "comb.shards").mkdir()
    for r in (0, 2):
        shutil.copy(w / "results.h5", w / names[r])
    refused(capsys, w, ["tuning", "comb.h5"], r"shard comb\.shards/rank-00001-of-00003\.h5 \(rows 20-39\) is missing")
    refused(capsys, w, ["report", "comb.h5", "--out", "r.html"], r"rank-00001-of-00003\.h5 .*missing")
    shutil.copy(w / "partial.h5", w / names[1])  # 16 finished rows where 20 are counted
    refused(capsys, w, ["tuning", "comb.h5"], r"rank-00001-of-00003\.h5 holds 16 finished rows but .* counts 20")


# ------------------------------------------------------------------ subsets of a grid (--limit)

def test_a_limit_run_says_it_is_a_subset_wherever_it_is_read(capsys, w):
    code, _, err = cli(capsys, ["run", "tiny.toml", "--limit", "10", "--out", "lim.h5", "--no-progress"])
    assert code == 0, err
    subset = r"10 of 60 grid cells; complete axes: curvature; orientation: 2 of 12 values \(0 to 30\)"
    refused(capsys, w, ["tuning", "lim.h5"], rf"a subset of its grid: {subset}.*--allow-partial")
    refused(capsys, w, ["validate", "lim.h5"], r"a subset of its grid.*--allow-partial")
    code, out, err = cli(capsys, ["tuning", "lim.h5", "--allow-partial", "--json", "lim.json"])
    assert code == 0, err
    import re

    assert re.search(subset, out), out
    import json

    report = json.loads((w / "lim.json").read_text())
    assert report["grid_subset"].startswith("10 of 60 grid cells")
    for fam in (f for layer in report["layers"].values() for f in layer["families"].values()):
        assert fam["orientations_swept"] == 2 and fam["orientation_range_deg"] == [0.0, 30.0]
    for command, extra in (("plot", ["--out", "figs"]), ("report", ["--out", "r.html"])):
        code, out, err = cli(capsys, [command, "lim.h5", *extra])
        assert code == 0 and re.search(subset, out), (command, out, err)


def test_family_coverage_says_how_many_orientations_it_covers():
    from suites.analysis.tuning import family_coverage

    o = np.array([0.0, 0.5, 1.0])
    f = family_coverage(o, np.ones((2, 3)), [0.0, 1.0])
    assert f["coverage"] == 1.0 and f["orientations_swept"] == 3 and f["orientation_range_deg"] == [0.0, 1.0]


# ------------------------------------------------------------------ 3. size-like options bounded before work

@pytest.mark.parametrize("argv, pattern", ids=lambda a: " ".join(a)[:60] if isinstance(a, list) else "re", argvalues=[
    (["discover", "--model", "groundtruth", "--layers", "curves", "--size", "100000", "--out", "dd"],
     r"--size = 100,000 px is too large: at most 8,192 px"),
    (["discover", "--model", "groundtruth", "--layers", "curves", "--orientations", "100000000", "--out", "dd"],
     r"--orientations = 100,000,000 is too large: at most 10,000"),
    (["discover", "--model", "groundtruth", "--layers", "curves", "--orientations", "5000", "--curvatures", "5000",
      "--positions", "4", "--out", "dd"], r"--orientations x --curvatures x --positions = 100,000,000 stimuli is too large: at most 1,000,000"),
    (["discover", "--model", "groundtruth", "--layers", "curves", "--length", "1e308", "--out", "dd"],
     r"--length = 1e\+308 px is too large: at most 131,072 px"),
    (["render", "--length", "1e308", "--out", "l.png"], r"--length = '1e308': 1e\+308 is too large"),
    (["optimize", "--model", "groundtruth", "--layer", "curves", "--sweep-orientations", "100000", "--out", "o.nc"],
     r"--sweep-orientations = 100,000 is too large: at most 10,000"),
    (["optimize", "--model", "groundtruth", "--layer", "curves", "--chunk", "10000000", "--out", "o.nc"],
     r"--chunk = 10,000,000 is too large: at most 65,536"),
    (["report", "results.h5", "--max-channels", "100000000", "--out", "r.html"], r"--max-channels.*at most 10,000"),
    (["stats", "--images", "builtin", "--limit", "10000000000", "--out", "s.nc"], r"--limit.*at most 1,000,000,000"),
    (["rotate-tuning", "--images", "builtin", "--k", "100000", "--out", "rt"], r"--k = 100,000 is too large"),
    (["bench", "render", "--repeats", "100000000"], r"--repeats = 100,000,000 is too large: at most 1,000"),
    (["bench", "run", "--stimuli", "100000000000"], r"--stimuli.*at most 1,000,000"),
])
def test_every_size_like_option_is_bounded_before_work(capsys, w, argv, pattern):
    refused(capsys, w, argv, pattern)


def test_the_option_table_covers_every_size_like_option():
    """Every integer option of every command is bounded (or is a seed / id list, which is not a size)."""
    import argparse

    from curvebench.cli import build_parser
    from suites.limits import OPTION_LIMITS

    unbounded = set()

    def walk(parser):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    walk(sub)
            elif a.option_strings and getattr(a.type, "__name__", "") in ("positive_int", "nonnegative_int", "int"):
                if a.dest not in OPTION_LIMITS and a.dest not in ("seed",):
                    unbounded.add(a.dest)
    walk(build_parser())
    assert not unbounded, unbounded


# ------------------------------------------------------------------ 4. debris

def test_a_failed_demo_leaves_no_results_file_and_no_lock(capsys, w, monkeypatch):
    import suites.analysis.plots as plots

    def broken(*a, **k):
        raise ValueError("figure failed")
    monkeypatch.setattr(plots, "plot_heatmaps", broken)
    refused(capsys, w, ["demo", "--model", "groundtruth", "--out", "q1", "--quick", "--no-progress"], r"figure failed")
    assert not (w / "q1").exists() and not (w / "q1.lock").exists()


def test_demo_out_without_suffix_puts_its_figures_beside_it(capsys, w):
    code, out, err = cli(capsys, ["demo", "--model", "groundtruth", "--out", "q1", "--quick", "--no-progress"])
    assert code == 0, err
    assert (w / "q1").is_file() and (w / "q1-figures").is_dir()


def _wait_for(pred, timeout: float) -> bool:
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_during_discover_cleans_up_like_sigint(capsys, d, monkeypatch):
    """SIGTERM arrives while discover writes its figures (its folder and temporaries exist): all removed."""
    import signal
    import time

    import suites.discovery.pipeline as pipeline

    seen = {}

    def terminated(result, out):
        seen["temporaries"] = sorted(p.name for p in out.iterdir())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in this frame long before
        raise AssertionError("SIGTERM was not turned into a clean exit")
    monkeypatch.setattr(pipeline, "write_figures", terminated)
    before = snapshot(d)
    code, out, err = cli(capsys, ["discover", "--model", "groundtruth", "--layers", "curves", *DISCOVER_TINY[:-2], "--no-progress",
                                  "--cache", "cache", "--out", "new"])
    assert code == 143 and err.strip() == "curvebench: terminated (SIGTERM); nothing was written", (code, err)
    assert any(".tmp-" in n for n in seen["temporaries"])  # there was something to clean up
    assert snapshot(d) == before and not (d / "new").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the command's only


def test_temporaries_of_a_killed_command_are_removed_by_the_next(tmp_path, monkeypatch):
    import subprocess

    from suites.atomic import output_file, staging

    monkeypatch.chdir(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".fig.tmp-{pid}-0123abcd.png"
    stale.write_bytes(b"half a figure")
    alive = tmp_path / f".fig.tmp-{os.getppid()}-0123abcd.png"  # a running process's: left alone
    alive.write_bytes(b"being written")
    other = tmp_path / f".other.tmp-{pid}-0123abcd.png"  # another target's: not this command's business
    other.write_bytes(b"x")
    with staging():
        with output_file("fig.png") as tmp:
            tmp.write_bytes(b"png")
    assert not stale.exists() and alive.exists() and other.exists() and Path("fig.png").read_bytes() == b"png"


# ------------------------------------------------------------------ 5. exit 3 on user input, and messages

FACTORIES = {
    "fac_raise": "def make():\n    raise RuntimeError('boom')\n",
    "fac_raise_import": "raise RuntimeError('at import')\n",
    "fac_syntax": "def make(:\n",
    "fac_exit_import": "import sys\nsys.exit(0)\n",
    "fac_exit_call": "import sys\ndef make():\n    sys.exit(0)\n",
    "fac_forward": ("import torch.nn as nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.conv = nn.Conv2d(3, 4, 3)\n    def forward(self, x):\n"
                    "        raise RuntimeError('forward fails')\ndef make():\n    return M()\n"),
    "fac_slash": ("import torch.nn as nn\ndef make():\n    m = nn.Sequential()\n"
                  "    m.add_module('a/b', nn.Conv2d(3, 4, 3))\n    return m\n"),
}


@pytest.mark.parametrize("module, pattern", ids=str, argvalues=[
    ("fac_raise", r"make\(\) raised RuntimeError: boom"),
    ("fac_raise_import", r"importing module 'fac_raise_import' raised RuntimeError: at import"),
    ("fac_syntax", r"module 'fac_syntax' has a syntax error \(.*fac_syntax\.py, line 1"),
    ("fac_exit_import", r"importing module 'fac_exit_import' called sys\.exit\(0\)"),
    ("fac_exit_call", r"make\(\) called sys\.exit\(0\)"),
    ("fac_forward", r"forward\(\) raised RuntimeError: forward fails"),
    ("fac_slash", r"submodule name 'a/b' contains '/'"),
])
@pytest.mark.parametrize("command", ["discover", "probe"])
def test_a_broken_factory_module_is_one_line_naming_it(capsys, w, monkeypatch, module, pattern, command):
    (w / f"{module}.py").write_text(FACTORIES[module])
    monkeypatch.syspath_prepend(str(w))
    sys.modules.pop(module, None)
    argv = {"discover": ["discover", "--model", f"{module}:make", "--layers", "conv", "--out", "dd", "--no-progress"],
            "probe": ["probe", "--model", f"{module}:make", "--layers", "conv", "--images", "builtin",
                      "--out", "p.h5"]}[command]
    refused(capsys, w, argv, rf"model '{module}:make': .*{pattern}")


def test_deeply_nested_toml_is_one_line(capsys, w):
    (w / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    refused(capsys, w, ["run", "deep.toml", "--out", "r.h5"], r"deep\.toml: nested too deeply")
    (w / "d40.toml").write_text("a = " + "[" * 40 + "]" * 40 + "\n")
    refused(capsys, w, ["run", "d40.toml", "--out", "r.h5"], r"nested 33 levels deep; at most 32")


@pytest.mark.parametrize("old, new, key", [('name = "tiny"', 'name = "ti\\u0000ny"', "name"),
                                           ("length = 16", 'length = 16\nfg = "\\u0000"', "fixed.fg")])
def test_a_nul_byte_in_a_suite_string_names_the_key(capsys, w, old, new, key):
    (w / "nul.toml").write_text((w / "tiny.toml").read_text().replace(old, new))
    refused(capsys, w, ["run", "nul.toml", "--out", "r.h5"], rf"nul\.toml: key '{key}' contains a NUL byte")


def test_run_out_with_a_trailing_slash_is_not_a_file(capsys, w):
    refused(capsys, w, ["run", "tiny.toml", "--out", "newd/", "--no-progress"], r"--out = 'newd/' is not a file name")
    assert not (w / "newd").exists()


def test_an_over_long_output_name_is_named_by_the_users_path(capsys, w):
    name = "a" * 300 + ".png"
    line = refused(capsys, w, ["render", "--curvature", "0.05", "--out", name], rf"--out = '{name}': the file name is 304 bytes long; at most 255")
    assert ".tmp-" not in line
    ok = "b" * 250 + ".png"  # fits, though its temporary's name would not without shortening
    code, out, err = cli(capsys, ["render", "--curvature", "0.05", "--out", ok])
    assert code == 0 and (w / ok).is_file(), err


def test_empty_output_paths_are_refused(capsys, w):
    refused(capsys, w, ["tuning", "results.h5", "--json", ""], r"--json = '' is empty")
    refused(capsys, w, ["render", "--curvature", "0.05", "--out", ""], r"--out = '' is empty")


def test_disk_full_in_report_names_the_path(capsys, w, monkeypatch):
    """A full disk while the page is written is reported by the user's path, not the temporary's."""
    import errno

    real = Path.write_text

    def full(self, *a, **k):
        if ".tmp-" in self.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "write_text", full)
    line = refused(capsys, w, ["report", "results.h5", "--out", "page.html"],
                   r"--out = 'page\.html': No space left on device; nothing was written")
    assert ".tmp-" not in line


def test_a_cache_that_cannot_be_written_is_named_as_cache(capsys, w):
    (w / "cachefile").write_text("a file, not a folder")
    refused(capsys, w, ["discover", "--model", "groundtruth", "--layers", "curves", *DISCOVER_TINY,
                        "--cache", "cachefile", "--out", "dd"], r"--cache")
