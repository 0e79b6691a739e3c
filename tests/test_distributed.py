"""`curvebench run` under torchrun (gloo, CPU, 2 processes): one combined file equal to a plain run.

Each test starts real ``torchrun`` jobs (``python -m torch.distributed.run``) on
localhost ports that the launcher or the OS picks, so they take tens of seconds on a
busy 2-core machine: marked slow (CI still runs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from curvebench.cli import main as cli_main
from suites.results.reading import open_results
from suites.running.runner import run_suite
from suites.results.shards import shard_bounds, shard_names
from suites.specs.suite import parse_suite
from suites.results.summary import RunningSummary

ROOT = Path(__file__).resolve().parents[1]

SUITE = """
name = "dist"
kind = "curve"
[sweep]
orientation = {{start = 0, stop = 360, step = {step}}}
curvature = {{start = 0, stop = 0.09, num = 4}}
[model]
name = "groundtruth"
layers = ["curves"]
[run]
batch_size = 8
size = 40
device = "cpu"
[summary]
enabled = true
top_k = 3
"""

#: attributes that describe the run rather than the data
RUN_ATTRS = {"statics_rows", "created", "finished", "seconds", "host", "command", "title", "world_size", "shards", "shard_rows",
             "peak_rss_mb_per_rank", "peak_rss_mb_at_10pct_per_rank"}
#: running summaries merged over shards equal one pass up to float64 rounding
MERGED = ("_mean", "_std", "_m2")


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               CURVEBENCH_DIST_TIMEOUT="60")
    env.pop("WORLD_SIZE", None)
    return env


def _torchrun(launch: list[str], args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "curvebench", "run", *args, "--no-progress"]


def _run(cmd: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout, cwd=ROOT)


def _suite_file(tmp_path: Path, n: int) -> Path:
    p = tmp_path / "dist.toml"
    p.write_text(SUITE.format(step=360 / n))  # n orientations, 0 included, 360 not
    return p


def _reference(tmp_path: Path, suite_file: Path) -> Path:
    return run_suite(parse_suite(suite_file.read_text(), path=str(suite_file)), out=tmp_path / "one.h5",
                     progress=False, log=None).path


def _assert_same(single: Path, combined: Path) -> None:
    a, b = xr.open_dataset(single), xr.open_dataset(combined)
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        assert a[name].dims == b[name].dims, name
        assert a[name].attrs == b[name].attrs, name
        if name.endswith(MERGED):
            np.testing.assert_allclose(b[name].values, a[name].values, rtol=1e-12, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(b[name].values, a[name].values, err_msg=name)
    for key in set(a.attrs) - RUN_ATTRS:
        np.testing.assert_array_equal(np.asarray(b.attrs[key]), np.asarray(a.attrs[key]), err_msg=key)
    assert b.attrs["state"] == "complete" and b.attrs["world_size"] == 2
    a.close()
    b.close()


def test_shard_bounds_are_whole_batches_in_rank_order() -> None:
    assert shard_bounds(10, 2, 2) == [(0, 4), (4, 10)]
    assert shard_bounds(3, 8, 2) == [(0, 0), (0, 3)]
    for rows, bs, world in ((1000, 64, 3), (7, 1, 4), (0, 4, 2)):
        b = shard_bounds(rows, bs, world)
        assert b[0][0] == 0 and b[-1][1] == rows and all(b[i][1] == b[i + 1][0] for i in range(world - 1))
        assert all(a % bs == 0 for a, _ in b)
    assert shard_names("out/x.h5", 2) == ["x.shards/rank-00000-of-00002.h5", "x.shards/rank-00001-of-00002.h5"]


def test_summary_merge_equals_one_pass() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    one, a, b = RunningSummary(4, 3), RunningSummary(4, 3), RunningSummary(4, 3)
    one.update(x, 0)
    a.update(x[:24], 0)
    b.update(x[24:], 24)
    a.merge(b)
    np.testing.assert_allclose(a.mean, one.mean, rtol=1e-13)
    np.testing.assert_allclose(a.m2, one.m2, rtol=1e-12)
    np.testing.assert_array_equal(a.top_stimulus, one.top_stimulus)
    np.testing.assert_array_equal(a.max, one.max)


@pytest.mark.slow
def test_torchrun_file_equals_single_process_and_moves(tmp_path: Path) -> None:
    suite_file = _suite_file(tmp_path, 6)
    ref = _reference(tmp_path, suite_file)
    out = tmp_path / "job" / "combined.h5"
    out.parent.mkdir()
    proc = _run(_torchrun(["--standalone", "--nproc-per-node=2"], [str(suite_file), "--out", str(out)]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 processes" in proc.stdout
    _assert_same(ref, out)
    with h5py.File(out, "r") as f:  # memory per rank: flat from 10% of the shard to the end
        growth = f.attrs["peak_rss_mb_per_rank"] - f.attrs["peak_rss_mb_at_10pct_per_rank"]
    assert growth.shape == (2,) and np.all(growth < 64), growth
    # the folder moves: shards are found relative to the file; plain xarray, no curvebench import
    moved = tmp_path / "elsewhere"
    shutil.move(out.parent, moved)
    code = textwrap.dedent(f"""
        import sys, xarray as xr
        ds = xr.open_dataset({str(moved / 'combined.h5')!r})
        assert not any(m.split('.')[0] in ('curvebench', 'suites', 'probes', 'stimuli') for m in sys.modules)
        print(ds.sizes['stimulus'], float(ds['curves'].sum()))
    """)
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    # each shard verifies against the grid at its own offset; an edited counter is refused by name
    from suites.errors import ResultsFileError
    from suites.results.verify import check_results_file

    shards = sorted((moved / "combined.shards").glob("rank-*.h5"))
    assert len(shards) == 2
    for shard in shards:
        check_results_file(shard)
    with h5py.File(shards[1], "r+") as f:
        f.attrs["rows_completed"] = 10**6
    with pytest.raises(ResultsFileError, match="rows_completed"):
        check_results_file(shards[1])
    with open_results(ref) as ds:
        assert plain.stdout.split() == [str(ds.sizes["stimulus"]), str(float(ds["curves"].sum()))]
    with open_results(moved / "combined.h5") as ds:
        assert ds.sizes["stimulus"] == 24 and ds.attrs["shards"].split() == shard_names(out, 2)


def _rank_pid(parent: int, rank: int) -> int | None:
    """PID of the torchrun worker with RANK=rank among ``parent``'s children."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (d / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"RANK={rank}".encode() in env:
            return int(d.name)
    return None


