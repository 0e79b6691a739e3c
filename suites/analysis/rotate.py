"""``curvebench rotate-tuning``: a curve family's responses to rotated natural-image crops.

The article's "joint tuning curve": take the dataset examples that excite each family
neuron most, rotate them from 0 to 360 degrees, record the whole family's responses,
shift each example so the neurons' responses line up, and average.

Steps (all on the probes' receptive-field geometry):

1. **Top-k crops.** Every image (resized/cropped to ``size``) is probed as a full map;
   for each family channel its best position in each image is a candidate, and the
   ``k`` best candidates (so at most one crop per image and channel) are kept.
2. **Rotation.** A square patch centred on the unit's receptive-field centre, large
   enough that rotating it never brings in corners (side >= plan size x sqrt 2), is
   rotated by ``0, step, ..., 360 - step`` degrees with :func:`kornia.geometry.rotate`
   (bilinear, counter-clockwise as seen on screen, reflection-padded at image edges),
   and the model's input plan window is cut out so the probed unit sits on the patch
   centre. The family's responses at the probed unit are recorded.
3. **Alignment.** Rotating a crop that excites neuron ``s`` by ``a`` presents the
   orientation ``pref_s + a``. Relative preferred orientations are estimated from the
   data (where each neuron peaks, on average, for each source neuron's crops, solved
   self-consistently on the circle), anchored so that the first channel sits at its
   known peak orientation (``probes.article_families``; 0 if unknown). Every example is then
   placed on the common axis ``pref_s + a`` and averaged per responding neuron.

Convention:
    Angles in degrees; responses are post-ReLU (sigma if a statistics file is given).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from probes.images import ImageSource, iter_batches
from .tuning import circular_mean, fitted_peak, fwhm
from suites.atomic import output_file


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


def align(responses: np.ndarray, angles: np.ndarray, anchor: float = 0.0, iterations: int = 5) -> np.ndarray:
    """Preferred orientation per family channel (degrees) from ``responses[s, e, a, d]``.

    ``responses``: source channel ``s`` (whose crops), example ``e``, rotation ``a``,
    responding channel ``d`` (same channel order as ``s``). The first channel with a
    preferred orientation is anchored at ``anchor``; channels that never respond get NaN.
    """
    mean = responses.mean(axis=1)  # (S, A, D)
    n = mean.shape[0]
    # offset[s, d]: rotation at which d peaks for s's crops = pref_d - pref_s
    offset = np.array([[fitted_peak(angles, mean[s, :, d]) for d in range(n)] for s in range(n)])
    weight = np.nan_to_num(mean.max(axis=1), nan=0.0)  # (S, D)
    finite = np.isfinite(offset)
    if not finite.any():
        return np.full(n, math.nan)
    ref = int(np.argmax(finite.sum(axis=1)))  # the source whose crops drive the most channels
    pref = (offset[ref] - (offset[ref, ref] if finite[ref, ref] else 0.0)) % 360.0
    for _ in range(iterations):
        new = np.full(n, math.nan)
        for d in range(n):
            cand = (pref + offset[:, d]) % 360.0
            ok = np.isfinite(cand) & (weight[:, d] > 0)
            if ok.any():
                new[d] = circular_mean(cand[ok], weight[ok, d])
        if np.isfinite(new[ref]) and np.isfinite(pref[ref]):
            new = (new - new[ref] + pref[ref]) % 360.0
        pref = new
    first = np.flatnonzero(np.isfinite(pref))
    if first.size == 0:
        return pref
    return (pref - pref[first[0]] + anchor) % 360.0


def rotation_tuning(
    model,
    source: ImageSource,
    layer: str,
    channels: Sequence[int],
    *,
    k: int = 4,
    step: float = 10.0,
    size: int = 224,
    stats: xr.Dataset | None = None,
    anchor: float | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Responses of ``channels`` of ``layer`` to rotated top crops, raw and aligned.

    Returns a dataset with ``responses(source, example, rotation, channel)``,
    ``aligned(source, example, orientation, channel)`` (on the common axis),
    ``tuning(orientation, channel)`` (mean of ``aligned``), ``preferred(channel)``,
    ``top_value(source, example)`` and attributes describing units and statistics.
    """
    from tqdm.auto import tqdm

    from .family_channels import article_families

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
    scale = np.ones(len(channels))
    shift = np.zeros(len(channels))
    label = "raw post-ReLU activation"
    if stats is not None:
        from .sigma import stats_label

        mean = stats[f"{layer}_mean"].sel({f"{layer}_channel": channels}).values
        std = stats[f"{layer}_std"].sel({f"{layer}_channel": channels}).values
        shift, scale = mean, np.where(std > 0, std, np.nan)
        label = f"post-ReLU sigma ({stats_label(stats)})"
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
            resp[s] = ((out.double().cpu().numpy() - shift) / scale).reshape(k_eff, angles.size, len(channels))
            bar.update(k_eff)
    bar.close()
    # anchor: the first channel that has a preferred orientation, at its known peak (probes.article_families)
    probe_pref = align(resp, angles, 0.0)
    usable = [i for i in range(len(channels)) if math.isfinite(probe_pref[i])]
    if not usable:
        raise ValueError(f"rotate-tuning: none of the channels {channels} of {layer!r} responded to the rotated crops")
    anchor_channel = channels[usable[0]]
    if anchor is None:
        anchor = article_families(model.name).get(layer, {}).get(anchor_channel) or 0.0
    pref = align(resp, angles, anchor)
    aligned = np.full_like(resp, np.nan)
    for s in usable:
        x = (pref[s] + angles) % 360.0
        for e in range(k_eff):
            for d in range(len(channels)):
                aligned[s, e, :, d] = np.interp(angles, x, resp[s, e, :, d], period=360.0)
    tuning = np.nanmean(aligned[usable], axis=(0, 1))
    typical = np.mean([np.roll(tuning[:, d], -int(round(pref[d] / step))) for d in usable], axis=0)
    ds = xr.Dataset(
        {
            "responses": (("source", "example", "rotation", "channel"), resp),
            "aligned": (("source", "example", "orientation", "channel"), aligned),
            "tuning": (("orientation", "channel"), tuning),
            "typical": (("relative_orientation",), typical),
            "preferred": (("channel",), pref),
            "top_value": (("source", "example"), top_value),
        },
        coords={"source": channels, "channel": channels, "example": np.arange(k_eff), "rotation": angles,
                "orientation": angles, "relative_orientation": angles},
    )
    ds.attrs.update(
        model=str(model.meta.get("model", model.name)),
        weights_sha256=str(model.meta.get("weights_sha256") or ""),
        layer=layer,
        images=source.label,
        proxy=int(source.proxy),
        k=k_eff,
        step_deg=float(step),
        response_units=label,
        typical_fwhm_deg=float(fwhm(angles, np.clip(typical, 0, None))),
        anchor=f"channel {anchor_channel} placed at {anchor:g} deg",
        unresponsive=" ".join(str(channels[i]) for i in range(len(channels)) if i not in usable),
    )
    return ds


