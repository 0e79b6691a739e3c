"""Run a suite: stream the grid through the renderer and the probes into a results file.

Pipeline (``docs/results.md``)::

    grid batch (host, float64) -> stimuli.render (device) -> model.probe (device)
        -> readout (channels, storage dtype) -> device->host copy
        -> bounded queue -> writer thread: HDF5 append + flush, running summaries, progress bar

The main thread renders and probes batch ``i + 1`` while the writer thread stores batch
``i``; the queue holds at most ``queue_depth`` batches, so memory stays flat however
long the sweep. On CUDA the main thread renders batch ``i + 1`` while the GPU still runs
batch ``i``'s probe: rendering runs on its own high-priority stream (the renderer's few
host syncs then wait only for the render kernels, not for the probe), the probe waits
for it with an event, and activations go to pinned host buffers with asynchronous
copies whose completion event the writer thread waits for (see "Performance" in
``docs/results.md``). The stimulus is drawn at ``plan.position`` on a ``plan.size``
input (the probes' receptive-field crop), and every layer is read at ``plan.units``.

Determinism: row ``i`` is always the same stimulus and batches are aligned to
multiples of the batch size from row 0, so the same suite, seed and batch size give
the same values, also across a resume (on CPU; GPU kernels may differ in the last bits).
"""

from __future__ import annotations

import json
import platform
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suites.specs.options import RunOptions, load_with_options, suite_from_file
from suites.specs.grid import Grid, GridBatch
from suites.specs.render_args import render_kwargs
from suites.file_kinds import RESULTS_KIND
from suites.limits import safe_file_name
from suites.results.verify import check_resumable
from suites.specs.suite import FAMILY_KINDS, Suite, SuiteError, layer_scale, load_suite, scale_render_kwargs
from suites.results.summary import RunningSummary, summary_names
from probes.device import resolve_device
from suites.results.attributes import check_same_model
from suites.results.provenance import utc_now, versions
from suites.results.writer import Layout, ResultsWriter, Variable
from suites.running.suite_model import load_probe_model, weights_sha

__all__ = ["run_suite", "RunOptions", "resolve_readout", "Readout", "BatchReadout", "RunResult", "prepare_suite",
           "default_out_path", "resume_checks", "setup_run", "RunSetup", "results_layout", "results_attrs",
           "stream_rows", "finish_file", "check_resumed_writer", "suite_from_file"]


#: Axes longer than this are not copied into attributes; readers rebuild them from the suite text.
MAX_AXIS_ATTR = 4096

# ----------------------------------------------------------------------------- readout

@dataclass(frozen=True)
class Readout:
    """What to read from the model: layers, channel ids per layer, pre/post variables."""

    layers: tuple[str, ...]
    channels: dict[str, np.ndarray]
    variables: tuple[tuple[str, str, bool], ...]  # (variable name, layer, is_pre_relu)
    family: str | None = None

    def channel_dim(self, layer: str) -> str:
        return f"{layer}_channel"


def _error(suite: Suite, msg: str) -> SuiteError:
    return SuiteError(f"{suite.path}: {msg}")


def _model_families(model: Any) -> dict[str, list[int]]:
    """``{layer: channel ids}`` of every curve family the probes know for ``model``."""
    import probes

    fams = getattr(probes, "families", {})
    return {f.layer: [int(c) for c in f.channels] for f in fams.values() if f.model == model.name}


def _family_channels(suite: Suite, model: Any, name: str, layer: str | None) -> dict[str, list[int]]:
    """Channels of a family per layer.

    ``name`` is a family kind (``"curves"``: the model's curve families, in every layer
    that has one) or, for one ``layer``, a name the probes accept for that layer's
    family (the layer itself or an alias such as ``"3b"``).
    """
    import probes

    found = _model_families(model)
    if name in FAMILY_KINDS:
        if not found:
            raise _error(suite, f"model {model.name!r} has no {name!r} family (the probes know families for: "
                                f"{', '.join(sorted({f.model for f in probes.families.values()}))})")
        if layer is None:
            return found
        if layer not in found:
            raise _error(suite, f"[model].channels: model {model.name!r} has no {name!r} family channels in "
                                f"layer {layer!r}; it has them in {', '.join(found)}")
        return {layer: found[layer]}
    if layer is None:
        raise _error(suite, f"[model].family: family {name!r} does not exist; allowed: {', '.join(FAMILY_KINDS)}")
    try:
        fam = probes.get_family(model.name, name)
    except ValueError as exc:
        raise _error(suite, f"[model].channels: family {name!r} does not exist for layer {layer!r} "
                            f"({exc}); use 'all', 'family' (the layer's curve family, also 'curves') or a list of channel ids") from None
    if fam.layer != layer:
        raise _error(suite, f"[model].channels: family {name!r} belongs to layer {fam.layer!r}, not {layer!r}")
    return {layer: [int(c) for c in fam.channels]}


