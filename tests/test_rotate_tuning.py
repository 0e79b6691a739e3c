"""rotate-tuning pieces: rotation direction and centring, alignment on known data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import probes
import stimuli
from suites.analysis.rotate import align
from suites.running.rotation_responses import rotated_windows
from suites.analysis.tuning import wrap180


def test_align_recovers_known_preferences() -> None:
    prefs = np.array([10.0, 55.0, 100.0, 190.0, 280.0])
    angles = np.arange(0.0, 360.0, 5.0)
    rng = np.random.default_rng(0)
    # crops of neuron s rotated by a present orientation prefs[s] + a; neuron d responds near prefs[d]
    shown = prefs[:, None, None] + angles[None, None, :] + rng.normal(0, 3, (5, 3, 1))
    resp = np.exp(6 * (np.cos(np.deg2rad(shown[..., None] - prefs[None, None, None, :])) - 1))
    got = align(resp, angles, anchor=prefs[0])
    assert np.max(np.abs(wrap180(got - prefs))) < 3.0, got


def test_rotation_is_counter_clockwise_and_centred() -> None:
    model = probes.load_model("groundtruth")
    plan = model.input_plan(["curves"], 224)
    rf = model.receptive_field("curves", 224)
    row = col = 27
    cx = cy = rf.offset + rf.stride * 27 + 0.5  # continuous centre of unit (27, 27)
    image = stimuli.render("curve", orientation=0.0, curvature=0.05, length=32, width=2, position=(cx, cy), size=224)[0]
    angles = np.array([0.0, 60.0, 90.0])
    windows = rotated_windows(image, (int(rf.offset + rf.stride * row), int(rf.offset + rf.stride * col)), angles, plan)
    assert windows.shape == (3, 3, plan.size, plan.size)
    out = model.probe(windows, ["curves"], plan=plan)["curves"]
    # unit k prefers 30 k degrees: rotating a 0-degree curve by 60 (90) degrees excites unit 2 (3)
    assert out.argmax(dim=1).tolist() == [0, 2, 3]
    # the unrotated window equals the renderer drawing at the plan position directly
    direct = stimuli.render("curve", orientation=0.0, curvature=0.05, length=32, width=2, position=plan.position, size=plan.size)
    assert torch.allclose(windows[0], direct[0], atol=2e-2)


def test_rotation_arguments_are_checked() -> None:
    from probes.images import image_source
    from suites.running.rotation_responses import measure_rotation_responses

    model = probes.load_model("groundtruth")
    src = image_source("builtin", limit=1)
    with pytest.raises(ValueError, match="step"):
        measure_rotation_responses(model, src, "curves", [0, 1], step=0)
    with pytest.raises(ValueError, match="out of range"):
        measure_rotation_responses(model, src, "curves", [0, 99])
    with pytest.raises(ValueError, match="at least 2"):
        measure_rotation_responses(model, src, "curves", [0])