def plot_rotation_tuning(result: xr.Dataset, out_path: str | Path) -> Path:
    """The article's figure: one row per neuron, thin lines = single examples, thick = mean; peak ticks below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import short_layer

    channels = [int(c) for c in result.coords["channel"].values]
    pref = result["preferred"].values
    order = np.argsort(np.where(np.isfinite(pref), pref, np.inf))
    o = result.coords["orientation"].values
    layer = result.attrs["layer"]
    n = len(channels)
    fig = plt.figure(figsize=(7.5, 1.05 * n + 1.9), dpi=100)
    cmap = matplotlib.colormaps["hsv"]
    top = 1 - 1.4 / fig.get_figheight()
    bottom = 1.0 / fig.get_figheight()
    h = (top - bottom) / n
    aligned = result["aligned"].values
    ymax = max(float(np.nanmax(np.clip(aligned, 0, None))), 1e-9)
    xs = np.append(o, 360.0)
    for row, i in enumerate(order):
        ax = fig.add_axes([0.13, top - (row + 1) * h, 0.84, h * 0.92])
        colour = tuple(0.85 * np.array(cmap((pref[i] % 360) / 360.0)[:3])) if np.isfinite(pref[i]) else (0.5, 0.5, 0.5)
        thin = aligned[:, :, :, i].reshape(-1, o.size)
        thin = thin[np.isfinite(thin).all(axis=1)]
        for line in thin:
            ax.plot(xs, np.append(line, line[0]), color=colour, alpha=0.15, lw=0.7)
        mean = result["tuning"].values[:, i]
        ax.plot(xs, np.append(mean, mean[0]), color=colour, lw=2.2)
        ax.set_xlim(0, 360)
        ax.set_ylim(min(0.0, float(np.nanmin(aligned))), ymax * 1.05)
        ax.set_yticks([])
        ax.set_xticks([])
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.text(-0.01, 0.35, f"{short_layer(layer)}:{channels[i]}", transform=ax.transAxes, ha="right", fontsize=9, fontweight="bold", color=colour)
    ax = fig.add_axes([0.13, bottom - 0.45 / fig.get_figheight(), 0.84, 0.3 / fig.get_figheight()])
    for i in order:
        if not np.isfinite(pref[i]):
            continue
        ax.bar(pref[i] % 360, 1, width=3, color=tuple(0.85 * np.array(cmap((pref[i] % 360) / 360.0)[:3])))
    ax.set_xlim(0, 360)
    ax.set_yticks([])
    ax.set_xticks(np.arange(0, 361, 45))
    ax.set_xticklabels([f"{t}°" for t in range(0, 361, 45)], fontsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("orientation of the rotated crops on the common axis (degrees); ticks = each neuron's peak", fontsize=8)
    a = result.attrs
    title = (
        f"{a['model']} {layer}: responses to rotated dataset examples (top {a['k']} crops per neuron, {a['step_deg']:g} deg steps)\n"
        f"images: {a['images']}\nresponses: {a['response_units']}\nthin = single examples, thick = mean; "
        f"typical tuning FWHM {a['typical_fwhm_deg']:.0f} deg; {a['anchor']}"
    )
    title = "\n".join(textwrap.fill(line, 105) for line in title.split("\n"))
    fig.suptitle(title, fontsize=8.5, x=0.02, ha="left")
    out_path = Path(out_path)
    with output_file(out_path) as tmp:
        fig.savefig(tmp, facecolor="white")
    plt.close(fig)
    return out_path
