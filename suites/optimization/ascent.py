"""``optimize``: every channel's preferred stimulus, by gradient ascent through the renderer.

For a model, a layer and a set of channels, find for each channel the stimulus
parameters (orientation, curvature, length, width, position, colours, and optionally
rounding and fill; see :mod:`suites.optimization.space`) that maximise the activation of the
layer's centre unit. Every channel is optimised in one batch whose rows are
``channel x restart``:

1. a coarse orientation x curvature sweep (other parameters at their start values:
   64 px black arc, 3 px wide, on white, centred) gives each channel's ``sweep_max``
   and its restarts: the best sweep stimuli at least two sweep steps apart in
   orientation (or uniform random points, ``init="random"``);
2. Adam on the normalised coordinates, projected into range after every step; each
   row's objective is its channel's activation. A row whose best value has not grown by
   ``tol`` (in the channel's standard deviations) for ``patience`` steps returns to its
   best point with half its learning rate;
3. a row is done when it is down to an eighth of the learning rate and stale again, and
   is no longer rendered (forward passes count only the rows rendered); a channel has
   converged when all its rows are done; stop when every channel has converged, or
   after ``steps``. A row still at its start whose gradient is flat (a full step would
   gain less than ``tol``: e.g. a dead receptive field) jumps to a uniform random point
   in range, at most ``escapes`` times; every row keeps its best point ever, so no
   channel ends below its coarse-sweep maximum.

Each step renders ``stimuli.render`` at the probed unit's exact receptive-field crop
(``model.input_plan``) and reads the unit with ``model.probe(..., grad=True)``.

Convention:
    - ``activation``: the pre-ReLU value of the unit (the objective; equal to post-ReLU
      whenever it is positive); ``activation_relu`` the post-ReLU one.
    - sigma: ``(activation - mean) / std`` with mean/std from a dataset statistics file
      (``stats``, ``curvebench stats``) or else from the coarse sweep itself (labelled).
    - orientation in degrees in [0, 360), counter-clockwise on screen, toward the side
      the curve opens to; curvature 1/px; length, width, position px. Position is
      reported both as the offset ``(dx, dy)`` from the receptive-field centre and as
      ``(x, y)`` on the full ``input_size`` image.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from probes.weights_spec import RANDOM
from suites.errors import OptimizeError
from suites.file_kinds import CURVE_FAMILY_KIND, OPTIMIZE_KIND, STATS_KIND
from suites.results.attributes import check_same_model, stats_label
from suites.specs.channel_selection import ChannelSelection
from suites.optimization.space import COORDINATES, PARAMETERS, Space, build_space

__all__ = ["optimize", "OptimizeOptions", "save", "Evaluator", "resolve_channels", "sensitivity"]

_INDEX = {c: i for i, c in enumerate(COORDINATES)}


class Evaluator:
    """Render points of a :class:`Space` and read one channel per row, counting forward passes.

    Args:
        model: a loaded ``probes.ProbeModel`` with receptive-field geometry.
        layer: its tap to read.
        space: the parameter space.
        size: full input size (px) whose centre unit is probed (224).
        chunk: rows per render/probe call (bounds memory; rows are independent).
    """

    def __init__(self, model: Any, layer: str, space: Space, size: int = 224, chunk: int = 256) -> None:
        import stimuli

        self._render = stimuli.render
        self.model, self.layer, self.space, self.chunk = model, layer, space, chunk
        self.plan = model.input_plan([layer], size=size)
        self.key = f"{layer}_pre_relu" if f"{layer}_pre_relu" in model.taps else layer
        self.forward_passes = 0

    def images(self, x: Tensor) -> Tensor:
        """``(B, 3, s, s)`` renders of natural points ``x`` ``(B, N)`` on the plan's crop."""
        kw = self.space.render_kwargs(x.to(torch.float32), self.plan.position)
        return self._render("curve", size=self.plan.size, device=self.model.device, **kw)

    def all_channels(self, x: Tensor) -> dict[str, Tensor]:
        """``{"pre": (B, C), "post": (B, C)}`` without gradients (sweeps, final values)."""
        pre, post = [], []
        with torch.no_grad():
            for s in range(0, x.shape[0], self.chunk):
                acts = self.model.probe(self.images(x[s : s + self.chunk]), [self.layer], self.plan, check_range=False)
                pre.append(acts[self.key].float().cpu())
                post.append(acts[self.layer].float().cpu())
                self.forward_passes += min(self.chunk, x.shape[0] - s)
        return {"pre": torch.cat(pre), "post": torch.cat(post)}

    def objective(self, x: Tensor, channels: Tensor) -> Tensor:
        """``(B,)`` activation of ``channels[b]`` for row ``b`` (differentiable in ``x``)."""
        acts = self.model.probe(self.images(x), [self.layer], self.plan, grad=True, check_range=False)[self.key]
        self.forward_passes += x.shape[0]
        return acts.gather(1, channels.to(acts.device)[:, None])[:, 0].to(x.dtype)

    def values_and_grads(self, u: Tensor, base: Tensor, channels: Tensor, natural: bool = False) -> tuple[Tensor, Tensor]:
        """Objective and its gradient w.r.t. the free coordinates, chunk by chunk.

        ``u`` is ``(B, D)``, normalised (default) or natural (``natural=True``);
        ``base`` ``(B, N)`` or ``(N,)`` holds the fixed coordinates.
        """
        vals, grads = [], []
        for s in range(0, u.shape[0], self.chunk):
            part = u[s : s + self.chunk].detach().clone().requires_grad_(True)
            b = base if base.dim() == 1 else base[s : s + self.chunk]
            x = self.space.full(part if natural else self.space.natural(part), b)
            v = self.objective(x, channels[s : s + self.chunk])
            (g,) = torch.autograd.grad(v.sum(), part)
            vals.append(v.detach().cpu())
            grads.append(g)
        return torch.cat(vals), torch.cat(grads)

    def values(self, x: Tensor, channels: Tensor) -> Tensor:
        """``(B,)`` objective of natural points without gradients."""
        out = []
        with torch.no_grad():
            for s in range(0, x.shape[0], self.chunk):
                out.append(self.objective(x[s : s + self.chunk], channels[s : s + self.chunk]).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=x.dtype)





