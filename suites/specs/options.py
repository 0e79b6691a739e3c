"""Run options: the command-line overrides of a suite, as one value.

:class:`RunOptions` is what ``curvebench run`` (and ``demo``, ``bench run``, notebooks)
changes about a suite: model, weights, device, batch size, storage dtype, layers, and
how much of the grid to run (``limit``, ``quick``). It is built once (from argparse,
from keywords, or from a results file's ``run_options`` attribute) and applied to a
:class:`~suites.specs.suite.Suite` with :meth:`RunOptions.apply`.

This module sits below the runner and the results reader: :func:`suite_from_file`
rebuilds a results file's suite from its attributes without importing the runner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from probes.weights_spec import WeightsLike, WeightsSpec
from suites.specs.suite import Suite, load_suite, parse_suite

__all__ = ["RunOptions", "suite_from_file", "load_with_options"]


@dataclass(frozen=True)
class RunOptions:
    """Overrides of a suite's settings; ``None`` keeps the suite's value.

    Attributes:
        model: model id (``"inceptionv1"``, ``"groundtruth"``).
        weights: :class:`~probes.weights_spec.WeightsSpec` (text is parsed on construction).
        device: torch device text (``"auto"``, ``"cpu"``, ``"cuda:1"``).
        batch_size: stimuli per batch.
        storage: on-disk dtype of activations, ``"float32"`` or ``"float16"``.
        layers: layers to probe.
        limit: only the first ``limit`` stimuli of the grid (smoke runs).
        quick: thin every swept axis to at most 12 values.
    """

    model: str | None = None
    weights: WeightsSpec | None = None
    device: str | None = None
    batch_size: int | None = None
    storage: str | None = None
    layers: tuple[str, ...] | None = None
    limit: int | None = None
    quick: bool = False

    def __post_init__(self) -> None:
        if self.weights is not None and not isinstance(self.weights, WeightsSpec):
            object.__setattr__(self, "weights", WeightsSpec.parse(self.weights))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers) or None)
        if self.limit is not None and (isinstance(self.limit, bool) or int(self.limit) < 1):
            raise ValueError(f"limit must be a positive number of stimuli, got {self.limit}")

    @classmethod
    def of(cls, *, model: str | None = None, weights: WeightsLike = None, device: str | None = None,
           batch_size: int | None = None, storage: str | None = None, layers: Any = None,
           limit: int | None = None, quick: bool = False) -> RunOptions:
        """Build from loose keywords (``weights`` text or spec; ``None`` weights keep the suite's)."""
        return cls(model=model, weights=None if weights is None else WeightsSpec.parse(weights), device=device,
                   batch_size=batch_size, storage=storage, layers=tuple(layers) if layers else None,
                   limit=limit, quick=quick)

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def overrides_grid(self) -> bool:
        """True when an option changes which rows or how they are stored (not allowed on resume)."""
        return any(v is not None for v in (self.batch_size, self.storage, self.layers, self.limit)) or self.quick

    def apply(self, suite: Suite) -> Suite:
        """The suite with ``quick`` thinning and the overrides applied (validated by the suite)."""
        s = suite.quick() if self.quick else suite
        return s.with_overrides(model=self.model, weights=self.weights, device=self.device,
                                batch_size=self.batch_size, storage=self.storage,
                                layers=list(self.layers) if self.layers else None)

    def resolved(self, suite: Suite) -> RunOptions:
        """The options as a run uses them: every override filled from the (already applied) suite."""
        return RunOptions(model=suite.model, weights=suite.weights, device=suite.device,
                          batch_size=suite.batch_size, storage=suite.storage, layers=tuple(suite.layers) or None,
                          limit=self.limit, quick=self.quick)

    def to_json(self) -> str:
        """The ``run_options`` attribute of a results file (keys kept stable across versions)."""
        return json.dumps({"model": self.model, "weights": self.weights.text() if self.weights else None,
                           "device": self.device, "batch_size": self.batch_size, "storage": self.storage,
                           "layers": list(self.layers or ()), "limit": self.limit, "quick": self.quick})

    @classmethod
    def from_json(cls, text: str) -> RunOptions:
        """Inverse of :meth:`to_json`."""
        o = json.loads(text)
        return cls(model=o.get("model"), weights=None if o.get("weights") is None else WeightsSpec.parse(o["weights"]),
                   device=o.get("device"), batch_size=o.get("batch_size"), storage=o.get("storage"),
                   layers=tuple(o.get("layers") or ()) or None, limit=o.get("limit"), quick=bool(o.get("quick")))


def load_with_options(suite: Suite | str | Path, options: RunOptions | None = None) -> Suite:
    """Load a suite (by name, path or object) and apply ``options``."""
    s = suite if isinstance(suite, Suite) else load_suite(suite)
    return (options or RunOptions()).apply(s)


def suite_from_file(attrs: Mapping[str, Any]) -> tuple[Suite, RunOptions]:
    """The suite (with its command-line overrides) and the options stored in a results file's attributes."""
    options = RunOptions.from_json(str(attrs["run_options"]))
    base = parse_suite(str(attrs["suite"]), path=str(attrs.get("suite_path", "<results file>")))
    return options.apply(base), options
