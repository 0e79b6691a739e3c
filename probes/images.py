"""Natural images for dataset statistics and rotated-crop experiments.

Two sources:

- a **folder** of JPEG/PNG files, flat or nested (ImageNet-style class folders),
  read in sorted path order;
- ``"builtin"``: natural photographs bundled with scikit-image (no download), a
  **small proxy, not ImageNet** - every output made from it says so.

Convention:
    Images are returned as ``(3, size, size)`` float32 tensors in [0, 1], RGB:
    the short side is resized to ``size`` px (bilinear, antialiased), then the centre
    ``size x size`` square is cropped. Grey images are repeated to 3 channels, alpha
    is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from probes.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: scikit-image sample photographs shipped inside its wheel (natural scenes and textures).
BUILTIN_IMAGES: tuple[str, ...] = (
    "astronaut", "camera", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
    "hubble_deep_field", "brick", "grass", "gravel", "coins", "moon",
)
BUILTIN_LABEL = "builtin: scikit-image sample photographs (small proxy, not ImageNet)"


@dataclass(frozen=True)
class ImageSource:
    """Where images come from: ``names`` (file paths or builtin ids) and a label for provenance."""

    names: tuple[str, ...]
    label: str
    proxy: bool
    builtin: bool

    def __len__(self) -> int:
        return len(self.names)


def image_source(spec: str | Path, limit: int | None = None) -> ImageSource:
    """Resolve ``"builtin"`` or a folder into an :class:`ImageSource` (``limit``: first N images)."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if str(spec) == "builtin":
        names = BUILTIN_IMAGES[:limit] if limit else BUILTIN_IMAGES
        return ImageSource(tuple(names), BUILTIN_LABEL, proxy=True, builtin=True)
    folder = Path(spec)
    if not folder.exists():
        raise FileNotFoundError(f"images: folder not found: {folder} (give a folder of JPEG/PNG files or 'builtin')")
    if not folder.is_dir():
        raise ValueError(f"images: {folder} is not a folder (give a folder of JPEG/PNG files or 'builtin')")
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"images: no {'/'.join(IMAGE_SUFFIXES)} files under {folder}")
    if limit:
        files = files[:limit]
    return ImageSource(tuple(files), f"folder {folder}", proxy=False, builtin=False)


def _read(name: str, builtin: bool) -> np.ndarray:
    from PIL import Image

    if builtin:
        import skimage

        if name not in BUILTIN_IMAGES:
            raise ValueError(f"builtin image {name!r} unknown; available: {', '.join(BUILTIN_IMAGES)}")
        folder = Path(skimage.__file__).parent / "data"
        matches = sorted(folder.glob(f"{name}.*"))
        if not matches:
            raise FileNotFoundError(f"builtin image {name!r} not found in {folder} (scikit-image installation incomplete?)")
        name = str(matches[0])

    try:
        with Image.open(name) as im:
            return np.asarray(im.convert("RGB") if im.mode not in ("L", "I;16") else im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # PIL: UnidentifiedImageError (zero-byte, not an image), OSError (truncated), SyntaxError (corrupt chunk)
        raise ImageError(f"images: {name} cannot be read as an image ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split()) or 'empty or corrupt file'}); remove or replace it") from None


def to_tensor(array: np.ndarray, size: int) -> torch.Tensor:
    """``(H, W[, C])`` uint8/float image -> ``(3, size, size)`` float32 in [0, 1] (resize short side, centre crop)."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ImageError(f"image: expected (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if min(a.shape[:2]) < 1:
        raise ImageError(f"image: {a.shape[0]} x {a.shape[1]} px has no pixels")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = a[:, :, :3]
    t = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float()
    if a.dtype == np.uint8:
        t = t / 255.0
    elif a.dtype == np.uint16:
        t = t / 65535.0
    h, w = t.shape[1:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    t = F.interpolate(t[None], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = (nh - size) // 2, (nw - size) // 2
    return t[:, top : top + size, left : left + size].clamp(0, 1)


def iter_batches(source: ImageSource, size: int = 224, batch_size: int = 8) -> Iterator[tuple[Sequence[str], torch.Tensor]]:
    """Yield ``(names, images)`` with images ``(B, 3, size, size)`` in [0, 1]."""
    if size < 8:
        raise ValueError(f"size must be >= 8 px, got {size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(source), batch_size):
        names = source.names[start : start + batch_size]
        yield names, torch.stack([to_tensor(_read(n, source.builtin), size) for n in names])
