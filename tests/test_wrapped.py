"""Any torch model (``module.path:factory``): measured geometry, the centre unit, input transforms, bad input."""

from __future__ import annotations

import pytest
import torch

import probes
from probes.base import parse_input_transform
from probes.errors import LayerError, ModelError, WeightsError
from probes.receptive import receptive_field

import toy_nets  # tests/toy_nets.py (pytest puts tests/ on sys.path)


@pytest.mark.parametrize("size", [224, 225, 64, 63])
def test_measured_geometry_equals_the_analytic_one(size: int) -> None:
    m = probes.load_model("toy_nets:tf_same", layers=["c1", "c2", "c3", "c4"])
    assert m.geometry is None and m.measure_geometry
    for layer in ("c1", "c2", "c3", "c4"):
        measured = m.receptive_field(layer, size)
        expected = receptive_field(toy_nets.TFSame.GEOMETRY, layer, size)
        assert measured == expected, (layer, size)


@pytest.mark.parametrize("size, even_map", [(224, True), (225, False)])
def test_centre_unit_is_nearest_the_stimulus_not_the_middle_index(size: int, even_map: bool) -> None:
    m = probes.load_model("toy_nets:tf_same")
    rf = receptive_field(toy_nets.TFSame.GEOMETRY, "c4", size)
    assert (rf.grid % 2 == 0) == even_map
    # the unit whose receptive-field centre is nearest the image centre, by brute force over the analytic centres
    best = min(range(rf.grid), key=lambda j: (abs(rf.centre(j) - size / 2), j))
    if even_map:
        assert best == rf.grid // 2 - 1  # 224 px: unit 6 at 111.5 px; the middle index 7 sits at 127.5 px
        assert rf.centre(rf.grid // 2) - size / 2 == 15.5
    x = torch.rand(2, 3, size, size)
    maps = m.probe(x, "c4", full_map=True)["c4"]
    centre = m.probe(x, "c4")["c4"]
    torch.testing.assert_close(centre, maps[:, :, best, best], rtol=0, atol=0)
    assert m.nearest_units("c4", (size / 2, size / 2), size) == {"c4": (best, best)}
    plan = m.input_plan("c4", size)
    assert not plan.exact and plan.units["c4"] == (best, best) and plan.size == size
    # a stimulus drawn elsewhere is read by the unit centred nearest it
    far = m.nearest_units("c4", (rf.centre(2) + 3, rf.centre(9) - 2), size)
    assert far == {"c4": (9, 2)}


@pytest.mark.parametrize("size", [64, 63])
def test_measured_geometry_of_symmetric_padding_and_max_pool(size: int) -> None:
    m = probes.load_model("toy_nets:torch_pad", layers=["features.0", "features.2", "features.4", "fc"])
    # by hand: conv 5/2 pad 2 -> centres 2i, RF 5; max-pool 3/2 pad 1 -> 4i, RF 9; conv 3/1 pad 1 -> 4i, RF 17
    for layer, stride, size_rf in (("features.0", 2, 5), ("features.2", 4, 9), ("features.4", 4, 17)):
        rf = m.receptive_field(layer, size)
        assert (rf.stride, rf.size, rf.offset) == (stride, size_rf, 0.0), layer
    assert m.transform.description.startswith("pm1")  # the module's own input_transform attribute
    out = m.probe(torch.rand(1, 3, size, size), ["features.4", "fc"])
    assert out["features.4"].shape == (1, 8) and out["fc"].shape == (1, 3)
    assert m.num_channels("features.4") == 8


def test_input_transform_forms() -> None:
    assert parse_input_transform("identity").scale == 1.0
    t = parse_input_transform("affine:255:-123.7,-116.3,-103.5")
    torch.testing.assert_close(t(torch.ones(1, 3, 1, 1)).flatten(), torch.tensor([131.3, 138.7, 151.5]))
    torch.testing.assert_close(parse_input_transform("imagenet")(torch.full((1, 3, 1, 1), 0.485))[0, 0, 0, 0],
                               torch.tensor(0.0))
    for bad in ("nope", "affine:1", "affine:1,2:0", "affine:x:1"):
        with pytest.raises(ValueError, match="affine|identity"):
            parse_input_transform(bad)
    m = probes.load_model("toy_nets:tf_same", input_transform="affine:2:-1")
    assert m.transform.scale == 2.0
    with pytest.raises(ModelError, match="--input-transform is for 'module:factory' models"):
        probes.load_model("groundtruth", input_transform="imagenet")


def test_weights_for_a_factory(tmp_path) -> None:
    m = probes.load_model("toy_nets:tf_same")
    path = tmp_path / "toy.pth"
    torch.save(m.net.state_dict(), path)
    loaded = probes.load_model("toy_nets:tf_same", weights=path)
    torch.testing.assert_close(loaded.net.convs[0].weight, m.net.convs[0].weight)
    assert loaded.meta["weights_sha256"] and loaded.meta["weights"] == str(path)
    torch.manual_seed(5)
    control = probes.load_model("toy_nets:tf_same", weights="random")
    assert control.meta["random_weights"] and not torch.equal(control.net.convs[0].weight, m.net.convs[0].weight)
    torch.save({"convs.0.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "part.pth")
    with pytest.raises(WeightsError, match="does not fit toy_nets:tf_same.*Missing key"):
        probes.load_model("toy_nets:tf_same", weights=tmp_path / "part.pth")


@pytest.mark.parametrize("spec, message", [
    ("vgg16", r"unknown model 'vgg16'; known: .*efficientnet-lite0.*module\.path:factory"),
    ("no_such_module_xyz:make", r"cannot import module 'no_such_module_xyz'"),
    ("toy_nets:nothing", r"module 'toy_nets' has no attribute 'nothing'"),
    ("toy_nets:NOT_CALLABLE", r"'NOT_CALLABLE' is a int, not a callable factory"),
    ("toy_nets:not_a_module", r"not_a_module\(\) returned a dict, not a torch\.nn\.Module"),
    ("toy_nets:broken", r"broken\(\) raised RuntimeError: cannot build"),
    ("toy nets:x", r"is not 'module\.path:factory'"),
])
def test_bad_models_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        probes.load_model(spec)


def test_bad_layers_are_one_line_errors() -> None:
    with pytest.raises(LayerError, match=r"no submodule 'convs\.9'.*allowed \(named_modules\(\)\): convs, convs\.0"):
        probes.load_model("toy_nets:tf_same", layers=["convs.9"])
    m = probes.load_model("toy_nets:tf_same")
    with pytest.raises(LayerError, match=r"unknown layer 'c5'; allowed: convs, convs\.0, .*c4"):
        m.probe(torch.rand(1, 3, 32, 32), "c5")
    # a global-pool output has no units to put under a stimulus
    pooled = probes.load_model("toy_nets:torch_pad")
    with pytest.raises(LayerError, match=r"'pool' gives \[1, 8, 1, 1\]|'flat' gives \[1, 8\], not \(B, C, H, W\)"):
        pooled.receptive_field("flat", 64)
    # maps too small for the stimulus: the network cannot run that deep on this input ...
    with pytest.raises(LayerError, match=r"layers 3: a 8x8 px input is too small for 'toy_nets:valid'"):
        probes.load_model("toy_nets:valid").probe(torch.rand(1, 3, 8, 8), "3")
    with pytest.raises(LayerError, match=r"layer '3': the network fails on a 8x8 px input"):
        probes.load_model("toy_nets:valid").receptive_field("3", 8)
    # ... or its maps do not reach the stimulus at the image centre
    corner = probes.load_model("toy_nets:corner", layers=["corner"])
    with pytest.raises(LayerError, match=r"'corner'.*no unit centred within half a stride"):
        corner.probe(torch.rand(1, 3, 32, 32), "corner")


# -- the command line -----------------------------------------------------------------------------------

def test_cli_probes_a_factory_model(tmp_path, capsys) -> None:
    import numpy as np

    from curvebench.cli import main

    images = tmp_path / "x.npy"
    np.save(images, np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32))
    weights = tmp_path / "w.pth"
    torch.save(toy_nets.torch_pad().state_dict(), weights)
    out = tmp_path / "acts.h5"
    assert main(["probe", "--model", "toy_nets:torch_pad", "--layers", "features.4,features.0",
                 "--input-transform", "imagenet", "--weights", str(weights), "--images", str(images),
                 "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    import xarray as xr

    ds = xr.open_dataset(out, engine="h5netcdf")
    # the stored value is the unit centred nearest the image centre, with the imagenet transform applied
    m = probes.load_model("toy_nets:torch_pad", weights=weights, input_transform="imagenet", layers=["features.4"])
    x = torch.from_numpy(np.load(images))
    expected = m.probe(x, "features.4")["features.4"].numpy()
    np.testing.assert_allclose(ds["features.4"].values, expected, rtol=1e-5, atol=1e-6)
    ds.close()


@pytest.mark.parametrize("argv, message", [
    (["--model", "toy_nets:not_a_module", "--layers", "a"], "returned a dict, not a torch.nn.Module"),
    (["--model", "nosuch", "--layers", "a"], "unknown model 'nosuch'; known: inceptionv1, efficientnet-lite0"),
    (["--model", "toy_nets:tf_same", "--layers", "c9"], "no submodule 'c9'"),
    (["--model", "toy_nets:tf_same", "--layers", "c1", "--input-transform", "bogus"], "argument --input-transform"),
])
def test_cli_bad_models_are_one_line(tmp_path, capsys, argv, message) -> None:
    import numpy as np

    from curvebench.cli import main

    images = tmp_path / "x.npy"
    np.save(images, np.zeros((1, 3, 32, 32), dtype=np.float32))
    try:
        code = main(["probe", *argv, "--images", str(images), "--out", str(tmp_path / "o.h5"), "--device", "cpu"])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert message in err.strip().splitlines()[-1]  # one line (argparse prints its usage above it)


@pytest.mark.parametrize("size", [63])  # odd: asymmetric TF SAME padding at every stride-2 conv
def test_measured_geometry_of_efficientnet_equals_its_geometry(size: int) -> None:
    from probes import efficientnet

    torch.manual_seed(0)
    net = efficientnet.EfficientNetLite0Net()  # random weights: NaN propagation does not depend on them
    layers = ["stem", "blocks.1", "blocks.2.0.depthwise"]
    m = probes.wrap_module(net, layers)
    for layer in layers:
        assert m.receptive_field(layer, size) == receptive_field(efficientnet.GEOMETRY, layer, size), (layer, size)


def test_suite_run_with_a_factory_model(tmp_path) -> None:
    import json

    import h5py
    import numpy as np

    from curvebench.cli import main

    out = tmp_path / "run.h5"
    assert main(["run", "curves", "--model", "toy_nets:torch_pad", "--weights", "random", "--layers", "features.4",
                 "--limit", "8", "--out", str(out), "--no-progress"]) == 0
    with h5py.File(out) as f:
        assert f.attrs["model"] == "toy_nets:torch_pad"
        # measured geometry: features.4 unit j is centred on 4 j + 0.5 px; nearest the centre of 224 px: 28 (112.5 px)
        assert json.loads(f.attrs["probed_units"]) == {"features.4": [28, 28]}
        assert "features.4" in f and "features.4_pre_relu" not in f  # the module has no pre-ReLU tap
        values = f["features.4"][:]
        assert values.shape == (8, 8) and np.isfinite(values).all()


def test_models_describes_a_factory_model(capsys) -> None:
    import json

    from curvebench.cli import main

    assert main(["models", "--model", "toy_nets:tf_same", "--layers", "c2,c4", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    taps = {t["layer"]: t for t in entry["taps"]}
    expected = receptive_field(toy_nets.TFSame.GEOMETRY, "c4", 224)
    assert (taps["c4"]["stride"], taps["c4"]["rf_size"], taps["c4"]["grid"]) == (16, 31, 14)
    assert (expected.stride, expected.size) == (16, 31)
    assert taps["c4"]["centre_unit"] == [6, 6] and taps["c4"]["centre_xy"] == [111.5, 111.5]
    assert taps["c2"]["channels"] == 4
    assert main(["models", "--model", "toy_nets:tf_same"]) == 2
    assert "give --layers" in capsys.readouterr().err
