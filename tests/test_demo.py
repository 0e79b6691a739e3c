"""`curvebench demo`: the offline main job writes a results file, heatmaps and the next commands."""

from __future__ import annotations

import pytest
import torch
import xarray as xr

from curvebench.cli import main as cli_main
from suites.specs.suite import load_suite


def test_demo_quick_writes_results_and_heatmaps(tmp_path, capsys):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "demo.h5"
        assert cli_main(["demo", "--model", "groundtruth", "--quick", "--out", str(out), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(n)
    text = capsys.readouterr().out
    assert "144 stimuli" in text and "complete" in text
    assert "curvebench run curves --model inceptionv1 --weights" in text
    with xr.open_dataset(out) as ds:
        assert ds.attrs["model"] == "groundtruth" and ds.attrs["state"] == "complete"
        assert ds["curves"].dims == ("stimulus", "curves_channel")
    pngs = sorted((tmp_path / "demo").glob("*.png"))
    assert pngs and all(p.stat().st_size > 10_000 for p in pngs)
    assert any(f"figure: {p}" in text for p in pngs)


def test_demo_suite_is_offline_and_small():
    s = load_suite("demo")
    assert s.model == "groundtruth" and s.weights.is_default
    assert 1_000 <= s.num_stimuli <= 20_000
