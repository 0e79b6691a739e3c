"""Curve-detector families: the article's (InceptionV1) and the ground-truth model's.

``families`` maps a layer to a :class:`Family`, which is a sequence of channel ids in
the order of the article's radial tuning plot, with the peak orientations read off
the article's radial tuning data. Those angles are in the *article's own* convention
(not necessarily the renderer's); only the spacing between neurons is
convention-free. The ground-truth family's orientations are its designed ones, in the
renderer's convention (degrees counter-clockwise on screen, toward the centre of
curvature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

from probes import groundtruth


@dataclass(frozen=True)
class Family(Sequence[int]):
    """Channel ids of one layer's curve family; iterating yields the ids in plot order.

    Attributes:
        model: registry id of the model (``"inceptionv1"`` or ``"groundtruth"``).
        layer: tap name.
        channels: channel ids, in the article's radial-plot order.
        peak_orientations: degrees per channel, or None where the article gives none.
        convention: ``"article"`` or ``"renderer"``: which angle convention the peaks use.
        aliases: other names :func:`get_family` accepts (e.g. ``"3b"``).
    """

    model: str
    layer: str
    channels: tuple[int, ...]
    peak_orientations: tuple[float, ...] | None
    convention: str
    aliases: tuple[str, ...] = ()

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...
    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self.channels[i]

    def __len__(self) -> int:
        return len(self.channels)

    def peaks(self) -> dict[int, float]:
        """``{channel: peak orientation}`` (empty when the article gives none)."""
        return dict(zip(self.channels, self.peak_orientations or ()))


families: dict[str, Family] = {
    "conv2d2": Family(
        "inceptionv1", "conv2d2",
        (32, 171, 111, 80, 140, 180, 39, 130, 63, 182, 117),
        (300.5, 319, 358.5, 5.5, 30.5, 55, 92, 139, 181, 226, 253),
        "article", ("2",),
    ),
    "mixed3a": Family(
        "inceptionv1", "mixed3a",
        (81, 104, 92, 145, 95, 163, 171, 71, 147, 189, 137),
        (326.5, 350.5, 11, 41, 78.5, 87, 174, 137, 222.5, 267.5, 273.5),
        "article", ("3a",),
    ),
    "mixed3b": Family(
        "inceptionv1", "mixed3b",
        (379, 406, 385, 343, 342, 388, 324, 340, 330, 349),
        (243, 268.5, 290, 358, 22.5, 66.5, 91.5, 110, 145, 181),
        "article", ("3b",),
    ),
    "mixed4a": Family(
        "inceptionv1", "mixed4a",
        (26, 50, 58, 62, 95, 168, 403, 406, 407, 415, 424, 428, 436, 437),
        None,
        "article", ("4a",),
    ),
    "curves": Family(
        "groundtruth", "curves",
        tuple(range(len(groundtruth.UNIT_ORIENTATIONS))),
        groundtruth.UNIT_ORIENTATIONS,
        "renderer", ("groundtruth",),
    ),
}


def get_family(model_name: str, name_or_layer: str) -> Family:
    """The family of ``model_name`` named by a layer (``"mixed3b"``) or alias (``"3b"``).

    Raises:
        ValueError: unknown model or family, with the names that exist.
    """
    known = sorted({f.model for f in families.values()})
    if model_name not in known:
        raise ValueError(f"model_name: no curve families for model {model_name!r}; known: {', '.join(known)}")
    mine = [f for f in families.values() if f.model == model_name]
    for f in mine:
        if name_or_layer == f.layer or name_or_layer in f.aliases:
            return f
    names = ", ".join(f"{f.layer} ({'/'.join(f.aliases)})" if f.aliases else f.layer for f in mine)
    raise ValueError(f"name_or_layer: model {model_name!r} has no curve family {name_or_layer!r}; known: {names}")
