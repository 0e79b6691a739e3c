"""Running per-channel summaries for sweeps too large to keep every activation.

For each data variable ``v`` with dims ``(stimulus, C)`` the summary keeps, over all
rows seen so far: ``v_mean``, ``v_std`` (population, ddof=0), ``v_max``, ``v_m2``
(sum of squared deviations, kept so a resumed run continues exactly), and the
``top_k`` largest values with their row numbers, ``v_top_value`` and
``v_top_stimulus`` with dims ``(rank, C)`` (rank 0 = largest; ties keep the earlier
row). Statistics are float64 and merged batch by batch with Chan et al.'s parallel
update, so they do not depend on how many batches came before a resume.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from suites.results.moments import merge_moments

__all__ = ["RunningSummary", "summary_names"]

_FIELDS = ("mean", "std", "max", "m2", "top_value", "top_stimulus")


def summary_names(var: str) -> dict[str, str]:
    """Dataset names of the summary of variable ``var``."""
    return {f: f"{var}_{f}" for f in _FIELDS}


class RunningSummary:
    """Per-channel running statistics of one ``(rows, C)`` variable."""

    def __init__(self, channels: int, top_k: int) -> None:
        self.k = int(top_k)
        self.count = 0
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)
        self.max = np.full(channels, -np.inf)
        self.top_value = np.full((self.k, channels), -np.inf)
        self.top_stimulus = np.full((self.k, channels), -1, dtype=np.int64)

    def update(self, values: np.ndarray, first_row: int) -> None:
        """Add rows ``first_row ... first_row + len(values) - 1``."""
        x = np.asarray(values, dtype=np.float64)
        n = x.shape[0]
        if n == 0:
            return
        bmean = x.mean(axis=0)
        self.count, self.mean, self.m2 = merge_moments(self.count, self.mean, self.m2, n, bmean,
                                                       ((x - bmean) ** 2).sum(axis=0))
        self.max = np.maximum(self.max, x.max(axis=0))
        rows = np.broadcast_to(np.arange(first_row, first_row + n, dtype=np.int64)[:, None], x.shape)
        vals = np.concatenate([self.top_value, x], axis=0)
        idx = np.concatenate([self.top_stimulus, rows], axis=0)
        # stable sort on (-value, row): largest first, earlier row wins a tie
        order = np.lexsort((idx, -vals), axis=0)[: self.k]
        self.top_value = np.take_along_axis(vals, order, axis=0)
        self.top_stimulus = np.take_along_axis(idx, order, axis=0)

    def merge(self, other: RunningSummary) -> None:
        """Add another summary's rows (e.g. another shard of the grid); same result as one pass up to rounding."""
        self.count, self.mean, self.m2 = merge_moments(self.count, self.mean, self.m2, other.count, other.mean,
                                                       other.m2)
        self.max = np.maximum(self.max, other.max)
        vals = np.concatenate([self.top_value, other.top_value], axis=0)
        idx = np.concatenate([self.top_stimulus, other.top_stimulus], axis=0)
        unused = idx < 0  # empty slots (-inf, row -1) sort last
        order = np.lexsort((np.where(unused, np.iinfo(np.int64).max, idx), -vals), axis=0)[: self.k]
        self.top_value = np.take_along_axis(vals, order, axis=0)
        self.top_stimulus = np.take_along_axis(idx, order, axis=0)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count) if self.count else np.full_like(self.mean, np.nan)

    def arrays(self, var: str) -> dict[str, np.ndarray]:
        """Current state as ``{dataset name: array}`` for the writer."""
        names = summary_names(var)
        return {
            names["mean"]: self.mean if self.count else np.full_like(self.mean, np.nan),
            names["std"]: self.std,
            names["max"]: self.max,
            names["m2"]: self.m2,
            names["top_value"]: self.top_value,
            names["top_stimulus"]: self.top_stimulus,
        }

    @classmethod
    def restore(cls, var: str, stored: Mapping[str, np.ndarray], count: int, top_k: int) -> RunningSummary:
        """Rebuild the state written by :meth:`arrays` after ``count`` rows."""
        names = summary_names(var)
        s = cls(len(stored[names["mean"]]), top_k)
        s.count = int(count)
        if count:
            s.mean = np.asarray(stored[names["mean"]], dtype=np.float64)
            s.m2 = np.asarray(stored[names["m2"]], dtype=np.float64)
            s.max = np.asarray(stored[names["max"]], dtype=np.float64)
            s.top_value = np.asarray(stored[names["top_value"]], dtype=np.float64)
            s.top_stimulus = np.asarray(stored[names["top_stimulus"]], dtype=np.int64)
        return s
