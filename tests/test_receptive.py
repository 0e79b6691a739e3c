"""Receptive fields: computed geometry vs one-pixel perturbations, and the exact RF crop."""

from __future__ import annotations

import pytest
import torch

import probes
from probes.receptive import unit_footprint

PROBED = ("conv2d2", "mixed3a", "mixed3b", "mixed4a")


@pytest.fixture(scope="module")
def inception() -> probes.ProbeModel:
    torch.manual_seed(3)
    return probes.load_model("inceptionv1", weights="random", dtype=torch.float64)


def test_design_facts_at_224(inception) -> None:  # type: ignore[no-untyped-def]
    # design.md (measured): centres 4j+3, 8j+7, 8j+7, 16j+15; centre units 27, 13, 13, 6; widths 19, 59, 91, 171
    want = {"conv2d2": (4, 3, 27, 19), "mixed3a": (8, 7, 13, 59), "mixed3b": (8, 7, 13, 91), "mixed4a": (16, 15, 6, 171)}
    for layer, (stride, offset, centre, size) in want.items():
        rf = inception.receptive_field(layer)
        assert (rf.stride, rf.offset, rf.nearest_unit(112.0), rf.size) == (stride, offset, centre, size), layer
        assert rf.centre(centre) == 111.5


@pytest.mark.parametrize("size", [75, 80])
@pytest.mark.parametrize("layer", PROBED)
def test_one_pixel_perturbation_changes_exactly_the_receptive_field(inception, layer: str, size: int) -> None:
    """A large change at pixel (r, c) changes unit (i, j) iff (r, c) lies in its computed receptive field."""
    rf = inception.receptive_field(layer, size)
    gen = torch.Generator().manual_seed(size)
    base = torch.rand(1, 3, size, size, generator=gen, dtype=torch.float64) * 255 - 117
    r, c = size // 2 - 3, size // 3
    bumped = base.clone()
    bumped[0, :, r, c] += 5000.0
    with torch.no_grad():
        tap = f"{layer}_pre_relu"
        a = probes.taps.run_until(inception.net, base, [tap])[tap][0]
        b = probes.taps.run_until(inception.net, bumped, [tap])[tap][0]
    changed = ((a - b).abs() > 1e-9 * a.abs().max()).any(dim=0)

    def inside(j: int, p: int) -> bool:
        lo, hi = rf.span(j)
        return lo <= p <= hi

    predicted = torch.tensor([[inside(i, r) and inside(j, c) for j in range(rf.grid)] for i in range(rf.grid)])
    assert changed.shape == predicted.shape == (rf.grid, rf.grid)
    assert torch.equal(changed, predicted), f"{layer} @ {size}: {changed.sum()} changed vs {predicted.sum()} predicted"


def test_footprint_flags_padding(inception) -> None:  # type: ignore[no-untyped-def]
    g = inception.geometry
    assert unit_footprint(g, "mixed3b", 13, 224) == (66, 156, False)
    assert unit_footprint(g, "mixed3b", 0, 224)[2] is True
    with pytest.raises(ValueError, match="out of range"):
        unit_footprint(g, "mixed3b", 28, 224)


@pytest.mark.parametrize("layers, full", [(("conv2d2",), 224), (("mixed3a",), 224), (("mixed3b",), 224),
                                          (("mixed4a",), 224), (PROBED, 224), (PROBED, 227)])
def test_rf_crop_equals_full_input(inception, layers, full: int) -> None:  # type: ignore[no-untyped-def]
    plan = inception.input_plan(layers, size=full)
    assert plan.exact and plan.size < full
    x = torch.rand(1, 3, full, full, dtype=torch.float64, generator=torch.Generator().manual_seed(full))
    want = inception.probe(x, layers, sliced=False)  # whole maps; unit nearest the centre of the full image
    for sliced in (False, True):  # crop with whole maps, and crop computing only the units' windows
        got = inception.probe(plan.crop(x), layers, plan, sliced=sliced)
        for k in want:
            scale = want[k].abs().max()
            assert float((got[k] - want[k]).abs().max() / scale) <= 1e-4, (k, sliced)
    assert plan.full_units == {layer: (inception.receptive_field(layer, full).nearest_unit(full / 2),) * 2
                               for layer in layers}


def test_rf_crop_float32_and_full_size_input_is_cropped() -> None:
    model = probes.load_model("inceptionv1", weights="random")
    plan = model.input_plan("mixed3b")
    assert (plan.size, plan.position, plan.full_position, plan.units["mixed3b"]) == (94, (45.5, 45.5), (111.5, 111.5), (5, 5))
    x = torch.rand(3, 3, 224, 224)
    want = model.probe(x, "mixed3b", sliced=False)
    got = model.probe(x, "mixed3b", plan)  # full-size images with a plan: cropped internally
    rel = (got["mixed3b_pre_relu"] - want["mixed3b_pre_relu"]).abs().max() / want["mixed3b_pre_relu"].abs().max()
    assert float(rel) <= 1e-4


