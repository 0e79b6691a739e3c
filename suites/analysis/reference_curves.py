"""Reference tuning curves a measured curve family is validated against.

Two kinds:

- **published**: the article's radial tuning data (Cammarata et al., "Curve Detectors",
  Distill 2020, CC-BY 4.0), shipped as package data in ``suites/analysis/reference/``:
  for each of conv2d2, mixed3a, mixed3b and mixed4a of InceptionV1, one post-ReLU curve
  per family channel, 720 samples at 0.5-degree steps, in the article's own angle
  convention;
- **designed**: for a family known only by its peak orientations (the ground-truth
  model), one von Mises bump of :data:`DESIGNED_FWHM` degrees per channel at its
  designed peak. Only the peaks carry information; curve correlations against these
  bumps say nothing about the shape of the measured tuning.

Convention:
    Orientations in degrees on the grid ``i * 0.5``, ``i = 0..719``; curves are rows of
    a ``(channels, 720)`` float64 array in the family's channel order.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import numpy as np

#: the article, cited wherever its data are used
CITATION = ('Cammarata et al., "Curve Detectors", Distill 2020 (CC-BY 4.0), '
            "radial tuning curve data, https://distill.pub/2020/circuits/curve-detectors/")
#: layers of InceptionV1 with published radial tuning curves
PUBLISHED_LAYERS = ("conv2d2", "mixed3a", "mixed3b", "mixed4a")
#: sample spacing of reference curves (degrees)
STEP = 0.5
#: width of the bumps standing in for a peaks-only family's curves (degrees)
DESIGNED_FWHM = 40.0


@dataclass(frozen=True)
class ReferenceFamily:
    """Reference curves of one layer's curve family.

    Attributes:
        layer: tap name.
        channels: channel ids in the reference's order.
        curves: ``(len(channels), 720)`` float64, sample ``i`` at ``i * 0.5`` degrees.
        kind: ``"published"`` (the article's curves) or ``"designed"`` (bumps at designed peaks).
        source: where the curves come from, for reports.
    """

    layer: str
    channels: tuple[int, ...]
    curves: np.ndarray
    kind: str
    source: str

    @property
    def orientations(self) -> np.ndarray:
        """Sample orientations in degrees (``0, 0.5, ..., 359.5``)."""
        return np.arange(self.curves.shape[1]) * STEP

    def peaks(self) -> dict[int, float]:
        """``{channel: argmax orientation}`` in degrees (the article's peak orientations)."""
        return dict(self._peaks)

    @functools.cached_property
    def _peaks(self) -> dict[int, float]:
        return {c: float(np.argmax(row) * STEP) for c, row in zip(self.channels, self.curves)}


@functools.lru_cache(maxsize=None)
def published(layer: str) -> ReferenceFamily:
    """The article's radial tuning curves of ``layer`` (one of :data:`PUBLISHED_LAYERS`).

    Raises:
        ValueError: no published curves for ``layer``.
    """
    if layer not in PUBLISHED_LAYERS:
        raise ValueError(f"layer {layer!r}: the article publishes radial tuning curves for {', '.join(PUBLISHED_LAYERS)} only")
    text = (resources.files("suites.analysis") / "reference" / f"curves-{layer}.json").read_text()
    data = json.loads(text)
    channels = tuple(int(c) for c in data["neurons"])
    curves = np.array([data["activations"][str(c)] for c in channels], dtype=np.float64)
    if curves.shape != (len(channels), round(360 / STEP)):
        raise ValueError(f"reference curves-{layer}.json: expected {len(channels)} x 720 samples, got {curves.shape}")
    curves.setflags(write=False)
    return ReferenceFamily(layer, channels, curves, "published", CITATION)


def designed(layer: str, peaks: Mapping[int, float], fwhm: float = DESIGNED_FWHM) -> ReferenceFamily:
    """Bumps ``exp(kappa * (cos(theta - peak) - 1))`` of full width ``fwhm`` degrees at each designed peak."""
    if not 0 < fwhm < 180:
        raise ValueError(f"fwhm = {fwhm:g}: allowed degrees in (0, 180)")
    kappa = math.log(2.0) / (1.0 - math.cos(math.radians(fwhm / 2)))
    o = np.deg2rad(np.arange(round(360 / STEP)) * STEP)
    channels = tuple(int(c) for c in peaks)
    curves = np.array([np.exp(kappa * (np.cos(o - math.radians(peaks[c])) - 1.0)) for c in channels])
    return ReferenceFamily(layer, channels, curves, "designed", f"designed peak orientations (bumps of FWHM {fwhm:g} deg)")


def reference_family(model: str, layer: str) -> ReferenceFamily | None:
    """The reference for ``layer`` of ``model``: the article's curves for InceptionV1, the
    designed peaks for a family that has only those, None when there is nothing to compare with."""
    if model == "inceptionv1" and layer in PUBLISHED_LAYERS:
        return published(layer)
    from .family_channels import article_families

    fam = article_families(model).get(layer)
    if not fam or any(v is None for v in fam.values()):
        return None
    return designed(layer, {c: float(v) for c, v in fam.items()})  # type: ignore[arg-type]
