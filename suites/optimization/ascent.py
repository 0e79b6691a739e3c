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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from suites.errors import OptimizeError
from suites.file_kinds import OPTIMIZE_KIND
from suites.optimization.space import COORDINATES, PARAMETERS, Space, build_space

__all__ = ["optimize", "save", "Evaluator", "resolve_channels", "sensitivity"]

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





def resolve_channels(model: Any, layer: str, channels: Sequence[int] | str | Path | None) -> list[int]:
    """Channel ids to optimise: all (None or ``"all"``), the article's family (``"family"``),
    a discovered family (the path of a ``curvebench discover`` ``family.nc``: its detectors
    in ``layer``) or a list.

    Raises:
        OptimizeError: a layer the model lacks, a channel outside the layer, an empty or
            repeated list, a model without a known family, a family file that is missing,
            of another kind, of another model or weights, or without detectors in ``layer``.
    """
    if layer not in model.layers:
        raise OptimizeError(f"layer {layer!r} is not a layer of model {model.name!r}; allowed: {', '.join(model.layers)}")
    n = model.num_channels(layer)
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


def _discovered_family(model: Any, layer: str, path: Path) -> list[int]:
    """The detectors of ``layer`` in a ``curvebench discover`` family file, checked against ``model``."""
    from suites.file_kinds import CURVE_FAMILY_KIND

    if not path.is_file():
        raise OptimizeError(f"channels: family file not found: {path}")
    fam = _open_of_kind(path, CURVE_FAMILY_KIND, "channels", "a family file of `curvebench discover`")
    a = fam.attrs
    if "detector" not in fam or "layer" not in fam.coords or "channel" not in fam.coords:
        raise OptimizeError(f"channels: {path} lacks the detector, layer or channel of its units")
    if str(a.get("model", "")) != model.name:
        raise OptimizeError(f"channels: {path} was discovered in model {a.get('model')!r}, not {model.name!r}")
    f_sha, m_sha = str(a.get("weights_sha256") or ""), str(model.meta.get("weights_sha256") or "")
    if f_sha != m_sha:
        raise OptimizeError(f"channels: {path} was discovered with weights sha256 {f_sha[:12] or 'none'}, "
                            f"the model has {m_sha[:12] or 'none'}")
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


def _polish(ev: Evaluator, space: Space, start: Tensor, u: Tensor, val: Tensor, channels: Tensor, tol: Tensor,
            h0: Tensor, iterations: int, record: Any, shrink_to: float = 1 / 64) -> tuple[Tensor, Tensor]:
    """Compass search: each row tries ``u +- h_j e_j`` for every free coordinate ``j``.

    ``u`` ``(B, D)`` normalised points (one row per channel) with values ``val``
    ``(B,)`` for ``channels`` ``(B,)``; a row moves to its best candidate when that gains more than ``tol``
    ``(C,)``, else its step scale halves; it is done below ``shrink_to``. Derivative-free,
    so it climbs bumps narrower than a gradient step and sees the bounds exactly.
    ``record(values (B,), stimuli_rendered)`` is called after every iteration.
    """
    B, D = u.shape
    u, val = u.clone(), val.clone()
    scale = torch.ones(B, dtype=torch.float64)
    dirs = torch.cat([torch.eye(D, dtype=torch.float64), -torch.eye(D, dtype=torch.float64)])  # (2D, D)
    for _ in range(iterations):
        act = (scale >= shrink_to).nonzero()[:, 0]
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
        record(val, int(act.numel()) * 2 * D)
    return u, val


def _open_of_kind(path: Path, kind: str, option: str, what: str) -> xr.Dataset:
    """The netCDF file at ``path``, loaded, if its ``kind`` attribute is ``kind``; else one-line errors naming ``option``."""
    from suites.data_files import check_data_file

    check_data_file(path, option)
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise OptimizeError(f"{option}: {path} is not a netCDF file ({type(exc).__name__})") from None
    if ds.attrs.get("kind") != kind:
        raise OptimizeError(f"{option}: {path} is not {what} (kind={ds.attrs.get('kind')!r})")
    return ds


