"""numpy-distilbert: DistilmBERT in pure NumPy, verified against transformers."""

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel

__all__ = ["DistilBertConfig", "DistilBertForMaskedLM", "DistilBertModel"]
__version__ = "0.1.0"