def resolve_channels(model: Any, layer: str, channels: ChannelSelection | Sequence[int] | str | Path | None) -> list[int]:
    """Channel ids to optimise: all (None or ``"all"``), the article's family (``"family"``),
    a discovered family (the path of a ``curvebench discover`` ``family.nc``: its detectors
    in ``layer``), a list, or a parsed ``--channels`` (:mod:`suites.specs.channel_selection`;
    ``auto`` is refused: there is no sweep to choose from).

    Raises:
        OptimizeError: a layer the model lacks, a channel outside the layer, an empty or
            repeated list, a model without a known family, a family file that is missing,
            of another kind, of another model or weights, or without detectors in ``layer``.
    """
    if layer not in model.layers:
        raise OptimizeError(f"layer {layer!r} is not a layer of model {model.name!r}; allowed: {', '.join(model.layers)}")
    n = model.num_channels(layer)
    if isinstance(channels, ChannelSelection):
        channels = {"ids": list(channels.ids), "file": channels.path}.get(channels.mode, channels.mode)
    if channels is None or channels == "all":
        return list(range(n))
    if channels == "family":
        import probes

        try:
            fam = probes.get_family(model.name, layer)
        except (ValueError, KeyError) as exc:
            raise OptimizeError(f"channels: model {model.name!r} has no known curve family in layer {layer!r} ({exc})") from None
        return [int(c) for c in fam.channels]
    if isinstance(channels, Path) or (isinstance(channels, str) and channels.endswith(".nc")):
        return _discovered_family(model, layer, Path(channels))
    if isinstance(channels, str):
        raise OptimizeError(f"channels: {channels!r} is not allowed; use 'all', 'family', a family.nc of "
                            "`curvebench discover` or a list of channel ids")
    ids = [int(c) for c in channels]
    if not ids:
        raise OptimizeError("channels: the list is empty")
    bad = [c for c in ids if not 0 <= c < n]
    if bad:
        raise OptimizeError(f"channels: channel {bad[0]} is not in layer {layer!r} (channels 0..{n - 1})")
    if len(set(ids)) != len(ids):
        raise OptimizeError(f"channels: channel {next(c for c in ids if ids.count(c) > 1)} is given twice")
    return ids


def _model_attrs(model: Any) -> dict[str, Any]:
    """A loaded model's name and weights, as the attributes :func:`suites.results.files.check_same_model` compares."""
    return {"model": model.name, "weights_sha256": (model.meta or {}).get("weights_sha256") or ""}


def _discovered_family(model: Any, layer: str, path: Path) -> list[int]:
    """The detectors of ``layer`` in a ``curvebench discover`` family file, checked against ``model``."""
    if not path.is_file():
        raise OptimizeError(f"channels: family file not found: {path}")
    fam = _open_of_kind(path, CURVE_FAMILY_KIND, "channels")
    if "detector" not in fam or "layer" not in fam.coords or "channel" not in fam.coords:
        raise OptimizeError(f"channels: {path} lacks the detector, layer or channel of its units")
    check_same_model(fam.attrs, _model_attrs(model), what=f"channels: {path} was discovered", other="the model",
                     error=OptimizeError)
    in_layer = fam.layer.values.astype(str) == layer
    if not in_layer.any():
        layers = sorted(set(fam.layer.values.astype(str)))
        raise OptimizeError(f"channels: {path} has no units of layer {layer!r}; its layers: {', '.join(layers)}")
    chosen = fam.channel.values[in_layer & fam.detector.values.astype(bool)]
    if not chosen.size:
        raise OptimizeError(f"channels: {path} has no curve detectors in layer {layer!r}")
    return resolve_channels(model, layer, [int(c) for c in chosen])


def _coarse_points(space: Space, start: Tensor, n_orientations: int, n_curvatures: int) -> Tensor:
    """``(S, N)`` orientation x curvature grid, other coordinates at ``start``."""
    o_i, k_i = _INDEX["orientation"], _INDEX["curvature"]
    free = set(space.free)
    if "orientation" in free:
        lo, hi = float(space.lo[o_i]), float(space.hi[o_i])
        # periodic: n steps of 360 / n from lo (hi = lo + 360 is lo again); bounded: n values from lo to hi
        o = torch.linspace(lo, hi, n_orientations + (1 if space.periodic else 0), dtype=torch.float64)
        o = o[:n_orientations]
    else:
        o = start[o_i : o_i + 1]
    if "curvature" in free:
        k = torch.linspace(float(space.lo[k_i]), float(space.hi[k_i]), n_curvatures, dtype=torch.float64)
    else:
        k = start[k_i : k_i + 1]
    oo, kk = torch.meshgrid(o, k, indexing="ij")
    x = start.expand(oo.numel(), -1).clone()
    x[:, o_i], x[:, k_i] = oo.reshape(-1), kk.reshape(-1)
    return space.clamp(x)


def _pick_starts(acts: Tensor, orient: Tensor, restarts: int, separation: float) -> Tensor:
    """``(C, R)`` indices of the best sweep points per channel, ``separation`` deg apart in orientation if possible."""
    order = acts.argsort(dim=0, descending=True).T  # (C, S)
    out = torch.empty(acts.shape[1], restarts, dtype=torch.long)
    for c in range(acts.shape[1]):
        chosen: list[int] = []
        for i in order[c].tolist():
            d = (orient[i] - orient[chosen]).abs() % 360.0 if chosen else None
            if d is None or bool((torch.minimum(d, 360.0 - d) >= separation).all()):
                chosen.append(i)
            if len(chosen) == restarts:
                break
        rest = [i for i in order[c].tolist() if i not in chosen]
        chosen += rest[: restarts - len(chosen)]
        out[c] = torch.tensor((chosen * restarts)[:restarts])
    return out


