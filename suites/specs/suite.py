"""Suite files: parse and validate a sweep written in TOML into a :class:`Suite`.

A suite names a stimulus kind, the swept parameters (a Cartesian grid, first axis
slowest), fixed parameters, the model and what to read from it, and run settings.
This module only parses and validates text; it imports neither torch nor the
probes, so ``curvebench suites`` stays fast. Checks that need the model (layer
names, channel ids within a layer's width, family names) are done by
:func:`suites.running.runner.resolve_readout` before any stimulus is rendered.

File format (every key optional unless marked)::

    name = "curves"                      # required, used in the default file name
    description = "one line"             # shown by `curvebench suites`
    kind = "curve"                       # required: line | curve | angle

    [sweep]                              # required, at least one axis; order = grid order
    orientation = { start = 0, stop = 360, step = 0.5 }   # step: stop excluded
    curvature = { start = 0, stop = 0.08, num = 100 }     # num: linspace, stop included
    rounding = [0.0, 0.25, 0.5, 1.0]                      # explicit list

    [fixed]                              # parameters held constant
    length = 64
    width = 3
    fg = [0, 0, 0]                       # RGB in [0, 1]
    bg = "complement"                    # or an RGB triple; complement = 1 - fg

    [model]
    name = "inceptionv1"                 # overridable with --model
    weights = ""                         # path; "" = registry default / random
    layers = ["mixed3b"]
    channels = "all"                     # "all" | "family" | family name | [ids] | {layer = ...};
                                         # default: the family's channels with `family`, else all
    family = ""                          # e.g. "curves": layers default to the family's layers
    readout = "both"                     # both | pre_relu | post_relu

    [run]
    batch_size = 256
    device = "auto"                      # auto = cuda if available else cpu
    dtype = "float32"                    # compute dtype
    storage = "float32"                  # float32 | float16 on disk
    seed = 0                             # torch seed (e.g. random weights)
    size = 224                           # nominal input size given to the probes' plan

    [summary]                            # optional running summaries
    enabled = false
    top_k = 16
    keep_rows = true                     # false = summaries only (huge sweeps)

Convention:
    Angles (``orientation``, ``*_hue``) are degrees; ``curvature`` is 1/px;
    ``length``, ``width``, ``tick_length`` are px; colours are RGB in [0, 1], or HSV
    with hue in degrees and saturation/value in [0, 1] (``fg_hue``, ``bg_value``, ...).
"""

from __future__ import annotations

from probes.weights_spec import WeightsSpec
from suites.errors import SuiteError
from suites.limits import MAX_BATCH

import math
from stimuli import kinds as _decl
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "Suite",
    "SuiteError",
    "Summary",
    "KINDS",
    "SWEEPABLE",
    "load_suite",
    "parse_suite",
]

#: Stimulus kinds (declared in stimuli.kinds).
KINDS: tuple[str, ...] = _decl.KINDS

# Parameters passed to stimuli.render as numbers or (B,) tensors (declared in stimuli.kinds).
RENDER_NUMERIC: tuple[str, ...] = tuple(p.name for p in _decl.PARAMS)
COLOUR_HSV: tuple[str, ...] = tuple(f"{s}_{c}" for s in ("fg", "bg") for c in ("hue", "saturation", "value"))
COLOUR_RGB: tuple[str, ...] = tuple(f"{s}_{c}" for s in ("fg", "bg") for c in ("r", "g", "b"))
SWEEPABLE: tuple[str, ...] = RENDER_NUMERIC + COLOUR_HSV + COLOUR_RGB
FIXED_ONLY: tuple[str, ...] = ("fg", "bg") + tuple(c.name for c in _decl.CHOICES)

