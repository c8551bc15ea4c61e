"""numpy-distilbert: DistilmBERT in pure NumPy, verified against transformers.

    from numpy_distilbert import pipeline, DistilBertForMaskedLM
    fill = pipeline("fill-mask")                      # distilbert-base-multilingual-cased
    fill("Hello I'm a [MASK] model.")

Every public name is imported on first use, so `import numpy_distilbert` (and the command
line's `--help`) costs nothing until a model or pipeline is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "DistilBertConfig": "numpy_distilbert.config",
    "DistilBertModel": "numpy_distilbert.model",
    "DistilBertForMaskedLM": "numpy_distilbert.model",
    "DistilBertForSequenceClassification": "numpy_distilbert.heads",
    "DistilBertForTokenClassification": "numpy_distilbert.heads",
    "DistilBertForQuestionAnswering": "numpy_distilbert.heads",
    "DistilBertForMultipleChoice": "numpy_distilbert.heads",
    "AutoModel": "numpy_distilbert.heads",
    "load_model": "numpy_distilbert.heads",
    "pipeline": "numpy_distilbert.pipelines",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'numpy_distilbert' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