def _load_stats(path: str | Path) -> xr.Dataset:
    """A dataset statistics file (``curvebench stats``), checked by its ``kind`` attribute."""
    from suites.file_kinds import STATS_KIND

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    return _open_of_kind(path, STATS_KIND, "stats", "a curvebench statistics file")


def _reference(evaluator: Evaluator, stats: Any, sweep: dict[str, Tensor], channels: list[int]) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean and std (pre-ReLU readout) per channel, and where they come from."""
    if stats is None:
        pre = sweep["pre"][:, channels].double()
        return pre.mean(0).numpy(), pre.std(0, unbiased=False).numpy(), "coarse sweep's own statistics (no dataset statistics given)"
    name = evaluator.key
    if f"{name}_mean" not in stats or f"{name}_std" not in stats:
        raise OptimizeError(f"stats: no statistics for {name!r} in the statistics file")
    model = evaluator.model
    s_model = stats.attrs.get("model")
    if s_model and s_model != model.name:
        raise OptimizeError(f"stats: computed for model {s_model!r}, not {model.name!r}")
    s_sha, m_sha = str(stats.attrs.get("weights_sha256") or ""), str(model.meta.get("weights_sha256") or "")
    if s_sha != m_sha:
        raise OptimizeError(f"stats: computed for weights sha256 {s_sha[:12] or 'none'}, the model has {m_sha[:12] or 'none'}")
    mean = np.asarray(stats[f"{name}_mean"].values, dtype=np.float64)[channels]
    std = np.asarray(stats[f"{name}_std"].values, dtype=np.float64)[channels]
    a = stats.attrs
    return mean, std, f"dataset statistics: {a.get('source', 'unknown images')}, {a.get('n_images', '?')} images"


def optimize(
    model: Any,
    layer: str,
    channels: Sequence[int] | str | None = None,
    *,
    weights: str | None = None,
    device: str = "cpu",
    fix: Mapping[str, float | Sequence[float]] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    rounding: bool = False,
    fill: bool = False,
    restarts: int = 4,
    init: str = "sweep",
    sweep_orientations: int = 24,
    sweep_curvatures: int = 6,
    steps: int = 150,
    lr: float = 0.02,
    tol: float = 0.001,
    patience: int = 5,
    escapes: int = 3,
    separation: float = 2.0,
    polish: int = 30,
    stats: Any = None,
    sensitivity_sigma: float | None = None,
    size: int = 224,
    chunk: int = 256,
    seed: int = 0,
    progress: Any = None,
) -> xr.Dataset:
    """Each channel's preferred stimulus by projected gradient ascent (see module docstring).

    Args:
        model: a ``probes.ProbeModel`` or a model id (``"groundtruth"``, ``"inceptionv1"``).
        layer: tap name; its centre unit (of a ``size`` px input) is probed.
        channels: ids, ``"all"``/None, ``"family"`` (the article's family of ``layer``) or
            the path of a ``curvebench discover`` family file (its detectors in ``layer``).
        weights: weights for a model id (path or ``"random"``, seeded by ``seed``).
        device: torch device for a model id.
        fix: ``{parameter: value}`` held constant (names in
            :data:`suites.optimization.space.PARAMETERS`).
        bounds: ``{parameter: (lo, hi)}``; must lie in the renderer's valid range.
        rounding, fill: also optimise rounding (angle <-> curve) / fill opacity.
        restarts: starts per channel.
        init: ``"sweep"`` (best coarse-sweep points) or ``"random"`` (uniform in bounds).
        sweep_orientations, sweep_curvatures: coarse sweep size.
        separation: the sweep starts of a channel lie at least this many coarse-sweep
            orientation steps apart (2; 0 = simply the best points).
        steps: step budget; ``lr``: Adam learning rate on normalised coordinates (a step
            of 0.02 is 2% of a parameter's range, 7.2 deg of orientation).
        tol, patience: a row whose best has not improved by ``tol`` sigma for ``patience``
            steps goes back to its best point with half the learning rate; a channel has
            converged when all its rows are at lr / 8 and stale again (a row that is done
            is no longer rendered). Stop when every channel has converged or after ``steps``.
        escapes: how many times a row whose gradient is exactly zero (a dead receptive
            field, where no step can move it) jumps to a uniform random point in range.
        polish: at most this many iterations of a derivative-free compass search around
            each channel's best point after the ascent (0: none). It tries +-h along every
            free coordinate, moves to the best gain of ``tol`` sigma or halves ``h``; it
            starts at half the coarse sweep's spacing (orientation, curvature) or 5% of the
            range (the rest) and stops at 1/64 of that. It finds the narrow bumps of a
            real network's orientation tuning that gradient steps jump over.
        stats: a dataset statistics file (path or dataset) for sigma; default the coarse
            sweep's own statistics.
        sensitivity_sigma: also compute :func:`sensitivity` for a drop of this many sigma.
        size: full input size (px).
        chunk: rows per render/probe call.
        seed: torch seed (random inits, random weights).
        progress: optional callable ``progress(step, best_mean)`` called after each step.

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
    import probes

    if init not in ("sweep", "random"):
        raise OptimizeError(f"init: {init!r} is not allowed; use 'sweep' or 'random'")
    for name, v, low in (("restarts", restarts, 1), ("steps", steps, 0), ("patience", patience, 1), ("chunk", chunk, 1),
                         ("escapes", escapes, 0), ("polish", polish, 0),
                         ("sweep_orientations", sweep_orientations, 1), ("sweep_curvatures", sweep_curvatures, 1)):
        if int(v) != v or v < low:
            raise OptimizeError(f"{name}: expected an integer >= {low}, got {v!r}")
    if not (separation >= 0 and math.isfinite(separation)):
        raise OptimizeError(f"separation: expected a number of sweep steps >= 0, got {separation!r}")
    from suites.limits import MAX_BATCH, MAX_OPTIMIZE_STEPS, MAX_RENDER_IMAGES, MAX_RESTARTS, check_at_most

    check_at_most("steps", steps, MAX_OPTIMIZE_STEPS, hint="a step budget; runs also stop on tol")
    check_at_most("restarts", restarts, MAX_RESTARTS, hint="starts per channel")
    check_at_most("escapes", escapes, MAX_RESTARTS, hint="jumps per start away from a flat point")
    check_at_most("polish", polish, MAX_OPTIMIZE_STEPS, hint="compass-search iterations; they also stop on tol")
    check_at_most("chunk", chunk, MAX_BATCH, hint="stimuli per forward pass")
    check_at_most("coarse sweep (sweep_orientations x sweep_curvatures)", sweep_orientations * sweep_curvatures,
                  MAX_RENDER_IMAGES, unit="stimuli")
    if not (lr > 0 and math.isfinite(lr)) or not (tol >= 0):
        raise OptimizeError(f"lr must be > 0 and tol >= 0, got lr={lr!r}, tol={tol!r}")
    torch.manual_seed(seed)
    if isinstance(model, str):
        from suites.running.runner import resolve_device

        model = probes.load_model(model, weights=weights, device=resolve_device(device))
    if getattr(model, "geometry", None) is None:
        raise OptimizeError(f"model {model.name!r} has no receptive-field geometry; optimize needs the probed unit's crop")
    ids = resolve_channels(model, layer, channels)
    if isinstance(stats, str) or hasattr(stats, "__fspath__"):
        stats = _load_stats(stats)
    plan = model.input_plan([layer], size=size)
    space = build_space(size=plan.size, fix=fix, bounds=bounds, rounding=rounding, fill=fill)
    ev = Evaluator(model, layer, space, size=size, chunk=chunk)
    t0, c0 = time.perf_counter(), time.process_time()

    # 1. coarse sweep: sweep_max and starts
    start = space.start()
    grid = _coarse_points(space, start, sweep_orientations, sweep_curvatures)
    sweep = ev.all_channels(grid)
    sweep_pre = sweep["pre"][:, ids].double()  # (S, C)
    sweep_max = sweep_pre.max(0).values
    mean, std, stats_text = _reference(ev, stats, sweep, ids)
    scale = torch.from_numpy(np.where(std > 0, std, 1.0))
    C, R = len(ids), restarts
    chan = torch.tensor(ids).repeat_interleave(R)  # row b -> channel id
    if init == "sweep":
        sep = separation * 360.0 / sweep_orientations if "orientation" in space.free else 0.0
        pick = _pick_starts(sweep_pre, grid[:, _INDEX["orientation"]], R, sep)
        x0 = grid[pick.reshape(-1)]
    else:
        u_rand = torch.rand(C * R, len(space.free), dtype=torch.float64)
        x0 = space.clamp(space.full(space.natural(u_rand), start))

    # 2. projected Adam on normalised coordinates, a learning rate per row that halves
    #    (restarting from the row's best point) after `patience` steps without a gain of
    #    `tol` sigma; a row is done when it is down to lr / 8 and stale again, and is no
    #    longer rendered; a channel has converged when all its rows are done. A row still
    #    at its start whose gradient is flat (a full step would gain less than `tol`, e.g.
    #    a dead receptive field) jumps to a uniform random point, at most `escapes` times;
    #    its best point is kept.
    D = len(space.free)
    u = space.normalise(x0).clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    floor = 0.125 + 1e-12
    row_scale = torch.ones(C * R, dtype=torch.float64)
    stale = torch.zeros(C * R, dtype=torch.long)
    row_done = torch.zeros(C * R, dtype=torch.bool)
    row_escapes = torch.zeros(C * R, dtype=torch.long)
    row_tol = (tol * scale).repeat_interleave(R)
    flat_gain = torch.maximum(row_tol, 1e-6 * scale.repeat_interleave(R))
    climbed = torch.zeros(C * R, dtype=torch.bool)
    since_start = torch.zeros(C * R, dtype=torch.long)
    best_val = torch.full((C * R,), -math.inf, dtype=torch.float64)  # each row's best ever
    best_u = u.detach().clone()
    run_val = best_val.clone()  # each row's best since its last (re)start: plateaus, halving
    run_u = best_u.clone()
    history: list[Tensor] = []  # per evaluated step: (C,) best so far
    wall: list[float] = []
    cpu: list[float] = []
    passes: list[int] = []
    active_rows: list[int] = []
    stage: list[int] = []  # 0 ascent (step 0: the starts), 1 polish
    conv_step = torch.full((C,), -1, dtype=torch.long)

    def record(per_channel: Tensor, rendered: int, kind: int) -> None:
        history.append(per_channel.clone())
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        passes.append(ev.forward_passes)
        active_rows.append(rendered)
        stage.append(kind)

    for step in range(steps + 1):
        active = ~row_done
        rows_now = active.nonzero()[:, 0]
        vals = torch.full((C * R,), -math.inf, dtype=torch.float64)
        grads = torch.zeros(C * R, D, dtype=torch.float64)
        if rows_now.numel():
            v, g = ev.values_and_grads(u.detach()[rows_now], start, chan[rows_now])
            vals[rows_now], grads[rows_now] = v.double(), g.double()
        gained = active & (vals > run_val + row_tol)
        better = vals > run_val
        run_val = torch.where(better, vals, run_val)
        run_u[better] = u.detach()[better]
        better = vals > best_val
        best_val = torch.where(better, vals, best_val)
        best_u[better] = u.detach()[better]
        climbed |= gained & (since_start > 0)
        since_start += active.long()
        stale = torch.where(gained, 0, stale + active.long())
        per_channel = best_val.view(C, R).max(1).values
        record(per_channel, int(rows_now.numel()), 0)
        row_done |= active & (row_scale <= floor) & (stale >= patience)
        done = row_done.view(C, R).all(1)
        conv_step[done & (conv_step < 0)] = step
        if progress is not None:
            progress(step, float(per_channel.mean()))
        if step == steps or bool((conv_step >= 0).all()):
            break
        halve = ~row_done & (stale >= patience) & (row_scale > floor)
        # flat: still at its (re)start point and a full step along the gradient would gain
        # less than the tolerance (or 1e-6 sigma)
        flat = (~row_done & ~climbed & (lr * grads.abs().sum(1) <= flat_gain) & (row_escapes < escapes))
        with torch.no_grad():
            if bool(halve.any()):
                row_scale[halve] *= 0.5
                stale[halve] = 0
                u[halve] = run_u[halve]
            before = u.detach().clone()
        opt.zero_grad()
        u.grad = -grads  # ascend
        opt.step()
        with torch.no_grad():
            u.copy_(space.project(before + row_scale[:, None] * (u - before), start))
            u[row_done] = before[row_done]
            if bool(flat.any()):
                n_flat = int(flat.sum())
                jump = torch.rand(n_flat, D, generator=gen, dtype=torch.float64)
                u[flat] = space.project(jump.to(u.dtype), start)
                for moment in ("exp_avg", "exp_avg_sq"):
                    opt.state[u][moment][flat] = 0.0
                row_scale[flat], stale[flat], since_start[flat], run_val[flat] = 1.0, 0, 0, -math.inf
                row_escapes[flat] += 1
    n_steps = len(history) - 1

    # 3. compass search around each channel's best point (its best restart after the ascent)
    win = best_val.view(C, R).argmax(1)
    rows = torch.arange(C) * R + win
    ascent_best = best_val[rows].clone()
    restart_vals = best_val.view(C, R).clone()
    if polish:
        h0 = _polish_steps(space, sweep_orientations, sweep_curvatures)
        best_u[rows], best_val[rows] = _polish(ev, space, start, best_u[rows], best_val[rows], chan[rows],
                                               row_tol[rows], h0, polish, lambda v, n: record(v, n, 1))
    x_best = space.clamp(space.full(space.natural(best_u[rows]), start))
    final = ev.all_channels(x_best)
    take = torch.arange(C)
    act = final["pre"][take, torch.tensor(ids)].double().numpy()
    act_relu = final["post"][take, torch.tensor(ids)].double().numpy()
    images = (ev.images(x_best).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def sig(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(std > 0, (v - mean) / np.where(std > 0, std, 1.0), np.nan)

    xb = x_best.numpy()
    col = {c: xb[:, i] for i, c in enumerate(COORDINATES)}
    fx, fy = plan.full_position
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
            "activation_relu": ("channel", act_relu, {"long_name": f"{layer} post-ReLU at the probed unit"}),
            "activation_sigma": ("channel", sig(act), {"statistics": stats_text}),
            "sweep_max": ("channel", sweep_max.numpy(), {"long_name": "best coarse-sweep activation (the starts)"}),
            "sweep_max_sigma": ("channel", sig(sweep_max.numpy())),
            "reference_mean": ("channel", mean),
            "reference_std": ("channel", std),
            "steps": ("channel", np.where(conv_step.numpy() >= 0, conv_step.numpy(), n_steps).astype(np.int64),
                      {"long_name": "steps until converged (or the steps run)"}),
            "converged": ("channel", (conv_step.numpy() >= 0).astype(np.int8), {"long_name": "1 if converged within tol"}),
            "restart_activation": (("channel", "restart"), restart_vals.numpy(),
                                   {"long_name": "each restart's best after the ascent (before the polish)"}),
            "best_restart": ("channel", win.numpy().astype(np.int64)),
            "history": (("step", "channel"), torch.stack(history).numpy(), {"long_name": "best activation so far"}),
            "history_wall_s": ("step", np.asarray(wall), {"units": "s", "long_name": "wall time since the start (sweep included)"}),
            "history_cpu_s": ("step", np.asarray(cpu), {"units": "s", "long_name": "CPU time of this process since the start"}),
            "history_forward_passes": ("step", np.asarray(passes, dtype=np.int64),
                                       {"long_name": "forward passes since the start (coarse sweep included)"}),
            "history_active_rows": ("step", np.asarray(active_rows, dtype=np.int64),
                                    {"long_name": "rows (channel x restart) rendered at this step"}),
            "history_stage": ("step", np.asarray(stage, dtype=np.int8),
                              {"long_name": "0 gradient ascent (step 0: the starts), 1 compass-search polish"}),
            "ascent_activation": ("channel", ascent_best.numpy(),
                                  {"long_name": "best activation after the gradient ascent, before the polish"}),
            "escapes": ("channel", row_escapes.view(C, R).sum(1).numpy(),
                        {"long_name": "jumps away from a zero-gradient point (all restarts)"}),
            "image": (("channel", "image_y", "image_x", "image_rgb"), images, {"long_name": "optimal stimulus, receptive-field crop"}),
        },
        coords={"channel": np.asarray(ids, dtype=np.int64), "restart": np.arange(R), "rgb": ["r", "g", "b"],
                "step": np.arange(len(history)), "coordinate": list(space.free)},
    )
    meta = model.meta
    ds.attrs.update({
        "kind": OPTIMIZE_KIND,
        "model": model.name,
        "weights": str(meta.get("weights") or ("random" if meta.get("random_weights") else "")),
        "weights_sha256": str(meta.get("weights_sha256") or ""),
        "layer": layer,
        "readout": ev.key,
        "statistics": stats_text,
        "input_size": size,
        "crop_size": plan.size,
        "crop_origin_xy": np.asarray(plan.crop_origin, dtype=np.int64),
        "unit_row_col": np.asarray(plan.full_units[layer], dtype=np.int64),
        "free_parameters": ",".join(space.parameters),
        "options": json.dumps({
            "fix": {k: list(v) for k, v in space.fixed.items()}, "bounds": {k: list(v) for k, v in space.bounds.items()},
            "rounding": rounding, "fill": fill, "restarts": restarts, "init": init,
            "sweep": [sweep_orientations, sweep_curvatures], "steps": steps, "lr": lr, "tol": tol,
            "patience": patience, "escapes": escapes, "separation": separation, "polish": polish, "seed": seed,
            "optimizer": "adam (projected, per-row lr halving on plateaus), then compass search",
        }),
        "steps_run": n_steps,
        "polish_iterations": len(history) - 1 - n_steps,
        "forward_passes": ev.forward_passes,
        "wall_s": time.perf_counter() - t0,
        "sweep_stimuli": int(grid.shape[0]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    if sensitivity_sigma is not None:
        ds = ds.merge(sensitivity(ev, x_best, torch.tensor(ids), torch.from_numpy(act), torch.from_numpy(std),
                                  sensitivity_sigma))
        ds.attrs["sensitivity_sigma"] = float(sensitivity_sigma)
    return ds


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
    idx = space.index
    span = space.span
    drop = k * torch.where(std > 0, std, torch.ones_like(std))  # (C,)
    xs = x_best[:, idx]  # (C, D) natural
    lo, hi = space.lo[idx], space.hi[idx]
    if space.periodic:
        o = space.free.index("orientation")
        lo, hi = lo.clone(), hi.clone()
        lo[o], hi[o] = -math.inf, math.inf
    room_up = (hi - xs).clamp(min=0)  # (C, D)
    room_down = (xs - lo).clamp(min=0)
    if space.periodic:
        room_up[:, o] = room_down[:, o] = 180.0

    # gradient at x* and at x* + eps e_j (eps toward the side with room)
    eps = 1e-2 * span
    sgn = torch.where(room_up >= eps, 1.0, -1.0).double()
    pts = xs[:, None, :].repeat(1, D + 1, 1)  # (C, D+1, D)
    pts[:, 1:, :] += torch.diag_embed(eps * sgn)
    chans = channels.repeat_interleave(D + 1)
    base = x_best.repeat_interleave(D + 1, dim=0)
    _, g_all = ev.values_and_grads(pts.reshape(-1, D), base, chans, natural=True)
    g_all = g_all.view(C, D + 1, D)
    g = g_all[:, 0, :]
    h = (torch.diagonal(g_all[:, 1:, :], dim1=1, dim2=2) - g) / (eps * sgn)

    def root(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        """Smallest t > 0 with a t^2 + b t + c = 0 (c > 0), inf if none."""
        disc = b * b - 4 * a * c
        with torch.no_grad():
            quad = torch.where((a != 0) & (disc >= 0), (-b - disc.clamp(min=0).sqrt()) / (2 * a), torch.inf)
            quad = torch.where(a > 0, torch.where(b < 0, quad, torch.inf), quad)
            lin = torch.where(b < 0, -c / b.where(b != 0, -1.0), torch.inf)
        t = torch.where(a.abs() < 1e-12, lin, quad)
        return torch.where(t > 0, t, torch.inf)

    c = drop[:, None].expand(C, D)
    t_up = root(0.5 * h, g, c)
    t_dn = root(0.5 * h, -g, c)
    t_up = torch.where(t_up <= room_up, t_up, torch.inf)
    t_dn = torch.where(t_dn <= room_down, t_dn, torch.inf)
    pred = torch.where(t_up <= t_dn, t_up, -t_dn)  # signed, +-inf if none

    rows_c = channels[:, None].expand(C, D).reshape(-1)
    base_cd = x_best.repeat_interleave(D, dim=0)  # (C*D, N)
    col = idx.repeat(C)

    def activation_at(delta: Tensor) -> Tensor:
        """Rendered activation at x* + delta along each (channel, coordinate); delta (C, D)."""
        x = base_cd.clone()
        x[torch.arange(C * D), col] += delta.reshape(-1)
        return ev.values(x, rows_c).view(C, D).double()

    finite = torch.isfinite(pred)
    check = activation_at(torch.where(finite, pred, 0.0))
    check_sigma = torch.where(finite, (check - act[:, None]) / torch.where(std > 0, std, 1.0)[:, None], torch.nan)

    measured = []
    for sign, room, t_pred in ((1.0, room_up, t_up), (-1.0, room_down, t_dn)):
        start = torch.where(torch.isfinite(t_pred), t_pred, 0.01 * span.expand(C, D)).clamp(max=room)
        lo_t = torch.zeros(C, D, dtype=torch.float64)
        hi_t = start.clone()
        reached = torch.zeros(C, D, dtype=torch.bool)
        for _ in range(expand):  # grow until the drop is reached or the bound is hit
            a = activation_at(sign * hi_t)
            now = (act[:, None] - a) >= drop[:, None]
            reached |= now
            lo_t = torch.where(reached, lo_t, hi_t)
            grow = ~reached & (hi_t < room)
            if not bool(grow.any()):
                break
            hi_t = torch.where(grow, (hi_t * 2).minimum(room), hi_t)
        for _ in range(bisect):
            mid = 0.5 * (lo_t + hi_t)
            a = activation_at(sign * mid)
            ok = (act[:, None] - a) >= drop[:, None]
            hi_t = torch.where(reached & ok, mid, hi_t)
            lo_t = torch.where(reached & ~ok, mid, lo_t)
        measured.append(torch.where(reached, hi_t, torch.inf))
    up, dn = measured
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