def layer_scales(suite: Suite, model: Any, layers: Sequence[str]) -> dict[str, float]:
    """Stimulus scale per layer (:func:`suites.specs.suite.layer_scale`); all 1 unless the suite sizes per layer.

    Raises:
        SuiteError: the suite sizes per layer but the model has no receptive-field geometry.
    """
    if suite.length_per_receptive_field is None:
        return {layer: 1.0 for layer in layers}
    if getattr(model, "geometry", None) is None:
        raise _error(suite, f"[model].length_per_receptive_field needs a model with receptive-field geometry; "
                            f"{getattr(model, 'name', model)!r} has none")
    return {layer: layer_scale(suite, model.receptive_field(layer, suite.size).size) for layer in layers}


def resolve_readout(suite: Suite, model: Any) -> Readout:
    """Check the suite's layers, channels and family against ``model``; raise ``SuiteError`` naming the key."""
    layers = list(suite.layers)
    per_layer: dict[str, list[int] | None] = {}
    if suite.family:
        fam = _family_channels(suite, model, suite.family, None)
        if not layers:
            layers = [l for l in model.layers if l in fam]
        for layer in layers:
            if layer not in fam:
                raise _error(suite, f"[model].layers: layer {layer!r} has no {suite.family!r} family channels "
                                    f"in model {model.name!r}; family layers: {', '.join(fam)}")
            per_layer[layer] = fam[layer]
    for layer in layers:
        if layer not in model.layers:
            raise _error(suite, f"[model].layers: unknown layer {layer!r} for model {model.name!r}; "
                                f"allowed: {', '.join(model.layers)} (choose with --layers)")
    if not layers:
        raise _error(suite, f"[model]: no layers to probe (family {suite.family!r} covers none of {model.layers})")
    spec = suite.channels
    if isinstance(spec, dict):
        for layer in spec:
            if layer not in layers:
                raise _error(suite, f"[model].channels.{layer}: {layer!r} is not among the probed layers "
                                    f"({', '.join(layers)})")
    channels: dict[str, np.ndarray] = {}
    for layer in layers:
        width = model.num_channels(layer)
        s = spec.get(layer) if isinstance(spec, dict) else spec
        key = f"[model].channels.{layer}" if isinstance(spec, dict) else "[model].channels"
        if s is None:  # not given: the family's channels with [model].family, else every channel
            ids = list(per_layer[layer]) if layer in per_layer else list(range(width))
        elif s == "all":
            ids = list(range(width))
        elif isinstance(s, str):
            ids = _family_channels(suite, model, s, layer)[layer]
        else:
            ids = list(s)
        for i, c in enumerate(ids):
            if not 0 <= int(c) < width:
                raise _error(suite, f"{key}[{i}]: channel {c} is beyond layer {layer!r} of model {model.name!r} "
                                    f"({width} channels: ids 0..{width - 1})")
        channels[layer] = np.asarray(ids, dtype=np.int64)
    variables = []
    taps = getattr(model, "taps", None)
    for layer in layers:
        has_pre = taps is None or f"{layer}_pre_relu" in taps  # a wrapped module may have no pre-ReLU tap
        if suite.readout == "pre_relu" and not has_pre:
            raise _error(suite, f"readout: layer {layer!r} of model {model.name!r} has no pre-ReLU tap; "
                                f"use readout = 'post_relu' (or 'both', which then stores post-ReLU only)")
        if suite.readout in ("both", "post_relu"):
            variables.append((layer, layer, False))
        if suite.readout in ("both", "pre_relu") and has_pre:
            variables.append((f"{layer}_pre_relu", layer, True))
    return Readout(tuple(layers), channels, tuple(variables), suite.family)


# ----------------------------------------------------------------------------- setup helpers

def prepare_suite(suite: Suite | str | Path, options: RunOptions | None = None) -> Suite:
    """Load (by name, path or object) and apply the run options (command-line overrides)."""
    return load_with_options(suite, options)


