"""RunOptions and WeightsSpec: the override set and the weights specification, parsed once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.weights_spec import RANDOM, WeightsSpec
from suites.specs.options import RunOptions, suite_from_file
from suites.specs.suite import parse_suite

SUITE = """
name = "o"
kind = "curve"
[sweep]
orientation = {start = 0, stop = 90, num = 4}
[model]
name = "groundtruth"
layers = ["curves"]
[run]
batch_size = 8
"""


def test_weights_spec_parses_each_spelling_once(tmp_path: Path) -> None:
    assert WeightsSpec.parse(None).is_default and WeightsSpec.parse("").is_default
    assert WeightsSpec.parse("random") is RANDOM and RANDOM.text() == "random"
    f = WeightsSpec.parse(str(tmp_path / "w.pth"))
    assert f.is_file and f.path == tmp_path / "w.pth" and f.text() == str(tmp_path / "w.pth")
    assert WeightsSpec.parse(f) is f
    with pytest.raises(FileNotFoundError, match="w.pth"):
        f.check_exists()
    (tmp_path / "w.pth").write_bytes(b"abc")
    assert f.file_sha256() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert RANDOM.file_sha256() == "" and WeightsSpec().file_sha256() == ""
    with pytest.raises(ValueError):
        WeightsSpec("file")  # a file spec needs a path
    with pytest.raises(ValueError):
        WeightsSpec.parse(3)  # type: ignore[arg-type]


def test_run_options_apply_and_round_trip() -> None:
    base = parse_suite(SUITE)
    opts = RunOptions.of(weights="random", batch_size=4, storage="float16", layers=["curves"], limit=3, quick=True)
    assert opts.weights is RANDOM and opts.overrides_grid
    s = opts.apply(base)
    assert (s.batch_size, s.storage, s.weights, s.layers) == (4, "float16", RANDOM, ("curves",))
    assert RunOptions(device="cpu").apply(base).batch_size == 8 and not RunOptions(device="cpu").overrides_grid
    stored = opts.resolved(s)
    assert RunOptions.from_json(stored.to_json()) == stored
    # the stored form keeps the keys results files have always had
    assert set(json.loads(stored.to_json())) == {"model", "weights", "device", "batch_size", "storage", "layers",
                                                 "limit", "quick"}
    again, back = suite_from_file({"suite": SUITE, "run_options": stored.to_json()})
    assert back == stored and again.weights.is_random and again.batch_size == 4 and again.storage == "float16"
    with pytest.raises(ValueError, match="limit"):
        RunOptions(limit=0)
