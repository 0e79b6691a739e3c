"""InceptionV1 vs an independent implementation (torch-lucent 0.1.8), TF LRN, SAME padding, taps."""

from __future__ import annotations

import copy
import sys
import types

import numpy as np
import pytest
import torch

import probes
from probes.inception import CHANNELS, LAYERS, LRN, NUM_PARAMETERS, NUM_STATE_KEYS, InceptionV1Net, max_pool_same

PROBED = ("conv2d2", "mixed3a", "mixed3b", "mixed4a")


def _lucent_class():  # type: ignore[no-untyped-def]
    """Lucent's InceptionV1 class; a stub stands in for torchvision, which lucent imports but we do not need."""
    stubbed = []
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            tv = types.ModuleType("torchvision")
            tvm = types.ModuleType("torchvision.models")
            tvm.__all__ = []  # type: ignore[attr-defined]
            tv.models = tvm  # type: ignore[attr-defined]
            sys.modules["torchvision"] = tv
            sys.modules["torchvision.models"] = tvm
            stubbed = ["torchvision", "torchvision.models"]
    try:
        module = pytest.importorskip("lucent.modelzoo.inceptionv1.InceptionV1")
    finally:
        for name in stubbed:  # the stub must not leak into other tests
            sys.modules.pop(name, None)
    return module.InceptionV1


class _Stop(Exception):
    pass


def _lucent_taps(ref: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pre/post-ReLU of the probed layers from lucent, via hooks on its ReLU and concat modules."""
    out: dict[str, torch.Tensor] = {}
    branch_pre: dict[str, torch.Tensor] = {}
    handles = []

    def relu_hook(name):  # type: ignore[no-untyped-def]
        def hook(_m, inp, outp):  # type: ignore[no-untyped-def]
            if name == "conv2d2":
                out["conv2d2_pre_relu"], out["conv2d2"] = inp[0], outp
            else:
                branch_pre[name] = inp[0]
        return hook

    def cat_hook(name):  # type: ignore[no-untyped-def]
        def hook(_m, _inp, outp):  # type: ignore[no-untyped-def]
            out[name] = outp
            out[f"{name}_pre_relu"] = torch.cat(
                [branch_pre[f"{name}_{b}"] for b in ("1x1", "3x3", "5x5", "pool_reduce")], dim=1)
            if name == "mixed4a":
                raise _Stop
        return hook

    mods = dict(ref.named_modules())
    handles.append(mods["conv2d2"].register_forward_hook(relu_hook("conv2d2")))
    for layer in PROBED[1:]:
        for b in ("1x1", "3x3", "5x5", "pool_reduce"):
            handles.append(mods[f"{layer}_{b}"].register_forward_hook(relu_hook(f"{layer}_{b}")))
        handles.append(mods[layer].register_forward_hook(cat_hook(layer)))
    try:
        ref(x)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def lucent_pair():  # type: ignore[no-untyped-def]
    cls = _lucent_class()
    torch.manual_seed(1)
    ref = cls(pretrained=False, redirected_ReLU=False).double().eval()
    # ours switched to Lucent's LRN (size 9, alpha ~1e-4 averaged, k 1); TF values tested below
    net = InceptionV1Net(lrn=LRN(depth_radius=4, alpha=9.99999974738e-05 / 9, beta=0.5, bias=1.0)).double().eval()
    net.load_state_dict(ref.state_dict(), strict=True)
    return ref, net


@pytest.mark.parametrize("size", [224, 256])
def test_matches_lucent(lucent_pair, size: int) -> None:  # type: ignore[no-untyped-def]
    ref, net = lucent_pair
    model = probes.ProbeModel(net, name="test", layers=LAYERS, channels=CHANNELS,
                              transform=probes.InputTransform(255.0, -117.0), geometry=None)
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size), dtype=torch.float64)
    with torch.no_grad():
        want = _lucent_taps(ref, images * 255 - 117)
    got = model.probe(images, list(PROBED), full_map=True)
    errors = {k: _rel(got[k], want[k]) for k in want}
    assert set(errors) == {k for layer in PROBED for k in (layer, f"{layer}_pre_relu")}
    assert max(errors.values()) <= 1e-12, errors  # measured: at most 1.9e-15 (seeds 1, 2; 224 and 256 px)
    # and they are not trivially zero
    assert all(float(want[k].abs().max()) > 0 for k in want)


def test_matches_lucent_bit_for_bit_in_float32(lucent_pair) -> None:  # type: ignore[no-untyped-def]
    """docs/probes.md: in float32 the two networks give identical outputs (same ops in the same order)."""
    ref, net = lucent_pair
    ref32, net32 = copy.deepcopy(ref).float(), copy.deepcopy(net).float()
    model = probes.ProbeModel(net32, name="test", layers=LAYERS, channels=CHANNELS,
                              transform=probes.InputTransform(255.0, -117.0), geometry=None)
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(224))
    with torch.no_grad():
        want = _lucent_taps(ref32, images * 255 - 117)
    got = model.probe(images, list(PROBED), full_map=True)
    assert all(got[k].dtype == torch.float32 and torch.equal(got[k], want[k]) for k in want)


def test_tf_lrn_differs_from_lucent(lucent_pair) -> None:  # type: ignore[no-untyped-def]
    """Negative control: with its default (TF) LRN our network must differ from Lucent's."""
    ref, net = lucent_pair
    tf_net = InceptionV1Net().double().eval()
    tf_net.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64) * 255 - 117
    with torch.no_grad():
        want = _lucent_taps(ref, x)["conv2d2"]
        assert _rel(tf_net(x, until="conv2d2"), want) > 1e-3
        assert _rel(net(x, until="conv2d2"), want) < 1e-12


