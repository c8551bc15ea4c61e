"""The Auto classes: pick the model class from config.json, as transformers' do.

    AutoModel                              the bare encoder, whatever head the checkpoint has
    AutoModelForMaskedLM                   encoder + MLM head
    AutoModelForSequenceClassification     encoder + [CLS] classifier
    AutoModelForTokenClassification        encoder + per-token classifier
    AutoModelForQuestionAnswering          encoder + start/end span scores
    AutoModelForMultipleChoice             encoder + one score per choice
    AutoModelForPreTraining                encoder + MLM + next-sentence heads (BERT)
    AutoTokenizer                          the WordPiece tokenizer of a model
    AutoConfig                             the config class of config.json's model_type
    load_model                             whichever class config.json's `architectures` names

`AutoModelFor<Task>.from_pretrained(path_or_id, dtype=np.float32, mmap=True, revision=None)`
reads config.json's `model_type`, looks up the family registered under it, and loads that
family's class for <Task>. A model id is found as `pipeline()` finds it (`hub.resolve_model`).

A model family joins in one place, a `register_family` call at the bottom of this file:
its model_type, its config class (with `from_dict`) and its model class per task, e.g.

    register_family("bert", BertConfig, {BASE: BertModel, MASKED_LM: BertForMaskedLM, ...})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import DTypeLike

from numpy_distilbert.bert import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from numpy_distilbert.config import BertConfig, ConfigError, DistilBertConfig, read_config_json
from numpy_distilbert.heads import (
    DistilBertForMultipleChoice,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
)
from numpy_distilbert.hub import resolve_model, resolve_tokenizer
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel, PretrainedModel

# The tasks an Auto class can ask a family for.
BASE = "base"
MASKED_LM = "masked-lm"
SEQUENCE_CLASSIFICATION = "sequence-classification"
TOKEN_CLASSIFICATION = "token-classification"
QUESTION_ANSWERING = "question-answering"
MULTIPLE_CHOICE = "multiple-choice"
PRETRAINING = "pretraining"  # BERT's MLM + next-sentence heads
TASKS = (
    BASE, MASKED_LM, SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION, QUESTION_ANSWERING, MULTIPLE_CHOICE,
    PRETRAINING,
)  # fmt: skip


class ConfigClass(Protocol):
    """What a family's config class provides: built from a parsed config.json."""

    model_type: ClassVar[str]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class ModelFamily:
    """One architecture: its config class and its model class for each task it implements."""

    model_type: str
    config_class: type[ConfigClass]
    models: Mapping[str, type[PretrainedModel]]  # task -> class

    def model_class(self, task: str) -> type[PretrainedModel]:
        if task not in self.models:
            raise ValueError(
                f"model_type {self.model_type!r} has no model for the task {task!r}; "
                f"it has: {', '.join(self.models)}"
            )
        return self.models[task]

    def class_named(self, name: str) -> type[PretrainedModel] | None:
        """The family's class called `name` (as config.json's `architectures` names it), or None."""
        return next((cls for cls in self.models.values() if cls.__name__ == name), None)


_FAMILIES: dict[str, ModelFamily] = {}


def register_family(
    model_type: str, config_class: type[ConfigClass], models: Mapping[str, type[PretrainedModel]]
) -> ModelFamily:
    """Make `model_type` loadable by every Auto class: `models` maps tasks (TASKS) to classes.

    BASE, the bare encoder, is required: `AutoModel` loads it from any checkpoint of the family.
    """
    if model_type in _FAMILIES:
        raise ValueError(f"model_type {model_type!r} is already registered")
    unknown = sorted(set(models) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; the tasks are {', '.join(TASKS)}")
    if BASE not in models:
        raise ValueError(f"model_type {model_type!r} needs a {BASE!r} model (the bare encoder)")
    if config_class.model_type != model_type:
        raise ValueError(
            f"{config_class.__name__}.model_type is {config_class.model_type!r}, not {model_type!r}"
        )
    family = ModelFamily(model_type, config_class, MappingProxyType(dict(models)))
    _FAMILIES[model_type] = family
    return family


def supported_model_types() -> list[str]:
    return sorted(_FAMILIES)


def family_for(model_type: object, source: str = "config.json") -> ModelFamily:
    """The registered family of `model_type`; a ConfigError listing the supported ones otherwise."""
    if isinstance(model_type, str) and model_type in _FAMILIES:
        return _FAMILIES[model_type]
    supported = ", ".join(repr(name) for name in supported_model_types())
    if model_type is None:
        raise ConfigError(
            f"{source} has no 'model_type', which the Auto classes choose the model by; "
            f"supported: {supported}. Add it, or load with a model class such as DistilBertModel"
        )
    shown = repr(model_type) if len(repr(model_type)) <= 80 else repr(model_type)[:77] + "..."
    raise ConfigError(f"{source}: model_type {shown} is not supported; supported: {supported}")


def read_family(directory: Path) -> tuple[ModelFamily, Any]:
    """The family and the parsed config of the model in `directory` (by config.json's model_type)."""
    path = directory / "config.json"
    data = read_config_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a JSON object, got {type(data).__name__}")
    family = family_for(data.get("model_type"), source=str(path))
    try:
        config = family.config_class.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return family, config


# ---------------------------------------------------------------- Auto classes
class _AutoModelClass:
    """`from_pretrained` choosing the class by model_type and the subclass's `task`."""

    task: ClassVar[str]

    def __init__(self) -> None:
        name = type(self).__name__
        raise TypeError(f"{name} is not instantiated; use {name}.from_pretrained(path_or_id)")

    @classmethod
    def model_class_for(cls, path_or_id: str | Path, *, revision: str | None = None) -> type[PretrainedModel]:
        """The class `from_pretrained` would load, without loading any weights."""
        family, _ = read_family(resolve_model(path_or_id, revision=revision))
        return family.model_class(cls.task)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        dtype: DTypeLike = np.float32,
        mmap: bool = True,
        *,
        revision: str | None = None,
    ) -> Any:
        """Load the model for this class's task from a directory or a model id.

        Arguments as `DistilBertModel.from_pretrained`. A checkpoint trained for another head
        is refused by the head classes (the bare encoder of `AutoModel` loads from any).
        """
        path = resolve_model(path_or_id, revision=revision)
        family, _ = read_family(path)
        return family.model_class(cls.task).from_pretrained(path, dtype=dtype, mmap=mmap)


