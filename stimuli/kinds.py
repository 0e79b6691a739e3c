"""The stimulus declaration: every kind and every parameter of :func:`stimuli.render`, once.

This module is the single place where a stimulus parameter is declared: its name,
default, valid range, unit, help text and the kinds that use it. The renderer
(:mod:`stimuli.draw`) validates and fills in defaults from it, suite files
(:mod:`suites.specs.suite`, :mod:`suites.specs.render_args`) read which parameters exist and their
ranges from it, and ``curvebench render`` builds its options and help from it.
Adding a parameter means one :class:`Param` (or :class:`Choice`) entry here plus the
renderer's math that uses it.

It imports neither torch nor numpy, so parsers stay fast.

Convention (as in :mod:`stimuli.draw`): angles in degrees, counter-clockwise on
screen; curvature in 1/px; lengths in px at the rendered image size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ARTICLE_MAX_TURN",
    "CHOICES",
    "KINDS",
    "KIND_DECLARATIONS",
    "MAX_TURN",
    "PARAMS",
    "Choice",
    "Kind",
    "Param",
    "choice",
    "defaults",
    "kind",
    "param",
]

#: Largest total turning ``|curvature| * length`` (rad) the renderer draws: a full circle.
MAX_TURN: float = 2.0 * math.pi
#: Largest turning of the article's stimuli (rad): a semicircle. Beyond it angles fold
#: onto themselves and rounded angles become loops; built-in suites stay within it.
ARTICLE_MAX_TURN: float = math.pi


@dataclass(frozen=True)
class Kind:
    """A stimulus kind.

    Attributes:
        name: the ``kind`` argument of :func:`stimuli.render`.
        help: one line for ``--help`` and the docs.
        defaults: per-kind defaults that differ from the parameters' own (e.g. an
            angle's rounding is 0).
        pinned: parameters whose only allowed value is fixed for this kind (a line's
            curvature is 0).
    """

    name: str
    help: str
    defaults: Mapping[str, float] = field(default_factory=dict)
    pinned: Mapping[str, float] = field(default_factory=dict)


KIND_DECLARATIONS: tuple[Kind, ...] = (
    Kind("line", "a straight stroke (curvature must be 0)", pinned={"curvature": 0.0}),
    Kind("curve", "a circular arc (rounding 1)"),
    Kind("angle", "two straight arms along the arc's end tangents (rounding 0)", defaults={"rounding": 0.0}),
)
#: Kinds :func:`stimuli.render` draws.
KINDS: tuple[str, ...] = tuple(k.name for k in KIND_DECLARATIONS)


@dataclass(frozen=True)
class Param:
    """A numeric per-stimulus parameter: a number or a ``(B,)`` tensor in :func:`stimuli.render`.

    Attributes:
        name: keyword of :func:`stimuli.render`, key of suite files, ``--name`` option.
        default: value when not given (see :attr:`Kind.defaults` for per-kind ones);
            ``math.inf`` where "unlimited" is meant (:attr:`default_text` says how).
        unit: ``"deg"``, ``"1/px"``, ``"px"`` or ``""``.
        help: what it is, with its convention.
        low, high: allowed closed range (``high_is_image``: the upper bound is the
            image's smaller side in px).
        high_per_image: the upper bound is this many times the image's smaller side (px):
            the drawing window grows with the square of the reach, so longer paths only allocate.
        integer: whole numbers only.
        kinds: the kinds that use it.
        sweepable: a suite may sweep it (every parameter here is).
        suite_low: a tighter lower bound for suite files (curvature >= 0: suites give
            the side by the orientation).
        default_text: how to show the default where ``default`` is not a plain number.
        allow_inf: ``+inf`` is a valid value (no limit); NaN never is.
        period: values that differ by a multiple of it draw the same stimulus (360 for
            orientation); ``None`` if none.
    """

    name: str
    default: float
    unit: str
    help: str
    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    high_is_image: bool = False
    high_per_image: float | None = None
    kinds: tuple[str, ...] = KINDS
    suite_low: float | None = None
    default_text: str | None = None
    allow_inf: bool = False
    period: float | None = None

    def default_for(self, kind: str) -> float:
        """The default of this parameter for ``kind``."""
        for k in KIND_DECLARATIONS:
            if k.name == kind and self.name in k.defaults:
                return float(k.defaults[self.name])
        return self.default

    def unit_suffix(self) -> str:
        """``" px"``, ``" 1/px"``, ``" deg"`` or ``""``, for messages."""
        return f" {self.unit}" if self.unit else ""

    def high_for(self, image_side: float | None = None) -> float:
        """The upper bound; ``image_side`` (px) where it is the image size."""
        if self.high_is_image:
            return math.inf if image_side is None else float(image_side)
        if self.high_per_image is not None:
            return math.inf if image_side is None else float(self.high_per_image * image_side)
        return self.high

    def allowed(self, image_side: float | None = None) -> str:
        """The allowed range as text, e.g. ``"0 <= width <= 224 px (the image size)"``."""
        high = self.high_for(image_side)
        u = self.unit_suffix()
        if self.high_is_image and image_side is None:
            return f"{self.low:g} <= {self.name} <= the image size{u}"
        if self.integer and self.low == 0 and high == math.inf:
            return f"{self.name} >= 0 (an integer count)"
        if high == math.inf and self.low == -math.inf:
            return f"any finite {self.name}{u}"
        if high == math.inf:
            return f"{self.name} >= {self.low:g}{u}"
        if self.low == -math.inf:
            return f"{self.name} <= {high:g}{u}"
        extra = " (the image size)" if self.high_is_image else (
            f" ({self.high_per_image:g} x the image size)" if self.high_per_image is not None else "")
        return f"{self.low:g} <= {self.name} <= {high:g}{u}{extra}"

    def describe(self) -> str:
        """Help text with unit, range and default, for ``--help``."""
        default = self.default_text or f"{self.default:g}"
        per_kind = [f"{self.default_for(k):g} for kind {k}" for k in KINDS if self.default_for(k) != self.default]
        if per_kind:
            default += " (" + ", ".join(per_kind) + ")"
        return f"{self.help} (default {default})"


@dataclass(frozen=True)
class Choice:
    """A per-batch string parameter of :func:`stimuli.render` (one value for the whole batch)."""

    name: str
    default: str
    choices: tuple[str, ...]
    help: str
    kinds: tuple[str, ...] = KINDS

    def describe(self) -> str:
        return f"{self.help} (default {self.default})"


#: Most combing ticks per stimulus (the tick loop's work grows with the count).
MAX_TICKS = 1000
#: Longest path and tick, in multiples of the image's smaller side.
MAX_REACH = 16

#: Numeric parameters, in the order ``curvebench render`` picks a contact sheet's x axis.
PARAMS: tuple[Param, ...] = (
    Param("orientation", 0.0, "deg",
          "degrees, counter-clockwise on screen, the side the path opens to (0 = +x, 90 = up)", period=360.0),
    Param("curvature", 0.0, "1/px",
          "1/px, 0 = straight line, |curvature| * length <= 2 pi (a full circle); negative opens toward "
          "orientation + 180", suite_low=0.0),
    Param("length", 64.0, "px",
          "arc length in px (of the whole path, also for angles)", low=0.0, high_per_image=MAX_REACH),
    Param("width", 3.0, "px",
          "stroke width in px, 0 = no stroke (fill only)", low=0.0, high_is_image=True),
    Param("rounding", 1.0, "",
          "0 = sharp vertex ... 1 = the arc: the middle fraction of the path that is a circular fillet",
          low=0.0, high=1.0),
    Param("fill", 0.0, "",
          "opacity of the fill, in the stroke colour (the region is set by fill_mode)", low=0.0, high=1.0),
    Param("window", math.inf, "px",
          "side of the square stimulus window centred on the path's midpoint, axis-aligned; outside it "
          "only background is drawn", low=0.0, default_text="inf = the whole image", allow_inf=True),
    Param("ticks", 0.0, "",
          "number of combing ticks across the path, evenly spaced", low=0.0, high=MAX_TICKS, integer=True),
    Param("tick_length", 6.0, "px",
          "tick length in px on each drawn side", low=0.0, high_per_image=MAX_REACH),
)

#: String parameters, one value per batch.
CHOICES: tuple[Choice, ...] = (
    Choice("tick_side", "both", ("in", "out", "both"),
           "side of the combing ticks: in = toward the centre of curvature, out, or both"),
    Choice("fill_mode", "article", ("article", "segment"),
           "article = the concave side of the path (inside the curve's circle, inside an angle's arms) out to "
           "the window's edge, so a line fills half the window; segment = between the path and its chord"),
)

_BY_NAME: Mapping[str, Param] = MappingProxyType({p.name: p for p in PARAMS})
_CHOICE_BY_NAME: Mapping[str, Choice] = MappingProxyType({c.name: c for c in CHOICES})


def param(name: str) -> Param:
    """The declaration of numeric parameter ``name`` (``KeyError`` if none)."""
    return _BY_NAME[name]


def choice(name: str) -> Choice:
    """The declaration of string parameter ``name`` (``KeyError`` if none)."""
    return _CHOICE_BY_NAME[name]


def kind(name: str) -> Kind:
    """The declaration of kind ``name`` (``KeyError`` if none)."""
    for k in KIND_DECLARATIONS:
        if k.name == name:
            return k
    raise KeyError(name)


def defaults(kind_name: str) -> dict[str, float | str]:
    """Every render parameter's default for ``kind_name`` (numbers and choices)."""
    out: dict[str, float | str] = {p.name: p.default_for(kind_name) for p in PARAMS if kind_name in p.kinds}
    out.update({c.name: c.default for c in CHOICES if kind_name in c.kinds})
    return out
