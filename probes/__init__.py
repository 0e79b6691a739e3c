"""probes: images in [0, 1] -> activations of named layers, at the probed unit or as maps.

Public API::

    model = probes.load_model("inceptionv1" | "groundtruth", weights=None, device="cpu")
    model.layers, model.num_channels(layer), model.receptive_field(layer)
    plan = model.input_plan(["mixed3b"])          # smallest exact crop + where to draw
    acts = model.probe(images01, ["mixed3b"], plan)  # {"mixed3b": (B, C), "mixed3b_pre_relu": (B, C)}
    probes.list_models(), probes.families, probes.get_family("inceptionv1", "3b")

See ``docs/probes.md``.
"""

from probes.base import InputTransform, ProbeModel, wrap_module
from probes.families import Family, families, get_family
from probes.geometry import InputPlan, ReceptiveField
from probes.registry import ModelEntry, list_models, load_model, register_model

__all__ = [
    "Family",
    "InputPlan",
    "InputTransform",
    "ModelEntry",
    "ProbeModel",
    "ReceptiveField",
    "families",
    "get_family",
    "list_models",
    "load_model",
    "register_model",
    "wrap_module",
]