def test_rendered_stimulus_on_crop_equals_full() -> None:
    stimuli = pytest.importorskip("stimuli")
    if not hasattr(stimuli, "render"):
        pytest.skip("stimuli.render not available")
    model = probes.load_model("inceptionv1", weights="random")
    plan = model.input_plan(["conv2d2", "mixed3b"])
    o = torch.tensor([0.0, 70.0, 200.0])
    small = stimuli.render("curve", orientation=o, curvature=0.03, size=plan.size, position=plan.position)
    big = stimuli.render("curve", orientation=o, curvature=0.03, size=plan.full_size, position=plan.full_position)
    got = model.probe(small, ["conv2d2", "mixed3b"], plan)
    want = model.probe(big, ["conv2d2", "mixed3b"], sliced=False)
    for k in want:
        assert float((got[k] - want[k]).abs().max() / want[k].abs().max()) <= 1e-4, k


def test_no_crop_when_full_units_see_padding(inception) -> None:  # type: ignore[no-untyped-def]
    plan = inception.input_plan("mixed5b")
    assert not plan.exact and plan.size == 224 and plan.crop_origin == (0, 0)
    assert inception.receptive_field("mixed5b").size > 224


def test_plan_errors(inception) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="unknown layer"):
        inception.input_plan("mixed6z")
    with pytest.raises(ValueError, match="size"):
        inception.input_plan("mixed3b", size=0)
    with pytest.raises(ValueError, match="at least one"):
        inception.input_plan([])


@pytest.mark.parametrize("layers, size", [(("conv2d0",), 31), (("conv2d1", "mixed3a"), 224), (("mixed3b",), 224),
                                          (("conv2d2", "mixed4a"), 199), (("mixed4e",), 224)])
def test_sliced_units_equal_whole_maps(inception, layers, size: int) -> None:  # type: ignore[no-untyped-def]
    """Computing only the windows the units read gives the whole-map numbers (float64: ~1e-15)."""
    from probes.sliced import NeedsPadding, probe_units

    x = torch.rand(2, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(size))
    want = inception.probe(x, layers, sliced=False)
    units = {layer: (inception.receptive_field(layer, size).nearest_unit(size / 2),) * 2 for layer in layers}
    if any(unit_footprint(inception.geometry, layer, units[layer][0], size)[2] for layer in layers):
        with pytest.raises(NeedsPadding):
            probe_units(inception.net, inception.transform(x), units)
    else:
        with torch.no_grad():
            got = probe_units(inception.net, inception.transform(x), units)
        for k in want:
            assert float((got[k] - want[k]).abs().max() / want[k].abs().max()) <= 1e-12, k
    got = inception.probe(x, layers)  # default path: sliced where exact, whole maps otherwise
    for k in want:
        assert float((got[k] - want[k]).abs().max() / want[k].abs().max()) <= 1e-12, k


def test_sliced_gradients_equal_whole_map_gradients(inception) -> None:  # type: ignore[no-untyped-def]
    """Stimulus optimisation sees the same gradient through the sliced path as through whole maps."""
    x = torch.rand(1, 3, 70, 70, dtype=torch.float64, generator=torch.Generator().manual_seed(70))
    j = inception.receptive_field("mixed3a", 70).nearest_unit(35.0)
    assert not unit_footprint(inception.geometry, "mixed3a", j, 70)[2]  # so the sliced path is taken
    grads = []
    for sliced in (True, False):
        xi = x.clone().requires_grad_(True)
        inception.probe(xi, "mixed3a", grad=True, sliced=sliced)["mixed3a_pre_relu"][:, :7].sum().backward()
        grads.append(xi.grad)
    assert float(grads[0].abs().max()) > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def test_nearest_units_reads_an_off_centre_stimulus(inception) -> None:  # type: ignore[no-untyped-def]
    position = (60.3, 140.9)  # (x, y): asymmetric, so a row/col swap fails
    units = inception.nearest_units(["conv2d2", "mixed3b"], position, size=224)
    assert units == {"conv2d2": (34, 14), "mixed3b": (17, 7)}  # round((140.9-.5-3)/4), round((60.3-.5-3)/4), ...
    x = torch.rand(1, 3, 224, 224, dtype=torch.float64)
    got = inception.probe(x, ["conv2d2", "mixed3b"], units=units)
    maps = inception.probe(x, ["conv2d2", "mixed3b"], full_map=True)
    for layer, (r, c) in units.items():
        torch.testing.assert_close(got[layer], maps[layer][:, :, r, c])
    with pytest.raises(ValueError, match="not a \\(row, col\\)"):
        inception.probe(x, "mixed3b", units={"mixed3b": (28, 0)})
    with pytest.raises(ValueError, match="either plan or units"):
        inception.probe(x, "mixed3b", inception.input_plan("mixed3b"), units=units)
