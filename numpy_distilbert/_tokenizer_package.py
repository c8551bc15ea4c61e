"""Import the sibling `tokenizer` package, and say so clearly when it is someone else's.

numpy-distilbert installs two top-level packages: `numpy_distilbert` and `tokenizer` (the
user's layout). PyPI also has an unrelated package named `tokenizer`. If it is installed over
ours, or earlier on `sys.path`, `from tokenizer import WordPieceTokenizer` would fail with an
ImportError that names neither package; this module names both and says how to repair it.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

MARKER = "NUMPY_DISTILBERT_TOKENIZER"  # set to True in our tokenizer/__init__.py


class ForeignTokenizerPackageError(ImportError):
    """The module imported as `tokenizer` is not numpy-distilbert's tokenizer."""


def _explain(module: ModuleType | None, cause: BaseException | None) -> ForeignTokenizerPackageError:
    where = getattr(module, "__file__", None) if module is not None else None
    found = f" (found at {where})" if where else ""
    detail = f": {cause}" if cause is not None else ""
    return ForeignTokenizerPackageError(
        f"the module named 'tokenizer'{found} is not numpy-distilbert's WordPiece tokenizer{detail}. "
        "An unrelated PyPI package called 'tokenizer' has probably been installed over it or "
        "shadows it on sys.path. Repair with: pip uninstall tokenizer && "
        "pip install --force-reinstall --no-deps numpy-distilbert"
    )


def wordpiece_tokenizer_class() -> Any:
    """`tokenizer.WordPieceTokenizer`, or a ForeignTokenizerPackageError naming the impostor."""
    try:
        module = importlib.import_module("tokenizer")
    except ImportError as exc:
        if _looks_like_ours():
            raise  # our own package failed to import: a real error, shown as it is
        raise _explain(None, exc) from exc  # e.g. the other package's dependencies are missing
    cls = getattr(module, "WordPieceTokenizer", None)
    if getattr(module, MARKER, False) is not True or cls is None:
        raise _explain(module, None)
    return cls


def _looks_like_ours() -> bool:
    """Whether the `tokenizer` on sys.path has our modules beside its __init__.py."""
    try:
        spec = importlib.util.find_spec("tokenizer")
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False
    # PyPI's `tokenizer` installed over ours replaces __init__.py (and leaves our other
    # modules behind), so the marker in __init__.py is what tells.
    try:
        return MARKER in Path(spec.origin).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
