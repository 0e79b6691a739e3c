"""Does the discovered family stay put when the stimulus moves? The measurement behind docs/discover.md's table.

Discover reads every stimulus at the channel's unit nearest it (``Sweep.read_unit``), so
a family depends only on the stimuli's *phases*, where they fall inside the layer's
16 px stride cell. This script measures once, then re-tests offline:

1. ``measure``: the default :class:`~suites.discovery.responses.Sweep` at every phase of
   a lattice over the stride cell of EfficientNet-Lite0 ``blocks.3.2.depthwise``
   (``--spacing`` 2 px: 8 x 8 = 64 phases, -8..6 px), one netCDF per phase in
   ``DIR/phase`` (resumable; ``--part I/N`` measures every N-th phase, so N processes
   share the cores).
2. ``analyse``: for the 4 x 4 (default) and 2 x 2 grids and several ``min_stability``,
   the family of every ``--offset`` in the list (the issue's ``4,4``, ``8,0``, ``0,-8``,
   and offsets between grid points, ``2,2``, ``2,0``, ``0,2``, ``6,-2``) is re-tested from
   the phases that ``Sweep(offset=...)`` reads (the library's own wrapping) and compared
   with the unmoved family: Jaccard index, median and max change of preferred
   orientation over shared members; and every grid's family against the dense family
   of all 64 phases. JSON lines.

Usage::

    python benchmarks/discover_offsets.py measure DIR [--spacing 2] [--part 1/2]
    python benchmarks/discover_offsets.py analyse DIR --stats STATS.nc
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

LAYER = "blocks.3.2.depthwise"
STRIDE = 16.0
OFFSETS = [(4, 4), (8, 0), (0, -8), (2, 2), (2, 0), (0, 2), (6, -2)]


def _lattice(spacing: float) -> list[tuple[float, float]]:
    g = np.arange(-STRIDE / 2, STRIDE / 2, spacing)
    return [(float(x), float(y)) for y in g for x in g]


def measure(folder: Path, spacing: float, part: tuple[int, int]) -> None:
    import torch
    from tqdm import tqdm

    import probes
    from suites.discovery import responses as R

    (folder / "phase").mkdir(parents=True, exist_ok=True)
    model = probes.load_model("efficientnet-lite0")
    sweep = R.Sweep()
    layers = R.check_layers(model, [LAYER], sweep)
    where = R._where(model, layers, sweep)
    assert where[5] == STRIDE, where[5]
    model.net.to(memory_format=torch.channels_last)
    pr = R._Prober(model, layers, sweep, where, tqdm(disable=True))
    size = where[0]
    blanks = torch.stack([torch.tensor(R._COLOURS[p][1], dtype=torch.float32).view(3, 1, 1).expand(3, size, size)
                          for p in R.POLARITIES])
    blank = R._probe_all(model, layers, [blanks], where[2], where[3])
    i, n = part
    for dx, dy in _lattice(spacing)[i - 1::n]:
        path = folder / "phase" / f"{dx:g}_{dy:g}.nc"
        if path.exists():
            continue
        run = R._measure_at(pr, (where[1][0] + dx, where[1][1] + dy))
        ds = R._responses_dataset(layers, sweep, [run], blank, np.array([[dx, dy]], dtype=float))
        ds.to_netcdf(f"{path}.tmp", engine="h5netcdf")
        os.replace(f"{path}.tmp", path)
        print(dx, dy, flush=True)


def _combine(phase: dict, points, stats):
    """The responses dataset of ``points`` (phases, px), with the padding-free statistics (the default sigma)."""
    import xarray as xr

    parts = [phase[(float(x), float(y))] for x, y in points]
    pvars = [v for v in parts[0].data_vars if "position" in parts[0][v].dims]
    ds = xr.concat([p[pvars] for p in parts], dim="position").assign_coords(position=np.arange(len(points)))
    for v in parts[0].data_vars:
        if v not in pvars:
            ds[v] = parts[0][v]
    ds.attrs = {**parts[0].attrs, "layers": LAYER, "sigma_baseline": "mean"}
    ds[f"{LAYER}_mean"] = ((f"{LAYER}_channel",), stats[f"{LAYER}_mean_valid"].values)
    ds[f"{LAYER}_std"] = ((f"{LAYER}_channel",), stats[f"{LAYER}_std_valid"].values)
    return ds


def _compare(base: dict, other: dict) -> dict:
    from suites.analysis.tuning import wrap180

    shared = sorted(set(base) & set(other))
    d = [abs(float(wrap180(base[c]["preferred_orientation"] - other[c]["preferred_orientation"]))) for c in shared]
    return {"n": len(other), "jaccard": round(len(shared) / max(1, len(set(base) | set(other))), 3),
            "median_dori": round(float(np.median(d)), 2) if d else None, "max_dori": round(max(d), 1) if d else None}


def analyse(folder: Path, stats_path: str) -> None:
    import xarray as xr

    from suites.analysis.curve_family import Criteria, classify_all, layer_summary
    from suites.discovery.responses import Sweep

    stats = xr.open_dataset(stats_path, engine="h5netcdf").load()
    phase = {}
    for f in sorted((folder / "phase").glob("*.nc")):
        ds = xr.open_dataset(f, engine="h5netcdf").load()
        phase[(float(ds.position_dx.values[0]), float(ds.position_dy.values[0]))] = ds

    def family(points, crit):
        s = layer_summary(classify_all(_combine(phase, points, stats), crit, [LAYER]), LAYER)
        return {m["channel"]: m for m in s["family"]}, s

    def read(n: int, offset) -> list[tuple[float, float]]:
        sweep = Sweep(positions=n, offset=tuple(float(v) for v in offset))
        phases, _ = sweep.read_positions(STRIDE)
        return [tuple(p) for p in phases[sweep.position_order(STRIDE)]]

    for n, ms in ((16, 0.8), (16, 0.5), (16, 0.75), (16, 1.0), (4, 0.8)):
        crit = Criteria(min_stability=ms)
        dense, sd = family(sorted(phase), crit)
        base, sb = family(read(n, (0, 0)), crit)
        row = {"positions": n, "min_stability": ms, "detectors": len(base), "ci": sb["detectors_ci"],
               "dense_detectors": len(dense), "vs_dense": _compare(dense, base)}
        for off in OFFSETS:
            pts = read(n, off)
            if all(p in phase for p in pts):
                row[f"{off[0]},{off[1]}"] = _compare(base, family(pts, crit)[0])
        print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["measure", "analyse"])
    p.add_argument("folder", type=Path)
    p.add_argument("--spacing", type=float, default=2.0, help="phase lattice spacing, px (default 2: 64 phases)")
    p.add_argument("--part", default="1/1", help="I/N: measure every N-th phase starting at the I-th (default 1/1)")
    p.add_argument("--stats", help="statistics file with both stds (curvebench stats, or discover's cache)")
    a = p.parse_args(argv)
    if a.what == "measure":
        i, n = (int(v) for v in a.part.split("/"))
        measure(a.folder, a.spacing, (i, n))
    else:
        analyse(a.folder, a.stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
