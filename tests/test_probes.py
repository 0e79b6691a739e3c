"""Public probes API: registry, families, CLI listing, wrapping arbitrary modules, hooks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import probes
from probes.taps import capture, run_until
from curvebench.cli import main as cli


def test_list_models_and_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    names = [m["name"] for m in probes.list_models()]
    assert {"inceptionv1", "groundtruth"} <= set(names)
    assert cli(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["inceptionv1"]["channels"]["mixed3b"] == 480
    assert listed["inceptionv1"]["layers"][:3] == ["conv2d0", "conv2d1", "conv2d2"]
    units = listed["groundtruth"]["units"]
    assert [u["preferred_orientation"] for u in units] == [30.0 * k for k in range(12)]
    assert cli(["models"]) == 0
    assert "groundtruth" in capsys.readouterr().out


def test_load_model_errors() -> None:
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        probes.load_model("vgg")
    with pytest.raises(ValueError, match="dtype"):
        probes.load_model("groundtruth", dtype=torch.int32)
    with pytest.raises(ValueError, match="device"):
        probes.load_model("groundtruth", device="nonsense")


def test_model_description() -> None:
    m = probes.load_model("inceptionv1", weights="random")
    assert m.layers == ["conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a", "mixed4b", "mixed4c",
                        "mixed4d", "mixed4e", "mixed5a", "mixed5b"]
    assert [m.num_channels(k) for k in ("conv2d2", "mixed3a", "mixed3b", "mixed4a", "mixed5b")] == [192, 256, 480, 508, 1024]
    assert m.meta["weights"] is None and m.meta["weights_sha256"] is None and m.meta["random_weights"]
    with pytest.raises(ValueError, match="unknown layer"):
        m.num_channels("fc")


def test_families() -> None:
    assert list(probes.families["mixed3b"])[:3] == [379, 406, 385]
    assert len(probes.families["conv2d2"]) == 11 and len(probes.families["mixed4a"]) == 14
    f = probes.get_family("inceptionv1", "3b")
    assert f is probes.families["mixed3b"] and f.peaks()[379] == 243 and f.convention == "article"
    gt = probes.get_family("groundtruth", "curves")
    assert gt.convention == "renderer" and gt.peaks()[3] == 90.0
    with pytest.raises(ValueError, match="no curve family 'mixed5b'"):
        probes.get_family("inceptionv1", "mixed5b")
    with pytest.raises(ValueError, match="no curve families for model 'vgg'"):
        probes.get_family("vgg", "3b")
    m = probes.load_model("inceptionv1", weights="random")
    for fam in probes.families.values():
        if fam.model == "inceptionv1":
            assert max(fam) < m.num_channels(fam.layer)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, stride=2)
        self.act = nn.ReLU()
        self.deep = nn.Conv2d(5, 7, 3)
        self.deep_act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deep_act(self.deep(self.act(self.conv(x))))


def test_wrap_module_probes_any_network() -> None:
    net = _Tiny()
    m = probes.wrap_module(net, {"c1": "act", "c2": "deep_act"}, pre_relu={"c1": "conv"},
                           transform=probes.InputTransform(2.0, -1.0, "[-1, 1]"))
    assert m.num_channels("c2") == 7
    x = torch.rand(2, 3, 33, 33)
    out = m.probe(x, ["c1", "c2"], full_map=True)
    assert set(out) == {"c1", "c1_pre_relu", "c2"}
    with torch.no_grad():
        torch.testing.assert_close(out["c1_pre_relu"], net.conv(x * 2 - 1))
    # c1 unit j reads pixels 2j..2j+2 (centre 2j + 1.5): units 7 and 8 tie for the centre 16.5; ties go low
    centre = m.probe(x, "c1")["c1"]
    torch.testing.assert_close(centre, out["c1"][:, :, 7, 7])
    assert m.receptive_field("c1", 33).centre(7) == 15.5
    plan = m.input_plan("c1", 33)  # measured geometry: no crop, the centre unit
    assert not plan.exact and plan.units["c1"] == (7, 7)
    with pytest.raises(ValueError, match="no submodule 'nope'"):
        probes.wrap_module(net, ["nope"])


def test_torchvision_googlenet_example() -> None:
    tv = pytest.importorskip("torchvision")
    if not hasattr(tv, "models") or not hasattr(tv.models, "googlenet"):
        pytest.skip("torchvision stub without models")
    net = tv.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    m = probes.wrap_module(net, ["inception3a", "inception3b"], name="googlenet")
    out = m.probe(torch.rand(1, 3, 224, 224), "inception3b")
    assert out["inception3b"].shape == (1, 480)


def test_hooks_removed_even_on_error() -> None:
    net = _Tiny()
    with pytest.raises(RuntimeError):
        with capture(net, ["act"]):
            net(torch.rand(1, 3, 9, 9))
            raise RuntimeError("boom")
    assert all(not mod._forward_hooks for mod in net.modules())
    with pytest.raises(ValueError, match="not a submodule"):
        run_until(net, torch.rand(1, 3, 9, 9), ["missing"])


def test_probe_casts_images_to_model_dtype() -> None:
    m = probes.load_model("groundtruth", dtype=torch.float64)
    out = m.probe(torch.rand(2, 3, 60, 60, dtype=torch.float32), "curves")
    assert out["curves"].dtype == torch.float64 and out["curves"].shape == (2, 12)


def test_bench_probe_report_shape(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from curvebench.benches.probe import bench_probe

    # cheap configuration: the default (mixed3b crop, four layers) is what `curvebench bench probe` runs
    rep = bench_probe("inceptionv1", batch=1, repeats=1, warmup=0, layers=("conv2d0",), crop_layer="conv2d0",
                      options=("channels_last",), full_network=False, progress=False)
    assert rep["rf_crop"]["crop_size"] == 8 and rep["rf_crop"]["exact"]
    assert rep["rf_crop_speedup_conv2d0"] > 0 and rep["rf_crop"]["sliced_full_input_speedup"] > 0
    assert set(rep["truncated"]) == {"conv2d0"}
    assert "full" in rep["options"]["channels_last"] and rep["weights"] == "random"
    out = tmp_path / "b.json"
    assert cli(["bench", "probe", "--model", "groundtruth", "--batch", "1", "--repeats", "1", "--quiet",
                "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert "rf_crop_speedup_curves" in rep and rep["truncated"]["curves"]["speedup_vs_full"] > 0
    with pytest.raises(ValueError, match="repeats"):
        bench_probe("groundtruth", repeats=0)


def test_input_transform_builds_its_tensors_once_per_device_and_dtype(monkeypatch) -> None:
    t = probes.InputTransform((2.0, 0.5, 255.0), (-1.0, 0.25, -117.0), "per channel")
    x = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    want = x * torch.tensor([2.0, 0.5, 255.0], dtype=torch.float64).view(1, 3, 1, 1) \
        + torch.tensor([-1.0, 0.25, -117.0], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(t(x), want, rtol=0, atol=0)
    calls = {"n": 0}
    real = torch.as_tensor

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "as_tensor", counting)
    for _ in range(3):
        torch.testing.assert_close(t(x), want, rtol=0, atol=0)
    assert calls["n"] == 0  # float64 on this device: built by the first call, reused since
    y = x.float()
    torch.testing.assert_close(t(y), y * torch.tensor([2.0, 0.5, 255.0]).view(1, 3, 1, 1)
                               + torch.tensor([-1.0, 0.25, -117.0]).view(1, 3, 1, 1), rtol=0, atol=0)
    t(y)
    assert calls["n"] == 2  # float32: one scale and one shift tensor, once
    assert t == probes.InputTransform((2.0, 0.5, 255.0), (-1.0, 0.25, -117.0), "per channel")
