"""Built-in suites render distinct stimuli: no two rows or columns of a sweep draw the same images.

For each suite and each swept axis, every value of that axis is rendered at a few
settings of the other axes (two thirds along and the end of each other axis, so
never only the straight line); two values whose images agree at every setting would be
a repeated row or column. Images are compared through random projections, exact to
float32 rounding for equal images.

Known special case, kept on purpose: within the curvature-0 row of an unfilled suite,
orientations theta and theta + 180 draw the same line. That row is a line at every
orientation (the article's top row); its columns still differ at every other curvature,
so no whole column repeats.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import stimuli
from suites.specs.builtin import builtin_names
from suites.specs.render_args import render_kwargs
from suites.specs.suite import load_suite

SIZE = 80  # holds the 64 px arc with its ticks and window at any orientation


def _features(suite, params: dict[str, np.ndarray], weights: torch.Tensor) -> torch.Tensor:
    n = len(next(iter(params.values())))
    kw = render_kwargs(params, suite.fixed, n)
    images = stimuli.render(suite.kind, size=SIZE, **kw)
    return torch.einsum("bchw,fchw->bf", images, weights)


@pytest.mark.parametrize("name", [n for n in builtin_names()])
def test_no_two_rows_or_columns_render_the_same_images(name: str) -> None:
    suite = load_suite(name)
    gen = torch.Generator().manual_seed(0)
    weights = torch.rand(6, 3, SIZE, SIZE, generator=gen)
    axes = dict(suite.axes)
    for axis, values in axes.items():
        others = {k: v for k, v in axes.items() if k != axis}
        picks = {k: sorted({v[2 * len(v) // 3], v[-1]}) for k, v in others.items()}
        feats = []
        for setting in itertools.product(*picks.values()):
            params = {axis: values}
            params.update({k: np.full(len(values), x) for k, x in zip(picks, setting)})
            feats.append(_features(suite, params, weights))
        f = torch.cat(feats, dim=1)  # (len(values), 6 * settings)
        scale = f.abs().max()
        diff = (f[:, None, :] - f[None, :, :]).abs().amax(dim=-1) / scale
        diff.fill_diagonal_(1.0)
        i, j = np.unravel_index(int(diff.argmin()), diff.shape)
        assert float(diff[i, j]) > 1e-5, f"{name}: {axis} = {values[i]:g} and {values[j]:g} render the same images"


def test_the_check_catches_a_repeated_column() -> None:
    # orientation 0 and 360 (what an inclusive 0..360 sweep would add) render the same images
    suite = load_suite("curves")
    weights = torch.rand(6, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    k = np.full(2, dict(suite.axes)["curvature"][40])
    f = _features(suite, {"orientation": np.array([0.0, 360.0]), "curvature": k}, weights)
    assert float((f[0] - f[1]).abs().max() / f.abs().max()) < 1e-5
