"""Model registry: string ids -> builders, and ``load_model``.

Each entry knows its tap layers, channel counts and (for trained networks) its
weights entry, which carries the input transform. ``list_models()`` is what
``curvebench models --json`` prints.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from torch import nn

from probes.base import _TOO_SMALL, InputTransform, ProbeModel, parse_input_transform, wrap_module
from probes.allocator import reuse_freed_memory
from probes.errors import ModelError, WeightsError
from probes.device import resolve_device
from probes.receptive import Geometry
from probes.weights import WeightsEntry
from probes.weights_spec import WeightsLike, WeightsSpec

Builder = Callable[..., ProbeModel]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: registry id.
        description: one line for ``curvebench models``.
        layers: tap names, shallow to deep.
        channels: ``{layer: channels}``.
        builder: ``builder(weights: WeightsSpec, device: torch.device, dtype) -> ProbeModel``.
        weights: its trained weights file (:class:`~probes.weights.WeightsEntry`: source, pinned
            checksum, strict shapes, input transform), or None for a model built from code.
        extra: JSON-able details listed by ``curvebench models --json``.
        geometry: receptive-field description, or None; when given, :meth:`as_dict` lists
            every tap's geometry at 224 px (:func:`tap_geometry`).
        best_layer: the tap with the largest measured curve family, or None.
        bench_layers: the taps ``curvebench bench probe`` times by default (empty: the last
            spatial tap).

    A new model is its module plus one :func:`register_model` call with one of these.
    """

    name: str
    description: str
    layers: tuple[str, ...]
    channels: dict[str, int]
    builder: Builder
    weights: WeightsEntry | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    geometry: Geometry | None = field(default=None, repr=False)
    best_layer: str | None = None
    bench_layers: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "description": self.description,
            "layers": list(self.layers),
            "channels": dict(self.channels),
            "weights": self.weights.name if self.weights is not None else None,
            **self.extra,
        }
        if self.geometry is not None:
            out["taps"] = tap_geometry(self.geometry, self.layers, self.channels)
        return out