def _rows(shard: Path) -> int:
    try:
        with h5py.File(shard, "r", locking=False) as f:
            return int(f.attrs["rows_completed"])
    except (OSError, KeyError):
        return 0


@pytest.mark.slow
def test_sigkill_of_one_rank_then_resume_equals_single_process(tmp_path: Path) -> None:
    suite_file = _suite_file(tmp_path, 40)  # 160 stimuli, 10 batches per rank
    out = tmp_path / "k.h5"
    cmd = _torchrun(["--standalone", "--nproc-per-node=2"], [str(suite_file), "--out", str(out)])
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    shard1 = tmp_path / shard_names(out, 2)[1]
    deadline = time.monotonic() + 180
    while _rows(shard1) == 0 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = _rank_pid(job.pid, 1)
    assert pid is not None and job.poll() is None, "rank 1 was not found running"
    os.kill(pid, signal.SIGKILL)
    job.communicate(timeout=120)  # torchrun stops the other rank: no hang
    assert job.returncode != 0
    killed_at = _rows(shard1)
    assert 0 < killed_at < 80
    with h5py.File(out, "r", locking=False) as f:
        assert f.attrs["state"] == "running"
    # another world size is refused in one line that names the right one
    assert cli_main(["run", "--resume", str(out), "--no-progress"]) == 2
    # resume with the same torchrun command: only the missing rows are run
    again = _run(_torchrun(["--standalone", "--nproc-per-node=2"], ["--resume", str(out)]))
    assert again.returncode == 0, again.stderr[-3000:]
    _assert_same(_reference(tmp_path, suite_file), out)


