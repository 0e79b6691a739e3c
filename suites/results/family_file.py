"""Reading the curve-family file of ``curvebench discover`` (``family.nc``) for another command.

One opener for plot, report and optimize: the file must be a family file, of the same
model and weights as the data it is used with, and have units in the layer. Every
refusal is one line (``ValueError``) naming the file and what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from suites.file_kinds import CURVE_FAMILY_KIND

__all__ = ["open_family", "network_mismatch", "family_detectors", "find_family", "random_weights_of"]


def random_weights_of(attrs: Mapping[str, Any]) -> bool | None:
    """Whether a file's ``attrs`` say its network had random weights (``random_weights``); None if they do not say."""
    flag = attrs.get("random_weights")
    if flag is None or str(flag) == "":
        return None
    return bool(int(flag))


def open_family(path: str | Path) -> xr.Dataset:
    """The family file at ``path``, loaded.

    Raises:
        ValueError: missing, not netCDF, another kind of file, or without the
            ``detector``, ``layer`` and ``channel`` of its units.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"family file not found: {path}")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a netCDF file ({type(exc).__name__})") from None
    if ds.attrs.get("kind") != CURVE_FAMILY_KIND:
        raise ValueError(f"{path} is not a family file of `curvebench discover` (kind={ds.attrs.get('kind')!r})")
    if "detector" not in ds or "layer" not in ds.coords or "channel" not in ds.coords:
        raise ValueError(f"{path} lacks the detector, layer or channel of its units")
    return ds


def network_mismatch(family: Mapping[str, Any], model: str, weights_sha256: str,
                     random_weights: bool | None = None) -> str | None:
    """Why a family file's network (its ``attrs``) differs from ``model`` with those weights; None if the same.

    ``weights_sha256``: ``""`` for models without a weights file (the ground truth);
    ``random_weights``: also compare the random-weights flag (None: not compared, nor when
    the family file does not say).
    """
    if str(family.get("model", "")) != model:
        return f"was discovered in model {family.get('model')!r}, not {model!r}"
    f_sha = str(family.get("weights_sha256") or "")
    if f_sha != str(weights_sha256 or ""):
        return f"was discovered with weights sha256 {f_sha[:12] or 'none'}, not {str(weights_sha256)[:12] or 'none'}"
    theirs = random_weights_of(family)
    if random_weights is not None and theirs is not None and theirs != bool(random_weights):
        return "was discovered with random weights" if not random_weights else "was discovered with trained weights"
    return None


def family_detectors(family: xr.Dataset, layer: str, where: str = "family file") -> list[int]:
    """Channel ids of the curve detectors of ``layer`` in an opened family file, by preferred orientation.

    Raises:
        ValueError: no units of ``layer`` in the file, or none of them a detector.
    """
    in_layer = family.layer.values.astype(str) == layer
    if not in_layer.any():
        layers = sorted(set(family.layer.values.astype(str)))
        raise ValueError(f"{where} has no units of layer {layer!r}; its layers: {', '.join(layers)}")
    keep = in_layer & family.detector.values.astype(bool)
    if not keep.any():
        raise ValueError(f"{where} has no curve detectors in layer {layer!r}")
    chans = family.channel.values[keep].astype(int)
    if "preferred_orientation" in family:
        prefs = np.nan_to_num(family.preferred_orientation.values[keep].astype(float), nan=1e9)
        chans = chans[np.argsort(prefs, kind="stable")]
    return [int(c) for c in chans]


def find_family(folders: Iterable[str | Path], layer: str, model: str, weights_sha256: str,
                random: bool | None = None) -> Path | None:
    """The newest family file of the same network with detectors in ``layer`` in ``folders``, or None.

    Looks at ``FOLDER/family.nc`` and ``FOLDER/discover-*/family.nc`` (``curvebench
    discover``'s default output); files that cannot be read, of another network (or random
    weights), or without detectors in ``layer`` are passed over.
    """
    found: list[tuple[float, Path]] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in [folder / "family.nc", *sorted(folder.glob("discover-*/family.nc"))]:
            if not p.is_file():
                continue
            try:
                fam = open_family(p)
                if network_mismatch(fam.attrs, model, weights_sha256, random) is None:
                    family_detectors(fam, layer)
                    found.append((p.stat().st_mtime, p))
            except ValueError:
                continue
    return max(found)[1] if found else None
