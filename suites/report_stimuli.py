"""The stimuli the HTML report draws, computed by ``stimuli`` in Python and embedded in the page.

The report (:mod:`suites.analysis.report`) shows the stimulus of every hovered heatmap cell
and every optimum. Its page knows no stimulus geometry: for each distinct shape of a run
(one per curvature and series value of a sweep, one per channel of an optimize result)
this module computes, in the path's own frame (``u`` along the tangent at the midpoint,
``v`` toward the centre of curvature, px):

* the path, sampled along its arc length with :func:`stimuli.shapes.path_point`;
* the combing ticks (segments), the fill region (a polygon: the curve's circle, the
  concave side of a line or an angle closed far away, or the chord segment) and its
  opacity, the stimulus window;
* the stroke width and the colours, by the suites' colour rules
  (:func:`suites.specs.render_args.render_kwargs`: RGB, hue, complement), with every
  unset parameter at the renderer's default for the run's kind (:mod:`stimuli.kinds`).

The page then only turns the shape by the cell's orientation and puts its midpoint on
the stimulus position. :func:`write_report` is :func:`suites.analysis.report.write_report`
with these outlines (the analysis itself renders nothing).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from stimuli import kinds as _decl
from stimuli.draw import render
from stimuli.shapes import Shape, path_point
from suites.analysis.report import ReportOptions
from suites.analysis.report import write_report as _write_report
from suites.specs.render_args import render_kwargs

__all__ = ["shape_outline", "page_shapes", "write_report", "PATH_SAMPLES"]

#: points along the path (and around a filled circle): smooth at the report's canvas sizes
PATH_SAMPLES = 96
_DEFAULT_COLOURS = {side: tuple(inspect.signature(render).parameters[side].default) for side in ("fg", "bg")}


def _flat(u: torch.Tensor, v: torch.Tensor) -> list[float]:
    """``[u0, v0, u1, v1, ...]`` rounded to 1/1000 px (the page's JSON stays small)."""
    return [round(float(x), 3) for x in torch.stack([u.reshape(-1), v.reshape(-1)], dim=1).reshape(-1)]


def _values(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every renderer parameter of a one-stimulus ``params``: given, else the default for ``kind``."""
    numeric = {name: np.asarray([float(v)]) for name, v in params.items()
               if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
    fixed = {name: v for name, v in params.items() if name not in numeric}
    kw = render_kwargs(numeric, fixed, 1, dtype=torch.float64)
    out: dict[str, Any] = {}
    for d in _decl.PARAMS:
        v = kw.get(d.name, d.default_for(kind))
        out[d.name] = float(v.reshape(-1)[0]) if isinstance(v, torch.Tensor) else float(v)
    for c in _decl.CHOICES:
        out[c.name] = str(kw.get(c.name, c.default))
    for side in ("fg", "bg"):
        rgb = kw.get(side, _DEFAULT_COLOURS[side])
        out[side] = [float(x) for x in (rgb.reshape(-1)[:3] if isinstance(rgb, torch.Tensor) else rgb)]
    return out


def _fill_region(shape: Shape, p: Mapping[str, Any], path: tuple[torch.Tensor, torch.Tensor], far: float) -> list[float]:
    """The fill polygon in the path frame: the chord segment, the curve's whole circle, or (a line, an
    angle) the concave side, the path's ends extended along their tangents and closed ``far`` away."""
    k, L = p["curvature"], p["length"]
    if p["fill_mode"] == "segment":
        return _flat(*path)
    if p["rounding"] >= 1 and k != 0:
        phi = torch.linspace(0.0, 2 * math.pi, PATH_SAMPLES + 1, dtype=torch.float64)
        return _flat(torch.cos(phi) / abs(k), 1.0 / k + torch.sin(phi) / abs(k))
    sg = -1.0 if k < 0 else 1.0
    ends = [path_point(shape, torch.tensor([s], dtype=torch.float64)) for s in (-L / 2, L / 2)]
    ring_u: list[float] = []
    ring_v: list[float] = []
    for (pu, pv, psi), direction in zip(ends, (-1.0, 1.0)):
        c, s = float(torch.cos(psi)), float(torch.sin(psi))
        ou, ov = float(pu) + direction * far * c, float(pv) + direction * far * s  # the end, extended
        ring = [(ou - sg * far * s, ov + sg * far * c), (ou, ov)]  # ... then far toward the inner side
        if direction > 0:
            ring.reverse()
        ring_u += [r[0] for r in ring]
        ring_v += [r[1] for r in ring]
    u = torch.cat([torch.tensor(ring_u[:2], dtype=torch.float64), path[0], torch.tensor(ring_u[2:], dtype=torch.float64)])
    v = torch.cat([torch.tensor(ring_v[:2], dtype=torch.float64), path[1], torch.tensor(ring_v[2:], dtype=torch.float64)])
    return _flat(u, v)


def _ticks(shape: Shape, p: Mapping[str, Any]) -> list[list[float]]:
    """Each combing tick as ``[u0, v0, u1, v1]``: perpendicular to the path, on the side(s) ``tick_side`` names."""
    n = int(round(p["ticks"]))
    if n <= 0:
        return []
    tl, side = p["tick_length"], p["tick_side"]
    lo, hi = (0.0 if side == "in" else -tl), (0.0 if side == "out" else tl)
    sign = -1.0 if p["curvature"] < 0 else 1.0
    arcs = p["length"] * ((torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5)
    pu, pv, psi = path_point(shape, arcs)
    nu, nv = -torch.sin(psi) * sign, torch.cos(psi) * sign
    segs = torch.stack([pu + lo * nu, pv + lo * nv, pu + hi * nu, pv + hi * nv], dim=1)
    return [[round(float(x), 3) for x in row] for row in segs]


def shape_outline(kind: str, params: Mapping[str, Any], size: float) -> dict[str, Any]:
    """What the page draws for one stimulus of ``kind`` with ``params`` (renderer or suite parameters,
    orientation and position aside) on a ``size`` px canvas; see the module docstring."""
    kind = kind if kind in _decl.KINDS else "curve"
    p = _values(kind, params)
    t = {name: torch.tensor([p[name]], dtype=torch.float64) for name in ("curvature", "length", "width", "rounding")}
    shape = Shape.build(t["curvature"], t["length"], t["width"], t["rounding"], has_arms=p["rounding"] < 1,
                        any_wraps=abs(0.5 * p["curvature"] * p["length"]) > 0.5 * math.pi)
    arcs = p["length"] * (torch.arange(PATH_SAMPLES + 1, dtype=torch.float64) / PATH_SAMPLES - 0.5)
    pu, pv, _ = path_point(shape, arcs)
    fill = min(1.0, p["fill"])
    return {
        "path": _flat(pu, pv),
        "width": p["width"],
        "ticks": _ticks(shape, p),
        "fill": fill,
        "fill_region": _fill_region(shape, p, (pu, pv), 4 * size + p["length"]) if fill > 0 else None,
        "window": p["window"] if math.isfinite(p["window"]) else None,
        "fg": p["fg"],
        "bg": p["bg"],
    }


def _series_choices(page: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(index key, parameters)`` of every series combination a cell can show: all series at their
    first value, and each value of one series with the others at their first (the page's ``cellParams``)."""
    series: Mapping[str, Sequence[Any]] = page.get("series", {})
    names = list(series)
    series_params: Mapping[str, Mapping[str, Any]] = page.get("series_params", {})

    def params_of(idx: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {n: vals[0] for n, vals in page.get("averaged", {}).items()}
        for n, i in zip(names, idx):
            v = series[n][i]
            out.update(series_params.get(f"{n}={v}", {}) if isinstance(v, str) else {n: v})
        return out

    combos = [[0] * len(names)]
    for j, n in enumerate(names):
        combos += [[i if m == j else 0 for m in range(len(names))] for i in range(1, len(series[n]))]
    return [(",".join(map(str, idx)), params_of(idx)) for idx in combos]


def page_shapes(page: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every shape a report page (:func:`suites.analysis.report.report_data`'s ``runs[i]``) can draw, by key.

    Sweeps: ``"<curvature index>|<series value indices>"``; optimize results: ``"c<channel>"``.
    """
    stim = page["stimulus"]
    kind, size, fixed = stim.get("kind", "curve"), stim["size"], dict(stim.get("fixed", {}))
    shapes: dict[str, dict[str, Any]] = {}
    if page["kind"] == "optimum":
        for c in page["channels"]:
            params = {k: c[k] for k in ("curvature", "length", "width", "rounding", "fill", "fg", "bg")
                      if c.get(k) is not None}
            shapes[f"c{c['channel']}"] = shape_outline(kind, params, size)
        return shapes
    choices = _series_choices(page)
    for ik, k in enumerate(page["curvature"]):
        for key, params in choices:
            shapes[f"{ik}|{key}"] = shape_outline(kind, {**fixed, **params, "curvature": k}, size)
    return shapes


def write_report(runs: Sequence[tuple[str, xr.Dataset]], out: str | Path, options: ReportOptions | None = None,
                 title: str | None = None) -> Path:
    """:func:`suites.analysis.report.write_report` with each run's stimuli drawn (:func:`page_shapes`).

    Example::

        from suites.results.files import open_file
        from suites.report_stimuli import write_report
        write_report([("curves", open_file("curves.h5"))], "report.html")
    """
    return _write_report(runs, out, replace(options or ReportOptions(), shapes=page_shapes), title)
