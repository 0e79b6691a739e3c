"""What ``curvebench render`` draws: up to two swept stimulus parameters as a contact sheet's grid.

A :class:`SheetGrid` lays the values out like the article's stimulus strips: orientation
along x (columns) when it is swept, else the first swept option, the other swept option
along y (rows, top to bottom). :func:`sheet_stimuli` turns it into the renderer's keyword
arguments per stimulus (integers checked, colours from RGB or a hue, positions checked
against the image), and :func:`render_chunks` renders them a chunk at a time::

    grid = sheet_grid({"orientation": [0, 90, 180], "curvature": [0.0, 0.05]})
    stim = sheet_stimuli(grid, "curve", (224, 224), SheetColours(fg=(0, 0, 0), bg=(1, 1, 1)))
    for start, stop, images, position in render_chunks("curve", stim, size=224, chunk=64): ...

Values are the renderer's units (degrees, px, 1/px); ``x``/``y`` are the path midpoint in px
from the image's left/top edge; ``fg_hue`` in degrees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stimuli import kinds as _decl
from stimuli.color import hue_to_rgb

__all__ = ["SheetGrid", "SheetColours", "SheetStimuli", "sheet_grid", "sheet_stimuli", "render_chunks"]


@dataclass(frozen=True)
class SheetGrid:
    """Option values (name -> list) and the sheet's layout: ``cols`` values of ``col_key`` by ``rows`` of ``row_key``."""

    values: Mapping[str, Sequence[float]]
    col_key: str | None
    row_key: str | None
    rows: int
    cols: int

    @property
    def n(self) -> int:
        """Stimuli on the sheet (``rows * cols``)."""
        return self.rows * self.cols

    def column(self, key: str) -> torch.Tensor | float | None:
        """One value per stimulus (row-major) of a swept option, the value of a single one, or None if not given."""
        if key not in self.values:
            return None
        v = torch.tensor(list(self.values[key]), dtype=torch.float64)
        if key == self.col_key:
            return v.repeat(self.rows)
        if key == self.row_key:
            return v.repeat_interleave(self.cols)
        return float(v[0])


def sheet_grid(values: Mapping[str, Sequence[float]]) -> SheetGrid:
    """Lay out ``values`` (option -> values, in the options' order): at most two may have several values."""
    swept = [k for k, v in values.items() if len(v) > 1]
    if len(swept) > 2:
        raise ValueError(f"render: at most two options can be swept (a contact sheet), got {len(swept)}: "
                         + ", ".join("--" + k.replace("_", "-") for k in swept))
    col_key = "orientation" if "orientation" in swept else (swept[0] if swept else None)
    row_key = next((k for k in swept if k != col_key), None)
    return SheetGrid(values, col_key, row_key, len(values[row_key]) if row_key else 1,
                     len(values[col_key]) if col_key else 1)


@dataclass(frozen=True)
class SheetColours:
    """Foreground and background RGB in [0, 1]; a swept ``fg_hue`` (option values) replaces ``fg``, and with
    ``bg_hue_offset`` (degrees) the background is that hue plus the offset."""

    fg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bg: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bg_hue_offset: float | None = None


@dataclass(frozen=True)
class SheetStimuli:
    """The renderer's keyword arguments for every stimulus of a sheet (tensors have one row per stimulus)."""

    params: dict[str, Any]
    fg: Any
    bg: Any
    position: torch.Tensor | None
    n: int


def _numeric_params(grid: SheetGrid) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for decl in _decl.PARAMS:
        val = grid.column(decl.name)
        if val is None:
            continue
        if decl.integer:
            bad = [v for v in grid.values[decl.name] if v != round(v)]
            if bad:
                raise ValueError(f"--{decl.name.replace('_', '-')} = {bad[0]:g} is not a whole number: allowed "
                                 f"{decl.allowed()} (for a sweep, choose start:stop:count so every step is whole)")
            val = val.round().long() if isinstance(val, torch.Tensor) else int(round(val))
        params[decl.name] = val
    return params


def _positions(grid: SheetGrid, H: int, W: int) -> torch.Tensor | None:
    """``(n, 2)`` or ``(2,)`` midpoints (x, y) px from the ``x``/``y`` options (the other at the centre), or None."""
    xs, ys = grid.column("x"), grid.column("y")
    if xs is None and ys is None:
        return None
    xs = W / 2 if xs is None else xs
    ys = H / 2 if ys is None else ys
    for key, v, top in (("x", xs, W), ("y", ys, H)):
        v = torch.as_tensor(v, dtype=torch.float64)
        if ((v < 0) | (v > top)).any():
            bad = float(v[(v < 0) | (v > top)].reshape(-1)[0])
            raise ValueError(f"--{key} = {bad:g} px puts the stimulus outside the image: allowed 0 <= {key} <= "
                             f"{top} px (the image {'width' if key == 'x' else 'height'})")
    return torch.stack(torch.broadcast_tensors(torch.as_tensor(xs, dtype=torch.float64),
                                               torch.as_tensor(ys, dtype=torch.float64)), dim=-1)


def sheet_stimuli(grid: SheetGrid, choices: Mapping[str, Any], hw: tuple[int, int],
                  colours: SheetColours) -> SheetStimuli:
    """The renderer's arguments per stimulus of ``grid``; ``choices``: the text options (``tick_side``, ...)."""
    params = _numeric_params(grid)
    params.update(choices)
    fg: Any = colours.fg
    bg: Any = colours.bg
    hue = grid.column("fg_hue")
    if hue is not None:
        fg = hue_to_rgb(hue)
        if colours.bg_hue_offset is not None:
            bg = hue_to_rgb(torch.as_tensor(hue) + colours.bg_hue_offset)
    elif colours.bg_hue_offset is not None:
        raise ValueError("--bg-hue-offset needs --fg-hue")
    return SheetStimuli(params, fg, bg, _positions(grid, *hw), grid.n)


def render_chunks(kind: str, stim: SheetStimuli, size: int | tuple[int, int],
                  chunk: int) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor | None]]:
    """``(start, stop, images (stop - start, 3, H, W), positions or None)`` for ``chunk`` stimuli at a time."""
    import stimuli

    n = stim.n
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)

        def part(v: Any) -> Any:
            return v[start:stop] if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == n else v

        p = part(stim.position) if stim.position is not None else None
        images = stimuli.render(kind, position=p, fg=part(stim.fg), bg=part(stim.bg), size=size,
                                **{k: part(v) for k, v in stim.params.items()})
        yield start, stop, images, p
