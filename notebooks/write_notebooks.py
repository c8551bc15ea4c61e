"""Write each teaching notebook `notebooks/NN_name.ipynb` from its source `NN_name.py`.

    python notebooks/write_notebooks.py          # rewrites every notebook, outputs empty

The `.py` files are the source of truth, in jupytext's "percent" format: a `# %%` line
starts a code cell, `# %% [markdown]` a markdown cell whose lines are `# ` comments. They
are real Python, so editors highlight them and ruff lints them like the rest of the repo.

The `.ipynb` is a pure function of its source: no outputs, cell ids numbered by position
("02-07"), the same notebook metadata for all four. Regenerating from an unchanged source
therefore changes no byte, and `tests/test_notebooks.py` fails when a committed notebook
and its source disagree.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
NEW_CELL = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}


def notebook_sources(directory: Path = HERE) -> list[Path]:
    """The notebook sources, `NN_name.py`, in reading order."""
    return sorted(directory.glob("[0-9][0-9]_*.py"))


def notebook_from_source(source: Path) -> nbformat.NotebookNode:
    """The stripped notebook for `source`: its cells in order, nothing executed."""
    parsed = jupytext.read(source, fmt="py:percent")
    notebook = nbformat.v4.new_notebook()
    for i, cell in enumerate(parsed.cells):
        if cell.cell_type not in NEW_CELL:
            raise ValueError(f"{source.name}: cell {i} is a {cell.cell_type!r} cell; use code or markdown")
        new = NEW_CELL[cell.cell_type](cell.source, metadata=dict(cell.metadata))
        new.id = f"{source.name[:2]}-{i:02d}"  # stable: only an edited position changes
        notebook.cells.append(new)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def main() -> None:
    for source in notebook_sources():
        notebook = notebook_from_source(source)
        nbformat.validate(notebook)
        target = source.with_suffix(".ipynb")
        nbformat.write(notebook, target)
        print(f"wrote {target} ({len(notebook.cells)} cells) from {source.name}")


if __name__ == "__main__":
    main()
