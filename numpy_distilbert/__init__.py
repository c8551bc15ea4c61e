"""numpy-distilbert: DistilmBERT in pure NumPy, verified against transformers.

    from numpy_distilbert import pipeline, AutoTokenizer, AutoModelForMaskedLM
    fill = pipeline("fill-mask")                      # distilbert-base-multilingual-cased
    fill("Hello I'm a [MASK] model.")

    tokenizer = AutoTokenizer.from_pretrained("distilbert-base-multilingual-cased")
    model = AutoModelForMaskedLM.from_pretrained("distilbert-base-multilingual-cased")
    logits = model(**tokenizer(["Hello I'm a [MASK] model."])).logits   # [1, L, V]

Every public name is imported on first use, so `import numpy_distilbert` (and the command
line's `--help`) costs nothing until a model or pipeline is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time `__getattr__` imports on demand
    from numpy_distilbert.auto import (
        AutoConfig,
        AutoModel,
        AutoModelForMaskedLM,
        AutoModelForMultipleChoice,
        AutoModelForPreTraining,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
        load_model,
    )
    from numpy_distilbert.bert import (
        BertForMaskedLM,
        BertForPreTraining,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertModel,
    )
    from numpy_distilbert.config import BertConfig, DistilBertConfig
    from numpy_distilbert.heads import (
        DistilBertForMultipleChoice,
        DistilBertForQuestionAnswering,
        DistilBertForSequenceClassification,
        DistilBertForTokenClassification,
    )
    from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel
    from numpy_distilbert.optim import AdamW
    from numpy_distilbert.outputs import (
        BaseModelOutput,
        BaseModelOutputWithPooling,
        BertForPreTrainingOutput,
        MaskedLMOutput,
        MultipleChoiceModelOutput,
        QuestionAnsweringModelOutput,
        SequenceClassifierOutput,
        TokenClassifierOutput,
    )
    from numpy_distilbert.pipelines import pipeline
    from numpy_distilbert.sentence_transformers import SentenceTransformer
    from numpy_distilbert.training import train

# public name -> the module that defines it (keep in step with the imports above;
# tests/test_auto.py checks that they agree)
_EXPORTS = {
    "BertConfig": "numpy_distilbert.config",
    "BertModel": "numpy_distilbert.bert",
    "BertForMaskedLM": "numpy_distilbert.bert",
    "BertForPreTraining": "numpy_distilbert.bert",
    "BertForSequenceClassification": "numpy_distilbert.bert",
    "BertForTokenClassification": "numpy_distilbert.bert",
    "BertForQuestionAnswering": "numpy_distilbert.bert",
    "AutoModelForPreTraining": "numpy_distilbert.auto",
    "BaseModelOutputWithPooling": "numpy_distilbert.outputs",
    "BertForPreTrainingOutput": "numpy_distilbert.outputs",
    "DistilBertConfig": "numpy_distilbert.config",
    "DistilBertModel": "numpy_distilbert.model",
    "DistilBertForMaskedLM": "numpy_distilbert.model",
    "DistilBertForSequenceClassification": "numpy_distilbert.heads",
    "DistilBertForTokenClassification": "numpy_distilbert.heads",
    "DistilBertForQuestionAnswering": "numpy_distilbert.heads",
    "DistilBertForMultipleChoice": "numpy_distilbert.heads",
    "AutoConfig": "numpy_distilbert.auto",
    "AutoModel": "numpy_distilbert.auto",
    "AutoModelForMaskedLM": "numpy_distilbert.auto",
    "AutoModelForSequenceClassification": "numpy_distilbert.auto",
    "AutoModelForTokenClassification": "numpy_distilbert.auto",
    "AutoModelForQuestionAnswering": "numpy_distilbert.auto",
    "AutoModelForMultipleChoice": "numpy_distilbert.auto",
    "AutoTokenizer": "numpy_distilbert.auto",
    "load_model": "numpy_distilbert.auto",
    "BaseModelOutput": "numpy_distilbert.outputs",
    "MaskedLMOutput": "numpy_distilbert.outputs",
    "SequenceClassifierOutput": "numpy_distilbert.outputs",
    "TokenClassifierOutput": "numpy_distilbert.outputs",
    "QuestionAnsweringModelOutput": "numpy_distilbert.outputs",
    "MultipleChoiceModelOutput": "numpy_distilbert.outputs",
    "pipeline": "numpy_distilbert.pipelines",
    "AdamW": "numpy_distilbert.optim",
    "train": "numpy_distilbert.training",
    "SentenceTransformer": "numpy_distilbert.sentence_transformers",
}
# A literal list, so that type checkers read it (tests/test_auto.py: it equals _EXPORTS' keys).
__all__ = [
    "AdamW",
    "AutoConfig",
    "AutoModel",
    "AutoModelForMaskedLM",
    "AutoModelForMultipleChoice",
    "AutoModelForPreTraining",
    "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "BaseModelOutput",
    "BaseModelOutputWithPooling",
    "BertConfig",
    "BertForMaskedLM",
    "BertForPreTraining",
    "BertForPreTrainingOutput",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "DistilBertConfig",
    "DistilBertForMaskedLM",
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
    "DistilBertModel",
    "MaskedLMOutput",
    "MultipleChoiceModelOutput",
    "QuestionAnsweringModelOutput",
    "SentenceTransformer",
    "SequenceClassifierOutput",
    "TokenClassifierOutput",
    "load_model",
    "pipeline",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'numpy_distilbert' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