_TOP_KEYS = ("name", "description", "kind", "sweep", "fixed", "model", "run", "summary")
_MODEL_KEYS = ("name", "weights", "layers", "channels", "family", "readout", "length_per_receptive_field")
#: Parameters in px along the stimulus that per-layer scaling multiplies (curvature is divided).
SCALED_LENGTHS: tuple[str, ...] = ("length", "window", "tick_length")
_RUN_KEYS = ("batch_size", "device", "dtype", "storage", "seed", "size")
_SUMMARY_KEYS = ("enabled", "top_k", "keep_rows")
_READOUTS = ("both", "pre_relu", "post_relu")
_DTYPES = ("float32", "float64", "float16", "bfloat16")
_STORAGE = ("float32", "float16")
_UNIT_RANGE = tuple(k for k in COLOUR_HSV + COLOUR_RGB if not k.endswith("_hue"))
_POSITIVE = ("length",)  # a suite's arc has a length: 0 would draw nothing
MAX_AXIS_VALUES = 10_000_000
_PARAMS = {p.name: p for p in _decl.PARAMS}
_CHOICES = {c.name: c for c in _decl.CHOICES}
#: Family kinds a suite may name in [model].family ("curves" = the model's curve families).
FAMILY_KINDS: tuple[str, ...] = ("curves",)


@dataclass(frozen=True)
class Summary:
    """Running-summary options: per-channel mean/std/max and the ``top_k`` best stimuli."""

    enabled: bool = False
    top_k: int = 16
    keep_rows: bool = True


