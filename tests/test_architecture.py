"""The house: import contracts between the layers, and an installable package.

- ``lint-imports`` (import-linter, contracts in ``pyproject.toml``) fails on any import
  that runs against the data flow (docs/architecture.md).
- ``python -m build`` makes an sdist and a wheel; the wheel, installed on its own (not the
  editable checkout), runs ``curvebench suites`` and a small built-in sweep from another
  directory: the built-in suites travel as package data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    from importlinter.cli import lint_imports

    old = Path.cwd()
    os.chdir(ROOT)
    try:
        assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0, "run `lint-imports` to see the broken contract"
    finally:
        os.chdir(old)


@pytest.mark.slow
def test_wheel_installs_and_runs_from_another_directory(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheels = list(dist.glob("curvebench-*.whl"))
    assert len(wheels) == 1 and list(dist.glob("curvebench-*.tar.gz")), sorted(p.name for p in dist.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()
    for required in ("curvebench/cli/__init__.py", "suites/specs/builtin/curves.toml", "suites/specs/builtin/demo.toml",
                     "probes/inception.py", "stimuli/draw.py", "suites/analysis/reference/curves-mixed3b.json"):
        assert required in names, f"{required} missing from the wheel"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "curvebench = curvebench.cli:main" in zipfile.ZipFile(wheels[0]).read(entry).decode()

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                              str(wheels[0])], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def curvebench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "curvebench", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import suites, curvebench; print(suites.__file__, curvebench.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
    assert where.count(str(site)) == 2, f"not the installed wheel: {where}"
    listed = curvebench("suites")
    assert listed.returncode == 0 and "curves" in listed.stdout, listed.stderr
    run = curvebench("run", "demo", "--model", "groundtruth", "--limit", "32", "--out", "small.h5", "--no-progress")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (elsewhere / "small.h5").stat().st_size > 0
    # the Python API from the installed wheel: every name resolves, and the report page (its script
    # and the stimuli computed for it) comes from the package data
    quick = curvebench("run", "demo", "--quick", "--out", "quick.h5", "--no-progress")  # 12 x 12: a heatmap
    assert quick.returncode == 0, quick.stderr[-2000:]
    api = subprocess.run([sys.executable, "-c",
                          "import curvebench; curvebench.render; "
                          "print(curvebench.render.__module__, curvebench.open_results('small.h5').attrs['file_kind']); "
                          "print(curvebench.report([('quick', curvebench.open_results('quick.h5'))], 'small.html'))"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert api.returncode == 0, api.stderr[-2000:]
    assert api.stdout.split()[:2] == ["stimuli.draw", "curvebench-results"], api.stdout
    page = (elsewhere / "small.html").read_text(encoding="utf-8")
    assert '"shapes":{"' in page and "drawStimulus" in page


def test_library_modules_do_not_pick_a_matplotlib_backend() -> None:
    """``matplotlib.use()`` at import would switch a notebook's backend: only the application may choose one."""
    import ast

    offenders = []
    for path in sorted((ROOT / "suites").rglob("*.py")) + sorted((ROOT / "stimuli").rglob("*.py")) + sorted(
            (ROOT / "probes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "use"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "matplotlib"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"matplotlib.use() in library modules: {offenders}"


def test_suites_top_level_keeps_at_most_eight_modules() -> None:
    top = sorted(p.stem for p in (ROOT / "suites").glob("*.py") if p.stem != "__init__")
    assert len(top) <= 8, top
