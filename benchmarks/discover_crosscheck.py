"""Does a discovered curve family hold with stimuli from an independent renderer (cairo)?

The check behind docs/discover.md's "independent renderer" numbers. For a
``curvebench discover`` output folder it reloads the model, draws every stimulus with
cairo (cairocffi, native anti-aliasing, butt caps; not :func:`stimuli.render`) on the
same receptive-field crop, reads the same units (before the clip for ReLU6 taps, as
discover does) and, per family member, in sigma above the blank (the run's own std):

* ``beats_line``: its best arc (36 orientations x the run's curvatures >= min_curvature)
  is larger than its best straight line (36 orientations);
* ``beats_angle``: that best arc is larger than its best article angle (turns 45, 90,
  135 degrees, arms along the arc's end tangents, 36 orientations);
* ``survives_move``: its preferred arc (discover's preferred orientation and peak
  curvature) moved 8 px up, down, left and right still gives >= half the unmoved
  response, and >= the run's min_sigma, in at least 3 of the 4 moves.

A member holds when all three hold. Usage::

    python benchmarks/discover_crosscheck.py DIR [--layer L] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np


def _directions(orientation: float, turn: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Screen directions of the two arms of an angle (vertex at the path midpoint), orientation in degrees."""
    th = math.radians(orientation)
    n = (math.cos(th), -math.sin(th))        # toward the side the arc opens
    tau = (math.sin(th), math.cos(th))       # tangent at the midpoint
    c, s = math.cos(turn / 2), math.sin(turn / 2)
    return ((tau[0] * c + n[0] * s, tau[1] * c + n[1] * s), (-tau[0] * c + n[0] * s, -tau[1] * c + n[1] * s))


class Painter:
    """Black-on-white arcs, lines and angles drawn by cairo on a square canvas, as (3, H, W) float32."""

    def __init__(self, size: int, length: float, width: float) -> None:
        from stimuli.baselines import CairoCanvas

        self.canvas = CairoCanvas(size)
        self.length, self.width = length, width

    def arc(self, orientation: float, curvature: float, x: float, y: float) -> np.ndarray:
        return self.canvas.draw(orientation, curvature, self.length, self.width, x, y)

    def angle(self, orientation: float, turn: float, x: float, y: float) -> np.ndarray:
        cv = self.canvas
        ctx = cv.ctx
        ctx.set_source_rgb(1.0, 1.0, 1.0)
        ctx.paint()
        ctx.set_source_rgb(0.0, 0.0, 0.0)
        ctx.set_line_width(self.width)
        ctx.set_line_cap(cv._cairo.LINE_CAP_BUTT)
        ctx.set_line_join(cv._cairo.LINE_JOIN_MITER)
        (ax, ay), (bx, by) = _directions(orientation, turn)
        h = self.length / 2
        ctx.new_path()
        ctx.move_to(x + h * ax, y + h * ay)
        ctx.line_to(x, y)
        ctx.line_to(x + h * bx, y + h * by)
        ctx.stroke()
        cv.surface.flush()
        buf = np.frombuffer(cv.surface.get_data(), dtype=np.uint8)
        bgrx = buf.reshape(cv.size, cv.surface.get_stride() // 4, 4)[:, : cv.size]
        return bgrx[:, :, 2::-1].transpose(2, 0, 1).astype(np.float32) * (1.0 / 255.0)


def _probe(model, layer, plan, images: list[np.ndarray], batch: int = 16) -> np.ndarray:
    """(N, C) activations: max(pre, 0) where the model has the pre-ReLU tap (discover's pre-clip value)."""
    import torch

    out = []
    for s in range(0, len(images), batch):
        x = torch.from_numpy(np.stack(images[s:s + batch]))
        acts = model.probe(x, [layer], plan=plan, pre_relu=True, check_range=False)
        key = f"{layer}_pre_relu"
        v = acts[key].clamp_min(0) if key in acts else acts[layer]
        out.append(v.float().numpy())
    return np.concatenate(out)


def crosscheck(folder: str, layer: str | None = None) -> dict:
    """Per-member checks and totals (see the module docstring) for one layer of a discover output folder."""
    import xarray as xr

    import probes
    from suites.analysis.curve_family import layer_summary

    with xr.open_dataset(f"{folder}/family.nc", engine="h5netcdf") as f:
        fam = f.load()
    with xr.open_dataset(f"{folder}/responses.nc", engine="h5netcdf") as r:
        resp = r.load()
    layer = layer or str(fam.layer.values[0])
    members = layer_summary(fam, layer)["family"]
    model = probes.load_model(str(resp.attrs["model"]))
    plan = model.input_plan([layer], int(resp.attrs["size"]))
    length, width = float(resp.attrs["length"]), float(resp.attrs["width"])
    x0, y0 = plan.position
    paint = Painter(plan.size, length, width)
    o = np.arange(36) * 10.0
    kmin = float(fam.attrs.get("criterion_min_curvature", 0.02))
    ks = [float(k) for k in resp.curvature.values if k >= kmin - 1e-12]
    arcs = [paint.arc(a, k, x0, y0) for k in ks for a in o]
    lines = [paint.arc(a, 0.0, x0, y0) for a in o]
    angles = [paint.angle(a, math.radians(t), x0, y0) for t in (45, 90, 135) for a in o]
    blank = [np.ones((3, plan.size, plan.size), np.float32)]
    moves = [(8, 0), (-8, 0), (0, 8), (0, -8)]
    pref = [paint.arc(m["preferred_orientation"], m["peak_curvature"], x0 + dx, y0 + dy)
            for m in members for dx, dy in [(0, 0), *moves]]
    acts = _probe(model, layer, plan, arcs + lines + angles + blank + pref)
    na, nl, ng = len(arcs), len(lines), len(angles)
    std = resp[f"{layer}_std"].values
    b = acts[na + nl + ng]
    sig = (acts - b) / np.where(std > 0, std, np.nan)
    min_sigma = float(fam.attrs.get("criterion_min_sigma", 2.0))
    rows = []
    for i, m in enumerate(members):
        c = m["channel"]
        best_arc = float(sig[:na, c].max())
        best_line = float(sig[na:na + nl, c].max())
        best_angle = float(sig[na + nl:na + nl + ng, c].max())
        p = sig[na + nl + ng + 1 + 5 * i:na + nl + ng + 1 + 5 * (i + 1), c]
        ok_moves = int(np.sum((p[1:] >= 0.5 * p[0]) & (p[1:] >= min_sigma)))
        row = {"channel": c, "best_arc": round(best_arc, 3), "best_line": round(best_line, 3),
               "best_angle": round(best_angle, 3), "preferred_arc": round(float(p[0]), 3),
               "moved": [round(float(v), 3) for v in p[1:]],
               "beats_line": best_arc > best_line, "beats_angle": best_arc > best_angle, "survives_move": ok_moves >= 3}
        row["holds"] = bool(row["beats_line"] and row["beats_angle"] and row["survives_move"])
        rows.append(row)
    n = len(rows)
    totals = {k: sum(r[k] for r in rows) for k in ("beats_line", "beats_angle", "survives_move", "holds")}
    return {"folder": folder, "layer": layer, "members": n, **totals,
            "holds_fraction": round(totals["holds"] / n, 3) if n else None, "units": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--layer")
    p.add_argument("--json")
    args = p.parse_args(argv)
    out = crosscheck(args.folder, args.layer)
    print(json.dumps({k: v for k, v in out.items() if k != "units"}))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