def tap_geometry(geometry: Geometry, layers: tuple[str, ...] | list[str], channels: dict[str, int],
                 size: int = 224) -> list[dict[str, Any]]:
    """Per tap at a ``size`` px input: channels, stride (px), RF size (px), grid and the exact centre unit.

    ``centre_unit`` is the ``(row, col)`` whose receptive-field centre is nearest the image
    centre; ``centre_xy`` its centre in continuous px (``(x, y)``, pixel ``i`` covers
    ``[i, i+1)``); ``crop`` the smallest exact input for that unit alone (px) or None when
    it reads padding. Layers without a spatial map (``logits``) get ``"global": true``.
    """
    from probes.receptive import plan_input, receptive_field

    out: list[dict[str, Any]] = []
    for layer in layers:
        row: dict[str, Any] = {"layer": layer, "channels": channels.get(layer)}
        if layer not in geometry.layers:
            out.append({**row, "global": True})
            continue
        rf = receptive_field(geometry, layer, size)
        j = rf.nearest_unit(size / 2)
        plan = plan_input(geometry, [layer], size)
        out.append({**row, "stride": rf.stride, "rf_size": rf.size, "grid": rf.grid, "centre_unit": [j, j],
                    "centre_xy": [rf.centre(j), rf.centre(j)], "crop": plan.size if plan.exact else None})
    return out


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry.

    Raises:
        ModelError: a model of that name, or a model with a weights file of that name, is
            already registered (one declaration per model).
    """
    if entry.name in _REGISTRY:
        raise ModelError(f"register_model: a model named {entry.name!r} is already registered; known: "
                         f"{', '.join(_REGISTRY)}")
    if entry.weights is not None and any(e.weights is not None and e.weights.name == entry.weights.name
                                         for e in _REGISTRY.values()):
        raise ModelError(f"register_model: the weights {entry.weights.name!r} already belong to another model")
    _REGISTRY[entry.name] = entry
    return entry


def registered() -> tuple[ModelEntry, ...]:
    """Every registered :class:`ModelEntry`, in registration order."""
    return tuple(_REGISTRY.values())


def list_models() -> list[dict[str, Any]]:
    """Every registered model as a JSON-able dict (name, description, layers, channels, ...)."""
    return [e.as_dict() for e in _REGISTRY.values()]


def get_entry(name: str) -> ModelEntry:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ModelError(f"model: unknown model {name!r}; known: {', '.join(_REGISTRY)}, "
                         f"or 'module.path:factory' for any torch model (a callable returning an nn.Module)")
    return _REGISTRY[name]


def is_factory_spec(name: object) -> bool:
    """True for ``"module.path:factory"`` (any torch model), False for registry ids."""
    return isinstance(name, str) and ":" in name and name not in _REGISTRY


def load_factory(spec: str) -> nn.Module:
    """Import ``module.path`` and call ``factory()`` (``attr.sub`` paths allowed); it must return an ``nn.Module``.

    Raises :class:`~probes.errors.ModelError` naming what went wrong (module not importable,
    no such attribute, not callable, the call failed, not a module).
    """
    module_path, _, attr = spec.partition(":")
    if not module_path or not attr or not all(p.isidentifier() for p in (*module_path.split("."), *attr.split("."))):
        raise ModelError(f"model: {spec!r} is not 'module.path:factory' (dotted Python names)")
    try:
        obj: Any = importlib.import_module(module_path)
    except ImportError as exc:
        raise ModelError(f"model {spec!r}: cannot import module {module_path!r} ({exc}); known models: "
                         f"{', '.join(_REGISTRY)}") from None
    except SyntaxError as exc:
        raise ModelError(f"model {spec!r}: module {module_path!r} has a syntax error ({exc.filename}, line "
                         f"{exc.lineno}: {exc.msg})") from None
    except SystemExit as exc:
        raise ModelError(f"model {spec!r}: importing module {module_path!r} called sys.exit({exc.code!r})") from None
    except Exception as exc:  # the user's module raised while importing
        raise ModelError(f"model {spec!r}: importing module {module_path!r} raised {_first_line(exc)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"model {spec!r}: module {module_path!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"model {spec!r}: {attr!r} is a {type(obj).__name__}, not a callable factory")
    try:
        net = obj()
    except SystemExit as exc:
        raise ModelError(f"model {spec!r}: {attr}() called sys.exit({exc.code!r}) instead of returning a model") from None
    except Exception as exc:  # the user's code: report it in one line
        raise ModelError(f"model {spec!r}: {attr}() raised {_first_line(exc)}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"model {spec!r}: {attr}() returned a {type(net).__name__}, not a torch.nn.Module")
    bad = [n for n, _ in net.named_modules() if "/" in n or "\0" in n]
    if bad:
        raise ModelError(f"model {spec!r}: submodule name {bad[0]!r} contains '/' or a NUL byte, which cannot "
                         "name a layer in a results file; rename the submodule")
    _guard_forward(net, spec)
    return net


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _guard_forward(net: nn.Module, spec: str) -> None:
    """Make an exception of the user's ``forward`` a :class:`ModelError` naming the model (one line, exit 2).

    The tap machinery's own early stop (``probes.taps._StopForward``) and out-of-memory
    errors pass through unchanged.
    """
    from probes.taps import _StopForward as StopForward

    forward = net.forward

    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return forward(*args, **kwargs)
        except (StopForward, MemoryError, torch.cuda.OutOfMemoryError):
            raise
        except RuntimeError as exc:
            if _TOO_SMALL.search(str(exc)):  # an input too small for the layer: said by ProbeModel.probe
                raise
            raise ModelError(f"model {spec!r}: forward() raised {_first_line(exc)}") from None
        except SystemExit as exc:
            raise ModelError(f"model {spec!r}: forward() called sys.exit({exc.code!r})") from None
        except Exception as exc:
            raise ModelError(f"model {spec!r}: forward() raised {_first_line(exc)}") from None

    net.forward = guarded  # type: ignore[method-assign]  # instance attribute: nn.Module.__call__ uses it


def _build_factory(spec: str, weights: WeightsSpec, device: torch.device, dtype: torch.dtype,
                   input_transform: str | InputTransform | None, layers: Sequence[str] | None) -> ProbeModel:
    from probes.weights import sha256sum

    net = load_factory(spec)
    path = digest = None
    if weights.is_random:
        for module in net.modules():  # the random-init control: every layer's own initialiser
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    elif weights.is_file:
        path = weights.path
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"{path} is not a readable torch state dict (torch.load with weights_only=True "
                               f"failed: {type(exc).__name__})") from None
        if not isinstance(state, dict):
            raise WeightsError(f"{path} is not a state dict (got {type(state).__name__})")
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{path} does not fit {spec}: {' '.join(str(exc).split())[:400]}") from None
        digest = sha256sum(path)
    if input_transform is None:
        input_transform = getattr(net, "input_transform", None)
    transform = parse_input_transform(input_transform) if input_transform is not None else InputTransform()
    names = [n for n, _ in net.named_modules() if n]
    net = net.to(device=device, dtype=dtype)
    model = wrap_module(net, list(layers) if layers else names, name=spec, transform=transform,
                        meta={"weights": str(path) if path else None, "weights_sha256": digest,
                              "random_weights": weights.is_random,
                              "factory": spec, "geometry": "measured (probes.measure)"})
    return model


def load_model(
    name: str,
    weights: WeightsLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    input_transform: str | InputTransform | None = None,
    layers: Sequence[str] | None = None,
) -> ProbeModel:
    """Build a registered model, or any torch model from a factory, ready to :meth:`~probes.base.ProbeModel.probe`.

    Args:
        name: registry id (``"inceptionv1"``, ``"efficientnet-lite0"``, ``"groundtruth"``; see
            :func:`list_models`), or ``"module.path:factory"``: ``factory()`` must return an
            ``nn.Module``; its taps are its ``named_modules()`` names (or ``layers``), its
            geometry is measured from the network (:mod:`probes.measure`). For a factory,
            ``weights`` is None (as built), ``"random"`` (``reset_parameters()`` of every
            submodule) or a state-dict file loaded strictly with ``weights_only=True``.
        weights: a :class:`~probes.weights_spec.WeightsSpec` or its text: for trained
            networks a state-dict file path; None (default) uses the packaged file
            (EfficientNet-Lite0) or the cached download (``curvebench weights path``);
            ``"random"`` keeps the random initialisation (tests, benchmarks, controls).
            ``"groundtruth"`` takes the default (or random, ignored): it is built from code.
        device: torch device.
        dtype: floating dtype of parameters and computation.
        input_transform: factory models only: :func:`~probes.base.parse_input_transform`
            text or an :class:`~probes.base.InputTransform`; default the module's own
            ``input_transform`` attribute if it has one, else identity. Built-in models
            always use their weights' transform.
        layers: factory models only: the taps (dotted ``named_modules()`` names); default all.
    """
    if resolve_device(device).type == "cpu":
        reuse_freed_memory()  # about 1.8x faster CPU forward passes (probes/allocator.py)
    if is_factory_spec(name):
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        return _build_factory(name, WeightsSpec.parse(weights), resolve_device(device), dtype, input_transform, layers)
    entry = get_entry(name)
    if input_transform is not None:
        raise ModelError(f"input_transform: the built-in model {name!r} uses its weights' transform "
                         f"({entry.extra.get('input_transform', 'fixed')}); --input-transform is for 'module:factory' models")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return entry.builder(weights=WeightsSpec.parse(weights), device=resolve_device(device), dtype=dtype)


def _build_groundtruth(weights: WeightsSpec, device: torch.device, dtype: torch.dtype) -> ProbeModel:
    from probes import groundtruth

    if weights.is_file:
        raise ValueError(f"weights: the ground-truth model is built from code and takes no weights file "
                         f"(None or 'random'), got {weights.text()!r}")
    return groundtruth.build(device, dtype)


def load_trained(net: nn.Module, entry: WeightsEntry, weights: WeightsSpec, device: torch.device, dtype: torch.dtype,
                 convert: Callable[[dict], dict] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``net`` with the weights of ``entry`` (strict; sha256 checked where pinned), moved to ``device``/``dtype``.

    ``weights.is_random`` keeps the initialisation; ``convert`` maps the file's state dict to
    ``net``'s keys. Returns the net and the weights part of the model's meta.
    """
    from probes.weights import check_sha256, read_state_dict, resolve

    path = digest = None
    if not weights.is_random:
        path = resolve(entry, weights.path)
        state = read_state_dict(path, entry)
        net.load_state_dict(convert(state) if convert else state, strict=True)
        digest = check_sha256(entry, path, packaged_only=True)
    meta = {"weights": str(path) if path else None, "random_weights": path is None, "weights_sha256": digest,
            "weights_entry": entry.name}
    return net.to(device=device, dtype=dtype), meta


