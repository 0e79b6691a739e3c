"""Streaming mean and variance: merging a batch's moments into running ones.

Chan, Golub and LeVeque's pairwise update, in float64, so that no catastrophic
cancellation happens however many values are merged. Used by the runner's running
summaries (:mod:`suites.results.summary`) and by the dataset statistics (:mod:`suites.running.dataset_stats`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["merge_moments"]


def merge_moments(
    count: int, mean: np.ndarray, m2: np.ndarray, batch_count: int, batch_mean: np.ndarray, batch_m2: np.ndarray
) -> tuple[int, np.ndarray, np.ndarray]:
    """Merge a batch's ``(count, mean, M2)`` into running ``(count, mean, M2)``.

    ``M2`` is the sum of squared deviations from the mean, so the population variance is
    ``M2 / count``. Arrays broadcast (one value per channel). Returns new arrays.
    """
    if batch_count == 0:
        return count, mean, m2
    total = count + batch_count
    delta = batch_mean - mean
    new_mean = mean + delta * (batch_count / total)
    new_m2 = m2 + batch_m2 + delta**2 * (count * batch_count / total)
    return total, new_mean, new_m2