@dataclass(frozen=True)
class Suite:
    """A validated sweep.

    Attributes:
        name, description, kind: identity and stimulus kind.
        axes: ordered ``(parameter, values)`` pairs, float64 1-D arrays; the grid is
            their Cartesian product with the first axis slowest (C order).
        fixed: constant render parameters (numbers, RGB tuples, ``"complement"``, strings).
        length_per_receptive_field: None, or the stimulus is sized per probed layer: the arc
            length is this fraction of the layer's theoretical receptive-field width (see
            :func:`layer_scale`); ``[fixed].length`` and the curvature axis then describe the
            stimulus at scale 1.
        model, weights, layers, channels, family, readout: what to probe. ``channels`` is
            ``"all"``, a family name, a list of ids, or a per-layer dict of those; None
            (not given) means the family's channels when ``family`` is set, else all.
        batch_size, device, dtype, storage, seed, size: run settings.
        summary: running-summary options.
        source: the TOML text (stored in the results file for provenance/resume).
        path: where it was loaded from (``"<string>"`` for text).
    """

    name: str
    kind: str
    axes: tuple[tuple[str, np.ndarray], ...]
    description: str = ""
    fixed: dict[str, Any] = field(default_factory=dict)
    model: str = "groundtruth"
    weights: WeightsSpec = field(default_factory=WeightsSpec)
    layers: tuple[str, ...] = ()
    channels: Any = None
    family: str | None = None
    length_per_receptive_field: float | None = None
    readout: str = "both"
    batch_size: int = 256
    device: str = "auto"
    dtype: str = "float32"
    storage: str = "float32"
    seed: int = 0
    size: int = 224
    summary: Summary = field(default_factory=Summary)
    source: str = ""
    path: str = "<string>"

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape, one entry per swept axis."""
        return tuple(len(v) for _, v in self.axes)

    @property
    def num_stimuli(self) -> int:
        """Number of stimuli in the full grid."""
        return int(math.prod(self.shape))

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.axes)

    def quick(self, max_values: int = 12, *, legacy: bool = False) -> Suite:
        """The same sweep with each axis thinned to at most ``max_values`` evenly spaced values.

        A periodic axis that covers its period with even steps (orientation 0, 0.5, ...,
        359.5) keeps ``max_values`` values evenly spaced around the circle without the end
        point (0, 30, ..., 330), so no two thinned values are near-duplicates across the
        wrap; other axes keep both ends. ``legacy``: the thinning of files written before
        (both ends on every axis), for verifying them.
        """
        axes = []
        for n, v in self.axes:
            if len(v) > max_values:
                if not legacy and _covers_period(n, v):
                    idx = (np.arange(max_values) * len(v)) // max_values
                else:
                    idx = np.unique(np.round(np.linspace(0, len(v) - 1, max_values)).astype(int))
                v = v[idx]
            axes.append((n, v))
        return replace(self, axes=tuple(axes))

    def render_parameters(self) -> dict[str, Any]:
        """Every render parameter this suite does not sweep, with its value.

        The suite's ``[fixed]`` values over the declared defaults of its kind
        (:func:`stimuli.kinds.defaults`), plus ``fg``/``bg`` (RGB, or ``"complement"``) unless
        a colour is swept. An unlimited value (``window = inf``: the whole image) is ``None``.
        """
        swept = set(self.axis_names)
        out: dict[str, Any] = {}
        for key, value in {**_decl.defaults(self.kind), **self.fixed}.items():
            if key in swept:
                continue
            if isinstance(value, float) and math.isinf(value):
                value = None
            out[key] = list(value) if isinstance(value, tuple) else value
        colour_swept = {side for side in ("fg", "bg") if any(k.startswith(side + "_") for k in swept)}
        for side, default in (("fg", [0.0, 0.0, 0.0]), ("bg", [1.0, 1.0, 1.0])):
            if side not in colour_swept:
                out.setdefault(side, default)
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: ``name``, ``description``, ``kind``, ``stimuli``, ``axes``
        (``{param: {min, max, count}}``), ``fixed`` (:meth:`render_parameters`), ``model``, ``layers``."""
        return {
            "name": self.name, "description": self.description, "kind": self.kind, "stimuli": self.num_stimuli,
            "axes": {n: {"min": float(v.min()), "max": float(v.max()), "count": int(len(v))} for n, v in self.axes},
            "fixed": self.render_parameters(),
            "model": self.model, "layers": list(self.layers) or f"family {self.family}",
            **({"length_per_receptive_field": self.length_per_receptive_field}
               if self.length_per_receptive_field is not None else {}),
        }

    def with_overrides(self, **kw: Any) -> Suite:
        """Copy with some fields replaced (``None`` values are ignored); validates them."""
        kw = {k: v for k, v in kw.items() if v is not None}
        where = f"{self.path} (command-line override)"
        if "batch_size" in kw:
            _check_int(kw["batch_size"], where, "batch_size", minimum=1)
            if kw["batch_size"] > MAX_BATCH:
                raise SuiteError(f"{where}: batch_size = {kw['batch_size']} is too large: at most {MAX_BATCH}")
        if "storage" in kw:
            _check_choice(kw["storage"], where, "storage", _STORAGE)
        if "dtype" in kw:
            _check_choice(kw["dtype"], where, "dtype", _DTYPES)
        if "readout" in kw:
            _check_choice(kw["readout"], where, "readout", _READOUTS)
        if "layers" in kw:
            kw["layers"] = tuple(kw["layers"])
        if "weights" in kw:
            kw["weights"] = WeightsSpec.parse(kw["weights"])
        return replace(self, **kw)


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a suite by built-in name (``"curves"``) or by TOML file path.

    Raises:
        FileNotFoundError: neither a built-in name nor an existing file.
        SuiteError: the file is invalid (message names the file and the key).
    """
    from suites.specs.builtin import builtin_path, builtin_names

    p = Path(name_or_path)
    if p.suffix != ".toml" and not p.exists():
        if str(name_or_path) in builtin_names():
            p = builtin_path(str(name_or_path))
        else:
            raise FileNotFoundError(
                f"no suite named {str(name_or_path)!r}: not a built-in suite "
                f"({', '.join(builtin_names())}) and no such file"
            )
    if p.is_dir():
        raise SuiteError(f"{p}: is a folder; give a TOML suite file or a built-in name")
    from suites.data_files import check_data_file

    check_data_file(p, "suite file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{p}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                         "TOML suites must be UTF-8") from None
    except IsADirectoryError:
        raise SuiteError(f"{p}: is a folder; give a TOML suite file or a built-in name") from None
    return parse_suite(text, path=str(p))


def _parse_axes(doc: dict, path: str) -> list[tuple[str, np.ndarray]]:
    """The ``[sweep]`` table: ``(parameter, values)`` per swept parameter, in the file's order."""
    sweep = _table(doc, "sweep", path, required=True)
    if not sweep:
        raise SuiteError(f"{path}: [sweep] must name at least one parameter; allowed: {', '.join(SWEEPABLE)}")
    axes = []
    for key, spec in sweep.items():
        if key not in SWEEPABLE:
            raise SuiteError(f"{path}: unknown key [sweep].{key}; allowed: {', '.join(SWEEPABLE)}")
        values = _axis_values(spec, path, f"[sweep].{key}")
        _check_param_values(key, values, path, f"[sweep].{key}")
        _check_distinct(key, values, path, f"[sweep].{key}")
        axes.append((key, values))
    return axes


