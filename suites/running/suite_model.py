"""The model a suite names, loaded as the suite asks (seeded, its weights), and the digest results files record."""

from __future__ import annotations

from typing import Any

import torch

from suites.specs.suite import Suite

__all__ = ["load_probe_model", "weights_sha"]


def load_probe_model(suite: Suite, device: torch.device) -> Any:
    """Seed torch with the suite's seed (random weights are then reproducible) and load the model."""
    import probes

    suite.weights.check_exists()
    torch.manual_seed(suite.seed)
    return probes.load_model(suite.model, weights=suite.weights, device=device)


def weights_sha(model: Any, suite: Suite) -> str:
    """SHA-256 of the weights ``model`` was built with (its ``meta``, else the suite's file; ``""`` for none)."""
    sha = (getattr(model, "meta", {}) or {}).get("weights_sha256")
    return str(sha) if sha else suite.weights.file_sha256()
