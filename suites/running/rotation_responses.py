"""Responses of a curve family to rotated natural-image crops (the measurement half of rotate-tuning).

For each family channel, the ``k`` natural-image crops that excite it most are rotated
from 0 to 360 degrees and the whole family's responses at the probed unit are recorded.
The analysis half (alignment on a common orientation axis, averaging, the figure) works on
the dataset returned here: :func:`suites.analysis.rotate.rotation_tuning`.

Steps (on the probes' receptive-field geometry):

1. **Top-k crops.** Every image (resized/cropped to ``size``) is probed as a full map;
   for each family channel its best position in each image is a candidate, and the ``k``
   best candidates (at most one crop per image and channel) are kept.
2. **Rotation.** A square patch centred on the unit's receptive-field centre, large enough
   that rotating it never brings in corners (side >= plan size x sqrt 2), is rotated by
   ``0, step, ..., 360 - step`` degrees with :func:`kornia.geometry.transform.rotate`
   (bilinear, counter-clockwise as seen on screen, reflection-padded at image edges), and
   the model's input-plan window is cut out so the probed unit sits on the patch centre.

Convention: angles in degrees; responses are raw post-ReLU activations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from probes.images import ImageSource, iter_batches

__all__ = ["top_crops", "rotated_windows", "measure_rotation_responses"]


def top_crops(model, source: ImageSource, layer: str, channels: Sequence[int], k: int, size: int = 224, batch_size: int = 8):
    """Best ``k`` (value, image index, row, col) per channel, at most one per image.

    Returns ``(picks, images)`` with ``picks[channel] = [(value, image, row, col), ...]``
    (best first) and ``images`` the ``(N, 3, size, size)`` tensor of all images.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    images, best = [], []
    with torch.no_grad():
        for _, batch in iter_batches(source, size, batch_size):
            out = model.probe(batch.to(model.device), [layer], full_map=True, pre_relu=False)[layer][:, list(channels)]
            b, c, h, w = out.shape
            v, idx = out.reshape(b, c, h * w).max(dim=2)
            best.append(torch.stack([v, (idx // w).float(), (idx % w).float()], dim=-1).cpu())
            images.append(batch.cpu())
    allbest = torch.cat(best)  # (N, C, 3)
    picks = {}
    for j, ch in enumerate(channels):
        order = torch.argsort(allbest[:, j, 0], descending=True)[:k]
        picks[int(ch)] = [(float(allbest[i, j, 0]), int(i), int(allbest[i, j, 1]), int(allbest[i, j, 2])) for i in order]
    return picks, torch.cat(images)


def rotated_windows(image: torch.Tensor, centre_rc: tuple[int, int], angles: np.ndarray, plan) -> torch.Tensor:
    """``(A, 3, plan.size, plan.size)``: the patch around pixel ``centre_rc`` (row, col) rotated by each angle."""
    import kornia

    half = int(math.ceil(plan.size * math.sqrt(2) / 2)) + 2
    pad = half + 1
    padded = F.pad(image[None], (pad, pad, pad, pad), mode="reflect" if pad < min(image.shape[-2:]) else "replicate")
    r, c = centre_rc[0] + pad, centre_rc[1] + pad
    patch = padded[:, :, r - half : r + half + 1, c - half : c + half + 1]  # side 2*half+1, centre index half
    batch = patch.expand(len(angles), -1, -1, -1)
    rot = kornia.geometry.transform.rotate(batch, torch.as_tensor(angles, dtype=patch.dtype), mode="bilinear", padding_mode="reflection")
    px, py = plan.position
    left, top = half - int(round(px - 0.5)), half - int(round(py - 0.5))
    return rot[:, :, top : top + plan.size, left : left + plan.size].clamp(0, 1)


def measure_rotation_responses(
    model,
    source: ImageSource,
    layer: str,
    channels: Sequence[int],
    *,
    k: int = 4,
    step: float = 10.0,
    size: int = 224,
    progress: bool = True,
) -> xr.Dataset:
    """Raw responses of ``channels`` of ``layer`` to their top crops rotated in ``step``-degree steps.

    Returns a dataset with ``responses(source, example, rotation, channel)`` (post-ReLU,
    raw), ``top_value(source, example)``, and attributes naming model, weights, layer and
    images: the input of :func:`suites.analysis.rotate.rotation_tuning`.
    """
    from tqdm.auto import tqdm

    if not 0 < step <= 90:
        raise ValueError(f"step must be in (0, 90] degrees, got {step}")
    channels = [int(c) for c in channels]
    if len(channels) < 2:
        raise ValueError(f"channels: need at least 2 family channels, got {channels}")
    n_ch = model.num_channels(layer)
    bad = [c for c in channels if not 0 <= c < n_ch]
    if bad:
        raise ValueError(f"channels: {bad} out of range for layer {layer!r} (0..{n_ch - 1})")
    plan = model.input_plan([layer], size)
    picks, images = top_crops(model, source, layer, channels, k, size)
    rf = model.receptive_field(layer, size)
    angles = np.arange(0.0, 360.0, step)
    k_eff = min(len(v) for v in picks.values())
    resp = np.zeros((len(channels), k_eff, angles.size, len(channels)))
    top_value = np.zeros((len(channels), k_eff))
    bar = tqdm(total=len(channels) * k_eff, desc=f"rotate {layer}", unit="crop", disable=not progress)
    with torch.no_grad():
        for s, ch in enumerate(channels):
            windows = []
            for e, (value, img, row, col) in enumerate(picks[ch][:k_eff]):
                centre = (int(round(rf.offset + rf.stride * row)), int(round(rf.offset + rf.stride * col)))
                windows.append(rotated_windows(images[img], centre, angles, plan))
                top_value[s, e] = value
            out = model.probe(torch.cat(windows).to(model.device), [layer], plan=plan, pre_relu=False)[layer][:, channels]
            resp[s] = out.double().cpu().numpy().reshape(k_eff, angles.size, len(channels))
            bar.update(k_eff)
    bar.close()
    ds = xr.Dataset(
        {
            "responses": (("source", "example", "rotation", "channel"), resp),
            "top_value": (("source", "example"), top_value),
        },
        coords={"source": channels, "channel": channels, "example": np.arange(k_eff), "rotation": angles},
    )
    ds.attrs.update(
        model=str(model.meta.get("model", model.name)),
        weights_sha256=str(model.meta.get("weights_sha256") or ""),
        layer=layer,
        images=source.label,
        proxy=int(source.proxy),
        k=k_eff,
        step_deg=float(step),
    )
    return ds