def _polish_steps(space: Space, n_orientations: int, n_curvatures: int) -> Tensor:
    """``(D,)`` first compass step per free coordinate, normalised: half a coarse-sweep step, else 5%."""
    h = torch.full((len(space.free),), 0.05, dtype=torch.float64)
    for j, c in enumerate(space.free):
        if c == "orientation":
            h[j] = 0.5 / (n_orientations if space.periodic else max(n_orientations - 1, 1))
        elif c == "curvature" and n_curvatures > 1:
            h[j] = 0.5 / (n_curvatures - 1)
    return h


#: the compass search stops a row when its step is below this fraction of the first step
_SHRINK_TO = 1 / 64


def _polish(run: _Run, u: Tensor, val: Tensor, channels: Tensor, tol: Tensor) -> tuple[Tensor, Tensor]:
    """Compass search: each row tries ``u +- h_j e_j`` for every free coordinate ``j``.

    ``u`` ``(B, D)`` normalised points (one row per channel) with values ``val``
    ``(B,)`` for ``channels`` ``(B,)``; a row moves to its best candidate when that gains more than ``tol``
    ``(C,)``, else its step scale halves; it is done below :data:`_SHRINK_TO`. Derivative-free,
    so it climbs bumps narrower than a gradient step and sees the bounds exactly. At most
    ``run.options.polish`` iterations, each recorded in ``run.trace`` (stage 1).
    """
    ev, space, start, o = run.ev, run.space, run.start, run.options
    h0 = _polish_steps(space, o.sweep_orientations, o.sweep_curvatures)
    B, D = u.shape
    u, val = u.clone(), val.clone()
    scale = torch.ones(B, dtype=torch.float64)
    dirs = torch.cat([torch.eye(D, dtype=torch.float64), -torch.eye(D, dtype=torch.float64)])  # (2D, D)
    for _ in range(o.polish):
        act = (scale >= _SHRINK_TO).nonzero()[:, 0]
        if not act.numel():
            break
        cand = u[act, None, :] + (scale[act, None, None] * h0) * dirs  # (A, 2D, D)
        cand = space.project(cand.reshape(-1, D), start)
        v = ev.values(space.full(space.natural(cand), start), channels[act].repeat_interleave(2 * D)).double()
        v = v.view(-1, 2 * D)
        best, k = v.max(1)
        move = best > val[act] + tol[act]
        rows = act[move]
        u[rows] = cand.view(-1, 2 * D, D)[move, k[move]]
        val[rows] = best[move]
        scale[act[~move]] *= 0.5
        run.trace.record(val, int(act.numel()) * 2 * D, 1)
    return u, val


def _open_of_kind(path: str | Path, kind: str, option: str) -> xr.Dataset:
    """The file at ``path`` (:func:`suites.results.files.open_file`), its errors as :class:`OptimizeError`."""
    from suites.errors import ResultsFileError
    from suites.results.files import open_file

    try:
        return open_file(path, kind, option=option)
    except (ResultsFileError, FileNotFoundError) as exc:
        raise OptimizeError(str(exc)) from None


