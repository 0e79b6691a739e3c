"""The `curvebench` dispatcher: fast parser, help text, one-line errors for common mistakes."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from curvebench.cli import build_parser, main


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "curvebench"):
    """Every (command path, parser) of the tree, the root included."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, f"{prefix} {name}")


def test_parser_does_not_import_heavy_libraries():
    code = (
        "import sys, curvebench.cli; curvebench.cli.build_parser(); "
        "print(' '.join(m for m in ('torch', 'xarray', 'matplotlib', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"building the parser imported: {out.strip()}"


def test_lazy_packages_keep_their_public_names():
    code = (
        "import probes.article_families, suites.analysis.tuning, probes, suites.analysis, stimuli, suites; "
        "assert isinstance(probes.families, dict), type(probes.families); "
        "assert callable(suites.analysis.grid) and not hasattr(suites.analysis.grid, '__file__'); "
        "assert callable(stimuli.render) and callable(suites.run_suite) and issubclass(suites.SuiteError, ValueError); "
        "assert set(stimuli.__all__) <= set(dir(stimuli))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    import stimuli

    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        stimuli.nosuch  # noqa: B018


def test_every_help_renders_without_format_leftovers():
    for path, parser in _subparsers(build_parser()):
        text = parser.format_help()
        assert "%%" not in text and "%(" not in text, path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue  # listed by its commands' own help lines
            assert action.help, f"{path} {action.option_strings or action.dest}: no help text"


def test_render_options_are_built_from_the_stimulus_declaration():
    from stimuli import kinds

    render = dict(_subparsers(build_parser()))["curvebench render"]
    actions = {a.dest: a for a in render._actions}
    for p in kinds.PARAMS:
        default = p.default_text or f"{p.default:g}"
        assert f"(default {default}" in actions[p.name].help, (p.name, actions[p.name].help)
        assert actions[p.name].help.startswith(p.help)
    for c in kinds.CHOICES:
        assert actions[c.name].default == c.default and tuple(actions[c.name].choices) == c.choices
        assert actions[c.name].help.endswith(f"(default {c.default})")
    assert tuple(actions["kind"].choices) == kinds.KINDS
    assert actions["size"].help.endswith("default 224)")


def _one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (argv, code, captured)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("curvebench: error: "), captured.err
    assert captured.out == "", f"output before the error: {captured.out!r}"
    return lines[0]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["render", "--size", "abc", "--out", "x.png"], r"--size = 'abc'.*integers >= 1"),
        (["render", "--ticks", "0:7:5", "--out", "x.png"], r"--ticks = 1.75 is not a whole number"),
        (["render", "--curvature", "-1:2:3", "--out", "x.png"], r"curvature\[0\] = -1 1/px .*allowed"),
        (["render", "--width", "-2", "--out", "x.png"], r"width = -2 px .*allowed 0 <= width"),
        (["run", "nosuchsuite"], r"no suite named 'nosuchsuite'.*curves"),
        (["plot", "/nonexistent/results.h5"], r"results file not found: /nonexistent/results.h5"),
        (["tuning", "/nonexistent/results.h5"], r"results file not found"),
        (["run", "curves", "--model", "nosuch"], r"unknown model 'nosuch'; known: .*groundtruth"),
        (["run", "curves", "--model", "inceptionv1"],
         r"would be at .*/home/weights/inception5h\.pth\. Run `curvebench weights download`"),
        (["run", "typo.toml"], r"typo\.toml: unknown key \[sweep\]\.curvatur; allowed: orientation, curvature"),
        (["probe", "--model", "groundtruth", "--images", "/nonexistent", "--layers", "curves", "--out", "p.h5"],
         r"images: folder not found: /nonexistent"),
        (["probe", "--model", "groundtruth", "--images", "builtin", "--layers", "curves", "--out", "typo.toml"],
         r"out: typo\.toml already exists; probe files are never overwritten"),
        (["validate", "typo.toml", "--max-rms", "-1"], r"--max-rms = -1: allowed a number of degrees >= 0"),
        (["validate", "typo.toml", "--min-order", "1.5"], r"--min-order = 1.5: allowed a fraction in \[0, 1\]"),
        (["plot", "typo.toml", "--vmax", "0"], r"--vmax = 0: allowed a number of sigma > 0"),
    ],
)
def test_common_mistakes_end_in_one_line(capsys, tmp_path, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CURVEBENCH_HOME", str(tmp_path / "home"))
    import suites.specs.builtin

    demo = (Path(suites.specs.builtin.__file__).parent / "demo.toml").read_text()
    (tmp_path / "typo.toml").write_text(demo.replace("\ncurvature =", "\ncurvatur ="))
    assert re.search(expected, _one_line_error(capsys, argv))
    assert not (tmp_path / "x.png").exists()
    assert (tmp_path / "typo.toml").read_text() == demo.replace("\ncurvature =", "\ncurvatur =")


def test_negative_sweeps_are_values_not_options(tmp_path, capsys):
    npy = tmp_path / "s.npy"
    assert main(["render", "--curvature", "-max:max:3", "--size", "32", "--length", "12", "--npy", str(npy)]) == 0
    assert "(3, 3, 32, 32)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["stats", "--images", "builtin", "--limit", "0"], "argument --limit: expected an integer >= 1, got 0"),
        (["render", "--cell", "abc"], "argument --cell: expected an integer >= 1, got 'abc'"),
        (["bench", "probe", "--warmup", "-1"], "argument --warmup: expected an integer >= 0, got -1"),
    ],
)
def test_counts_are_checked_by_the_parser(capsys, argv, expected):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(expected)