def default_out_path(suite: Suite, root: str | Path = "results") -> Path:
    """``results/<suite>-<model>-<UTC time>.h5``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(root) / f"{safe_file_name(suite.name)}-{safe_file_name(suite.model)}-{stamp}.h5"


# ----------------------------------------------------------------------------- readout and copy-out

class BatchReadout:
    """Select the readout's channels from ``model.probe`` output and copy them to the host.

    Shared by the runner and the probe-only benchmark, so both do the same work per batch.

    Args:
        readout: layers, channel ids and variables (:func:`resolve_readout`).
        num_channels: ``{layer: width}`` of the model (all channels: no ``index_select``).
        device: where the activations live.
        dtype: storage dtype of the host copies (float32 or float16).
    """

    def __init__(self, readout: Readout, num_channels: Mapping[str, int], device: torch.device,
                 dtype: torch.dtype = torch.float32) -> None:
        self.variables = readout.variables
        self.device = device
        self.dtype = dtype
        self.index = {l: torch.as_tensor(readout.channels[l], device=device) for l in readout.layers}
        self.full = {l: len(readout.channels[l]) == num_channels[l]
                     and np.array_equal(readout.channels[l], np.arange(num_channels[l])) for l in readout.layers}

    def select(self, acts: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{variable: (B, C) tensor}``: the readout's channels, on the activations' device (not cast)."""
        data = {}
        for name, layer, pre in self.variables:
            a = acts[f"{layer}_pre_relu" if pre else layer]
            data[name] = a if self.full[layer] else a.index_select(1, self.index[layer])
        return data

    def to_host(self, acts: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Any]:
        """Host copies of :meth:`select` and a CUDA event to wait for before reading them.

        On CUDA the copies go to pinned buffers without blocking (``non_blocking=True``)
        and the returned event completes when they have landed; on CPU the event is None.
        Always copies (never pins the whole feature map behind a small view).
        """
        data = self.select(acts)
        if self.device.type != "cuda":
            return {k: v.to(dtype=self.dtype, copy=True) for k, v in data.items()}, None
        host = {}
        for k, v in data.items():
            v = v.to(dtype=self.dtype).contiguous()  # cast on the device (half the bytes for float16)
            buf = torch.empty(v.shape, dtype=self.dtype, pin_memory=True)
            buf.copy_(v, non_blocking=True)
            host[k] = buf
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(self.device))
        return host, done


_RENDER_STREAMS: dict[torch.device, Any] = {}


def _render_stream(dev: torch.device) -> Any:
    """The CUDA stream the runner renders on (None on CPU): one per device, high priority.

    Reused across runs because the caching allocator keeps freed blocks per stream; a new
    stream per run would allocate (and synchronise the device) again on every run.
    """
    if dev.type != "cuda":
        return None
    dev = torch.device("cuda", dev.index if dev.index is not None else torch.cuda.current_device())
    if dev not in _RENDER_STREAMS:
        _RENDER_STREAMS[dev] = torch.cuda.Stream(device=dev, priority=-1)  # lower number = higher priority
    return _RENDER_STREAMS[dev]


# ----------------------------------------------------------------------------- writer thread

