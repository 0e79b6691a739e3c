"""Does the discovered family stay put when the stimulus moves? The measurement behind docs/discover.md's table.

1. ``measure``: the default :class:`~suites.discovery.responses.Sweep` at each of 13
   stimulus positions (px from the receptive-field centre): the default 2 x 2 grid, the
   grids moved by ``--offset 4,4``, ``8,0``, ``0,-8``, and the centre-only position of
   each; one netCDF per position in ``DIR/pos`` (resumable; run several processes on
   disjoint positions to share cores).
2. ``analyse``: re-tests every family offline (4 positions with several
   ``min_stability`` values, and centre only; four sigma definitions) and prints, per
   moved grid, the Jaccard index of the family against the default one and the median
   and max change of preferred orientation over shared members (JSON lines).

Usage::

    python benchmarks/discover_offsets.py measure DIR [--positions DX,DY ...]
    python benchmarks/discover_offsets.py analyse DIR --stats STATS.nc
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

LAYER = "blocks.3.2.depthwise"
GRIDS = {
    4: {"default": [(-4, -4), (4, -4), (-4, 4), (4, 4)], "4,4": [(0, 0), (8, 0), (0, 8), (8, 8)],
        "8,0": [(4, -4), (12, -4), (4, 4), (12, 4)], "0,-8": [(-4, -12), (4, -12), (-4, -4), (4, -4)]},
    1: {"default": [(0, 0)], "4,4": [(4, 4)], "8,0": [(8, 0)], "0,-8": [(0, -8)]},
}


def measure(folder: Path, points: list[tuple[float, float]]) -> None:
    import torch
    from tqdm import tqdm

    import probes
    from suites.discovery import responses as R

    (folder / "pos").mkdir(parents=True, exist_ok=True)
    model = probes.load_model("efficientnet-lite0")
    sweep = R.Sweep()
    layers = R.check_layers(model, [LAYER], sweep)
    where = R._where(model, layers, sweep)
    model.net.to(memory_format=torch.channels_last)
    pr = R._Prober(model, layers, sweep, where, tqdm(disable=True))
    size = where[0]
    blanks = torch.stack([torch.tensor(R._COLOURS[p][1], dtype=torch.float32).view(3, 1, 1).expand(3, size, size)
                          for p in R.POLARITIES])
    blank = R._probe_all(model, layers, [blanks], where[2], where[3])
    for dx, dy in points:
        path = folder / "pos" / f"{dx:g}_{dy:g}.nc"
        if path.exists():
            continue
        run = R._measure_at(pr, (where[1][0] + dx, where[1][1] + dy))
        ds = R._responses_dataset(layers, sweep, [run], blank, np.array([[dx, dy]], dtype=float))
        ds.to_netcdf(f"{path}.tmp", engine="h5netcdf")
        os.replace(f"{path}.tmp", path)
        print(dx, dy, flush=True)


def _combine(pos: dict, points, stats, baseline: str, positions: str):
    import xarray as xr

    parts = [pos[p] for p in points]
    pvars = [v for v in parts[0].data_vars if "position" in parts[0][v].dims]
    ds = xr.concat([p[pvars] for p in parts], dim="position").assign_coords(position=np.arange(len(points)))
    for v in parts[0].data_vars:
        if v not in pvars:
            ds[v] = parts[0][v]
    ds.attrs = {**parts[0].attrs, "layers": LAYER, "sigma_baseline": baseline}
    ds[f"{LAYER}_mean"] = ((f"{LAYER}_channel",), stats[f"{LAYER}_mean_{positions}"].values)
    ds[f"{LAYER}_std"] = ((f"{LAYER}_channel",), stats[f"{LAYER}_std_{positions}"].values)
    return ds


def analyse(folder: Path, stats_path: str) -> None:
    import xarray as xr

    from suites.analysis.curve_family import Criteria, classify_all, layer_summary
    from suites.analysis.tuning import wrap180

    stats = xr.open_dataset(stats_path, engine="h5netcdf").load()
    pos = {}
    for f in sorted((folder / "pos").glob("*.nc")):
        ds = xr.open_dataset(f, engine="h5netcdf").load()
        pos[(float(ds.position_dx.values[0]), float(ds.position_dy.values[0]))] = ds

    def family(points, crit, sig):
        s = layer_summary(classify_all(_combine(pos, points, stats, *sig), crit, [LAYER]), LAYER)
        return {m["channel"]: m for m in s["family"]}, s

    sigmas = (("mean", "valid"), ("blank", "all"), ("mean", "all"), ("blank", "valid"))
    for n, sig, ms in itertools.product((4, 1), sigmas, (0.5, 0.75, 1.0)):
        if n == 1 and ms != 1.0:
            continue
        grid = GRIDS[n]
        crit = Criteria(min_stability=ms)
        base, sb = family(grid["default"], crit, sig)
        row = {"positions": n, "sigma": "/".join(sig), "min_stability": ms, "detectors": len(base),
               "ci": sb["detectors_ci"], "gap": sb["largest_gap_deg"], "flagged": sb["flagged"]}
        for name in ("4,4", "8,0", "0,-8"):
            other, _ = family(grid[name], crit, sig)
            shared = sorted(set(base) & set(other))
            d = [abs(float(wrap180(base[c]["preferred_orientation"] - other[c]["preferred_orientation"]))) for c in shared]
            row[name] = {"n": len(other), "jaccard": round(len(shared) / max(1, len(set(base) | set(other))), 3),
                         "median_dori": round(float(np.median(d)), 2) if d else None,
                         "max_dori": round(max(d), 1) if d else None}
        print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["measure", "analyse"])
    p.add_argument("folder", type=Path)
    p.add_argument("--positions", nargs="*", help="DX,DY px (default: all 13)")
    p.add_argument("--stats", help="statistics file with both stds (curvebench stats, or discover's cache)")
    a = p.parse_args(argv)
    if a.what == "measure":
        every = sorted({pt for g in GRIDS.values() for pts in g.values() for pt in pts})
        pts = [tuple(float(v) for v in s.split(",")) for s in a.positions] if a.positions else every
        measure(a.folder, pts)
    else:
        analyse(a.folder, a.stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
