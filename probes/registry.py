"""Model registry: string ids -> builders, and ``load_model``.

Each entry knows its tap layers, channel counts and (for trained networks) its
weights entry, which carries the input transform. ``list_models()`` is what
``curvebench models --json`` prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from probes.base import ProbeModel
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
        weights: registry id of its weights file (see :mod:`probes.weights`), or None.
        extra: JSON-able details listed by ``curvebench models --json``.
    """

    name: str
    description: str
    layers: tuple[str, ...]
    channels: dict[str, int]
    builder: Builder
    weights: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "layers": list(self.layers),
            "channels": dict(self.channels),
            "weights": self.weights,
            **self.extra,
        }


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry (a duplicate name replaces the old entry, with a warning)."""
    if entry.name in _REGISTRY:
        warnings.warn(f"register_model: overriding model {entry.name!r}", stacklevel=2)
    _REGISTRY[entry.name] = entry
    return entry


def list_models() -> list[dict[str, Any]]:
    """Every registered model as a JSON-able dict (name, description, layers, channels, ...)."""
    return [e.as_dict() for e in _REGISTRY.values()]


def get_entry(name: str) -> ModelEntry:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"model: unknown model {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def load_model(
    name: str,
    weights: WeightsLike = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ProbeModel:
    """Build a registered model, ready to :meth:`~probes.base.ProbeModel.probe`.

    Args:
        name: registry id (``"inceptionv1"``, ``"groundtruth"``; see :func:`list_models`).
        weights: a :class:`~probes.weights_spec.WeightsSpec` or its text: for trained
            networks a state-dict file path; None (default) uses the cached download
            (``curvebench weights path``); ``"random"`` keeps the random initialisation
            (tests and benchmarks). ``"groundtruth"`` takes the default (or random,
            ignored): it is built from code.
        device: torch device.
        dtype: floating dtype of parameters and computation.
    """
    entry = get_entry(name)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    from probes.device import resolve_device

    device = resolve_device(device)
    return entry.builder(weights=WeightsSpec.parse(weights), device=device, dtype=dtype)


def _build_groundtruth(weights: WeightsSpec, device: torch.device, dtype: torch.dtype) -> ProbeModel:
    from probes import groundtruth

    if weights.is_file:
        raise ValueError(f"weights: the ground-truth model is built from code and takes no weights file "
                         f"(None or 'random'), got {weights.text()!r}")
    return groundtruth.build(device, dtype)


def _build_inceptionv1(weights: WeightsSpec, device: torch.device, dtype: torch.dtype) -> ProbeModel:
    from probes import inception, sliced
    from probes.weights import get_weights_entry, read_state_dict, resolve, sha256sum

    entry = get_weights_entry("inception5h")
    net = inception.InceptionV1Net()
    path = digest = None
    if not weights.is_random:
        path = resolve(entry, weights.path)
        net.load_state_dict(read_state_dict(path, entry), strict=True)
        digest = sha256sum(path)
    net = net.to(device=device, dtype=dtype)
    return ProbeModel(
        net,
        name="inceptionv1",
        layers=inception.LAYERS,
        channels=inception.CHANNELS,
        transform=entry.transform,
        geometry=inception.GEOMETRY,
        unit_forward=sliced.probe_units,
        meta={
            "weights": str(path) if path else None,
            "random_weights": path is None,
            "weights_sha256": digest,
            "weights_entry": entry.name,
            "lrn": "TF: depth_radius 5, alpha 1e-4, beta 0.5, bias 2",
            "padding": "TF SAME at every input size",
        },
    )


def _register_builtin() -> None:
    from probes import groundtruth, inception
    from probes.weights import get_weights_entry

    entry = get_weights_entry("inception5h")
    register_model(
        ModelEntry(
            name="inceptionv1",
            description="InceptionV1 as Lucid's inception5h (the article's network; TF LRN and SAME padding)",
            layers=inception.LAYERS,
            channels=inception.CHANNELS,
            builder=_build_inceptionv1,
            weights=entry.name,
            extra={"input_transform": entry.transform.description, "url": entry.url,
                   "parameters": inception.NUM_PARAMETERS},
        )
    )

    register_model(
        ModelEntry(
            name="groundtruth",
            description="hand-built curve detectors with known preferred orientations (offline test oracle; not InceptionV1)",
            layers=groundtruth.GEOMETRY.layers,
            channels={"edges": 12, "curves": 12},
            builder=_build_groundtruth,
            extra={
                "input_transform": "identity: RGB in [0, 1] used as is",
                "units": groundtruth.units(),
            },
        )
    )


_register_builtin()
