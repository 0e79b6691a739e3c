"""``import curvebench``: the Python API of a notebook, and the kind every written file names.

Each of the seven names resolves lazily (``import curvebench`` imports neither torch nor
xarray) and works on a tiny example with the ground-truth model. Every file curvebench
writes says what it is (``file_kind``); results files also name their stimulus kind;
files written before ``file_kind`` (only ``kind``) still open.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import curvebench
from suites.errors import ResultsFileError
from suites.file_kinds import CURVE_FAMILY_KIND, DISCOVER_RESPONSES_KIND, OPTIMIZE_KIND, RESULTS_KIND, STATS_KIND
from suites.results.attributes import file_kind, stimulus_kind
from suites.results.files import open_file

NAMES = ("render", "load_model", "run_suite", "open_results", "discover", "optimize", "report")


def test_import_is_lazy_and_names_resolve_with_docstrings() -> None:
    code = ("import sys, curvebench; heavy = [m for m in ('torch', 'xarray', 'numpy') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import curvebench imported {out}"
    assert sorted(curvebench.__all__) == sorted(NAMES)
    for name in NAMES:
        fn = getattr(curvebench, name)
        assert callable(fn) and fn.__doc__ and len(fn.__doc__) > 40, name
        assert name in curvebench.__doc__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        curvebench.nope  # noqa: B018


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    from suites.specs.options import RunOptions

    out = tmp_path_factory.mktemp("api") / "demo.h5"
    result = curvebench.run_suite("demo", RunOptions(quick=True), out=out, progress=False, log=None)
    assert result.path == out
    return out


def test_render_and_load_model() -> None:
    import torch

    images = curvebench.render("curve", orientation=torch.tensor([0.0, 90.0]), curvature=0.05, size=32)
    assert tuple(images.shape) == (2, 3, 32, 32) and 0.0 <= float(images.min()) <= float(images.max()) <= 1.0
    assert not torch.equal(images[0], images[1])  # the orientation changes the picture
    model = curvebench.load_model("groundtruth")
    assert model.name == "groundtruth" and "curves" in model.layers


def test_run_suite_open_results_and_report(sweep_file, tmp_path) -> None:
    ds = curvebench.open_results(sweep_file)
    assert ds.attrs["file_kind"] == RESULTS_KIND and ds.attrs["stimulus_kind"] == "curve"
    assert "kind" not in ds.attrs  # retired for new files
    assert ds.sizes["stimulus"] == 144 and int(ds.attrs["rows_completed"]) == 144
    page = curvebench.report([("demo", ds)], tmp_path / "demo.html")
    assert page.is_file() and "curves" in page.read_text(encoding="utf-8")


def test_sweep_coordinates_carry_units_and_long_names(sweep_file) -> None:
    ds = curvebench.open_results(sweep_file)
    assert ds["orientation"].attrs["units"] == "degree" and ds["curvature"].attrs["units"] == "1/px"
    for name in ("orientation", "curvature"):
        assert ds[name].attrs["long_name"], name


def test_optimize_and_discover_write_files_that_name_their_kind(tmp_path) -> None:
    from suites.discovery.pipeline import DiscoverOptions
    from suites.discovery.responses import Sweep
    from suites.optimization.ascent import save

    model = curvebench.load_model("groundtruth")
    best = curvebench.optimize(model, "curves", [0, 3], restarts=1, steps=2, polish=0, sweep_orientations=8,
                               sweep_curvatures=2)
    assert list(best.channel.values) == [0, 3] and np.isfinite(best["activation"].values).all()
    back = curvebench.open_results(save(best, tmp_path / "o.nc"))
    assert back.attrs["file_kind"] == OPTIMIZE_KIND and "kind" not in back.attrs
    tiny = Sweep(orientations=8, curvatures=2, length=32.0, width=2.0, positions=1)
    found = curvebench.discover("groundtruth", ["curves"], DiscoverOptions(
        sweep=tiny, cache_dir=tmp_path / "cache", out_dir=tmp_path / "d", figures=False))
    assert found.family.attrs["file_kind"] == CURVE_FAMILY_KIND
    assert file_kind(open_file(tmp_path / "d" / "family.nc").attrs) == CURVE_FAMILY_KIND
    assert file_kind(open_file(tmp_path / "d" / "responses.nc").attrs) == DISCOVER_RESPONSES_KIND
    cached = list((tmp_path / "cache").glob("*.nc"))
    assert cached and open_file(cached[0], STATS_KIND).attrs["file_kind"] == STATS_KIND


def test_files_written_before_file_kind_still_open(tmp_path, sweep_file) -> None:
    """Older files carry only ``kind``: the file kind in stats/optimize/discover files, the stimulus kind in results."""
    old_stats = tmp_path / "old-stats.nc"
    xr.Dataset({"curves_mean": ("channel", np.zeros(2)), "curves_std": ("channel", np.ones(2))},
               attrs={"kind": STATS_KIND, "model": "groundtruth"}).to_netcdf(old_stats, engine="h5netcdf")
    assert open_file(old_stats, STATS_KIND).attrs["kind"] == STATS_KIND
    with pytest.raises(ResultsFileError, match=r"is not a curvebench optimize file .*file_kind='curvebench-stats'"):
        open_file(old_stats, OPTIMIZE_KIND, option="--in")
    # a results file written before: stimulus kind in ``kind``, no file_kind
    old_results = tmp_path / "old.h5"
    old_results.write_bytes(sweep_file.read_bytes())
    import h5py

    with h5py.File(old_results, "r+") as f:
        f.attrs["kind"] = f.attrs["stimulus_kind"]
        del f.attrs["file_kind"], f.attrs["stimulus_kind"]
    ds = open_file(old_results)
    assert file_kind(ds.attrs) == RESULTS_KIND and stimulus_kind(ds.attrs) == "curve"
    assert ds.sizes["stimulus"] == 144
    assert stimulus_kind({"kind": STATS_KIND}) is None and file_kind({}) is None


def test_open_file_refuses_what_it_cannot_read_in_one_line(tmp_path) -> None:
    junk = tmp_path / "notes.nc"
    junk.write_text("not netcdf")
    with pytest.raises(ResultsFileError, match="--stats: .*notes.nc is not a curvebench results file"):
        open_file(junk, STATS_KIND, option="--stats")
    with pytest.raises(FileNotFoundError, match="--stats: file not found"):
        open_file(tmp_path / "missing.nc", option="--stats")
    unknown = tmp_path / "other.nc"
    xr.Dataset(attrs={"title": "someone else's"}).to_netcdf(unknown, engine="h5netcdf")
    with pytest.raises(ResultsFileError, match="file_kind=None"):
        open_file(unknown)


def test_discover_takes_options_or_their_fields_by_name(tmp_path) -> None:
    from suites.discovery.pipeline import DiscoverOptions
    from suites.discovery.responses import Sweep

    tiny = Sweep(orientations=8, curvatures=2, length=32.0, width=2.0, positions=1)
    by_name = curvebench.discover("groundtruth", ["curves"], sweep=tiny, cache_dir=tmp_path)
    by_options = curvebench.discover("groundtruth", ["curves"], DiscoverOptions(sweep=tiny, cache_dir=tmp_path))
    assert by_name.summary["layers"] == by_options.summary["layers"]
    with pytest.raises(TypeError, match="nope"):
        curvebench.discover("groundtruth", ["curves"], nope=1)
