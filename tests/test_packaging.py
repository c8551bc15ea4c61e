"""Honest packaging: what is declared is what is imported, and the layout's import rules hold.

Read from the source tree with `ast` (nothing is imported to check it), so these run on every
supported Python, with or without torch.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("numpy_distilbert", "tokenizer")
PROJECT = set(PACKAGES)
# Optional imports, each made inside a function and each named by an extra.
OPTIONAL = {"huggingface_hub": "hub", "transformers": "test", "torch": "test", "dask": "dask"}


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # standard library from Python 3.11
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("-", "_")


def package_modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(top-level names imported at module level, those imported inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_level: set[str] = set()
    lazy: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            for name in names:
                (lazy if in_function else module_level).add(name.split(".")[0])
            visit(child, inner)

    visit(tree, False)
    return module_level, lazy


def test_runtime_dependencies_are_exactly_what_the_package_imports():
    declared = {requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    assert declared == {"numpy", "safetensors"}
    imported: set[str] = set()
    for path in package_modules():
        module_level, lazy = imports(path)
        imported |= module_level | lazy
        third_party = module_level - set(sys.stdlib_module_names) - PROJECT
        assert third_party <= declared, f"{path.relative_to(REPO)} imports undeclared {third_party}"
        optional = lazy - set(sys.stdlib_module_names) - PROJECT - declared
        assert optional <= set(OPTIONAL), f"{path.relative_to(REPO)} imports undeclared {optional}"
    assert declared <= imported, f"declared but never imported: {declared - imported}"


def test_optional_imports_are_declared_as_extras():
    extras = pyproject()["project"]["optional-dependencies"]
    for module, extra in OPTIONAL.items():
        assert module in {requirement_name(r) for r in extras[extra]}, (module, extra)


def project_modules_imported(path: Path) -> set[str]:
    """The numpy_distilbert modules `path` imports, by dotted name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("numpy_distilbert"):
            found |= {node.module} if node.module != "numpy_distilbert" else {
                f"numpy_distilbert.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("numpy_distilbert")}
    return found


def test_import_rules_of_the_layout():
    """tokenizer/, layers.py and config.py import nothing of the project (DEVELOPERS.md);
    layers.py keeps its numerics (erf and the float32 GELU kernel) in erf.py, a leaf."""
    for path in (REPO / "tokenizer").rglob("*.py"):
        module_level, lazy = imports(path)
        assert not module_level & {"numpy_distilbert", "numpy"}, path
        assert not lazy & {"numpy_distilbert"}, path  # numpy only lazily, for return_tensors="np"
    package = REPO / "numpy_distilbert"
    assert project_modules_imported(package / "config.py") == set()
    assert project_modules_imported(package / "erf.py") == set()
    assert project_modules_imported(package / "layers.py") == {"numpy_distilbert.erf"}


def test_no_development_scripts_inside_the_packages():
    """Generators and probes live in scripts/; the wheel ships the library and its CLI only."""
    allowed = {REPO / "numpy_distilbert" / "__main__.py", REPO / "numpy_distilbert" / "cli.py"}
    for path in package_modules():
        if path in allowed:
            continue
        module_level, lazy = imports(path)
        assert not (module_level | lazy) & {"tokenizers"}, f"{path} probes the Rust tokenizer"
        assert '__name__ == "__main__"' not in path.read_text(encoding="utf-8"), f"{path} is a script"


def test_license_version_and_typing_markers():
    project = pyproject()["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression, not a table
    assert "Apache License" in (REPO / "LICENSE").read_text(encoding="utf-8")
    assert project["dynamic"] == ["version"] and "version" not in project
    source = (REPO / "numpy_distilbert" / "__init__.py").read_text(encoding="utf-8")
    assert re.search(r'^__version__ = "\d+\.\d+\.\d+"$', source, re.M), "one literal version"
    for package in PACKAGES:
        assert (REPO / package / "py.typed").is_file(), package
    classifiers = project["classifiers"]
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers


def test_installed_version_is_the_source_version():
    import importlib.metadata

    import numpy_distilbert

    try:
        installed = importlib.metadata.version("numpy-distilbert")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("numpy-distilbert is not installed (run from a source tree)")
    assert installed == numpy_distilbert.__version__


def test_a_foreign_tokenizer_package_is_named_clearly(tmp_path):
    """An unrelated PyPI `tokenizer` shadowing ours gives an error that says so."""
    impostor = tmp_path / "tokenizer"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("def split_into_sentences(text):\n    return [text]\n")
    code = (
        "from numpy_distilbert._tokenizer_package import wordpiece_tokenizer_class\n"
        "try:\n    wordpiece_tokenizer_class()\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env=env, check=True).stdout
    assert out.startswith("ForeignTokenizerPackageError")
    assert str(impostor) in out and "unrelated PyPI package" in out and "pip uninstall tokenizer" in out


@pytest.mark.parametrize("foreign_init", [
    "from .tokenizer import split_into_sentences\n",  # imports, but is not ours
    "import a_dependency_that_is_not_installed\n",  # fails to import at all
])
def test_a_foreign_tokenizer_installed_over_ours_is_named_clearly(tmp_path, foreign_init):
    """PyPI's `tokenizer` wheel overwrites __init__.py and tokenizer.py, leaving our other modules."""
    import shutil

    overwritten = tmp_path / "tokenizer"
    shutil.copytree(REPO / "tokenizer", overwritten, ignore=shutil.ignore_patterns("__pycache__"))
    (overwritten / "__init__.py").write_text(foreign_init)
    (overwritten / "tokenizer.py").write_text("def split_into_sentences(text):\n    return [text]\n")
    code = (
        "from numpy_distilbert._tokenizer_package import wordpiece_tokenizer_class\n"
        "try:\n    wordpiece_tokenizer_class()\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env=env, check=True).stdout
    assert out.startswith("ForeignTokenizerPackageError") and "unrelated PyPI package" in out, out


def test_the_cli_names_a_foreign_tokenizer_package_in_one_line(tmp_path):
    impostor = tmp_path / "tokenizer"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("")
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "numpy_distilbert", "tokenize", "-m", str(vocab), "hello"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "unrelated PyPI package" in proc.stderr


def test_our_tokenizer_package_is_found():
    from numpy_distilbert._tokenizer_package import wordpiece_tokenizer_class
    from tokenizer import WordPieceTokenizer

    assert wordpiece_tokenizer_class() is WordPieceTokenizer
