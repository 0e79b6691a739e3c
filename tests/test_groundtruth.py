"""The ground-truth model recovers its designed orientations, echoes and invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import probes
from probes import groundtruth as gt


def _numpy_arc(orientation: float, curvature: float, size: int, position: tuple[float, float],
               length: float = 48.0, width: float = 2.0, fg=(0.0, 0.0, 0.0), bg=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Independent drawing: pixels within width/2 of the analytic arc get ``fg`` (box-filtered edge)."""
    t = np.radians(orientation)
    u = np.array([np.cos(t), -np.sin(t)])  # toward the centre of curvature (y down)
    tm = np.array([np.sin(t), np.cos(t)])
    s = np.linspace(-length / 2, length / 2, 2000)
    if curvature == 0:
        pts = s[:, None] * tm
    else:
        r = 1.0 / curvature
        pts = r * np.sin(s / r)[:, None] * tm + r * (1 - np.cos(s / r))[:, None] * u
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    q = np.stack([xx.ravel() - position[0], yy.ravel() - position[1]], 1)
    d = np.sqrt(((q[:, None, :] - pts[None, ::4]) ** 2).sum(-1)).min(1).reshape(size, size)
    cover = np.clip(width / 2 + 0.5 - d, 0, 1)
    img = np.asarray(bg)[:, None, None] * (1 - cover) + np.asarray(fg)[:, None, None] * cover
    return img


def _render(orientations, curvature, size, position, **kw) -> torch.Tensor:
    try:
        import stimuli

        render = stimuli.render
    except (ImportError, AttributeError):
        render = None
    if render is not None:
        return render("curve", orientation=torch.tensor(orientations, dtype=torch.float32), curvature=curvature,
                      position=position, size=size, length=48.0, width=2.0, **kw)
    return torch.tensor(np.stack([_numpy_arc(o, curvature, size, position) for o in orientations])).float()


@pytest.fixture(scope="module")
def model() -> probes.ProbeModel:
    return probes.load_model("groundtruth")


@pytest.fixture(scope="module")
def sweep(model):  # type: ignore[no-untyped-def]
    plan = model.input_plan(["curves"])
    orientations = np.arange(0.0, 360.0, 7.5)
    images = _render(list(orientations), gt.CURVATURE, plan.size, plan.position)
    return orientations, model.probe(images, ["curves"], plan)["curves_pre_relu"].numpy()


def test_meta_documents_units(model) -> None:  # type: ignore[no-untyped-def]
    units = model.meta["units"]
    assert [u["channel"] for u in units] == list(range(12))
    assert [u["preferred_orientation"] for u in units] == [30.0 * k for k in range(12)]
    assert {u["has_echo"] for u in units} == {True, False}
    assert model.meta["weights"] is None and model.meta["weights_sha256"] is None


def test_sweep_recovers_designed_orientations(sweep) -> None:  # type: ignore[no-untyped-def]
    orientations, resp = sweep
    spacing = 30.0
    for k, designed in enumerate(gt.UNIT_ORIENTATIONS):
        peak = orientations[resp[:, k].argmax()]
        err = abs((peak - designed + 180) % 360 - 180)
        assert err <= spacing / 2, f"unit {k}: peak at {peak}, designed {designed}"


def test_echo_units_have_echo_and_others_do_not(sweep) -> None:  # type: ignore[no-untyped-def]
    orientations, resp = sweep
    for k, (designed, echo) in enumerate(zip(gt.UNIT_ORIENTATIONS, gt.ECHO)):
        far = np.abs((orientations - designed - 180 + 180) % 360 - 180) <= 45
        ratio = np.maximum(resp[far, k], 0).max() / resp[:, k].max()
        if echo:
            assert ratio > 0.15, f"unit {k} should echo, ratio {ratio:.2f}"
        else:
            assert ratio < 0.05, f"unit {k} should not echo, ratio {ratio:.2f}"


def test_tuning_broadens_with_curvature(model) -> None:  # type: ignore[no-untyped-def]
    plan = model.input_plan(["curves"])
    orientations = np.arange(-90.0, 91.0, 10.0) + 90.0  # around unit 3 (90 deg)
    widths = []
    for kappa in (0.02, 0.1):
        r = model.probe(_render(list(orientations), kappa, plan.size, plan.position), "curves", plan)["curves"][:, 3]
        widths.append(int((r > r.max() / 2).sum()))
    assert widths[1] > widths[0]


def test_polarity_and_colour_invariance(model) -> None:  # type: ignore[no-untyped-def]
    plan = model.input_plan(["curves"])
    base = _numpy_arc(90.0, gt.CURVATURE, plan.size, plan.position)
    white_on_black = 1.0 - base
    red_on_green = _numpy_arc(90.0, gt.CURVATURE, plan.size, plan.position, fg=(1, 0, 0), bg=(0, 0.8, 0))
    imgs = torch.tensor(np.stack([base, white_on_black, red_on_green])).float()
    r = model.probe(imgs, "curves", plan)["curves"][:, 3]
    assert r.min() > 0.7 * r.max()
    assert torch.isclose(r[0], r[1], rtol=1e-5)


def test_crop_equals_full(model) -> None:  # type: ignore[no-untyped-def]
    x = torch.rand(2, 3, 224, 224)
    plan = model.input_plan(["edges", "curves"])
    full = model.probe(x, ["edges", "curves"])
    crop = model.probe(plan.crop(x), ["edges", "curves"], plan)
    assert plan.size < 64
    for k in full:
        torch.testing.assert_close(crop[k], full[k], rtol=1e-4, atol=1e-6)


def test_groundtruth_takes_no_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        probes.load_model("groundtruth", weights="x.pth")


def test_edge_channels_follow_the_tangent(model) -> None:  # type: ignore[no-untyped-def]
    """A straight line of (renderer) orientation psi has tangent psi + 90: edges channel (psi + 90) / 15 mod 12 wins."""
    plan = model.input_plan(["edges"])
    orientations = [0.0, 30.0, 45.0, 90.0, 120.0, 165.0]
    images = _render(orientations, 0.0, plan.size, plan.position)
    r = model.probe(images, "edges", plan)["edges"]
    for psi, row in zip(orientations, r):
        assert int(row.argmax()) == round(((psi + 90) % 180) / 15) % 12, (psi, row)