class _WriterThread(threading.Thread):
    """Consumes ``(start, coords, data)`` items: host copy, append, summaries, progress."""

    def __init__(self, writer: ResultsWriter, depth: int, summaries: dict[str, RunningSummary] | None,
                 keep_rows: bool, on_rows: Callable[[int], None]) -> None:
        super().__init__(name="curvebench-writer", daemon=True)
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.summaries = summaries
        self.keep_rows = keep_rows
        self.on_rows = on_rows
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain without writing after a failure
            try:
                start, coords, data, done = item
                if done is not None:
                    done.synchronize()  # the asynchronous device->host copies have landed
                host = {k: v.numpy() for k, v in data.items()}
                statics = None
                if self.summaries is not None:
                    statics = {}
                    for name, s in self.summaries.items():
                        s.update(host[name], start)
                        statics.update(s.arrays(name))
                if self.keep_rows:
                    self.writer.append(coords, host, statics)
                else:
                    self.writer.append({}, {}, statics, rows=len(next(iter(host.values()))))
                self.on_rows(len(next(iter(host.values()))))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                self.error = exc

    def put(self, item: Any) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if not self.is_alive():
                    raise RuntimeError("writer thread stopped unexpectedly") from self.error

    def close(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error


# ----------------------------------------------------------------------------- run

@dataclass
class RunResult:
    """Outcome of :func:`run_suite`: file, rows written now and in total, timing."""

    path: Path
    rows: int
    rows_total: int
    seconds: float
    complete: bool
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def summary_line(self) -> str:
        state = "complete" if self.complete else f"incomplete ({self.rows_total} rows committed)"
        return (f"{self.rows} stimuli in {self.seconds:.1f} s ({self.rate:,.0f} stimuli/s), {state} -> {self.path}")


def read_results_attrs(path: str | Path) -> dict[str, Any]:
    """The attributes of a results file to resume; one-line errors for missing or foreign files."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: results file {path} not found")
    try:
        with h5py.File(path, "r", locking=False) as f:
            attrs = dict(f.attrs)
    except OSError:  # h5py: "file signature not found", truncated file, ...
        raise ValueError(f"cannot resume {path}: not a curvebench results file "
                         f"(HDF5 cannot read it; is it a truncated or non-HDF5 file?)") from None
    if "run_options" not in attrs or "suite" not in attrs:
        raise ValueError(f"cannot resume {path}: not a results file written by `curvebench run`")
    return attrs


def resume_checks(path: str | Path, suite: Suite | str | Path | None, options: RunOptions, *,
                  attrs: Mapping[str, Any] | None = None, world_size: int = 1) -> tuple[Suite, RunOptions]:
    """Everything checked before resuming ``path``; returns the stored suite and options to continue with.

    The file must be a ``curvebench run`` results file written by ``world_size``
    processes (1: a plain run; N: a ``torchrun`` run over N shards); a ``suite`` given
    must be the stored one; ``options.model``/``options.weights`` must match the file
    (weights by SHA-256); ``options.device`` may change. The returned options are the
    stored ones (limit, quick, batch size, storage, layers) with the device override.
    ``attrs``: the file's attributes when already read (the distributed runner reads
    them on rank 0 only). Raises ``ValueError``/``FileNotFoundError`` naming the file
    and the mismatch.
    """
    path = Path(path)
    attrs = read_results_attrs(path) if attrs is None else attrs
    written_by = int(attrs.get("world_size", 1))
    if written_by != world_size:
        how = ("with `torchrun --nnodes=... --nproc-per-node=...` giving " if written_by > 1 else "without torchrun, ")
        raise ValueError(f"cannot resume {path} with {world_size} process(es): it was written by {written_by}; "
                         f"resume it {how}world size {written_by}")
    if world_size == 1:  # a sharded file's rows live in its shards, which each rank checks as it opens them
        check_resumable(path)  # verified, not trusted: counters, grid, stored suite; not complete
    s, stored = suite_from_file(attrs)
    statics_rows = attrs.get("statics_rows")
    if (s.summary.enabled and not s.summary.keep_rows and statics_rows is not None
            and int(statics_rows) != int(attrs.get("rows_completed", 0))):
        from suites.errors import ResultsFileError

        raise ResultsFileError(f"cannot resume {path}: the run stopped while its summaries were being written "
                               "and the file keeps no rows (keep_rows = false) to rebuild them from; run it again")
    if suite is not None:
        given = suite if isinstance(suite, Suite) else load_suite(suite)
        if given.source.strip() != s.source.strip():
            raise ValueError(f"cannot resume {path}: it was written by a different suite "
                             f"({attrs.get('suite_name')!r} from {attrs.get('suite_path')}); "
                             f"resume without naming a suite, or start a new run")
    if options.model is not None and options.model != s.model:
        raise ValueError(f"cannot resume {path}: it was written with model {s.model!r}, not {options.model!r}")
    w = options.weights
    if w is not None and w.is_random and not s.weights.is_random:
        raise ValueError(f"cannot resume {path}: it was written with weights {s.weights}, not random weights")
    if w is not None and w.is_file:
        w.check_exists()
        sha, have = w.file_sha256(), str(attrs.get("weights_sha256", ""))
        if sha != have:
            raise ValueError(f"cannot resume {path}: weights {w.path} (sha256 {sha[:12]}...) differ from the "
                             f"file's weights (sha256 {have[:12] or 'none'}...)")
        s = s.with_overrides(weights=w)
    if options.device is not None:
        s = s.with_overrides(device=options.device)
    return s, stored.replace(device=s.device)


def check_resumed_writer(writer: ResultsWriter, s: Suite, weights_sha256: str) -> None:
    """After loading the model: the file's model and weights digest must be what the suite now resolves to."""
    check_same_model(writer.attrs, {"model": s.model, "weights_sha256": weights_sha256},
                     what=f"cannot resume {writer.path}: it was written", other="the suite's model", error=ValueError)


