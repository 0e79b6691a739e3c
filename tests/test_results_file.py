"""The HDF5 writer and reading results: plain xarray names, committed rows, resume, lock, full disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import xarray as xr

from suites.results.reading import open_results, unstack_grid
from suites.results.writer import Layout, ResultsLockedError, ResultsWriteError, ResultsWriter, Variable

CH = np.array([379, 406, 385])
AXES = [("orientation", np.array([0.0, 90.0, 180.0, 270.0])), ("curvature", np.array([0.0, 0.02, 0.04]))]


def _layout(dtype: str = "float32", chunk: int = 4) -> Layout:
    return Layout(
        row_dim="stimulus",
        dims={"mixed3b_channel": CH},
        coords={"orientation": "float64", "curvature": "float64"},
        variables=(
            Variable("mixed3b", ("stimulus", "mixed3b_channel"), dtype),
            Variable("mixed3b_pre_relu", ("stimulus", "mixed3b_channel"), dtype),
        ),
        chunk_rows=chunk,
    )


def _attrs() -> dict:
    attrs = {"model": "m", "grid_axes": "orientation curvature",
             "grid_shape": np.array([4, 3])}
    for n, v in AXES:
        attrs[f"grid_axis_{n}"] = v
    return attrs


def _batch(r0: int, r1: int):
    rows = np.arange(r0, r1)
    o, k = np.unravel_index(rows, (4, 3))
    data = rows[:, None] * 10.0 + np.arange(3)[None, :]
    return ({"orientation": AXES[0][1][o], "curvature": AXES[1][1][k]},
            {"mixed3b": data, "mixed3b_pre_relu": -data})


def _write(path, rows=12, chunk=4, dtype="float32", finish=True):
    w = ResultsWriter.create(path, _layout(dtype, chunk), _attrs())
    for r0 in range(0, rows, chunk):
        w.append(*_batch(r0, min(r0 + chunk, rows)))
    if finish:
        w.finish()
    w.close()


def test_plain_xarray_names_dims_coords_and_attrs(tmp_path):
    p = tmp_path / "r.h5"
    _write(p)
    with xr.open_dataset(p) as ds:  # nothing else: engine auto-detected
        assert ds["mixed3b"].dims == ("stimulus", "mixed3b_channel")
        assert ds["mixed3b_pre_relu"].dims == ("stimulus", "mixed3b_channel")
        assert set(ds.coords) >= {"stimulus", "orientation", "curvature", "mixed3b_channel"}
        assert ds["orientation"].dims == ("stimulus",)
        np.testing.assert_array_equal(ds["mixed3b_channel"].values, CH)
        np.testing.assert_array_equal(ds["stimulus"].values, np.arange(12))
        np.testing.assert_array_equal(ds["mixed3b"].values[:, 1], np.arange(12) * 10 + 1)
        assert ds.attrs["state"] == "complete" and ds.attrs["rows_completed"] == 12
        assert not any(d.startswith("phony_dim") for d in ds.dims)
    with h5py.File(p, "r") as f:  # data streamed uncompressed, one chunk per batch; coordinates compressed
        assert f["mixed3b"].compression is None and f["mixed3b"].chunks == (4, 3)
        assert f["orientation"].compression == "gzip"


def test_open_results_trusts_only_the_counter(tmp_path):
    p = tmp_path / "r.h5"
    _write(p, rows=8, finish=False)
    with h5py.File(p, "r+") as f:  # a batch resized and half-written, counter not advanced
        for name in ("stimulus", "orientation", "curvature", "mixed3b", "mixed3b_pre_relu"):
            f[name].resize(12, axis=0)
        f["mixed3b"][8:12] = 999.0
    ds = open_results(p)
    assert ds.sizes["stimulus"] == 8 == ds.attrs["rows_completed"]
    assert ds.attrs["state"] == "running"
    assert float(ds["mixed3b"].max()) == 7 * 10 + 2
    ds.close()
    # resume truncates to the counter, then appends the real rows
    w = ResultsWriter.open_resume(p)
    assert w.rows_completed == 8
    with h5py.File(p, "r", locking=False) as f:
        assert f["mixed3b"].shape[0] == 8
    w.append(*_batch(8, 12))
    w.finish()
    w.close()
    with xr.open_dataset(p) as ds:
        np.testing.assert_array_equal(ds["mixed3b"].values[:, 0], np.arange(12) * 10.0)


def test_reading_while_the_writer_is_open(tmp_path):
    p = tmp_path / "r.h5"
    w = ResultsWriter.create(p, _layout(), _attrs())
    w.append(*_batch(0, 4))
    with open_results(p) as ds:
        assert ds.sizes["stimulus"] == 4 and ds.attrs["state"] == "running"
    # another process with plain xarray sees the committed rows too
    code = f"import xarray as xr; ds = xr.open_dataset({str(p)!r}); print(ds.sizes['stimulus'], ds.attrs['rows_completed'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["4", "4"]
    w.close()


def test_second_writer_is_refused(tmp_path):
    p = tmp_path / "r.h5"
    w = ResultsWriter.create(p, _layout(), _attrs())
    w.append(*_batch(0, 4))
    with pytest.raises(ResultsLockedError, match="being written by another process"):
        ResultsWriter.open_resume(p)
    code = f"from suites.results.writer import ResultsWriter; ResultsWriter.open_resume({str(p)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "ResultsLockedError" in proc.stderr and "another process" in proc.stderr
    w.close()
    ResultsWriter.open_resume(p).close()  # released on close


def test_existing_file_and_bad_paths(tmp_path):
    p = tmp_path / "r.h5"
    _write(p)
    with pytest.raises(FileExistsError, match="already exists; continue it with --resume"):
        ResultsWriter.create(p, _layout(), _attrs())
    with pytest.raises(FileNotFoundError, match="directory .* does not exist"):
        ResultsWriter.create(tmp_path / "nope" / "r.h5", _layout(), _attrs())
    with pytest.raises(FileNotFoundError, match="not found"):
        open_results(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="got row variables"):
        w = ResultsWriter.create(tmp_path / "s.h5", _layout(), _attrs())
        try:
            w.append({"orientation": np.zeros(2)}, {"mixed3b": np.zeros((2, 3))})
        finally:
            w.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            ResultsWriter.create(d / "r.h5", _layout(), _attrs())
    finally:
        d.chmod(0o700)


def test_full_disk_is_a_clear_error_and_rows_stay_readable(tmp_path):
    """RLIMIT_FSIZE makes writes past 1 MB fail with EFBIG, like a full disk."""
    p = tmp_path / "full.h5"
    code = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        from suites.results.writer import ResultsWriter, ResultsWriteError, Layout, Variable
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        lay = Layout("stimulus", {{"c": np.arange(64)}}, {{"x": "float64"}},
                     (Variable("v", ("stimulus", "c")),), chunk_rows=256)
        w = ResultsWriter.create({str(p)!r}, lay, {{}})
        r = 0
        try:
            while True:
                n = np.arange(r, r + 256)
                w.append({{"x": n * 1.0}}, {{"v": np.repeat(n[:, None], 64, 1) * 1.0}})
                r += 256
        except ResultsWriteError as e:
            print("ERROR", e)
        finally:
            w.close()
        print("ROWS", r)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ERROR no space to write rows" in proc.stdout and "intact and readable" in proc.stdout
    assert f"--resume {p}" in proc.stdout
    rows = int(proc.stdout.split("ROWS")[1])
    assert rows >= 1024
    with xr.open_dataset(p) as ds:  # plain xarray still opens it: nothing half-written
        assert ds.sizes["stimulus"] == rows == ds.attrs["rows_completed"]
        np.testing.assert_array_equal(ds["v"].values[:, 5], np.arange(rows))
    w = ResultsWriter.open_resume(p)  # with space again, the run continues
    w.append({"x": np.array([1.0])}, {"v": np.ones((1, 64))})
    w.close()


def test_float16_storage(tmp_path):
    p = tmp_path / "h.h5"
    _write(p, dtype="float16")
    with xr.open_dataset(p) as ds:
        assert ds["mixed3b"].dtype == np.float16
        np.testing.assert_allclose(ds["mixed3b"].values[:, 2], np.arange(12) * 10 + 2)


def test_unstack_grid_shapes_values_and_missing_rows(tmp_path):
    p = tmp_path / "g.h5"
    _write(p, rows=12)
    with open_results(p) as ds:
        u = unstack_grid(ds)
    assert u["mixed3b"].dims == ("orientation", "curvature", "mixed3b_channel")
    np.testing.assert_array_equal(u["orientation"].values, AXES[0][1])
    # row i = (i // 3, i % 3): value at (orientation 180, curvature 0.02) is row 7
    assert float(u["mixed3b"].sel(orientation=180.0, curvature=0.02, mixed3b_channel=406)) == 7 * 10 + 1
    p2 = tmp_path / "g2.h5"
    _write(p2, rows=8, finish=False)  # incomplete: the last 4 grid points are NaN
    with open_results(p2) as ds:
        u2 = unstack_grid(ds)
    assert np.isnan(u2["mixed3b"].sel(orientation=270.0).values).all()
    assert not np.isnan(u2["mixed3b"].sel(orientation=90.0).values).any()
    with open_results(p) as ds:
        bad = ds.assign_coords(orientation=("stimulus", ds["orientation"].values[::-1]))
        with pytest.raises(ValueError, match="does not follow the grid order"):
            unstack_grid(bad)
        with pytest.raises(ValueError, match="not a grid sweep"):
            unstack_grid(ds.drop_attrs())


def test_resume_of_a_non_hdf5_file_names_it(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("plain text\n")
    with pytest.raises(ValueError, match=f"cannot resume {p}: not a curvebench results file"):
        ResultsWriter.open_resume(p)
    assert not p.with_name(p.name + ".lock").exists()