def _reference(evaluator: Evaluator, stats: Any, sweep: dict[str, Tensor], channels: list[int]) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean and std (pre-ReLU readout) per channel, and where they come from."""
    if stats is None:
        pre = sweep["pre"][:, channels].double()
        return pre.mean(0).numpy(), pre.std(0, unbiased=False).numpy(), "coarse sweep's own statistics (no dataset statistics given)"
    name = evaluator.key
    if f"{name}_mean" not in stats or f"{name}_std" not in stats:
        raise OptimizeError(f"stats: no statistics for {name!r} in the statistics file")
    check_same_model(stats.attrs, _model_attrs(evaluator.model), what="stats: computed", other="the model",
                     error=OptimizeError)
    mean = np.asarray(stats[f"{name}_mean"].values, dtype=np.float64)[channels]
    std = np.asarray(stats[f"{name}_std"].values, dtype=np.float64)[channels]
    return mean, std, stats_label(stats)


@dataclass(frozen=True)
class OptimizeOptions:
    """How :func:`optimize` searches (every field has the default of ``curvebench optimize``).

    Attributes:
        fix: ``{parameter: value}`` held constant (names in
            :data:`suites.optimization.space.PARAMETERS`).
        bounds: ``{parameter: (lo, hi)}``; must lie in the renderer's valid range.
        rounding, fill: also optimise rounding (angle <-> curve) / fill opacity.
        restarts: starts per channel.
        init: ``"sweep"`` (best coarse-sweep points) or ``"random"`` (uniform in bounds).
        sweep_orientations, sweep_curvatures: coarse sweep size.
        steps: step budget; ``lr``: Adam learning rate on normalised coordinates (a step
            of 0.02 is 2% of a parameter's range, 7.2 deg of orientation).
        tol, patience: a row whose best has not improved by ``tol`` sigma for ``patience``
            steps goes back to its best point with half the learning rate; a channel has
            converged when all its rows are at lr / 8 and stale again (a row that is done
            is no longer rendered). Stop when every channel has converged or after ``steps``.
        escapes: how many times a row whose gradient is exactly zero (a dead receptive
            field, where no step can move it) jumps to a uniform random point in range.
        separation: the sweep starts of a channel lie at least this many coarse-sweep
            orientation steps apart (2; 0 = simply the best points).
        polish: at most this many iterations of a derivative-free compass search around
            each channel's best point after the ascent (0: none). It tries +-h along every
            free coordinate, moves to the best gain of ``tol`` sigma or halves ``h``; it
            starts at half the coarse sweep's spacing (orientation, curvature) or 5% of the
            range (the rest) and stops at 1/64 of that. It finds the narrow bumps of a
            real network's orientation tuning that gradient steps jump over.
        sensitivity_sigma: also compute :func:`sensitivity` for a drop of this many sigma.
        size: full input size (px).
        chunk: rows per render/probe call.
        seed: torch seed (random inits, random weights).
    """

    fix: Mapping[str, float | Sequence[float]] | None = None
    bounds: Mapping[str, tuple[float, float]] | None = None
    rounding: bool = False
    fill: bool = False
    restarts: int = 4
    init: str = "sweep"
    sweep_orientations: int = 24
    sweep_curvatures: int = 6
    steps: int = 150
    lr: float = 0.02
    tol: float = 0.001
    patience: int = 5
    escapes: int = 3
    separation: float = 2.0
    polish: int = 30
    sensitivity_sigma: float | None = None
    size: int = 224
    chunk: int = 256
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`OptimizeError` (one line) for a value out of range."""
        if self.init not in ("sweep", "random"):
            raise OptimizeError(f"init: {self.init!r} is not allowed; use 'sweep' or 'random'")
        for name, low in (("restarts", 1), ("steps", 0), ("patience", 1), ("chunk", 1), ("escapes", 0), ("polish", 0),
                          ("sweep_orientations", 1), ("sweep_curvatures", 1)):
            v = getattr(self, name)
            if int(v) != v or v < low:
                raise OptimizeError(f"{name}: expected an integer >= {low}, got {v!r}")
        if not (self.separation >= 0 and math.isfinite(self.separation)):
            raise OptimizeError(f"separation: expected a number of sweep steps >= 0, got {self.separation!r}")
        from suites.limits import MAX_BATCH, MAX_OPTIMIZE_STEPS, MAX_RENDER_IMAGES, MAX_RESTARTS, check_at_most

        check_at_most("steps", self.steps, MAX_OPTIMIZE_STEPS, hint="a step budget; runs also stop on tol")
        check_at_most("restarts", self.restarts, MAX_RESTARTS, hint="starts per channel")
        check_at_most("escapes", self.escapes, MAX_RESTARTS, hint="jumps per start away from a flat point")
        check_at_most("polish", self.polish, MAX_OPTIMIZE_STEPS, hint="compass-search iterations; they also stop on tol")
        check_at_most("chunk", self.chunk, MAX_BATCH, hint="stimuli per forward pass")
        check_at_most("coarse sweep (sweep_orientations x sweep_curvatures)",
                      self.sweep_orientations * self.sweep_curvatures, MAX_RENDER_IMAGES, unit="stimuli")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not (self.tol >= 0):
            raise OptimizeError(f"lr must be > 0 and tol >= 0, got lr={self.lr!r}, tol={self.tol!r}")

    def to_json(self, space: Space) -> str:
        """The options as stored in the file's ``options`` attribute (fix and bounds as resolved by ``space``)."""
        return json.dumps({
            "fix": {k: list(v) for k, v in space.fixed.items()}, "bounds": {k: list(v) for k, v in space.bounds.items()},
            "rounding": self.rounding, "fill": self.fill, "restarts": self.restarts, "init": self.init,
            "sweep": [self.sweep_orientations, self.sweep_curvatures], "steps": self.steps, "lr": self.lr,
            "tol": self.tol, "patience": self.patience, "escapes": self.escapes, "separation": self.separation,
            "polish": self.polish, "seed": self.seed,
            "optimizer": "adam (projected, per-row lr halving on plateaus), then compass search",
        })


def _with_overrides(options: OptimizeOptions | None, overrides: Mapping[str, Any]) -> OptimizeOptions:
    from dataclasses import fields, replace

    allowed = [f.name for f in fields(OptimizeOptions)]
    bad = [k for k in overrides if k not in allowed]
    if bad:
        raise OptimizeError(f"optimize: {bad[0]!r} is not an option; allowed: {', '.join(allowed)}")
    return replace(options or OptimizeOptions(), **overrides)


class _Trace:
    """Per evaluated step: best value per channel so far, wall/CPU time, forward passes, rows rendered, stage."""

    def __init__(self, ev: Evaluator) -> None:
        self.ev = ev
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.history: list[Tensor] = []
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.passes: list[int] = []
        self.active_rows: list[int] = []
        self.stage: list[int] = []  # 0 ascent (step 0: the starts), 1 polish

    def record(self, per_channel: Tensor, rendered: int, stage: int) -> None:
        self.history.append(per_channel.clone())
        self.wall.append(time.perf_counter() - self.t0)
        self.cpu.append(time.process_time() - self.c0)
        self.passes.append(self.ev.forward_passes)
        self.active_rows.append(rendered)
        self.stage.append(stage)

    def variables(self) -> dict[str, tuple]:
        """The ``history*`` variables of the result dataset (dim ``step``)."""
        return {
            "history": (("step", "channel"), torch.stack(self.history).numpy(), {"long_name": "best activation so far"}),
            "history_wall_s": ("step", np.asarray(self.wall), {"units": "s", "long_name": "wall time since the start (sweep included)"}),
            "history_cpu_s": ("step", np.asarray(self.cpu), {"units": "s", "long_name": "CPU time of this process since the start"}),
            "history_forward_passes": ("step", np.asarray(self.passes, dtype=np.int64),
                                       {"long_name": "forward passes since the start (coarse sweep included)"}),
            "history_active_rows": ("step", np.asarray(self.active_rows, dtype=np.int64),
                                    {"long_name": "rows (channel x restart) rendered at this step"}),
            "history_stage": ("step", np.asarray(self.stage, dtype=np.int8),
                              {"long_name": "0 gradient ascent (step 0: the starts), 1 compass-search polish"}),
        }


@dataclass
class _Run:
    """What one :func:`optimize` call works with: the model's crop, the space, the channels, the reference."""

    model: Any
    layer: str
    ids: list[int]
    plan: Any
    space: Space
    ev: Evaluator
    options: OptimizeOptions
    trace: _Trace
    start: Tensor
    chan: Tensor  # row b -> channel id (rows are channel x restart)
    grid: Tensor  # the coarse sweep's points
    sweep_max: Tensor  # (C,) best coarse-sweep activation
    mean: np.ndarray  # (C,) reference for sigma
    std: np.ndarray
    stats_text: str
    x0: Tensor  # (C * R, N) starts


def _setup(model: Any, layer: str, channels: Any, o: OptimizeOptions, stats: Any, *, weights: str | None,
           device: str) -> _Run:
    """Load the model, resolve the channels and statistics, run the coarse sweep, pick the starts."""
    import probes

    torch.manual_seed(o.seed)
    if isinstance(model, str):
        from probes.device import resolve_device

        model = probes.load_model(model, weights=weights, device=resolve_device(device))
    if getattr(model, "geometry", None) is None:
        raise OptimizeError(f"model {model.name!r} has no receptive-field geometry; optimize needs the probed unit's crop")
    ids = resolve_channels(model, layer, channels)
    if isinstance(stats, str) or hasattr(stats, "__fspath__"):
        stats = _open_of_kind(stats, STATS_KIND, "stats")
    plan = model.input_plan([layer], size=o.size)
    space = build_space(size=plan.size, fix=o.fix, bounds=o.bounds, rounding=o.rounding, fill=o.fill)
    ev = Evaluator(model, layer, space, size=o.size, chunk=o.chunk)
    trace = _Trace(ev)
    start = space.start()
    grid = _coarse_points(space, start, o.sweep_orientations, o.sweep_curvatures)
    sweep = ev.all_channels(grid)
    sweep_pre = sweep["pre"][:, ids].double()  # (S, C)
    mean, std, stats_text = _reference(ev, stats, sweep, ids)
    C, R = len(ids), o.restarts
    if o.init == "sweep":
        sep = o.separation * 360.0 / o.sweep_orientations if "orientation" in space.free else 0.0
        x0 = grid[_pick_starts(sweep_pre, grid[:, _INDEX["orientation"]], R, sep).reshape(-1)]
    else:
        u_rand = torch.rand(C * R, len(space.free), dtype=torch.float64)
        x0 = space.clamp(space.full(space.natural(u_rand), start))
    return _Run(model, layer, ids, plan, space, ev, o, trace, start, torch.tensor(ids).repeat_interleave(R), grid,
                sweep_pre.max(0).values, mean, std, stats_text, x0)


class _Rows:
    """The ascent's rows (channel x restart): points, learning-rate scales, staleness, bests, escapes."""

    def __init__(self, run: _Run) -> None:
        o, n = run.options, run.x0.shape[0]
        scale = torch.from_numpy(np.where(run.std > 0, run.std, 1.0))
        self.C, self.R, self.D = len(run.ids), o.restarts, len(run.space.free)
        self.u = run.space.normalise(run.x0).clone().requires_grad_(True)
        self.opt = torch.optim.Adam([self.u], lr=o.lr)
        self.gen = torch.Generator().manual_seed(o.seed)
        self.floor = 0.125 + 1e-12
        self.scale = torch.ones(n, dtype=torch.float64)
        self.stale = torch.zeros(n, dtype=torch.long)
        self.done = torch.zeros(n, dtype=torch.bool)
        self.escapes = torch.zeros(n, dtype=torch.long)
        self.tol = (o.tol * scale).repeat_interleave(self.R)
        self.flat_gain = torch.maximum(self.tol, 1e-6 * scale.repeat_interleave(self.R))
        self.climbed = torch.zeros(n, dtype=torch.bool)
        self.since_start = torch.zeros(n, dtype=torch.long)
        self.best_val = torch.full((n,), -math.inf, dtype=torch.float64)  # each row's best ever
        self.best_u = self.u.detach().clone()
        self.run_val = self.best_val.clone()  # each row's best since its last (re)start: plateaus, halving
        self.run_u = self.best_u.clone()
        self.conv_step = torch.full((self.C,), -1, dtype=torch.long)

    def evaluate(self, run: _Run) -> tuple[Tensor, Tensor, int]:
        """Values and gradients of the rows still active (the others: -inf, 0); bests and staleness updated."""
        n = self.u.shape[0]
        active = ~self.done
        rows_now = active.nonzero()[:, 0]
        vals = torch.full((n,), -math.inf, dtype=torch.float64)
        grads = torch.zeros(n, self.D, dtype=torch.float64)
        if rows_now.numel():
            v, g = run.ev.values_and_grads(self.u.detach()[rows_now], run.start, run.chan[rows_now])
            vals[rows_now], grads[rows_now] = v.double(), g.double()
        gained = active & (vals > self.run_val + self.tol)
        better = vals > self.run_val
        self.run_val = torch.where(better, vals, self.run_val)
        self.run_u[better] = self.u.detach()[better]
        better = vals > self.best_val
        self.best_val = torch.where(better, vals, self.best_val)
        self.best_u[better] = self.u.detach()[better]
        self.climbed |= gained & (self.since_start > 0)
        self.since_start += active.long()
        self.stale = torch.where(gained, 0, self.stale + active.long())
        self.done |= active & (self.scale <= self.floor) & (self.stale >= run.options.patience)
        return vals, grads, int(rows_now.numel())

    def move(self, run: _Run, grads: Tensor) -> None:
        """One projected Adam step; stale rows halve their rate from their best; flat rows jump (at most ``escapes``)."""
        o, u = run.options, self.u
        halve = ~self.done & (self.stale >= o.patience) & (self.scale > self.floor)
        # flat: still at its (re)start point and a full step along the gradient would gain
        # less than the tolerance (or 1e-6 sigma)
        flat = ~self.done & ~self.climbed & (o.lr * grads.abs().sum(1) <= self.flat_gain) & (self.escapes < o.escapes)
        with torch.no_grad():
            if bool(halve.any()):
                self.scale[halve] *= 0.5
                self.stale[halve] = 0
                u[halve] = self.run_u[halve]
            before = u.detach().clone()
        self.opt.zero_grad()
        u.grad = -grads  # ascend
        self.opt.step()
        with torch.no_grad():
            u.copy_(run.space.project(before + self.scale[:, None] * (u - before), run.start))
            u[self.done] = before[self.done]
            if bool(flat.any()):
                jump = torch.rand(int(flat.sum()), self.D, generator=self.gen, dtype=torch.float64)
                u[flat] = run.space.project(jump.to(u.dtype), run.start)
                for moment in ("exp_avg", "exp_avg_sq"):
                    self.opt.state[u][moment][flat] = 0.0
                self.scale[flat], self.stale[flat], self.since_start[flat], self.run_val[flat] = 1.0, 0, 0, -math.inf
                self.escapes[flat] += 1


def _ascend(run: _Run, progress: Any) -> _Rows:
    """Projected Adam on normalised coordinates, a learning rate per row (see the module docstring)."""
    rows = _Rows(run)
    steps = run.options.steps
    for step in range(steps + 1):
        _, grads, rendered = rows.evaluate(run)
        per_channel = rows.best_val.view(rows.C, rows.R).max(1).values
        run.trace.record(per_channel, rendered, 0)
        done = rows.done.view(rows.C, rows.R).all(1)
        rows.conv_step[done & (rows.conv_step < 0)] = step
        if progress is not None:
            progress(step, float(per_channel.mean()))
        if step == steps or bool((rows.conv_step >= 0).all()):
            break
        rows.move(run, grads)
    return rows


def optimize(
    model: Any,
    layer: str,
    channels: Sequence[int] | str | None = None,
    options: OptimizeOptions | None = None,
    *,
    weights: str | None = None,
    device: str = "cpu",
    stats: Any = None,
    progress: Any = None,
    **overrides: Any,
) -> xr.Dataset:
    """Each channel's preferred stimulus by projected gradient ascent (see module docstring).

    Args:
        model: a ``probes.ProbeModel`` or a model id (``"groundtruth"``, ``"inceptionv1"``).
        layer: tap name; its centre unit (of a ``size`` px input) is probed.
        channels: ids, ``"all"``/None, ``"family"`` (the article's family of ``layer``) or
            the path of a ``curvebench discover`` family file (its detectors in ``layer``).
        options: :class:`OptimizeOptions` (restarts, steps, fix, bounds, ...).
        weights: weights for a model id (path or ``"random"``, seeded by ``seed``).
        device: torch device for a model id.
        stats: a dataset statistics file (path or dataset) for sigma; default the coarse
            sweep's own statistics.
        progress: optional callable ``progress(step, best_mean)`` called after each step.
        overrides: fields of :class:`OptimizeOptions` by name, e.g. ``steps=60, fix={"position": 0.0}``.

    Returns:
        an :class:`xarray.Dataset` with dims ``channel`` (the ids), ``restart``,
        ``coordinate`` (free coordinates), ``rgb``, ``step`` and ``image_y/x/rgb``: the
        best parameters per channel (``orientation``, ``curvature``, ``length``, ``width``,
        ``dx``, ``dy``, ``x``, ``y``, ``fg``, ``bg``, ``rounding``, ``fill``),
        ``activation``, ``activation_relu``, ``activation_sigma``, ``sweep_max``,
        ``sweep_max_sigma``, ``steps``, ``converged``, ``restart_activation``,
        ``history`` (best value per step), the optimal stimulus ``image`` (uint8, the
        receptive-field crop), and with ``sensitivity_sigma`` the sensitivity variables;
        provenance in ``attrs`` (model, weights, weights_sha256, layer, options as JSON).

    Raises:
        OptimizeError: bad parameter names, bounds, channels or options (one line).
    """
    o = _with_overrides(options, overrides)
    o.check()
    run = _setup(model, layer, channels, o, stats, weights=weights, device=device)
    rows = _ascend(run, progress)
    n_steps = len(run.trace.history) - 1
    # compass search around each channel's best point (its best restart after the ascent)
    C, R = rows.C, rows.R
    win = rows.best_val.view(C, R).argmax(1)
    best = torch.arange(C) * R + win
    ascent_best = rows.best_val[best].clone()
    restart_vals = rows.best_val.view(C, R).clone()
    if o.polish:
        rows.best_u[best], rows.best_val[best] = _polish(run, rows.best_u[best], rows.best_val[best], run.chan[best],
                                                         rows.tol[best])
    x_best = run.space.clamp(run.space.full(run.space.natural(rows.best_u[best]), run.start))
    per_channel = {
        "steps": ("channel", np.where(rows.conv_step.numpy() >= 0, rows.conv_step.numpy(), n_steps).astype(np.int64),
                  {"long_name": "steps until converged (or the steps run)"}),
        "converged": ("channel", (rows.conv_step.numpy() >= 0).astype(np.int8), {"long_name": "1 if converged within tol"}),
        "restart_activation": (("channel", "restart"), restart_vals.numpy(),
                               {"long_name": "each restart's best after the ascent (before the polish)"}),
        "best_restart": ("channel", win.numpy().astype(np.int64)),
        "ascent_activation": ("channel", ascent_best.numpy(),
                              {"long_name": "best activation after the gradient ascent, before the polish"}),
        "escapes": ("channel", rows.escapes.view(C, R).sum(1).numpy(),
                    {"long_name": "jumps away from a zero-gradient point (all restarts)"}),
    }
    ds = _result(run, x_best, per_channel, n_steps)
    if o.sensitivity_sigma is not None:
        ds = ds.merge(sensitivity(run.ev, x_best, torch.tensor(run.ids), torch.from_numpy(ds["activation"].values),
                                  torch.from_numpy(run.std), o.sensitivity_sigma))
        ds.attrs["sensitivity_sigma"] = float(o.sensitivity_sigma)
    return ds


def _result(run: _Run, x_best: Tensor, per_channel: dict[str, tuple], n_steps: int) -> xr.Dataset:
    """The result dataset: the best stimulus per channel, its activations and sigma, the history, provenance."""
    ev, ids, mean, std, size = run.ev, run.ids, run.mean, run.std, run.options.size
    final = ev.all_channels(x_best)
    take = torch.arange(len(ids))
    act = final["pre"][take, torch.tensor(ids)].double().numpy()
    act_relu = final["post"][take, torch.tensor(ids)].double().numpy()
    images = (ev.images(x_best).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def sig(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(std > 0, (v - mean) / np.where(std > 0, std, 1.0), np.nan)

    xb = x_best.numpy()
    col = {c: xb[:, i] for i, c in enumerate(COORDINATES)}
    fx, fy = run.plan.full_position
    ds = xr.Dataset(
        {
            "orientation": ("channel", col["orientation"], {"units": "deg", "long_name": "orientation, CCW on screen, toward the centre of curvature"}),
            "curvature": ("channel", col["curvature"], {"units": "1/px"}),
            "length": ("channel", col["length"], {"units": "px"}),
            "width": ("channel", col["width"], {"units": "px"}),
            "dx": ("channel", col["dx"], {"units": "px", "long_name": "offset from the receptive-field centre, x right"}),
            "dy": ("channel", col["dy"], {"units": "px", "long_name": "offset from the receptive-field centre, y down"}),
            "x": ("channel", fx + col["dx"], {"units": "px", "long_name": f"midpoint x on the {size} px input"}),
            "y": ("channel", fy + col["dy"], {"units": "px", "long_name": f"midpoint y on the {size} px input"}),
            "fg": (("channel", "rgb"), xb[:, [_INDEX[c] for c in PARAMETERS["fg"].coords]]),
            "bg": (("channel", "rgb"), xb[:, [_INDEX[c] for c in PARAMETERS["bg"].coords]]),
            "rounding": ("channel", col["rounding"]),
            "fill": ("channel", col["fill"]),
            "activation": ("channel", act, {"long_name": f"{ev.key} at the probed unit (objective)"}),
            "activation_relu": ("channel", act_relu, {"long_name": f"{run.layer} post-ReLU at the probed unit"}),
            "activation_sigma": ("channel", sig(act), {"statistics": run.stats_text}),
            "sweep_max": ("channel", run.sweep_max.numpy(), {"long_name": "best coarse-sweep activation (the starts)"}),
            "sweep_max_sigma": ("channel", sig(run.sweep_max.numpy())),
            "reference_mean": ("channel", mean),
            "reference_std": ("channel", std),
            **per_channel,
            **run.trace.variables(),
            "image": (("channel", "image_y", "image_x", "image_rgb"), images, {"long_name": "optimal stimulus, receptive-field crop"}),
        },
        coords={"channel": np.asarray(ids, dtype=np.int64), "restart": np.arange(run.options.restarts),
                "rgb": ["r", "g", "b"], "step": np.arange(len(run.trace.history)), "coordinate": list(run.space.free)},
    )
    ds.attrs.update(_provenance(run, n_steps))
    return ds


def _provenance(run: _Run, n_steps: int) -> dict[str, Any]:
    """The result's attributes: what file it is, model, weights, layer, crop, options, counts and times."""
    meta, plan = run.model.meta, run.plan
    return {
        "file_kind": OPTIMIZE_KIND,
        "model": run.model.name,
        "weights": str(meta.get("weights") or (RANDOM.text() if meta.get("random_weights") else "")),
        "weights_sha256": str(meta.get("weights_sha256") or ""),
        "layer": run.layer,
        "readout": run.ev.key,
        "statistics": run.stats_text,
        "input_size": run.options.size,
        "crop_size": plan.size,
        "crop_origin_xy": np.asarray(plan.crop_origin, dtype=np.int64),
        "unit_row_col": np.asarray(plan.full_units[run.layer], dtype=np.int64),
        "free_parameters": ",".join(run.space.parameters),
        "options": run.options.to_json(run.space),
        "steps_run": n_steps,
        "polish_iterations": len(run.trace.history) - 1 - n_steps,
        "forward_passes": run.ev.forward_passes,
        "wall_s": time.perf_counter() - run.trace.t0,
        "sweep_stimuli": int(run.grid.shape[0]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _root(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Smallest t > 0 with a t^2 + b t + c = 0 (c > 0), inf if none."""
    disc = b * b - 4 * a * c
    with torch.no_grad():
        quad = torch.where((a != 0) & (disc >= 0), (-b - disc.clamp(min=0).sqrt()) / (2 * a), torch.inf)
        quad = torch.where(a > 0, torch.where(b < 0, quad, torch.inf), quad)
        lin = torch.where(b < 0, -c / b.where(b != 0, -1.0), torch.inf)
    t = torch.where(a.abs() < 1e-12, lin, quad)
    return torch.where(t > 0, t, torch.inf)


def _room(space: Space, xs: Tensor) -> tuple[Tensor, Tensor]:
    """``(C, D)`` room up and down from the points ``xs`` to the bounds (orientation, periodic: 180 deg each way)."""
    idx = space.index
    lo, hi = space.lo[idx], space.hi[idx]
    if space.periodic:
        o = space.free.index("orientation")
        lo, hi = lo.clone(), hi.clone()
        lo[o], hi[o] = -math.inf, math.inf
    room_up = (hi - xs).clamp(min=0)
    room_down = (xs - lo).clamp(min=0)
    if space.periodic:
        room_up[:, o] = room_down[:, o] = 180.0
    return room_up, room_down


def _predicted(ev: Evaluator, x_best: Tensor, channels: Tensor, drop: Tensor,
               room: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Second-order prediction of the step up and down each coordinate that drops the activation by ``drop``.

    The gradient at ``x*`` and at ``x* + eps e_j`` (eps toward the side with room) give the
    first and second derivative along ``j``; returns ``(t_up, t_down)``, ``(C, D)``, inf where
    no step within the bounds drops that much.
    """
    space = ev.space
    C, D = x_best.shape[0], len(space.free)
    room_up, room_down = room
    eps = 1e-2 * space.span
    sgn = torch.where(room_up >= eps, 1.0, -1.0).double()
    pts = x_best[:, space.index][:, None, :].repeat(1, D + 1, 1)  # (C, D+1, D)
    pts[:, 1:, :] += torch.diag_embed(eps * sgn)
    _, g_all = ev.values_and_grads(pts.reshape(-1, D), x_best.repeat_interleave(D + 1, dim=0),
                                   channels.repeat_interleave(D + 1), natural=True)
    g_all = g_all.view(C, D + 1, D)
    g = g_all[:, 0, :]
    h = (torch.diagonal(g_all[:, 1:, :], dim1=1, dim2=2) - g) / (eps * sgn)
    c = drop[:, None].expand(C, D)
    t_up = _root(0.5 * h, g, c)
    t_dn = _root(0.5 * h, -g, c)
    return torch.where(t_up <= room_up, t_up, torch.inf), torch.where(t_dn <= room_down, t_dn, torch.inf)


def _measured(activation_at: Any, act: Tensor, drop: Tensor, start: Tensor, room: Tensor, sign: float,
              expand: int, bisect: int) -> Tensor:
    """Rendered step along one direction that drops the activation by ``drop``: grown from ``start``
    (doubled, at most ``expand`` times, within ``room``), then bisected ``bisect`` times; inf if never reached."""
    lo_t = torch.zeros_like(start)
    hi_t = start.clone()
    reached = torch.zeros(start.shape, dtype=torch.bool)
    for _ in range(expand):  # grow until the drop is reached or the bound is hit
        a = activation_at(sign * hi_t)
        reached |= (act[:, None] - a) >= drop[:, None]
        lo_t = torch.where(reached, lo_t, hi_t)
        grow = ~reached & (hi_t < room)
        if not bool(grow.any()):
            break
        hi_t = torch.where(grow, (hi_t * 2).minimum(room), hi_t)
    for _ in range(bisect):
        mid = 0.5 * (lo_t + hi_t)
        ok = (act[:, None] - activation_at(sign * mid)) >= drop[:, None]
        hi_t = torch.where(reached & ok, mid, hi_t)
        lo_t = torch.where(reached & ~ok, mid, lo_t)
    return torch.where(reached, hi_t, torch.inf)


def sensitivity(ev: Evaluator, x_best: Tensor, channels: Tensor, act: Tensor, std: Tensor, k: float,
                expand: int = 8, bisect: int = 8) -> xr.Dataset:
    """Smallest change of each free coordinate that lowers the activation by ``k`` sigma.

    At each optimum ``x*`` (rows of ``x_best``, natural units) and for each free
    coordinate ``j``, by gradient: the first and second derivatives ``g``, ``h`` along
    ``j`` (``h`` from the difference of two gradients) predict the smallest signed step
    ``d`` with ``g d + h d^2 / 2 = -k std``; the activation rendered at ``x* + d`` checks
    the prediction. Then by rendering only: along both directions, the step is doubled
    from the prediction until the drop reaches ``k std`` (within the bounds) and
    bisected ``bisect`` times; the smaller of the two is ``sensitivity_measured`` (NaN if
    no change within the bounds lowers the activation that much).

    Returns:
        dataset with dims ``(channel, coordinate)``: ``sensitivity_predicted``,
        ``sensitivity_check_sigma`` (rendered change in sigma at the predicted step),
        ``sensitivity_measured`` (signed, natural units of the coordinate).
    """
    space = ev.space
    if k <= 0 or not math.isfinite(k):
        raise OptimizeError(f"sensitivity: the change in sigma must be > 0, got {k!r}")
    C, D = x_best.shape[0], len(space.free)
    drop = k * torch.where(std > 0, std, torch.ones_like(std))  # (C,)
    room_up, room_down = _room(space, x_best[:, space.index])
    t_up, t_dn = _predicted(ev, x_best, channels, drop, (room_up, room_down))
    pred = torch.where(t_up <= t_dn, t_up, -t_dn)  # signed, +-inf if none
    rows_c = channels[:, None].expand(C, D).reshape(-1)
    base_cd = x_best.repeat_interleave(D, dim=0)  # (C*D, N)
    col = space.index.repeat(C)

    def activation_at(delta: Tensor) -> Tensor:
        """Rendered activation at x* + delta along each (channel, coordinate); delta (C, D)."""
        x = base_cd.clone()
        x[torch.arange(C * D), col] += delta.reshape(-1)
        return ev.values(x, rows_c).view(C, D).double()

    finite = torch.isfinite(pred)
    check = activation_at(torch.where(finite, pred, 0.0))
    check_sigma = torch.where(finite, (check - act[:, None]) / torch.where(std > 0, std, 1.0)[:, None], torch.nan)
    up, dn = (_measured(activation_at, act, drop,
                        torch.where(torch.isfinite(t), t, 0.01 * space.span.expand(C, D)).clamp(max=room), room, sign,
                        expand, bisect)
              for sign, room, t in ((1.0, room_up, t_up), (-1.0, room_down, t_dn)))
    meas = torch.where(up <= dn, up, -dn)
    meas = torch.where(torch.isfinite(meas), meas, torch.nan)
    pred = torch.where(torch.isfinite(pred), pred, torch.nan)
    attrs = {"sigma": float(k), "units": "natural units of each coordinate (deg, 1/px, px, RGB)"}
    return xr.Dataset({
        "sensitivity_predicted": (("channel", "coordinate"), pred.numpy(), {**attrs, "long_name": "by gradient (2nd order)"}),
        "sensitivity_check_sigma": (("channel", "coordinate"), check_sigma.numpy(),
                                    {"long_name": "rendered change (sigma) at the predicted step"}),
        "sensitivity_measured": (("channel", "coordinate"), meas.numpy(), {**attrs, "long_name": "by rendering (bisection)"}),
    }, coords={"channel": channels.numpy(), "coordinate": list(space.free)})


def save(ds: xr.Dataset, path: str | Path) -> Path:
    """Write an :func:`optimize` dataset as netCDF-4 (h5netcdf); never overwrites a file."""
    from suites.errors import ResultsExistsError

    from suites.atomic import current, output_file

    path = Path(path)
    staged = current()
    if path.exists() and not (staged is not None and staged.overwrite):
        raise ResultsExistsError(f"{path} exists already; results are never overwritten (choose another --out)")
    encoding = {"image": {"zlib": True, "complevel": 4}}
    with output_file(path, "--out") as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return path
