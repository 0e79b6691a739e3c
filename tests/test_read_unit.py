"""Which unit reads a stimulus: the channel's unit nearest it (``Sweep.read_unit="nearest"``, the default).

A position moved by whole strides is read by the neighbouring unit, which sees exactly
what the centre unit sees of the unmoved stimulus (translation by whole strides), so
discover's families depend only on where the stimuli fall inside a stride cell: an
``--offset`` by whole grid steps gives the same phases, the same responses and the same
family; ``read_unit="centre"`` (the earlier reading) does not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from suites.analysis.curve_family import Criteria, classify_all, layer_summary
from suites.discovery.responses import DiscoverError, Sweep, discover_responses
from toy_detectors import LENGTH, SIZE, WIDTH, toy_model, unit_stats


def test_read_positions_wrap_offsets_into_the_stride_cell():
    phases, units = Sweep(positions=16, offset=(8.0, -8.0)).read_positions(16.0)
    assert np.all((phases >= -8) & (phases < 8)) and np.array_equal(units, np.round(units))
    np.testing.assert_allclose(phases + 16 * units, Sweep(positions=16, offset=(8.0, -8.0)).position_offsets(16.0))
    base = {tuple(p) for p in Sweep(positions=16).read_positions(16.0)[0]}
    for off in [(4, 4), (8, 0), (0, -8), (-12, 20)]:  # whole 4 px grid steps: the same phases
        assert {tuple(p) for p in Sweep(positions=16, offset=off).read_positions(16.0)[0]} == base
    assert {tuple(p) for p in Sweep(positions=16, offset=(2, 2)).read_positions(16.0)[0]} != base
    centre = Sweep(positions=16, offset=(8.0, 0.0), read_unit="centre")
    phases, units = centre.read_positions(16.0)
    assert not units.any() and phases[:, 0].max() == 14.0
    with pytest.raises(DiscoverError, match="read_unit must be one of nearest, centre, got 'left'"):
        Sweep(read_unit="left")


def _toy_sweep(**kw) -> Sweep:
    return Sweep(orientations=16, curvatures=5, length=LENGTH, width=WIDTH, size=SIZE, positions=4, **kw)


@pytest.fixture(scope="module")
def toy():
    return toy_model()


def test_offset_by_whole_grid_steps_gives_the_same_family(toy):
    layers = ["pooled", "sampled"]
    stats = unit_stats(toy, layers)
    base = discover_responses(toy, layers, _toy_sweep(), stats=stats)
    moved = discover_responses(toy, layers, _toy_sweep(offset=(8.0, -24.0)), stats=stats)
    for layer in layers:
        np.testing.assert_array_equal(moved[f"{layer}_curve"].values, base[f"{layer}_curve"].values)
    np.testing.assert_array_equal(moved.phase_dx.values, base.phase_dx.values)
    assert sorted(set(moved.unit_dx.values.tolist())) == [0, 1] and set(moved.unit_dy.values.tolist()) == {-2, -1}
    assert "nearest" in moved.attrs["read_unit"] and "nearest unit" in moved.attrs["positions"]
    fb, fm = classify_all(base, Criteria()), classify_all(moved, Criteria())
    for layer in layers:
        sb, sm = layer_summary(fb, layer), layer_summary(fm, layer)
        assert sb["family"] == sm["family"] and sb["detectors_ci"] == sm["detectors_ci"]
    # the centre unit reading the same moved stimuli sees them off its own cell: other responses
    off = discover_responses(toy, layers, _toy_sweep(offset=(8.0, -24.0), read_unit="centre"), stats=stats)
    assert not np.allclose(off["sampled_curve"].values, base["sampled_curve"].values)
    assert off.attrs["read_unit"].startswith("centre")


def test_the_nearest_unit_is_the_neighbouring_unit_of_the_full_input():
    """EfficientNet-Lite0: a stimulus moved 16 px, read by the next unit, gives the centre unit's numbers exactly."""
    import probes
    import stimuli
    from suites.discovery.responses import _nearest_exact, _where

    model = probes.load_model("efficientnet-lite0")
    layer = "blocks.3.2.depthwise"
    sweep = Sweep(offset=(8.0, -8.0))
    where = _where(model, [layer], sweep)
    plan = where[2]
    cx, cy = plan.full_position
    row, col = plan.full_units[layer]

    def read(dx: float, dy: float, unit: tuple[int, int]) -> torch.Tensor:
        img = stimuli.render("curve", orientation=torch.tensor([30.0, 200.0]), curvature=torch.tensor([0.03, 0.0]),
                             length=64.0, width=3.0, size=224, position=torch.tensor([[cx + dx, cy + dy]] * 2))
        return model.probe(img, [layer], units={layer: unit}, pre_relu=True)[f"{layer}_pre_relu"]

    centre = read(-4.0, 6.0, (row, col))
    assert float(centre.abs().max()) > 1.0
    torch.testing.assert_close(read(12.0, 6.0, (row, col + 1)), centre, rtol=0, atol=1e-6)
    torch.testing.assert_close(read(-4.0, -10.0, (row - 1, col)), centre, rtol=0, atol=1e-6)
    _, units = sweep.read_positions(where[5])
    assert _nearest_exact(model, [layer], where, units) is True
    # stage 4's receptive fields exceed the 224 px input: the centre unit reads padding, its neighbours differently
    deep = "blocks.4.1.depthwise"
    deep_where = _where(model, [deep], sweep)
    assert _nearest_exact(model, [deep], deep_where, sweep.read_positions(deep_where[5])[1]) is False