@dataclass
class RunSetup:
    """A suite made ready to stream: device, model, readout, input plan, grid and the rows to run."""

    suite: Suite
    options: RunOptions
    device: torch.device
    net: Any
    readout: Readout
    plan: Any
    size: int
    position: tuple[float, float]
    grid: Grid
    stop: int
    weights_sha: str
    #: stimulus scale per layer (:func:`layer_scales`); all 1 unless the suite sizes per layer
    scales: dict[str, float] = field(default_factory=dict)

    def scale_groups(self) -> dict[float, list[str]]:
        """Layers grouped by stimulus scale: one render per group, probing its layers."""
        groups: dict[float, list[str]] = {}
        for layer in self.readout.layers:
            groups.setdefault(self.scales.get(layer, 1.0), []).append(layer)
        return groups

    @property
    def compute_dtype(self) -> torch.dtype:
        return getattr(torch, self.suite.dtype)

    @property
    def store_dtype(self) -> str:
        return "float16" if self.suite.storage == "float16" else "float32"


def setup_run(s: Suite, options: RunOptions, probe_model: Any = None, device: torch.device | None = None) -> RunSetup:
    """Load (or take) the model on the suite's device (or ``device``) and check the readout against it."""
    dev = device if device is not None else resolve_device(s.device)
    if probe_model is not None:
        if getattr(probe_model, "name", None) != s.model:
            raise ValueError(f"probe_model is {getattr(probe_model, 'name', None)!r} but the suite's model is {s.model!r}")
        net = probe_model
    else:
        net = load_probe_model(s, dev)
    if s.dtype != "float32":
        net = net.to(dtype=getattr(torch, s.dtype))
    readout = resolve_readout(s, net)
    # analytic geometry: the exact crop; measured (wrapped modules): the full input, drawn at the centre unit's RF centre
    has_geometry = getattr(net, "geometry", None) is not None or getattr(net, "measure_geometry", False)
    plan = net.input_plan(list(readout.layers), size=s.size) if has_geometry else None
    size = plan.size if plan is not None else s.size
    position = plan.position if plan is not None else (s.size / 2, s.size / 2)
    grid = Grid(s.axes)
    stop = grid.size if options.limit is None else min(options.limit, grid.size)
    return RunSetup(s, options, dev, net, readout, plan, size, position, grid, stop, weights_sha(net, s),
                    layer_scales(s, net, readout.layers))


# ----------------------------------------------------------------------------- layout and attributes

def results_layout(setup: RunSetup) -> Layout:
    """The file layout: per-row coordinates and activations, channel dims, summary statics."""
    s, readout = setup.suite, setup.readout
    keep_rows = s.summary.keep_rows
    dims: dict[str, np.ndarray] = {readout.channel_dim(l): readout.channels[l] for l in readout.layers}
    variables, statics = [], []
    if s.summary.enabled:
        dims["rank"] = np.arange(s.summary.top_k, dtype=np.int64)
    for name, layer, pre in readout.variables:
        cdim = readout.channel_dim(layer)
        vattrs = {"layer": layer, "readout": "pre_relu" if pre else "post_relu",
                  "long_name": f"{layer} {'pre-ReLU' if pre else 'post-ReLU'} activation at the probed unit",
                  "stimulus_scale": setup.scales.get(layer, 1.0)}
        if keep_rows:
            variables.append(Variable(name, ("stimulus", cdim), setup.store_dtype, vattrs))
        if s.summary.enabled:
            n = summary_names(name)
            statics += [Variable(n["mean"], (cdim,), "float64"), Variable(n["std"], (cdim,), "float64"),
                        Variable(n["max"], (cdim,), "float64"), Variable(n["m2"], (cdim,), "float64"),
                        Variable(n["top_value"], ("rank", cdim), "float64"),
                        Variable(n["top_stimulus"], ("rank", cdim), "int64")]
    coords = {name: "float64" for name in setup.grid.names} if keep_rows else {}
    return Layout("stimulus", dims, coords, tuple(variables), tuple(statics), chunk_rows=s.batch_size,
                  coord_attrs={name: coordinate_attrs(name) for name in coords})


