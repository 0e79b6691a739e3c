"""Real crash test: SIGKILL a `curvebench run` subprocess at two points, resume each time, compare."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import xarray as xr

from suites.results.reading import open_results
from suites.running.runner import run_suite
from suites.specs.suite import parse_suite

SUITE = """
name = "killme"
description = "crash test"
kind = "curve"
[sweep]
orientation = { start = 0, stop = 360, step = 6 }
curvature = { start = 0, stop = 0.4, num = 40 }
[fixed]
length = 12
width = 2
[model]
name = "groundtruth"
layers = ["edges"]
[run]
batch_size = 32
"""  # 60 x 40 = 2400 stimuli in 75 batches


def _rows(path) -> int:
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs["rows_completed"])
    except Exception:  # noqa: BLE001 - not created yet, or caught mid-write: poll again
        return -1


def _start(args):
    # one torch thread: tiny batches on a shared 2-core machine are much faster without thread hand-offs
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "curvebench", "run", *args, "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _kill_when(proc, path, threshold, rng):
    deadline = time.monotonic() + 300
    # two polls in a row: a read racing the writer must not trigger the kill early
    while _rows(path) < threshold or _rows(path) < threshold:
        if proc.poll() is not None:
            pytest.fail(f"run ended before the kill point {threshold}: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {threshold} rows (now {_rows(path)})")
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.01))  # land somewhere inside a later batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_sigkill_at_two_points_then_resume_equals_uninterrupted(tmp_path):
    suite_file = tmp_path / "killme.toml"
    suite_file.write_text(SUITE)
    ref = run_suite(parse_suite(SUITE, path=str(suite_file)), out=tmp_path / "ref.h5", progress=False, log=None)
    with xr.open_dataset(ref.path) as ds:
        expected = ds.load()

    out = tmp_path / "run.h5"
    rng = random.Random(1)
    proc = _start([str(suite_file), "--out", str(out)])
    for threshold in (600, 1600):  # two kill points, then a resume that finishes
        _kill_when(proc, out, threshold, rng)
        ds = open_results(out)  # committed rows are readable and correct after each kill
        n = ds.sizes["stimulus"]
        assert 32 <= n < 2400 and n % 32 == 0 and ds.attrs["state"] == "running"
        np.testing.assert_array_equal(ds["edges_pre_relu"].values, expected["edges_pre_relu"].values[:n])
        ds.close()
        proc = _start(["--resume", str(out)])  # the killed writer's lock died with it
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "complete" in stdout and "stimuli/s" in stdout
    with xr.open_dataset(out) as ds:
        assert ds.attrs["state"] == "complete" and ds.sizes["stimulus"] == 2400
        for name in ("edges", "edges_pre_relu", "orientation", "curvature", "stimulus"):
            np.testing.assert_array_equal(ds[name].values, expected[name].values)
