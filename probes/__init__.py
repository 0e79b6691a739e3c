"""probes: images in [0, 1] -> activations of named layers, at the probed unit or as maps.

Public API::

    model = probes.load_model("inceptionv1" | "efficientnet-lite0" | "groundtruth", weights=None, device="cpu")
    model = probes.load_model("my.module:factory", input_transform="imagenet")  # any torch model
    model.layers, model.num_channels(layer), model.receptive_field(layer)
    plan = model.input_plan(["mixed3b"])          # smallest exact crop + where to draw
    acts = model.probe(images01, ["mixed3b"], plan)  # {"mixed3b": (B, C), "mixed3b_pre_relu": (B, C)}
    probes.list_models(), probes.families, probes.get_family("inceptionv1", "3b")

See ``docs/probes.md``. The names are loaded on first use (PEP 562), so
``import probes.cli`` (the ``curvebench`` parser) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.base import InputTransform, ProbeModel, parse_input_transform, wrap_module
    from probes.article_families import Family, families, get_family
    from probes.receptive import InputPlan, ReceptiveField
    from probes.registry import ModelEntry, list_models, load_model, register_model

# public name -> submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("InputTransform", "ProbeModel", "parse_input_transform", "wrap_module"), "base"),
    **dict.fromkeys(("Family", "families", "get_family"), "article_families"),
    **dict.fromkeys(("InputPlan", "ReceptiveField"), "receptive"),
    **dict.fromkeys(("ModelEntry", "list_models", "load_model", "register_model"), "registry"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