def test_tf_lrn_matches_formula() -> None:
    """TF: sqr_sum[c] = sum_{c'=c-5..c+5} x[c']^2; out = x / (2 + 1e-4 * sqr_sum) ** 0.5."""
    x = torch.randn(2, 32, 3, 4, dtype=torch.float64) * 50
    want = torch.empty_like(x)
    for c in range(32):
        sq = (x[:, max(c - 5, 0): c + 6] ** 2).sum(dim=1)
        want[:, c] = x[:, c] / (2.0 + 1e-4 * sq) ** 0.5
    torch.testing.assert_close(LRN()(x), want, rtol=1e-12, atol=0)
    assert InceptionV1Net().lrn == LRN(5, 1e-4, 0.5, 2.0)


@pytest.mark.parametrize("n, k, s, pads", [(224, 7, 2, (2, 3)), (225, 7, 2, (3, 3)), (112, 3, 2, (0, 1)),
                                           (111, 3, 2, (1, 1)), (14, 3, 1, (1, 1))])
def test_same_padding(n: int, k: int, s: int, pads: tuple[int, int]) -> None:
    # expected values: TF's rule out = ceil(n/s), pad = (out-1)*s + k - n, before = pad // 2
    from probes.receptive import same_pads

    assert same_pads((n, n), k, s)[:2] == pads


def test_max_pool_same_ignores_padding() -> None:
    x = -torch.ones(1, 1, 4, 4)  # all negative: zero padding would win, -inf padding must not
    assert float(max_pool_same(x, 3, 2).max()) == -1.0
    assert max_pool_same(torch.zeros(1, 1, 7, 7), 3, 2).shape[-1] == 4


def test_odd_sizes_run_and_match_geometry() -> None:
    net = InceptionV1Net().eval()
    model = probes.ProbeModel(net, name="t", layers=LAYERS, channels=CHANNELS,
                              transform=probes.InputTransform(255.0, -117.0), geometry=probes.inception.GEOMETRY)
    out = model.probe(torch.rand(1, 3, 101, 99), ["conv2d2", "mixed3b"], full_map=True)
    assert out["mixed3b"].shape[-2:] == (model.receptive_field("mixed3b", 101).grid,
                                         model.receptive_field("mixed3b", 99).grid)