def _parse_fixed(doc: dict, swept: Sequence[str], path: str) -> dict[str, Any]:
    """The ``[fixed]`` table: colours, choices and numbers held constant (none of them swept)."""
    fixed: dict[str, Any] = {}
    for key, value in _table(doc, "fixed", path).items():
        where = f"[fixed].{key}"
        if key in swept:
            raise SuiteError(f"{path}: {where} is also swept in [sweep]; give it in one place only")
        if key in ("fg", "bg"):
            fixed[key] = _colour(value, path, where, allow_complement=key == "bg")
        elif key in _CHOICES:
            _check_choice(value, f"{path}", where, _CHOICES[key].choices)
            fixed[key] = value
        elif key in SWEEPABLE:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SuiteError(f"{path}: {where} must be a number, got {value!r}")
            _check_param_values(key, np.array([float(value)]), path, where)
            fixed[key] = int(value) if key in _PARAMS and _PARAMS[key].integer else float(value)
        else:
            raise SuiteError(f"{path}: unknown key {where}; allowed: {', '.join(SWEEPABLE + FIXED_ONLY)}")
    return fixed


def _parse_model(doc: dict, swept: Sequence[str], path: str) -> dict[str, Any]:
    """The ``[model]`` table as :class:`Suite` fields (model, weights, layers, family, channels, readout, ...)."""
    model = _table(doc, "model", path)
    _check_keys(model, _MODEL_KEYS, path, "model")
    model_name = model.get("name", "groundtruth")
    if not isinstance(model_name, str) or not model_name:
        raise SuiteError(f"{path}: [model].name must be a non-empty string, got {model_name!r}")
    weights = model.get("weights", "")
    if not isinstance(weights, str):
        raise SuiteError(f"{path}: [model].weights must be a path string or 'random', got {weights!r}")
    layers = model.get("layers", [])
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, list) or not all(isinstance(x, str) and x for x in layers):
        raise SuiteError(f"{path}: [model].layers must be a list of layer names, got {layers!r}")
    family = model.get("family", "") or None
    per_rf = model.get("length_per_receptive_field")
    if per_rf is not None:
        per_rf = _number(per_rf, path, "[model].length_per_receptive_field")
        if not 0 < per_rf <= 4:
            raise SuiteError(f"{path}: [model].length_per_receptive_field must be a fraction > 0 (at most 4), got {per_rf:g}")
        if "length" in swept:
            raise SuiteError(f"{path}: [model].length_per_receptive_field sizes the stimulus per layer; it needs a "
                             "fixed length, not [sweep].length")
    if family is not None and family not in FAMILY_KINDS:
        raise SuiteError(f"{path}: [model].family: family {family!r} does not exist; allowed: {', '.join(FAMILY_KINDS)}")
    if not layers and family is None:
        raise SuiteError(f"{path}: [model].layers is required (a list of layer names) unless [model].family is given")
    channels = model.get("channels")
    if channels is not None:
        channels = _channels(channels, path, "[model].channels")
    readout = model.get("readout", "both")
    _check_choice(readout, path, "[model].readout", _READOUTS)
    return {"model": model_name, "weights": WeightsSpec.parse(weights), "layers": tuple(layers), "channels": channels,
            "family": family, "length_per_receptive_field": per_rf, "readout": readout}