#: the renderer's units as CF ``units`` strings (angles in degrees; lengths in pixels of the input image)
_CF_UNITS = {"deg": "degree", "px": "px", "1/px": "1/px", "": "1"}


def coordinate_attrs(name: str) -> dict[str, str]:
    """CF ``units``, ``long_name`` (and the renderer's help as ``comment``) of a swept stimulus parameter."""
    from stimuli.kinds import PARAMS

    long_name = f"stimulus {name.replace('_', ' ')}"
    param = next((p for p in PARAMS if p.name == name), None)
    if param is None:  # colour components and other unit-free values
        return {"units": "1", "long_name": long_name}
    return {"units": _CF_UNITS.get(param.unit, param.unit), "long_name": long_name, "comment": param.help}


def results_attrs(setup: RunSetup) -> dict[str, Any]:
    """The attributes of a new results file: the suite, options, model, grid, input plan and provenance."""
    s, grid, plan, readout = setup.suite, setup.grid, setup.plan, setup.readout
    attrs = {
        "title": f"curvebench {s.name} sweep on {s.model}",
        "suite_name": s.name, "suite": s.source, "suite_path": s.path, "description": s.description,
        "file_kind": RESULTS_KIND, "stimulus_kind": s.kind, "run_options": setup.options.resolved(s).to_json(),
        "fixed": json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in s.fixed.items()}),
        "model": s.model, "weights": s.weights.text() or "", "weights_sha256": setup.weights_sha,
        "layers": " ".join(readout.layers), "readout": s.readout, "family": readout.family or "",
        "device": str(setup.device), "dtype": s.dtype, "storage_dtype": setup.store_dtype, "seed": s.seed,
        "batch_size": s.batch_size, "created": utc_now(), "rows_total": setup.stop,
        "grid_axes": " ".join(grid.names), "grid_shape": np.asarray(grid.shape, dtype=np.int64),
        "input_size": setup.size, "stimulus_position_xy": np.asarray(setup.position, dtype=np.float64),
        "stimulus_scale": json.dumps({l: setup.scales.get(l, 1.0) for l in readout.layers}),
        "probed_units": json.dumps({k: list(v) for k, v in plan.units.items()}) if plan is not None else "{}",
        "summary": json.dumps({"enabled": s.summary.enabled, "top_k": s.summary.top_k,
                               "keep_rows": s.summary.keep_rows}),
        "host": platform.node(), "command": " ".join(sys.argv),
        **versions(),
    }
    for name, values in grid.axes:
        if values.size <= MAX_AXIS_ATTR:  # HDF5 attributes are limited to 64 KiB
            attrs[f"grid_axis_{name}"] = values
    return attrs


