"""Parameter grids streamed as batches, never materialised whole.

Convention:
    A grid is the Cartesian product of its axes in C order: the first axis varies
    slowest, the last fastest. Row ``i`` of a sweep is always the same stimulus
    (``numpy.unravel_index(i, shape)``), whatever the batch size, so a resumed run
    continues exactly where the counter says. Values are float64 on the host (they
    become file coordinates) and are cast to the compute dtype only for rendering.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Grid", "GridBatch"]


@dataclass(frozen=True)
class GridBatch:
    """Rows ``start:stop`` of a grid: ``params[name]`` is a float64 array of length ``stop - start``."""

    start: int
    stop: int
    params: dict[str, np.ndarray]

    def __len__(self) -> int:
        return self.stop - self.start


class Grid:
    """A Cartesian parameter grid.

    Args:
        axes: ``(name, values)`` pairs; values are 1-D and non-empty.
    """

    def __init__(self, axes: Sequence[tuple[str, Sequence[float] | np.ndarray]]) -> None:
        names = [n for n, _ in axes]
        if len(set(names)) != len(names):
            raise ValueError(f"grid axes must have distinct names, got {names}")
        self.axes: tuple[tuple[str, np.ndarray], ...] = tuple(
            (n, np.asarray(v, dtype=np.float64).reshape(-1)) for n, v in axes
        )
        for n, v in self.axes:
            if v.size == 0:
                raise ValueError(f"grid axis {n!r} has no values")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(v.size for _, v in self.axes)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    def rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Parameter values of rows ``start:stop`` (clipped to the grid), one float64 array per axis."""
        if start < 0 or stop < start:
            raise ValueError(f"rows: need 0 <= start <= stop, got start={start}, stop={stop}")
        stop = min(stop, self.size)
        index = np.unravel_index(np.arange(start, stop, dtype=np.int64), self.shape)
        return {n: v[i] for (n, v), i in zip(self.axes, index)}

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[GridBatch]:
        """Yield consecutive batches of rows ``start:stop``.

        Batch boundaries are aligned to multiples of ``batch_size`` counted from row 0,
        so a run resumed at any completed row produces the same batches (and so the
        same numerics) as an uninterrupted one.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        stop = self.size if stop is None else min(stop, self.size)
        row = start
        while row < stop:
            end = min((row // batch_size + 1) * batch_size, stop)
            yield GridBatch(row, end, self.rows(row, end))
            row = end