def _parse_run(doc: dict, path: str) -> dict[str, Any]:
    """The ``[run]`` table as :class:`Suite` fields (batch size, device, dtypes, seed, input size)."""
    run = _table(doc, "run", path)
    _check_keys(run, _RUN_KEYS, path, "run")
    batch_size = _check_int(run.get("batch_size", 256), path, "[run].batch_size", minimum=1)
    if batch_size > MAX_BATCH:
        raise SuiteError(f"{path}: [run].batch_size = {batch_size} is too large: at most {MAX_BATCH}")
    device = run.get("device", "auto")
    if not isinstance(device, str) or not device:
        raise SuiteError(f"{path}: [run].device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    dtype = run.get("dtype", "float32")
    _check_choice(dtype, path, "[run].dtype", _DTYPES)
    storage = run.get("storage", "float32")
    _check_choice(storage, path, "[run].storage", _STORAGE)
    return {"batch_size": batch_size, "device": device, "dtype": dtype, "storage": storage,
            "seed": _check_int(run.get("seed", 0), path, "[run].seed", minimum=0),
            "size": _check_int(run.get("size", 224), path, "[run].size", minimum=8)}


def _parse_summary(doc: dict, path: str) -> Summary:
    """The ``[summary]`` table."""
    summ = _table(doc, "summary", path)
    _check_keys(summ, _SUMMARY_KEYS, path, "summary")
    summary = Summary(
        enabled=_check_bool(summ.get("enabled", False), path, "[summary].enabled"),
        top_k=_check_int(summ.get("top_k", 16), path, "[summary].top_k", minimum=1),
        keep_rows=_check_bool(summ.get("keep_rows", True), path, "[summary].keep_rows"),
    )
    if not summary.keep_rows and not summary.enabled:
        raise SuiteError(f"{path}: [summary].keep_rows = false needs [summary].enabled = true (nothing would be stored)")
    return summary


def parse_suite(text: str, path: str = "<string>") -> Suite:
    """Parse and validate TOML text into a :class:`Suite` (see the module docstring)."""
    doc = _load_toml(text, path)
    _check_keys(doc, _TOP_KEYS, path, "")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{path}: key 'name' is required and must be a non-empty string, got {name!r}")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise SuiteError(f"{path}: key 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise SuiteError(f"{path}: key 'description' must be a string, got {description!r}")
    axes = _parse_axes(doc, path)
    swept = [k for k, _ in axes]
    fixed = _parse_fixed(doc, swept, path)
    _check_colour_modes({**fixed, **{k: None for k in swept}}, path)
    _check_geometry(kind, dict(axes), fixed, path)
    suite = Suite(name=name.strip(), kind=kind, axes=tuple(axes), description=description.strip(), fixed=fixed,
                  **_parse_model(doc, swept, path), **_parse_run(doc, path), summary=_parse_summary(doc, path),
                  source=text, path=path)
    if suite.num_stimuli > 10**12:
        raise SuiteError(f"{path}: the grid has {suite.num_stimuli} stimuli; at most 10**12 are allowed")
    return suite


def layer_scale(suite: Suite, receptive_field_px: float) -> float:
    """Scale of the stimulus for a layer whose theoretical receptive field is ``receptive_field_px`` wide.

    ``s = length_per_receptive_field * receptive_field_px / length``: the layer sees the
    suite's stimulus with every length along it (``length``, ``window``, ``tick_length``)
    multiplied by ``s`` and curvature divided by ``s`` (the same shape, the same turn),
    the stroke width unchanged. 1 when the suite does not scale per layer.
    """
    if suite.length_per_receptive_field is None:
        return 1.0
    length = float(suite.fixed.get("length", _PARAMS["length"].default_for(suite.kind)))
    return suite.length_per_receptive_field * float(receptive_field_px) / length


def scale_render_kwargs(kind: str, kw: dict[str, Any], scale: float) -> dict[str, Any]:
    """``render`` keyword arguments of a stimulus scaled by ``scale`` (see :func:`layer_scale`)."""
    if scale == 1.0:
        return kw
    out = dict(kw)
    for key in SCALED_LENGTHS:
        out[key] = out.get(key, _PARAMS[key].default_for(kind)) * scale
    if "curvature" in out:
        out["curvature"] = out["curvature"] / scale
    return out


# ----------------------------------------------------------------------------- helpers

def _table(doc: dict, key: str, path: str, required: bool = False) -> dict:
    value = doc.get(key)
    if value is None:
        if required:
            raise SuiteError(f"{path}: table [{key}] is required")
        return {}
    if not isinstance(value, dict):
        raise SuiteError(f"{path}: [{key}] must be a table, got {type(value).__name__} {value!r}")
    return value


#: Deepest nesting of arrays and tables a suite may have (real suites nest 3 deep).
MAX_TOML_DEPTH = 32


def _load_toml(text: str, path: str) -> dict:
    """``tomllib.loads(text)``, refusing in one line invalid TOML, deep nesting and NUL bytes (naming the key)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SuiteError(f"{path}: nested too deeply to be a suite (at most {MAX_TOML_DEPTH} levels of "
                         "arrays and tables)") from None
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack:  # iterative: no recursion, whatever the depth
        where, value, depth = stack.pop()
        if depth > MAX_TOML_DEPTH:
            raise SuiteError(f"{path}: {where or 'the suite'} is nested {depth} levels deep; at most "
                             f"{MAX_TOML_DEPTH} levels of arrays and tables")
        if isinstance(value, str) and "\0" in value:
            raise SuiteError(f"{path}: key {where!r} contains a NUL byte (\\u0000), which no suite value may hold")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in items:
            if isinstance(k, str) and "\0" in k:
                raise SuiteError(f"{path}: key {k!r} in {where or 'the top level'} contains a NUL byte (\\u0000)")
            sub = f"{where}.{k}" if isinstance(k, str) and where else k if isinstance(k, str) else f"{where}[{k}]"
            stack.append((sub, v, depth + 1))
    return doc


def _check_keys(table: dict, allowed: tuple[str, ...], path: str, section: str) -> None:
    for key in table:
        if key not in allowed:
            where = f"[{section}].{key}" if section else f"'{key}'"
            raise SuiteError(f"{path}: unknown key {where}; allowed: {', '.join(allowed)}")


def _check_choice(value: Any, path: str, where: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SuiteError(f"{path}: {where} must be one of {', '.join(allowed)}, got {value!r}")


def _check_int(value: Any, path: str, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SuiteError(f"{path}: {where} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_bool(value: Any, path: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise SuiteError(f"{path}: {where} must be true or false, got {value!r}")
    return value


def _number(value: Any, path: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SuiteError(f"{path}: {where} must be a finite number, got {value!r}")
    return float(value)


def _axis_values(spec: Any, path: str, where: str) -> np.ndarray:
    """A sweep axis: a list of numbers, or a range table {start, stop, num[, endpoint]} / {start, stop, step}."""
    if isinstance(spec, list):
        if not spec:
            raise SuiteError(f"{path}: {where} is an empty list; give at least one value")
        return np.array([_number(v, path, f"{where}[{i}]") for i, v in enumerate(spec)], dtype=np.float64)
    if not isinstance(spec, dict):
        raise SuiteError(
            f"{path}: {where} must be a list of numbers or a range table "
            f"{{start, stop, num}} / {{start, stop, step}}, got {spec!r}"
        )
    allowed = ("start", "stop", "num", "step", "endpoint")
    _check_keys(spec, allowed, path, where.strip("[]").replace("].", "."))
    for req in ("start", "stop"):
        if req not in spec:
            raise SuiteError(f"{path}: {where} range needs '{req}' (allowed keys: {', '.join(allowed)})")
    start, stop = _number(spec["start"], path, f"{where}.start"), _number(spec["stop"], path, f"{where}.stop")
    if ("num" in spec) == ("step" in spec):
        raise SuiteError(f"{path}: {where} range needs exactly one of 'num' or 'step'")
    if "num" in spec:
        num = _check_int(spec["num"], path, f"{where}.num", minimum=1)
        if num > MAX_AXIS_VALUES:
            raise SuiteError(f"{path}: {where}.num must be at most {MAX_AXIS_VALUES}, got {num}")
        endpoint = _check_bool(spec.get("endpoint", True), path, f"{where}.endpoint")
        if num > 1 and not stop > start:
            raise SuiteError(f"{path}: {where} is an empty or inverted range: stop ({stop:g}) must be greater than start ({start:g})")
        return np.linspace(start, stop, num, endpoint=endpoint, dtype=np.float64)
    if "endpoint" in spec:
        raise SuiteError(f"{path}: {where}.endpoint only applies with 'num' (a 'step' range always excludes stop)")
    step = _number(spec["step"], path, f"{where}.step")
    if step <= 0:
        raise SuiteError(f"{path}: {where}.step must be > 0, got {step:g}")
    if not stop > start:
        raise SuiteError(f"{path}: {where} is an empty or inverted range: stop ({stop:g}) must be greater than start ({start:g})")
    n = math.ceil((stop - start) / step - 1e-9)
    if n > MAX_AXIS_VALUES:
        raise SuiteError(f"{path}: {where} has {n} values; at most {MAX_AXIS_VALUES} are allowed")
    return start + step * np.arange(n, dtype=np.float64)


def _check_param_values(key: str, values: np.ndarray, path: str, where: str) -> None:
    """Ranges from the stimulus declaration (stimuli.kinds); colour components lie in [0, 1]."""
    if key in _UNIT_RANGE and (values.min() < 0 or values.max() > 1):
        raise SuiteError(f"{path}: {where} must lie in [0, 1], got values from {values.min():g} to {values.max():g}")
    if key not in _PARAMS:
        return
    d = _PARAMS[key]
    u = d.unit_suffix()
    if key in _POSITIVE and values.min() <= 0:
        raise SuiteError(f"{path}: {where} must be > 0{u}, got {values.min():g}")
    if d.suite_low is not None and values.min() < d.suite_low:
        raise SuiteError(f"{path}: {where} must be >= {d.suite_low:g} ({d.unit or 'no unit'}; orientation gives the side), "
                         f"got {values.min():g}")
    if d.low == 0 and d.high == 1 and (values.min() < 0 or values.max() > 1):
        raise SuiteError(f"{path}: {where} must lie in [0, 1], got values from {values.min():g} to {values.max():g}")
    if values.min() < d.low or values.max() > d.high:
        raise SuiteError(f"{path}: {where} must satisfy {d.allowed()}, got values from {values.min():g} to {values.max():g}")
    if d.integer and np.any(values != np.round(values)):
        raise SuiteError(f"{path}: {where} must be whole numbers >= {d.low:g}, got {values.tolist()[:8]}")


#: Suite colour parameters that are periodic (degrees of hue).
_COLOUR_PERIODS = {"fg_hue": 360.0, "bg_hue": 360.0}


def _period(key: str) -> float | None:
    return _PARAMS[key].period if key in _PARAMS else _COLOUR_PERIODS.get(key)


def _covers_period(key: str, values: np.ndarray) -> bool:
    """Whether an axis is periodic and its values are evenly spaced steps around the whole period."""
    period = _period(key)
    if not period or len(values) < 2:
        return False
    v = np.sort(np.mod(np.asarray(values, dtype=np.float64), period))
    steps = np.diff(np.append(v, v[0] + period))
    return bool(np.allclose(steps, period / len(v), rtol=1e-6, atol=1e-9))


def _check_distinct(key: str, values: np.ndarray, path: str, where: str) -> None:
    """No two values of an axis may draw the same stimuli: no repeats, none a period apart."""
    period = _period(key)
    folded = np.mod(values, period) if period else values
    order = np.argsort(folded, kind="stable")
    gaps = np.diff(folded[order])
    if period and len(folded) > 1:
        gaps = np.append(gaps, folded[order[0]] + period - folded[order[-1]])
    close = np.flatnonzero(gaps <= 1e-9 * max(1.0, float(np.abs(values).max())))
    if close.size:
        i = order[close[0]]
        j = order[(close[0] + 1) % len(order)]
        a, b = sorted((float(values[i]), float(values[j])))
        why = f" ({key} is periodic: {a:g} and {b:g} differ by a multiple of {period:g})" if period and a != b else ""
        raise SuiteError(f"{path}: {where} has the values {a:g} and {b:g}, which draw the same stimuli{why}; "
                         "keep one (a step range excludes its stop: orientation = { start = 0, stop = 360, step = 1 })")


def _check_geometry(kind: str, sweep: dict[str, np.ndarray], fixed: dict[str, Any], path: str) -> None:
    """Renderer limits that can be checked on the whole grid: lines are straight, turn <= full circle.

    Angles (any rounding < 1) must turn by at most pi (``curvature * length <= pi``): a sharp
    angle turning by ``tau`` and one turning by ``2 pi - tau`` are the same image, and
    rounded angles past pi are loops.
    """
    kmax = float(sweep["curvature"].max()) if "curvature" in sweep else float(fixed.get("curvature", 0.0))
    where = "[sweep].curvature" if "curvature" in sweep else "[fixed].curvature"
    for name, value in _decl.kind(kind).pinned.items():
        given = sweep[name] if name in sweep else np.array([float(fixed.get(name, _PARAMS[name].default_for(kind)))])
        if np.any(given != value):
            at = f"[sweep].{name}" if name in sweep else f"[fixed].{name}"
            raise SuiteError(f"{path}: {at}: kind '{kind}' needs {name} {value:g}; use kind 'curve' to sweep {name}")
    default_length = _PARAMS["length"].default_for(kind)
    lmax = float(sweep["length"].max()) if "length" in sweep else float(fixed.get("length", default_length))
    if kmax * lmax > _decl.MAX_TURN * (1 + 1e-9):
        raise SuiteError(
            f"{path}: {where}: curvature up to {kmax:g} 1/px with length up to {lmax:g} px exceeds a full circle; "
            f"allowed curvature * length <= 2*pi (curvature <= {_decl.MAX_TURN / lmax:g} 1/px at length {lmax:g})"
        )
    rounding = sweep["rounding"] if "rounding" in sweep else np.array([float(fixed.get("rounding", _PARAMS["rounding"].default_for(kind)))])
    if rounding.min() < 1 and kmax * lmax > _decl.ARTICLE_MAX_TURN * (1 + 1e-9):
        raise SuiteError(
            f"{path}: {where}: angles (rounding < 1) turn by up to curvature * length = {kmax * lmax:.4g} rad; "
            f"angles repeat beyond a turn of pi (a sharp angle turning by t and one turning by 2*pi - t are the same "
            f"image, and rounded angles become loops): sweep curvature <= pi/length = {math.pi / lmax:g} 1/px "
            f"at length {lmax:g} px"
        )


def _colour(value: Any, path: str, where: str, allow_complement: bool) -> Any:
    if allow_complement and value == "complement":
        return "complement"
    if (
        not isinstance(value, list) or len(value) != 3
        or any(isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= 1 for c in value)
    ):
        extra = ' or "complement" (= 1 - fg)' if allow_complement else ""
        raise SuiteError(f"{path}: {where} must be an RGB triple in [0, 1] such as [0, 0, 0]{extra}, got {value!r}")
    return tuple(float(c) for c in value)


def _check_colour_modes(params: dict[str, Any], path: str) -> None:
    for side in ("fg", "bg"):
        hsv = [k for k in COLOUR_HSV if k.startswith(side) and k in params]
        rgb = [k for k in COLOUR_RGB if k.startswith(side) and k in params]
        if hsv and rgb:
            raise SuiteError(f"{path}: {side} colour given both as HSV ({', '.join(hsv)}) and RGB components ({', '.join(rgb)}); use one")
        if hsv and f"{side}_hue" not in params:
            raise SuiteError(f"{path}: {', '.join(hsv)} needs {side}_hue (degrees) as well")
        if (hsv or rgb) and params.get(side) == "complement":
            raise SuiteError(f"{path}: [fixed].{side} = \"complement\" conflicts with {', '.join(hsv + rgb)}")


def _channels(value: Any, path: str, where: str) -> Any:
    """'all' | 'family' | family name | list of ids | {layer: one of those}.

    ``"family"`` (the word ``--channels`` of plot, report and optimize uses,
    :mod:`suites.specs.channel_selection`) is the layer's curve family, the same as the
    family kind ``"curves"``.
    """
    if isinstance(value, str) and value:
        return "curves" if value.strip() == "family" else value
    if isinstance(value, list):
        if not value:
            raise SuiteError(f"{path}: {where} is an empty list; give channel ids, 'all' or a family name")
        for i, c in enumerate(value):
            if isinstance(c, bool) or not isinstance(c, int) or c < 0:
                raise SuiteError(f"{path}: {where}[{i}] must be a channel id (integer >= 0), got {c!r}")
        if len(set(value)) != len(value):
            raise SuiteError(f"{path}: {where} lists a channel twice: {value}")
        return tuple(value)
    if isinstance(value, dict):
        return {layer: _channels(v, path, f"{where}.{layer}") for layer, v in value.items()}
    raise SuiteError(
        f"{path}: {where} must be 'all', a family name, a list of channel ids or a table per layer, got {value!r}"
    )