class AutoModel(_AutoModelClass):
    """The bare encoder (`last_hidden_state`) of any checkpoint, with or without a head."""

    task = BASE


class AutoModelForMaskedLM(_AutoModelClass):
    task = MASKED_LM


class AutoModelForSequenceClassification(_AutoModelClass):
    task = SEQUENCE_CLASSIFICATION


class AutoModelForTokenClassification(_AutoModelClass):
    task = TOKEN_CLASSIFICATION


class AutoModelForQuestionAnswering(_AutoModelClass):
    task = QUESTION_ANSWERING


class AutoModelForMultipleChoice(_AutoModelClass):
    task = MULTIPLE_CHOICE


class AutoModelForPreTraining(_AutoModelClass):
    """BERT's pre-training heads (masked LM + next sentence); DistilBERT has none."""

    task = PRETRAINING


class AutoConfig:
    """`AutoConfig.from_pretrained(path_or_id, revision=None)`: the family's config, by model_type."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not instantiated; use AutoConfig.from_pretrained(path_or_id)")

    @staticmethod
    def from_pretrained(path_or_id: str | Path, revision: str | None = None) -> Any:
        """Read config.json of a directory or a model id (found as `hub.resolve_model` finds it)."""
        _, config = read_family(resolve_model(path_or_id, revision=revision))
        return config


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(path_or_id, revision=None, **tokenizer_kwargs)`.

    Every registered family tokenizes with WordPiece; the files are found as `pipeline()`
    finds a tokenizer (`hub.resolve_tokenizer`: vocab.txt or tokenizer.json, no weights).
    """

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(path_or_id)")

    @staticmethod
    def from_pretrained(path_or_id: str | Path, revision: str | None = None, **tokenizer_kwargs: Any) -> Any:
        """A `tokenizer.WordPieceTokenizer`; keyword arguments override tokenizer_config.json."""
        from numpy_distilbert._tokenizer_package import wordpiece_tokenizer_class

        directory = resolve_tokenizer(path_or_id, revision=revision)
        return wordpiece_tokenizer_class().from_pretrained(directory, **tokenizer_kwargs)


# ------------------------------------------------------------------ by architectures
def model_class_for(config: Any) -> type[PretrainedModel]:
    """The class `config.architectures` names within its family; the bare encoder for none."""
    family = family_for(config.model_type)
    if not config.architectures:
        return family.model_class(BASE)
    for name in config.architectures:
        cls = family.class_named(name)
        if cls is not None:
            return cls
    raise ValueError(
        f"config.json's architectures {list(config.architectures)} name no model this package "
        f"implements; supported: {', '.join(cls.__name__ for cls in family.models.values())}"
    )


def load_model(
    path_or_id: str | Path, dtype: DTypeLike = np.float32, mmap: bool = True, *, revision: str | None = None
) -> Any:
    """Load whichever class config.json's `architectures` names (the bare encoder if none).

    Unlike `AutoModel`, which always gives the encoder, this gives the checkpoint's own head.
    Arguments as `DistilBertModel.from_pretrained`.
    """
    path = resolve_model(path_or_id, revision=revision)
    _, config = read_family(path)
    return model_class_for(config).from_pretrained(path, dtype=dtype, mmap=mmap)


# --------------------------------------------------------------- the families
register_family("distilbert", DistilBertConfig, {
    BASE: DistilBertModel,
    MASKED_LM: DistilBertForMaskedLM,
    SEQUENCE_CLASSIFICATION: DistilBertForSequenceClassification,
    TOKEN_CLASSIFICATION: DistilBertForTokenClassification,
    QUESTION_ANSWERING: DistilBertForQuestionAnswering,
    MULTIPLE_CHOICE: DistilBertForMultipleChoice,
})  # fmt: skip
# For the masked-LM task BertForMaskedLM serves pre-training checkpoints too, as in transformers.
register_family("bert", BertConfig, {
    BASE: BertModel,
    MASKED_LM: BertForMaskedLM,
    PRETRAINING: BertForPreTraining,
    SEQUENCE_CLASSIFICATION: BertForSequenceClassification,
    TOKEN_CLASSIFICATION: BertForTokenClassification,
    QUESTION_ANSWERING: BertForQuestionAnswering,
})  # fmt: skip


__all__ = [
    "TASKS",
    "AutoConfig",
    "AutoModel",
    "AutoModelForMaskedLM",
    "AutoModelForMultipleChoice",
    "AutoModelForPreTraining",
    "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "ModelFamily",
    "family_for",
    "load_model",
    "model_class_for",
    "register_family",
    "supported_model_types",
]