def _build_inceptionv1(weights: WeightsSpec, device: torch.device, dtype: torch.dtype) -> ProbeModel:
    from probes import inception, sliced

    entry = get_entry("inceptionv1").weights
    net, meta = load_trained(inception.InceptionV1Net(), entry, weights, device, dtype)
    return ProbeModel(
        net,
        name="inceptionv1",
        layers=inception.LAYERS,
        channels=inception.CHANNELS,
        transform=entry.transform,
        geometry=inception.GEOMETRY,
        unit_forward=sliced.probe_units,
        meta={
            **meta,
            "lrn": "TF: depth_radius 5, alpha 1e-4, beta 0.5, bias 2",
            "padding": "TF SAME at every input size",
        },
    )


def _register_builtin() -> None:
    """One :func:`register_model` per built-in model."""
    from probes import efficientnet, groundtruth, inception
    from probes.weights import inception5h_entry

    weights = inception5h_entry()
    register_model(ModelEntry(
        name="inceptionv1",
        description="InceptionV1 as Lucid's inception5h (the article's network; TF LRN and SAME padding)",
        layers=inception.LAYERS, channels=inception.CHANNELS, builder=_build_inceptionv1, weights=weights,
        geometry=inception.GEOMETRY, best_layer="mixed3b", bench_layers=("conv2d2", "mixed3a", "mixed3b", "mixed4a"),
        extra={"input_transform": weights.transform.description, "url": weights.url,
               "parameters": inception.NUM_PARAMETERS}))
    register_model(efficientnet.model_entry(efficientnet.LITE0))
    register_model(efficientnet.model_entry(efficientnet.LITE1))
    register_model(efficientnet.model_entry(efficientnet.LITE2))
    register_model(ModelEntry(
        name="groundtruth",
        description="hand-built curve detectors with known preferred orientations (offline test oracle; not InceptionV1)",
        layers=groundtruth.GEOMETRY.layers, channels={"edges": 12, "curves": 12}, builder=_build_groundtruth,
        geometry=groundtruth.GEOMETRY, best_layer="curves", bench_layers=("edges", "curves"),
        extra={"input_transform": "identity: RGB in [0, 1] used as is", "units": groundtruth.units()}))


_register_builtin()