def restore_summaries(setup: RunSetup, writer: ResultsWriter, first_row: int = 0) -> dict[str, RunningSummary] | None:
    """Running summaries to continue after ``writer.rows_completed`` rows.

    Fresh for a new file; else restored from the file's statics, or, when a kill left the
    statics untrusted (:attr:`ResultsWriter.statics_trusted`), rebuilt from the committed
    rows in the run's batches (``first_row``: the grid row of the file's row 0, nonzero for
    a ``torchrun`` shard). The rebuild reads the stored values, so with ``storage =
    "float16"`` it matches an uninterrupted run to float16 precision, not exactly.

    Raises:
        ResultsFileError: untrusted statics in a summary-only file (``keep_rows = false``),
            which stores no rows to rebuild them from.
    """
    s, readout = setup.suite, setup.readout
    if not s.summary.enabled:
        return None
    done = writer.rows_completed
    trusted = writer.statics_trusted
    if done and not trusted and not s.summary.keep_rows:
        from suites.errors import ResultsFileError

        raise ResultsFileError(f"cannot resume {writer.path}: the run stopped while its summaries were being written "
                               "and the file keeps no rows (keep_rows = false) to rebuild them from; run it again")
    out = {}
    for name, layer, _ in readout.variables:
        if done and trusted:
            stored = {k: writer.read_static(k) for k in summary_names(name).values()}
            out[name] = RunningSummary.restore(name, stored, done, s.summary.top_k)
            continue
        summ = RunningSummary(len(readout.channels[layer]), s.summary.top_k)
        r = 0
        while r < done:  # the same batch boundaries as the run (aligned to grid row 0)
            g = first_row + r
            r1 = min(done, (g // s.batch_size + 1) * s.batch_size - first_row)
            summ.update(writer.read_rows(name, r, r1), g)
            r = r1
        out[name] = summ
    return out


# ----------------------------------------------------------------------------- streaming loop

@dataclass
class StreamOutcome:
    """What :func:`stream_rows` did: seconds, whether it stopped early, the first error, the summaries."""

    seconds: float
    interrupted: bool
    error: BaseException | None
    summaries: dict[str, RunningSummary] | None = None


def stream_rows(
    setup: RunSetup,
    writer: ResultsWriter,
    start: int,
    stop: int,
    *,
    progress: bool | None = None,
    queue_depth: int = 3,
    on_progress: Callable[[int, int], None] | None = None,
    stop_after_batches: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> StreamOutcome:
    """Render, probe and append grid rows ``start:stop`` to ``writer`` (batches aligned to row 0).

    The writer thread appends and flushes batch ``i`` while this thread renders and probes
    batch ``i + 1``. Errors are caught and returned (after the queued batches are written),
    so the caller can close the file safely; KeyboardInterrupt, ``stop_after_batches`` and
    ``should_stop()`` (checked after each batch) end the loop as an interruption.
    """
    from tqdm.auto import tqdm

    s, dev, net, readout = setup.suite, setup.device, setup.net, setup.readout
    keep_rows = s.summary.keep_rows
    bar = tqdm(total=stop - start + writer.rows_completed, initial=writer.rows_completed, unit="stim",
               unit_scale=True, dynamic_ncols=True, desc=s.name,
               disable=(None if progress is None else not progress), smoothing=0.1)
    lock = threading.Lock()

    def on_rows(n: int) -> None:
        with lock:
            bar.update(n)
        if on_progress is not None:
            on_progress(writer.rows_completed, setup.stop)

    summaries = restore_summaries(setup, writer, first_row=start - writer.rows_completed)
    wt = _WriterThread(writer, queue_depth, summaries, keep_rows, on_rows)
    want_pre = any(pre for _, _, pre in readout.variables)
    out_dtype = torch.float16 if setup.store_dtype == "float16" else torch.float32
    copy_out = BatchReadout(readout, {l: net.num_channels(l) for l in readout.layers}, dev, out_dtype)
    render_stream = _render_stream(dev)
    t0 = time.perf_counter()
    interrupted, batches, error = False, 0, None
    wt.start()
    try:
        with torch.inference_mode():
            groups = setup.scale_groups()
            for batch in setup.grid.batches(s.batch_size, start=start, stop=stop):
                acts = {}
                for scale, layers in groups.items():  # one group unless the suite sizes per layer
                    images = _render_batch(setup, batch, render_stream, scale)
                    acts.update(net.probe(images, layers, plan=setup.plan, pre_relu=want_pre,
                                          check_range=dev.type == "cpu"))
                data, done = copy_out.to_host(acts)
                del images, acts
                wt.put((batch.start, batch.params if keep_rows else {}, data, done))
                batches += 1
                if (stop_after_batches is not None and batches >= stop_after_batches) or (
                        should_stop is not None and should_stop()):
                    interrupted = True
                    break
    except KeyboardInterrupt:
        interrupted = True
    except BaseException as exc:  # noqa: BLE001 - returned; the caller re-raises once the file is safe
        error = exc
    try:
        wt.close()  # writes what is queued; re-raises a writer failure
    except BaseException as exc:  # noqa: BLE001
        error = error or exc
    bar.close()
    return StreamOutcome(time.perf_counter() - t0, interrupted, error, summaries)


def _render_batch(setup: RunSetup, batch: GridBatch, render_stream: Any, scale: float = 1.0) -> torch.Tensor:
    """The batch's stimuli on the device, at ``scale`` (:func:`suites.specs.suite.layer_scale`); on CUDA drawn on the
    render stream, ready for the main stream."""
    import stimuli

    s, dev, dtype = setup.suite, setup.device, setup.compute_dtype

    def draw() -> torch.Tensor:
        kw = scale_render_kwargs(s.kind, render_kwargs(batch.params, s.fixed, len(batch), device=dev, dtype=dtype),
                                 scale)
        return stimuli.render(s.kind, position=setup.position, size=setup.size, device=dev, dtype=dtype, **kw)

    if render_stream is None:
        return draw()
    main_stream = torch.cuda.current_stream(dev)
    with torch.cuda.stream(render_stream):
        images = draw()
    main_stream.wait_stream(render_stream)
    # the probe reads `images` on the main stream: keep the block from being reused by the
    # next render until that work is done
    images.record_stream(main_stream)
    return images


def finish_file(writer: ResultsWriter, stop: int, outcome: StreamOutcome) -> tuple[bool, dict[str, Any]]:
    """Mark the file complete (all ``stop`` rows, not interrupted) or add the seconds; close it."""
    complete = writer.rows_completed >= stop and not outcome.interrupted
    try:
        seconds = outcome.seconds + float(writer.attrs.get("seconds", 0.0))
        if complete:
            writer.finish(seconds=seconds)
        else:
            writer.attrs["seconds"] = seconds
        attrs = dict(writer.attrs)
    finally:
        writer.close()
    return complete, attrs


# ----------------------------------------------------------------------------- run_suite

def run_suite(
    suite: Suite | str | Path | None = None,
    options: RunOptions | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool | None = None,
    queue_depth: int = 3,
    log: Callable[[str], None] | None = print,
    on_progress: Callable[[int, int], None] | None = None,
    probe_model: Any = None,
    stop_after_batches: int | None = None,
) -> RunResult:
    """Run a suite (or continue one) and return the :class:`RunResult`.

    Args:
        suite: built-in name, TOML path or :class:`Suite`; optional with ``resume``
            (then, if given, it must be the suite stored in the file).
        options: :class:`~suites.specs.options.RunOptions`: model, weights, device, batch size,
            storage, layers (override the suite's values), ``limit`` (only the first rows)
            and ``quick`` (thin every axis to at most 12 values). With ``resume`` only
            ``model``/``weights`` (which must match the file) and ``device`` apply.
        out: results file; default ``results/<suite>-<model>-<UTC time>.h5``. Never overwritten.
        resume: continue this interrupted file (its stored suite, model, weights and options).
        progress: tqdm bar (None: only on a terminal).
        queue_depth: batches in flight between the probe loop and the writer thread.
        log: where to print the summary line (None: silent).
        on_progress: called from the writer thread as ``on_progress(rows_committed, rows_total)``
            after each committed batch (benchmarks, GUIs).
        probe_model: an already loaded ``probes`` model to use instead of loading
            ``suite.model`` (notebooks, benchmarks); its name must be the suite's model,
            and it must have been loaded with the suite's weights (and seed, for random ones).
        stop_after_batches: testing aid: stop (as if interrupted) after this many batches.

    Raises:
        SuiteError / ValueError: invalid suite or overrides, before any work.
        ResultsLockedError: another process writes the file.
        ResultsWriteError: disk full / I/O error; committed rows stay readable.
    """
    options = options or RunOptions()
    if resume is not None:
        s, options = resume_checks(resume, suite, options)
        path = Path(resume)
    else:
        if suite is None:
            raise ValueError("run_suite needs a suite (name, path or Suite) unless resume is given")
        s = prepare_suite(suite, options)
        path = Path(out) if out is not None else default_out_path(s)

    setup = setup_run(s, options, probe_model)
    if resume is not None:
        writer = ResultsWriter.open_resume(path)
        try:
            check_resumed_writer(writer, s, setup.weights_sha)
        except BaseException:
            writer.close()
            raise
    else:
        if out is None:  # only now: a run that fails earlier leaves no empty results/ behind
            path.parent.mkdir(parents=True, exist_ok=True)
        writer = ResultsWriter.create(path, results_layout(setup), results_attrs(setup))

    start_row = writer.rows_completed
    outcome = stream_rows(setup, writer, start_row, setup.stop, progress=progress, queue_depth=queue_depth,
                          on_progress=on_progress, stop_after_batches=stop_after_batches)
    if outcome.error is not None:
        empty = resume is None and writer.rows_completed == 0
        writer.close()
        if empty:  # failed before the first batch landed: leave no empty file behind
            Path(path).unlink(missing_ok=True)
        elif log is not None:
            log(f"{writer.rows_completed} rows committed to {path}; continue with: curvebench run --resume {path}")
        raise outcome.error
    rows_now = writer.rows_completed - start_row
    complete, final_attrs = finish_file(writer, setup.stop, outcome)
    result = RunResult(path, rows_now, int(final_attrs["rows_completed"]), outcome.seconds, complete, final_attrs)
    if log is not None:
        log(result.summary_line())
        if not complete:
            log(f"continue with: curvebench run --resume {path}")
    if outcome.interrupted and stop_after_batches is None:
        raise KeyboardInterrupt
    return result
