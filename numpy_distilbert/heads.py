"""Task heads on the DistilBERT encoder.

    sequence classification:  h[:, 0] ─ pre_classifier ─ ReLU ─ classifier        -> logits [B, C]
    token classification:     h ─ classifier                                       -> logits [B, L, C]
    question answering:       h ─ qa_outputs ─ split                               -> start, end [B, L]
    multiple choice:          ids [B, K, L] -> [B·K, L] ─ as sequence classification
                              with one output ─ reshape                            -> logits [B, K]

(h is the encoder's last hidden state [B, L, D]; dropout is the identity at inference.)

Labels: a classifier's outputs are named by `config.id2label`. A config without one gets
transformers' default names `LABEL_0 … LABEL_{n-1}`, with n read from `num_labels` in
config.json, else from the classifier's shape. A config whose id2label disagrees with the
classifier's shape is refused.

Every head returns its `outputs.py` dataclass (transformers' names: `logits`, or
`start_logits`/`end_logits`), with the encoder's `hidden_states` and `attentions` when asked
for by `output_hidden_states=True` / `output_attentions=True`. The Auto classes and
`load_model` are in `auto.py`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from numpy_distilbert.config import BertConfig, DistilBertConfig
from numpy_distilbert.layers import linear
from numpy_distilbert.model import DistilBertModel, PretrainedModel
from numpy_distilbert.outputs import (
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from numpy_distilbert.weights import Checkpoint, CheckpointError

_Config = TypeVar("_Config", DistilBertConfig, BertConfig)


def _labelled_config(config: _Config, checkpoint: Checkpoint) -> _Config:
    """`config` with id2label/label2id filled in and checked against `classifier.weight`'s rows
    (DistilBERT's or BERT's config: both keep their labels in the same fields)."""
    stored = checkpoint.tensors.get("classifier.weight")
    if stored is None:
        raise CheckpointError(f"{checkpoint.directory}: missing tensor 'classifier.weight' (classifier)")
    rows = stored.shape[0]
    id2label = dict(config.id2label)
    if id2label:
        if sorted(id2label) != list(range(len(id2label))):
            raise CheckpointError(
                f"{checkpoint.directory}/config.json: id2label keys must be 0..{len(id2label) - 1}, "
                f"got {sorted(id2label)}"
            )
        if len(id2label) != rows:
            raise CheckpointError(
                f"{checkpoint.directory}: config.json's id2label names {len(id2label)} labels, but the "
                f"classifier has {rows} outputs (classifier.weight shape {list(stored.shape)})"
            )
    else:
        declared = config.extra.get("num_labels")
        if declared is not None and declared != rows:
            raise CheckpointError(
                f"{checkpoint.directory}: config.json says num_labels={declared}, but the classifier "
                f"has {rows} outputs (classifier.weight shape {list(stored.shape)})"
            )
        id2label = {i: f"LABEL_{i}" for i in range(rows)}
    label2id = dict(config.label2id) or {label: i for i, label in id2label.items()}
    return dataclasses.replace(config, id2label=id2label, label2id=label2id)


def _pool_and_classify(
    hidden: np.ndarray, pre: tuple[np.ndarray, np.ndarray], cls: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """hidden [N, L, D] -> logits [N, C]: the [CLS] vector through Linear-ReLU-Linear."""
    pooled = np.maximum(linear(hidden[:, 0], *pre), 0)  # [N, D]
    return linear(pooled, *cls)  # [N, C]


class DistilBertForSequenceClassification(PretrainedModel):
    """One label distribution per sequence, read from the [CLS] position."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("pre_classifier.", "classifier.")

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config = _labelled_config(config, checkpoint)
        self.distilbert = DistilBertModel(config, checkpoint, dtype)
        self.dtype = dtype = self.distilbert.dtype
        d, c = config.dim, config.num_labels
        why = "sequence classification head"
        self.pre_classifier = checkpoint.take_affine("pre_classifier", d, d, dtype, why)
        self.classifier = checkpoint.take_affine("classifier", c, d, dtype, why)

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> SequenceClassifierOutput:
        encoded = self.distilbert(input_ids, attention_mask, None, output_hidden_states, output_attentions)
        hidden = encoded.last_hidden_state  # [B, L, D]
        logits = _pool_and_classify(hidden, self.pre_classifier, self.classifier)  # [B, C]
        return SequenceClassifierOutput(logits, encoded.hidden_states, encoded.attentions)


