"""``docs/tutorial.ipynb``: stored clean, uses public names only, and runs top to bottom.

The execution test runs the notebook in a fresh kernel of this interpreter (a kernelspec
written to ``tmp_path``, so it never picks up another Python's ``python3`` kernel) whose
``PYTHONPATH`` starts with this checkout, with its working folder in ``tmp_path``: every
file the notebook writes lands there, none in the repository. A broken API call in any
cell fails it.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
FIGURE_CALLS = ("plt.show()", "display(Image(")  # cells that draw a figure inline


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_stored_notebook_has_no_outputs_and_no_execution_counts() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    cells = _code_cells(nb)
    assert len(cells) >= 10
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"cells {dirty} of {NOTEBOOK.name} carry outputs or execution counts: clear them before committing"
    assert not any("attachments" in c for c in nb.cells), "figures are made by running the notebook, not stored in it"


def test_notebook_uses_public_names_only() -> None:
    """No private module, function or attribute (``_name``) in any code cell; imports from this project
    go through ``curvebench`` or the documented ``suites`` modules."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    ours = ("curvebench", "suites", "probes", "stimuli")
    imported: set[str] = set()
    for i, cell in enumerate(_code_cells(nb)):
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert not node.attr.startswith("_"), f"code cell {i}: private attribute {node.attr!r}"
            if isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
                imported.update(f"{node.module}.{a.name}" for a in node.names)
    private = [m for m in imported if any(part.startswith("_") for part in m.split("."))]
    assert not private, f"the notebook imports private names: {private}"
    assert "curvebench" in imported
    project = sorted(m for m in imported if m.split(".")[0] in ours)
    assert set(project) <= {"curvebench", "suites.stimulus_strips", "suites.analysis", "suites.analysis.plots",
                            "suites.analysis.optimum", "suites.analysis.optimum.plot_sheet",
                            "suites.analysis.report", "suites.analysis.report.ReportOptions"}, project


def test_readme_links_the_notebook() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From a notebook", 1)[1].split("\n## ", 1)[0]
    assert "docs/tutorial.ipynb" in section


def _kernelspec(folder: Path) -> str:
    """A kernelspec named ``curvebench-test`` that starts this interpreter; returns its name."""
    spec = folder / "kernels" / "curvebench-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "curvebench test", "language": "python"}))
    return "curvebench-test"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    jupyter = tmp_path / "jupyter"
    kernel = _kernelspec(jupyter)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures inline, as in Jupyter
    work = tmp_path / "work"
    work.mkdir()
    repo_before = {p.name for p in ROOT.iterdir()}
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import curvebench\nprint(curvebench.__file__)"))  # whose code ran
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(work)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, tmp_path / "executed.ipynb")  # for reading a failure
    where = "".join(o.get("text", "") for o in nb.cells.pop().outputs).strip()
    assert Path(where).resolve() == ROOT / "curvebench" / "__init__.py", where
    cells = _code_cells(nb)
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    for i, c in enumerate(cells):
        if any(call in c.source for call in FIGURE_CALLS):
            assert any("image/png" in o.get("data", {}) for o in c.outputs), f"code cell {i} drew no figure"
    # the notebook wrote only under its working folder
    assert any(p.name == "report.html" for p in (work / "tutorial-output").rglob("*"))
    assert {p.name for p in ROOT.iterdir()} == repo_before
    last = "".join(o.get("text", "") for o in cells[-1].outputs)
    assert "tutorial done in" in last
