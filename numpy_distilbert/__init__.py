"""numpy-distilbert: DistilmBERT in pure NumPy, verified against transformers."""

from typing import Any

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.heads import (
    AutoModel,
    DistilBertForMultipleChoice,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
    load_model,
)
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel

__all__ = [
    "AutoModel",
    "DistilBertConfig",
    "DistilBertForMaskedLM",
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
    "DistilBertModel",
    "load_model",
    "pipeline",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `pipeline` is imported on first use, so `import numpy_distilbert` does not load the
    # pipelines (nor the tokenizer) for those who only want the model.
    if name == "pipeline":
        from numpy_distilbert.pipelines import pipeline

        return pipeline
    raise AttributeError(f"module 'numpy_distilbert' has no attribute {name!r}")