class DistilBertForTokenClassification(PretrainedModel):
    """One label distribution per token."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("classifier.",)

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config = _labelled_config(config, checkpoint)
        self.distilbert = DistilBertModel(config, checkpoint, dtype)
        self.dtype = dtype = self.distilbert.dtype
        d, c = config.dim, config.num_labels
        why = "token classification head"
        self.classifier = checkpoint.take_affine("classifier", c, d, dtype, why)

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> TokenClassifierOutput:
        encoded = self.distilbert(input_ids, attention_mask, None, output_hidden_states, output_attentions)
        hidden = encoded.last_hidden_state  # [B, L, D]
        logits = linear(hidden, *self.classifier)  # [B, L, C]
        return TokenClassifierOutput(logits, encoded.hidden_states, encoded.attentions)


class DistilBertForQuestionAnswering(PretrainedModel):
    """Extractive QA: a start and an end score for every token."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("qa_outputs.",)

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.distilbert = DistilBertModel(config, checkpoint, dtype)
        self.dtype = dtype = self.distilbert.dtype
        why = "question answering head"
        self.qa_outputs = checkpoint.take_affine("qa_outputs", 2, config.dim, dtype, why)

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> QuestionAnsweringModelOutput:
        encoded = self.distilbert(input_ids, attention_mask, None, output_hidden_states, output_attentions)
        hidden = encoded.last_hidden_state  # [B, L, D]
        logits = linear(hidden, *self.qa_outputs)  # [B, L, 2]
        return QuestionAnsweringModelOutput(
            logits[..., 0], logits[..., 1], encoded.hidden_states, encoded.attentions
        )


class DistilBertForMultipleChoice(PretrainedModel):
    """K candidate sequences per example, one score each: input_ids [B, K, L] -> logits [B, K]."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("pre_classifier.", "classifier.")

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.distilbert = DistilBertModel(config, checkpoint, dtype)
        self.dtype = dtype = self.distilbert.dtype
        d = config.dim
        why = "multiple choice head"
        self.pre_classifier = checkpoint.take_affine("pre_classifier", d, d, dtype, why)
        self.classifier = checkpoint.take_affine("classifier", 1, d, dtype, why)

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MultipleChoiceModelOutput:
        """ids [B, K, L] -> logits [B, K]; hidden_states and attentions are those of the B·K
        flattened sequences, as transformers returns them."""
        ids = np.asarray(input_ids)
        if ids.ndim != 3:
            raise ValueError(f"input_ids must have shape [batch, num_choices, length], got shape {ids.shape}")
        batch, choices, length = ids.shape
        mask = None
        if attention_mask is not None:
            mask = np.asarray(attention_mask)
            if mask.shape != ids.shape:
                raise ValueError(f"attention_mask has shape {mask.shape}, input_ids {ids.shape}")
            mask = mask.reshape(batch * choices, length)
        encoded = self.distilbert(
            ids.reshape(batch * choices, length), mask, None, output_hidden_states, output_attentions
        )
        hidden = encoded.last_hidden_state  # [B·K, L, D]
        logits = _pool_and_classify(hidden, self.pre_classifier, self.classifier)  # [B·K, 1]
        return MultipleChoiceModelOutput(
            logits.reshape(batch, choices), encoded.hidden_states, encoded.attentions
        )


__all__ = [
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
]