def test_resume_with_another_world_size_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    suite_file = _suite_file(tmp_path, 2)
    ref = _reference(tmp_path, suite_file)
    with h5py.File(ref, "r+") as f:  # what a 2-process job's file says about itself
        f.attrs["world_size"] = 2
    assert cli_main(["run", "--resume", str(ref), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "written by 2" in err[0] and "world size 2" in err[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_node_rendezvous_on_localhost(tmp_path: Path) -> None:
    suite_file = _suite_file(tmp_path, 6)
    out = tmp_path / "nodes.h5"
    port = _free_port()
    launch = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
              "--rdzv-id=curvebench-test", "--rdzv-conf=join_timeout=120"]
    cmd = _torchrun(launch, [str(suite_file), "--out", str(out)])
    nodes = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
             for _ in range(2)]
    results = [n.communicate(timeout=240) for n in nodes]
    assert all(n.returncode == 0 for n in nodes), [r[1][-2000:] for r in results]
    _assert_same(_reference(tmp_path, suite_file), out)


@pytest.mark.slow
def test_failing_rank_stops_the_job_with_one_line(tmp_path: Path) -> None:
    suite_file = _suite_file(tmp_path, 40)
    out = tmp_path / "full.h5"
    # rank 1 alone runs under a 48 KiB file-size limit: its shard is "disk full" at its first batch
    wrapper = tmp_path / "rank1-small-disk.sh"
    wrapper.write_text('if [ "$RANK" = 1 ]; then ulimit -f 48; fi\nexec "$@"\n')
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "--no-python",
           "bash", str(wrapper), sys.executable, "-m", "curvebench", "run", str(suite_file), "--out", str(out),
           "--no-progress"]
    t0 = time.monotonic()
    proc = _run(cmd, timeout=180)
    assert proc.returncode != 0 and time.monotonic() - t0 < 180
    ours = [line for line in proc.stderr.splitlines() if line.startswith("curvebench: error:")]
    assert len(ours) == 1, proc.stderr[-3000:]
    assert "rank 1 of 2" in ours[0] and "no space" in ours[0] and "--resume" in ours[0]
    # a bad device fails every rank before any file is made, again in one line
    bad = _run(_torchrun(["--standalone", "--nproc-per-node=2"],
                         [str(suite_file), "--out", str(tmp_path / "bad.h5"), "--device", "cuda"]))
    ours = [line for line in bad.stderr.splitlines() if line.startswith("curvebench: error:")]
    assert bad.returncode != 0 and len(ours) == 1 and "rank 0 of 2" in ours[0] and "CUDA" in ours[0], bad.stderr[-3000:]
    assert not (tmp_path / "bad.h5").exists()


def test_a_restarted_group_continues_only_its_own_file(tmp_path: Path, monkeypatch) -> None:
    from suites.running.distributed import _stored_attrs

    suite_file = _suite_file(tmp_path, 2)
    ref = _reference(tmp_path, suite_file)
    with h5py.File(ref, "r+") as f:
        f.attrs["torchelastic_run_id"] = "job-1"
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-1")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert _stored_attrs(ref, resuming=False) is None  # first attempt: a fresh run (refuses an existing file)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert _stored_attrs(ref, resuming=False)["torchelastic_run_id"] == "job-1"
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-2")  # another job's file is never continued unasked
    assert _stored_attrs(ref, resuming=False) is None
    assert "not found" in _stored_attrs(tmp_path / "nope.h5", resuming=True)


@pytest.mark.slow
def test_a_pre_existing_shard_is_refused_before_any_rank_writes(tmp_path: Path) -> None:
    """Issue 21: a shard left by an earlier run is refused in one line, kept byte-identical, and no rank
    leaves a new shard (or the combined file) behind."""
    suite_file = _suite_file(tmp_path, 6)
    out = tmp_path / "job" / "combined.h5"
    old = out.parent / shard_names(out, 2)[1]
    old.parent.mkdir(parents=True)
    old.write_bytes(b"an earlier run's shard")
    proc = _run(_torchrun(["--standalone", "--nproc-per-node=2"], [str(suite_file), "--out", str(out)]))
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "curvebench: error:" in line]
    assert errors and "rank-00001-of-00002.h5 already exists" in errors[0], proc.stderr[-3000:]
    assert old.read_bytes() == b"an earlier run's shard"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["dist.toml", old.name]