def test_state_dict_facts() -> None:
    net = InceptionV1Net()
    sd = net.state_dict()
    assert len(sd) == NUM_STATE_KEYS == 116
    assert sum(v.numel() for v in sd.values()) == NUM_PARAMETERS == 7_066_380
    assert sd["mixed3b_5x5_pre_relu_conv.weight"].shape == (96, 32, 5, 5)
    assert [CHANNELS[k] for k in PROBED] == [192, 256, 480, 508]


def test_every_tap_is_a_named_submodule_and_hooks_are_removed() -> None:
    m = probes.load_model("inceptionv1", weights="random")
    names = dict(m.net.named_modules())
    for layer in m.layers:
        assert layer in names and f"{layer}_pre_relu" in names
    m.probe(torch.rand(1, 3, 64, 64), ["conv2d2", "mixed3a"])
    assert all(not mod._forward_hooks for mod in m.net.modules())


def test_forward_stops_at_deepest_tap() -> None:
    m = probes.load_model("inceptionv1", weights="random")
    ran = []
    h = m.net.mixed3b_pre_relu.register_forward_hook(lambda *a: ran.append("mixed3b"))
    try:
        m.probe(torch.rand(1, 3, 64, 64), "mixed3a", sliced=False)
    finally:
        h.remove()
    assert ran == []


def test_mixed_pre_relu_is_branch_concat() -> None:
    m = probes.load_model("inceptionv1", weights="random")
    out = m.probe(torch.rand(1, 3, 64, 64), "mixed3a", full_map=True)
    torch.testing.assert_close(out["mixed3a"], out["mixed3a_pre_relu"].clamp(min=0))
    assert out["mixed3a"].shape[1] == 256


def test_input_transform_belongs_to_the_weights_entry() -> None:
    m = probes.load_model("inceptionv1", weights="random")
    assert m.meta["input_transform"]["scale"] == 255.0 and m.meta["input_transform"]["shift"] == -117.0
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        want = m.net(x * 255 - 117, until="conv2d0")
    torch.testing.assert_close(m.probe(x, "conv2d0", full_map=True)["conv2d0"], want)


def test_grad_flows_to_input_when_requested() -> None:
    m = probes.load_model("inceptionv1", weights="random")
    x = torch.rand(1, 3, 40, 40, requires_grad=True)
    out = m.probe(x, "conv2d2", grad=True)["conv2d2_pre_relu"].sum()
    out.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert not m.probe(x, "conv2d2")["conv2d2"].requires_grad


@pytest.mark.parametrize("bad, match", [
    (torch.rand(3, 32, 32), "shape"),
    (torch.rand(1, 1, 32, 32), "shape"),
    (torch.rand(1, 3, 32, 32) + 1, r"\[0, 1\]"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.int64), "floating"),
    (np.zeros((1, 3, 32, 32)), "tensor"),
])
def test_bad_images(bad, match: str) -> None:  # type: ignore[no-untyped-def]
    m = probes.load_model("inceptionv1", weights="random")
    with pytest.raises(ValueError, match=match):
        m.probe(bad, "conv2d0")


def test_bad_layer_and_plan() -> None:
    m = probes.load_model("inceptionv1", weights="random")
    with pytest.raises(ValueError, match="mixed9z"):
        m.probe(torch.rand(1, 3, 32, 32), "mixed9z")
    plan = m.input_plan("mixed3b")
    with pytest.raises(ValueError, match="plan"):
        m.probe(torch.rand(1, 3, 100, 100), "mixed3b", plan)
    with pytest.raises(ValueError, match="conv2d2"):
        m.probe(torch.rand(1, 3, plan.size, plan.size), "conv2d2", plan)
