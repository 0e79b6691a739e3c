"""``ProbeModel``: a network plus its input transform, tap names and receptive-field geometry.

Everything that turns renderer images into activations goes through
:meth:`ProbeModel.probe`: it checks the images, applies the model's own input
transform, runs the network only as deep as the deepest requested tap (hooks live for
one call), and reads either the probed unit or the full maps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from probes.errors import LayerError
from probes.receptive import Geometry, InputPlan, ReceptiveField, _check_size, plan_input, receptive_field
from probes.taps import run_until


@dataclass(frozen=True)
class InputTransform:
    """Affine map from renderer images in [0, 1] to what the network was trained on.

    ``network_input = images01 * scale + shift``, per RGB channel when ``scale``/``shift``
    are triples. ``description`` says it in words, e.g. ``"RGB * 255 - 117"``.
    """

    scale: float | tuple[float, float, float] = 1.0
    shift: float | tuple[float, float, float] = 0.0
    description: str = "identity: RGB in [0, 1]"

    # (device, dtype) -> (scale, shift) tensors: built once, not two host->device copies per call
    _cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def _tensors(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, dtype)
        pair = self._cache.get(key)
        if pair is None:
            scale = torch.as_tensor(self.scale, dtype=dtype, device=device)
            shift = torch.as_tensor(self.shift, dtype=dtype, device=device)
            pair = (scale.view(1, -1, 1, 1) if scale.ndim else scale, shift.view(1, -1, 1, 1) if shift.ndim else shift)
            self._cache[key] = pair
        return pair

    def __call__(self, images01: torch.Tensor) -> torch.Tensor:
        scale, shift = self._tensors(images01.device, images01.dtype)
        return images01 * scale + shift

    def as_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "shift": self.shift, "description": self.description}


IMAGENET = InputTransform(
    scale=(1 / 0.229, 1 / 0.224, 1 / 0.225),
    shift=(-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225),
    description="imagenet: (RGB - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)",
)
#: named input transforms accepted by :func:`parse_input_transform`
NAMED_TRANSFORMS: dict[str, InputTransform] = {
    "identity": InputTransform(),
    "imagenet": IMAGENET,
    "pm1": InputTransform(2.0, -1.0, "pm1: (RGB - 0.5) / 0.5, range [-1, 1]"),
    "caffe": InputTransform(255.0, -117.0, "caffe: RGB * 255 - 117 (Lucid's InceptionV1)"),
}


def parse_input_transform(spec: str | InputTransform) -> InputTransform:
    """An :class:`InputTransform` from text (``--input-transform``) or returned as is.

    Accepted forms (``network_input = images01 * scale + shift``):

    * a name: ``identity`` (RGB in [0, 1]), ``imagenet`` (torchvision mean/std),
      ``pm1`` ((x - 0.5) / 0.5), ``caffe`` (x * 255 - 117);
    * ``affine:SCALE:SHIFT`` with SCALE and SHIFT each one number or three comma-separated
      numbers (per RGB channel), e.g. ``affine:2:-1`` or ``affine:255:-123.7,-116.3,-103.5``.

    Raises ``ValueError`` naming the accepted forms.
    """
    if isinstance(spec, InputTransform):
        return spec
    forms = f"one of {', '.join(NAMED_TRANSFORMS)}, or affine:SCALE:SHIFT (each a number or 3 comma-separated numbers)"
    if not isinstance(spec, str):
        raise ValueError(f"input transform must be text ({forms}), got {type(spec).__name__}")
    text = spec.strip()
    if text in NAMED_TRANSFORMS:
        return NAMED_TRANSFORMS[text]
    parts = text.split(":")
    if len(parts) == 3 and parts[0] == "affine":
        values = []
        for part in parts[1:]:
            try:
                nums = tuple(float(v) for v in part.split(","))
            except ValueError:
                nums = ()
            if len(nums) not in (1, 3) or not all(map(math.isfinite, nums)):
                raise ValueError(f"input transform {spec!r}: {part!r} is not one number or three comma-separated numbers")
            values.append(nums[0] if len(nums) == 1 else nums)
        return InputTransform(values[0], values[1], f"affine: RGB * {parts[1]} + {parts[2]}")
    raise ValueError(f"input transform {spec!r} is not {forms}")


# torch's messages for a kernel or pooling window larger than its input
_TOO_SMALL = re.compile(r"too small|can't be greater than actual input size|Output size is")


def _as_layers(layers: str | Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = [s for s in layers.split(",") if s]
    layers = tuple(dict.fromkeys(layers))
    if not layers:
        raise LayerError(f"layers must name at least one layer; allowed: {_allowed(allowed)}")
    for layer in layers:
        if not isinstance(layer, str) or layer not in allowed:
            raise LayerError(f"layers: unknown layer {layer!r}; allowed: {_allowed(allowed)}")
    return layers


def check_images(images: torch.Tensor, check_range: bool = True) -> None:
    """Raise ``ValueError`` unless ``images`` is a float ``(B, 3, H, W)`` tensor in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a (B, 3, H, W) float tensor in [0, 1], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {list(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor in [0, 1], got dtype {images.dtype}")
    if check_range and images.numel():
        lo, hi = torch.aminmax(images.detach())
        if not (lo >= -1e-6 and hi <= 1 + 1e-6):  # also catches NaN
            flat = images.detach().reshape(images.shape[0], -1)
            bad = ~((flat >= -1e-6) & (flat <= 1 + 1e-6))
            index = int(bad.any(dim=1).nonzero()[0, 0])
            raise ValueError(
                f"images must lie in [0, 1] (renderer output; the model applies its own transform), "
                f"got values in [{float(lo):.4g}, {float(hi):.4g}] (first bad image index {index})"
            )


def _check_unit(layer: str, unit: object, grid: tuple[int, int]) -> None:
    ok = (isinstance(unit, (tuple, list)) and len(unit) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in unit)
          and 0 <= unit[0] < grid[0] and 0 <= unit[1] < grid[1])
    if not ok:
        raise ValueError(f"units[{layer!r}] = {unit!r} is not a (row, col) on the {grid[0]}x{grid[1]} map of {layer!r}")


class ProbeModel(nn.Module):
    """A network with named taps, its input transform and its receptive-field geometry.

    Attributes:
        name: registry id (``"inceptionv1"``, ``"groundtruth"``, ...).
        layers: tap names, shallow to deep.
        net: the wrapped ``nn.Module``; ``taps[key]`` is the name of its submodule whose
            output is tap ``key`` (``"<layer>"`` post-ReLU, ``"<layer>_pre_relu"``).
        transform: :class:`InputTransform` applied inside :meth:`probe`.
        geometry: :class:`~probes.receptive.Geometry` or None. None with
            ``measure_geometry`` (wrapped modules): stride, receptive field and unit
            centres are measured from the network itself (:mod:`probes.measure`) per
            layer and input size, and the probed unit is the one centred nearest the
            stimulus; there is no exact crop (:meth:`input_plan` gives the full input).
            None without it: the map's middle element (legacy, not recommended).
        meta: provenance and channel metadata (see ``docs/probes.md``).
        unit_forward: optional ``f(net, network_input, {layer: (row, col)})`` returning
            ``{"<layer>": (B, C), "<layer>_pre_relu": (B, C)}`` computed only on the
            windows those units read (see :mod:`probes.sliced`); it raises
            ``probes.sliced.NeedsPadding`` when that would not be exact.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        layers: Sequence[str],
        channels: dict[str, int] | None,
        transform: InputTransform,
        geometry: Geometry | None = None,
        taps: dict[str, str] | None = None,
        meta: dict[str, Any] | None = None,
        unit_forward: Callable[[nn.Module, torch.Tensor, dict[str, tuple[int, int]]], dict[str, torch.Tensor]]
        | None = None,
        measure_geometry: bool = False,
    ) -> None:
        super().__init__()
        self.unit_forward = unit_forward
        self.measure_geometry = measure_geometry and geometry is None
        self._measured: dict[tuple[str, int, int], Any] = {}
        self.net = net.eval()
        self.name = name
        self.layers = list(layers)
        self._channels = dict(channels) if channels is not None else None
        self.transform = transform
        self.geometry = geometry
        if taps is None:
            taps = {k: k for layer in self.layers for k in (layer, f"{layer}_pre_relu")}
        self.taps = dict(taps)
        missing = [layer for layer in self.layers if layer not in self.taps]
        if missing:
            raise ValueError(f"taps: no module given for layer {missing[0]!r}")
        self.meta: dict[str, Any] = {
            "model": name,
            "weights": None,
            "weights_sha256": None,
            "input_transform": transform.as_dict(),
            "layers": list(self.layers),
            "channels": dict(self._channels) if self._channels is not None else None,
            **(meta or {}),
        }

    # -- description ----------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in self.net.parameters():
            return t.device
        for t in self.net.buffers():
            return t.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for t in self.net.parameters():
            return t.dtype
        for t in self.net.buffers():
            return t.dtype
        return torch.float32

    def num_channels(self, layer: str) -> int:
        """Number of channels of tap ``layer``."""
        _as_layers([layer], self.layers)
        if self._channels is None:
            self._channels = {}
        if layer not in self._channels:  # wrapped module: learn it from one small forward up to the layer
            with torch.no_grad():
                x = torch.zeros(1, 3, 224, 224, device=self.device, dtype=self.dtype)
                out = run_until(self.net, self.transform(x), [self.taps[layer]])[self.taps[layer]]
            if not isinstance(out, torch.Tensor) or out.ndim < 2:
                raise LayerError(f"layer {layer!r} of {self.name!r} does not output a (B, C, ...) tensor "
                                 f"(got {type(out).__name__}); choose another layer")
            self._channels[layer] = int(out.shape[1])
            self.meta["channels"] = dict(self._channels)
        return self._channels[layer]

    def _fields(self, layer: str, h: int, w: int) -> tuple[ReceptiveField, ReceptiveField]:
        """Receptive fields of ``layer`` along rows and columns of an ``h`` x ``w`` input (analytic or measured)."""
        if self.geometry is not None:
            return receptive_field(self.geometry, layer, h), receptive_field(self.geometry, layer, w)
        key = (layer, h, w)
        if key not in self._measured:
            from probes.measure import measure_field

            self._measured[key] = measure_field(self.net, self.taps[layer], layer, h, w,
                                                device=self.device, dtype=self.dtype)
        field_ = self._measured[key]
        return field_.rows, field_.cols

    def receptive_field(self, layer: str, size: int = 224) -> ReceptiveField:
        """Stride, receptive-field size and unit-0 centre offset of ``layer`` at a ``size`` input (px)."""
        self._need_geometry("receptive_field")
        _as_layers([layer], self.layers)
        self._need_spatial("receptive_field", [layer])
        _check_size(size)
        return self._fields(layer, size, size)[0]

    def input_plan(self, layers: str | Sequence[str], size: int = 224) -> InputPlan:
        """Smallest input reproducing the centre units of a ``size`` input (see :func:`probes.receptive.plan_input`)."""
        self._need_geometry("input_plan")
        _check_size(size)
        names = _as_layers(layers, self.layers)
        self._need_spatial("input_plan", names)
        return self._plan(names, size)

    def _plan(self, layers: tuple[str, ...], size: int) -> InputPlan:
        cache = self.__dict__.setdefault("_plans", {})  # per instance, so the model can be freed
        if (layers, size) not in cache:
            if self.geometry is not None:
                cache[(layers, size)] = plan_input(self.geometry, layers, size)
            else:  # measured geometry: no exact crop; the deepest layer's centre unit, the others nearest it
                fields = {layer: self._fields(layer, size, size)[0] for layer in layers}
                deepest = fields[layers[-1]] if len(layers) == 1 else max(fields.values(), key=lambda f: f.stride)
                c = deepest.centre(deepest.nearest_unit(size / 2))
                units = {layer: (f.nearest_unit(c), f.nearest_unit(c)) for layer, f in fields.items()}
                cache[(layers, size)] = InputPlan(layers, size, (c, c), units, size, (c, c), units, (0, 0), False, fields)
        return cache[(layers, size)]

    def nearest_units(self, layers: str | Sequence[str], position: tuple[float, float],
                      size: int | tuple[int, int] = 224) -> dict[str, tuple[int, int]]:
        """``{layer: (row, col)}`` of the units whose receptive-field centres are nearest ``position``.

        ``position`` is ``(x, y)`` in continuous pixel coordinates on a ``size`` image
        (``size`` an int for square images or ``(H, W)``); pass the result to
        ``probe(..., units=...)`` to read a stimulus drawn off-centre.
        """
        self._need_geometry("nearest_units")
        names = _as_layers(layers, self.layers)
        self._need_spatial("nearest_units", names)
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        _check_size(h)
        _check_size(w)
        x, y = position
        out = {}
        for layer in names:
            rows, cols = self._fields(layer, h, w)
            out[layer] = (rows.nearest_unit(float(y)), cols.nearest_unit(float(x)))
        return out

    def _spatial(self, layer: str) -> bool:
        """False for taps without a spatial map (``logits`` after a global pool)."""
        return self.geometry is None or layer in self.geometry.layers

    def _need_spatial(self, what: str, layers: Sequence[str]) -> None:
        flat = [layer for layer in layers if not self._spatial(layer)]
        if flat:
            raise LayerError(f"{what}: layer {flat[0]!r} of {self.name!r} has no spatial map (global pooling), so no "
                             f"receptive field; spatial layers: {', '.join(self.geometry.layers)}")  # type: ignore[union-attr]

    def _need_geometry(self, what: str) -> None:
        if self.geometry is None and not self.measure_geometry:
            raise ValueError(f"{what}: model {self.name!r} has no receptive-field geometry; "
                             f"probe it with plan=None (reads the middle of each map)")

    # -- probing --------------------------------------------------------------------
    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        """The wrapped network on renderer images in [0, 1] (transform applied)."""
        return self.net(self.transform(images01))

    def probe(
        self,
        images01: torch.Tensor,
        layers: str | Sequence[str],
        plan: InputPlan | None = None,
        full_map: bool = False,
        *,
        grad: bool = False,
        pre_relu: bool = True,
        check_range: bool = True,
        sliced: bool = True,
        units: dict[str, tuple[int, int]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for images in [0, 1].

        Args:
            images01: ``(B, 3, H, W)`` RGB in [0, 1] (renderer output); cast to the
                model's device and dtype.
            layers: tap names (list or comma-separated string).
            plan: from :meth:`input_plan`. Images of ``plan.size`` are read at
                ``plan.units``; images of ``plan.full_size`` are first cropped to the
                plan (same values, less work). None: each layer is read at the unit
                whose receptive-field centre is nearest the image centre.
            full_map: return whole maps ``(B, C, h, w)`` instead of one unit ``(B, C)``.
            grad: keep the autograd graph (stimulus optimisation); default no_grad.
            pre_relu: also return ``"<layer>_pre_relu"`` (where the model has that tap;
                a wrapped module without it returns only ``"<layer>"``).
            check_range: check that the images lie in [0, 1] (one device sync).
            sliced: for unit readouts, let models that support it compute only the
                windows the probed units read (same numbers; InceptionV1). False
                always computes whole maps up to the deepest layer.
            units: ``{layer: (row, col)}`` to read instead of the plan's or the centre
                units (e.g. from :meth:`nearest_units`); not together with ``plan``.

        Returns:
            ``{"<layer>": post-ReLU, "<layer>_pre_relu": pre-ReLU}`` tensors.
        """
        names = _as_layers(layers, self.layers)
        check_images(images01, check_range)
        if units is not None:
            if plan is not None:
                raise ValueError("give either plan or units, not both")
            missing = [layer for layer in names if layer not in units]
            if missing:
                raise ValueError(f"units: no (row, col) for layer {missing[0]!r}")
            if self.geometry is not None:
                h, w = images01.shape[-2:]
                for layer in names:
                    if not self._spatial(layer):
                        continue
                    rows, cols = self._fields(layer, h, w)
                    _check_unit(layer, units[layer], (rows.grid, cols.grid))
        if plan is not None:
            if not isinstance(plan, InputPlan):
                raise ValueError(f"plan must be an InputPlan from model.input_plan(...), got {type(plan).__name__}")
            missing = [layer for layer in names if layer not in plan.units]
            if missing:
                raise ValueError(f"plan was made for layers {list(plan.layers)}, not for {missing[0]!r}")
            h, w = images01.shape[-2:]
            if (h, w) == (plan.full_size, plan.full_size) and plan.size != plan.full_size:
                images01 = plan.crop(images01)
            elif (h, w) != (plan.size, plan.size):
                raise ValueError(f"images are {h}x{w} px but the plan is for {plan.size}x{plan.size} "
                                 f"(or the full {plan.full_size}x{plan.full_size}) inputs")
        x = images01.to(device=self.device, dtype=self.dtype)
        keys = [k for layer in names for k in ((layer, f"{layer}_pre_relu") if pre_relu else (layer,))
                if k in self.taps]
        with (nullcontext() if grad else torch.no_grad()):
            xt = self.transform(x)
            if sliced and not full_map and self.unit_forward is not None and self.geometry is not None:
                from probes.sliced import NeedsPadding

                h, w = x.shape[-2:]
                where = {layer: self._unit(layer, h, w, plan, (), units) for layer in names}
                try:
                    vals = self.unit_forward(self.net, xt, where)
                except NeedsPadding:
                    pass
                else:
                    return {k: vals[k] for k in keys}
            try:
                raw = run_until(self.net, xt, [self.taps[k] for k in keys])
            except RuntimeError as exc:
                if not _TOO_SMALL.search(str(exc)):
                    raise
                raise LayerError(f"layers {', '.join(names)}: a {x.shape[-2]}x{x.shape[-1]} px input is too small "
                                 f"for {self.name!r} to reach them (torch: {str(exc).splitlines()[0]}); use a "
                                 f"larger input or a shallower layer") from None
            maps = {k: raw[self.taps[k]] for k in keys}
            if full_map:
                return maps
            h, w = x.shape[-2:]
            out = {}
            for layer in names:
                if maps[layer].ndim == 2:  # a global layer (logits): (B, C) already
                    out.update({k: maps[k] for k in keys if k in (layer, f"{layer}_pre_relu")})
                    continue
                row, col = self._unit(layer, h, w, plan, maps[layer].shape[-2:], units)
                _check_unit(layer, (row, col), tuple(maps[layer].shape[-2:]))
                for k in keys:
                    if k == layer or k == f"{layer}_pre_relu":
                        out[k] = maps[k][:, :, row, col].clone()  # do not keep the whole map alive
            return out

    def _unit(self, layer: str, h: int, w: int, plan: InputPlan | None, map_hw: Sequence[int],
              units: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
        if units is not None:
            return units[layer]
        if plan is not None:
            return plan.units[layer]
        if self.geometry is None and not self.measure_geometry:  # legacy: the map's middle element
            return map_hw[0] // 2, map_hw[1] // 2
        rf_y, rf_x = self._fields(layer, h, w)
        unit = rf_y.nearest_unit(h / 2), rf_x.nearest_unit(w / 2)
        if self.geometry is None:  # a measured map must reach the stimulus at the image centre
            for rf, n, j in ((rf_y, h, unit[0]), (rf_x, w, unit[1])):
                if abs(rf.centre(j) - n / 2) > rf.stride / 2:
                    raise LayerError(
                        f"layer {layer!r}: its {rf_y.grid}x{rf_x.grid} maps on a {h}x{w} px input have no unit "
                        f"centred within half a stride ({rf.stride / 2:g} px) of the stimulus at the image centre "
                        f"(nearest: {rf.centre(j):g} px); use a larger input or a shallower layer")
        return unit

    def extra_repr(self) -> str:
        return f"name={self.name!r}, layers={self.layers}"


def wrap_module(
    module: nn.Module,
    layers: Sequence[str] | dict[str, str],
    *,
    name: str = "custom",
    transform: InputTransform | None = None,
    pre_relu: dict[str, str] | None = None,
    geometry: Geometry | None = None,
    meta: dict[str, Any] | None = None,
) -> ProbeModel:
    """Probe any ``nn.Module`` by the names of its submodules.

    Args:
        module: the network (put in eval mode).
        layers: submodule names (``named_modules()``) to tap, or ``{tap name: submodule name}``.
        name: id recorded in ``meta``.
        transform: input transform from [0, 1] images (default identity).
        pre_relu: ``{tap name: submodule name}`` whose output is that layer's pre-ReLU value
            (e.g. the batch-norm before a fused ReLU); layers without one return post only.
        geometry: receptive-field description; None measures each layer's stride,
            receptive field and unit centres from the network itself, per input size
            (:mod:`probes.measure`), and reads the unit centred nearest the stimulus;
            ``input_plan`` then returns the full input (``exact=False``).

    Example (torchvision's GoogLeNet, *not* the article's network)::

        net = torchvision.models.googlenet(weights="DEFAULT")
        imagenet = probes.InputTransform(
            scale=(1 / 0.229, 1 / 0.224, 1 / 0.225),
            shift=(-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225),
            description="ImageNet mean/std normalisation")
        model = probes.wrap_module(net, ["inception3a", "inception3b"], name="googlenet", transform=imagenet)
        acts = model.probe(images01, ["inception3b"])   # {"inception3b": (B, 480)}
    """
    mapping = dict(layers) if isinstance(layers, dict) else {layer: layer for layer in layers}
    taps = {**mapping, **{f"{k}_pre_relu": v for k, v in (pre_relu or {}).items()}}
    names = dict(module.named_modules())
    for key, target in taps.items():
        if target not in names or not target:
            raise LayerError(f"layers: {type(module).__name__} has no submodule {target!r} (for tap {key!r}); "
                             f"allowed (named_modules()): {_allowed(list(names)[1:])}")
    return ProbeModel(module, name=name, layers=list(mapping), channels=None,
                      transform=transform or InputTransform(), geometry=geometry, taps=taps, meta=meta,
                      measure_geometry=geometry is None)


def _allowed(names: Sequence[str], limit: int = 80) -> str:
    """``a, b, c`` or the first ``limit`` names and how many there are in all."""
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names)} in all)"
