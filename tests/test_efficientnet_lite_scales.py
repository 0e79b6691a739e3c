"""EfficientNet-Lite1/-Lite2 from Lite0's architecture code: scaling, strict load, pinned sha256, geffnet, ImageNet."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

import probes
from probes import efficientnet as E
from probes.errors import ModelError, WeightsError
from probes.weights import get_weights_entry, read_state_dict, resolve, verify

pytestmark = pytest.mark.usefixtures("one_thread")

VARIANTS = {"efficientnet-lite1": E.LITE1, "efficientnet-lite2": E.LITE2}


def _package(variant: E.LiteVariant):
    return pytest.importorskip(variant.module)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def scaled(request) -> tuple[E.LiteVariant, probes.ProbeModel, dict[str, torch.Tensor]]:
    variant = VARIANTS[request.param]
    _package(variant)
    entry = get_weights_entry(variant.name)
    return variant, probes.load_model(variant.name), read_state_dict(resolve(entry, None), entry)


def test_lite_scaling_rule_gives_the_published_layouts() -> None:
    # rounding to multiples of 8, never below 90%: the EfficientNet rule
    assert [E.round_channels(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]
    assert E.LITE0.stages == E.BASE_STAGES
    assert [s[0] for s in E.LITE1.stages] == [s[0] for s in E.LITE2.stages] == [1, 3, 3, 4, 4, 5, 1]  # ends fixed
    assert [s[5] for s in E.LITE1.stages] == [16, 24, 40, 80, 112, 192, 320]
    assert E.LITE2.stages[0][4] == E.STEM_CHANNELS == 32  # stem fixed
    assert len(E.LITE1.block_specs) == 21 and E.LITE1.channels["head"] == E.LITE2.channels["head"] == 1280


def test_packaged_files_load_strictly_with_their_pinned_sha256(scaled) -> None:
    variant, model, state = scaled
    assert model.meta["weights"] == str(resolve(get_weights_entry(variant.name), None))
    assert model.meta["weights_sha256"] == variant.sha256 and not model.meta["random_weights"]
    assert len(state) == variant.state_keys
    assert sum(p.numel() for p in model.net.parameters()) == variant.parameters
    assert all(E.file_key(E.map_key(k, variant), variant) == k for k in state)
    last = len(variant.block_specs) - 1
    torch.testing.assert_close(model.net.blocks[6][0].depthwise.conv.weight, state[f"_blocks.{last}._depthwise_conv.weight"])
    assert verify(get_weights_entry(variant.name))["sha256"] == variant.sha256


def test_a_tampered_packaged_file_is_refused(tmp_path, monkeypatch) -> None:
    variant = E.LITE1
    package = _package(variant)
    entry = get_weights_entry(variant.name)
    state = read_state_dict(resolve(entry, None), entry)
    state["_fc.bias"] = state["_fc.bias"] + 1e-3  # same keys and shapes, other bytes
    tampered = tmp_path / variant.filename
    torch.save(state, tampered)
    monkeypatch.setattr(getattr(package, variant.model_file), "get_model_file_path", staticmethod(lambda: str(tampered)))
    with pytest.raises(WeightsError, match=f"differs from the pinned {variant.sha256}.*reinstall {variant.package}"):
        probes.load_model(variant.name)
    with pytest.raises(WeightsError, match="differs from the pinned"):
        verify(entry)
    # a user's own file of the right shapes loads (fine-tuned weights), its digest recorded
    own = tmp_path / "mine.pth"
    torch.save(state, own)
    assert probes.load_model(variant.name, weights=own).meta["weights_sha256"] != variant.sha256


def test_a_lite0_file_does_not_fit_lite1(tmp_path) -> None:
    lite0 = get_weights_entry("efficientnet-lite0")
    with pytest.raises(WeightsError, match=r"does not match efficientnet-lite1-77cc7160.*missing keys: _blocks\.16"):
        probes.load_model("efficientnet-lite1", weights=resolve(lite0, None))


def test_matches_geffnet(scaled) -> None:
    geffnet = pytest.importorskip("geffnet")
    variant, model, state = scaled
    ref = getattr(geffnet, f"tf_efficientnet_lite{variant.name[-1]}")(pretrained=False)
    keys = list(ref.state_dict())
    assert len(keys) == len(state)
    ref.load_state_dict({k: state[f] for k, f in zip(keys, state)}, strict=True)
    ref.eval()
    got = {}
    ref.blocks[3][2].act2.register_forward_hook(lambda _m, _i, out: got.setdefault("dw", out.clone()))
    torch.manual_seed(0)
    x = torch.rand(1, 3, 77, 77)  # odd: asymmetric SAME padding; small to stay fast
    with torch.no_grad():
        b = ref((x - 0.5) / 0.5)
    acts = model.probe(x, ["blocks.3.2.depthwise", "logits"], full_map=True, pre_relu=False)
    assert float((acts["logits"] - b).abs().max() / b.abs().max()) <= 1e-5
    torch.testing.assert_close(acts["blocks.3.2.depthwise"], got["dw"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
def test_imagenet_sanity_through_curvebench_probe(name, tmp_path, capsys) -> None:
    from curvebench.cli import main
    from PIL import Image
    from skimage import data

    variant = {**VARIANTS, "efficientnet-lite0": E.LITE0}[name]
    _package(variant)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.coffee()).save(folder / "coffee.png")
    out = tmp_path / "p.h5"
    assert main(["probe", "--model", name, "--layers", "logits", "--images", str(folder), "--size",
                 str(variant.resolution), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    with xr.open_dataset(out) as ds:
        assert int(ds["logits"].values[0].argmax()) == 967  # espresso


def test_models_json_lists_the_three_scales_with_taps(capsys) -> None:
    from curvebench.cli import main

    assert main(["models", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    best = {}
    for name, res in (("efficientnet-lite0", 224), ("efficientnet-lite1", 240), ("efficientnet-lite2", 260)):
        m = models[name]
        assert m["resolution"] == res and m["weights"].startswith(name)
        best[name] = {t["layer"]: t for t in m["taps"]}["blocks.3.2.depthwise"]
        assert best[name]["stride"] == 16 and best[name]["crop"] is not None
    # one more block in stages 1-3 of Lite1/2 (depth 1.1, 1.2 -> 3 repeats): a larger receptive field, same for both
    assert best["efficientnet-lite1"]["rf_size"] == best["efficientnet-lite2"]["rf_size"] > best["efficientnet-lite0"]["rf_size"] == 147
    assert models["efficientnet-lite2"]["channels"]["blocks.3.2.depthwise"] == 528
    assert "blocks.5.4" in models["efficientnet-lite1"]["layers"] and "blocks.5.4" not in models["efficientnet-lite0"]["layers"]


def test_duplicate_registration_is_an_error() -> None:
    from probes.registry import get_entry, register_model

    with pytest.raises(ModelError, match="'efficientnet-lite1' is already registered"):
        register_model(E.model_entry(E.LITE1))
    clone = get_entry("inceptionv1")
    from dataclasses import replace

    with pytest.raises(ModelError, match="weights 'inception5h' already belong"):
        register_model(replace(clone, name="inception-copy"))
    assert "inception-copy" not in [m["name"] for m in probes.list_models()]
