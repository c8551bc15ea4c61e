"""Execute every notebook in `notebooks/` top to bottom; an error in any cell fails the test.

The notebooks run as a reader would run them: a fresh `python3` kernel, the working
directory `notebooks/`, matplotlib's non-interactive Agg backend. Without the real trained
weights they build a random-weight checkpoint of the real size (`notebook_setup.py`), which
needs the real vocab.txt/config.json (`NUMPY_DISTILBERT_SHARED_MODEL` or ../shared).

Skips (and in CI, with NUMPY_DISTILBERT_REQUIRE_REFERENCE=1, fails) only when the
`notebooks` extra (nbclient, nbformat, ipykernel, matplotlib) or those reference files are
missing. Each notebook's run time is printed (`pytest -s`).
"""

from __future__ import annotations

import importlib.util
import os
import time

import pytest
from conftest import REPO_ROOT, skip_or_fail

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds, per cell
KERNEL = "python3"


def _require_notebook_tools() -> None:
    missing = [name for name in ("nbclient", "nbformat", "ipykernel", "matplotlib", "matplotlib_inline")
               if importlib.util.find_spec(name) is None]  # fmt: skip
    if missing:
        skip_or_fail(
            f"notebook tools not installed ({', '.join(missing)}): pip install -e '.[notebooks]'"
        )


EXPECTED = ["01_tokenization", "02_forward_pass", "03_verification", "04_using_it"]


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED, f"notebooks in {NOTEBOOKS_DIR}"


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

    notebook = nbformat.read(path, as_version=4)
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
