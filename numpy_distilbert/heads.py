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
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from numpy_distilbert.config import BertConfig, DistilBertConfig
from numpy_distilbert.dropout import apply_dropout, dropout_mask, dropout_rate
from numpy_distilbert.layers import linear, relu_backward
from numpy_distilbert.losses import cross_entropy, question_answering_loss, sequence_classification_loss
from numpy_distilbert.model import (
    DistilBertModel,
    Positions,
    PretrainedModel,
    Tape,
    TrainableHead,
    _check_output_grads,
    _grad_or_zeros,
    affine_backward,
    refuse_positions,
)
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


def _pool_and_classify_train(
    hidden: np.ndarray,
    pre: tuple[np.ndarray, np.ndarray],
    cls: tuple[np.ndarray, np.ndarray],
    p: float,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """`_pool_and_classify` with dropout (`seq_classif_dropout`, after the ReLU, as transformers)
    and the values its backward needs: hidden [N, L, D] -> (logits [N, C], saved)."""
    first = hidden[:, 0]  # [N, D]
    pre_activation = linear(first, *pre)
    mask = dropout_mask(rng, pre_activation.shape, p, hidden.dtype)
    pooled = apply_dropout(np.maximum(pre_activation, 0), mask)  # [N, D]
    saved = {"first": first, "pre_activation": pre_activation, "mask": mask, "pooled": pooled}
    return linear(pooled, *cls), saved


def _pool_and_classify_backward(
    d_logits: np.ndarray,
    saved: dict[str, Any],
    hidden_shape: tuple[int, ...],
    pre: tuple[np.ndarray, np.ndarray],
    cls: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """d_logits [N, C] -> (d_hidden [N, L, D], nonzero only at position 0; head gradients)."""
    d_pooled, d_cls = affine_backward(d_logits, saved["pooled"], cls)
    d_pre = relu_backward(apply_dropout(d_pooled, saved["mask"]), saved["pre_activation"])
    d_first, d_pre_classifier = affine_backward(d_pre, saved["first"], pre)
    d_hidden = np.zeros(hidden_shape, dtype=d_logits.dtype)
    d_hidden[:, 0] = d_first
    return d_hidden, {"pre_classifier": d_pre_classifier, "classifier": d_cls}


def _seq_classif_dropout(config: DistilBertConfig) -> float:
    return dropout_rate(config.extra, "seq_classif_dropout", 0.2)


class DistilBertForSequenceClassification(TrainableHead, PretrainedModel):
    """One label distribution per sequence, read from the [CLS] position."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("pre_classifier.", "classifier.")
    head_affines = (("pre_classifier", "pre_classifier"), ("classifier", "classifier"))
    loss_targets = ("labels",)

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

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[SequenceClassifierOutput, Tape]:
        refuse_positions(self, positions)
        tape = self.encoder_train(input_ids, attention_mask, None, dropout_rng)
        logits, tape.head = _pool_and_classify_train(
            tape.last_hidden_state, self.pre_classifier, self.classifier,
            _seq_classif_dropout(self.config), dropout_rng,
        )  # fmt: skip
        return SequenceClassifierOutput(logits), tape

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: logits [B, C], last_hidden_state [B, L, D]."""
        _check_output_grads(self, output_grads, ("logits", "last_hidden_state"))
        like = np.empty((tape.last_hidden_state.shape[0], self.config.num_labels), dtype=self.dtype)
        d_logits = _grad_or_zeros(output_grads.get("logits"), like)
        d_hidden, head = _pool_and_classify_backward(
            d_logits, tape.head, tape.last_hidden_state.shape, self.pre_classifier, self.classifier
        )
        grads = self.encoder_gradients(tape, d_hidden, output_grads)
        self.add_head_gradients(grads, head)
        return grads

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """CE, MSE (one label: regression) or BCE-with-logits (multi-label), as transformers."""
        problem_type = self.config.problem_type
        loss, d_logits = sequence_classification_loss(outputs.logits, targets["labels"], problem_type)
        return loss, {"logits": d_logits}


def _token_labels_loss(logits: np.ndarray, labels: ArrayLike) -> tuple[float, dict[str, np.ndarray]]:
    """Token classification's CE over every position whose label is not -100: logits [B, L, C]."""
    array = np.asarray(labels)
    if array.ndim == 1:
        array = array[None, :]
    if array.shape != logits.shape[:2]:
        raise ValueError(f"labels have shape {array.shape}, the tokens {logits.shape[:2]}")
    loss, d_flat = cross_entropy(logits.reshape(-1, logits.shape[-1]), array.reshape(-1))
    return loss, {"logits": d_flat.reshape(logits.shape)}


class TokenClassificationHead(TrainableHead):
    """h ─ dropout ─ classifier -> one label distribution per token [B, L, C]: the same head on
    DistilBERT and BERT. A family's class sets the encoder (`self.distilbert` / `self.bert`),
    `self.classifier` and its dropout rate; token types reach the encoder, which BERT reads and
    DistilBERT ignores."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("classifier.",)
    head_affines = (("classifier", "classifier"),)
    loss_targets: ClassVar[tuple[str, ...]] = ("labels",)
    config: Any
    dtype: np.dtype
    classifier: tuple[np.ndarray, np.ndarray]

    def classifier_dropout(self) -> float:
        raise NotImplementedError

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> TokenClassifierOutput:
        encoded = self.encoder()(
            input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions
        )
        logits = linear(encoded.last_hidden_state, *self.classifier)  # [B, L, C]
        return TokenClassifierOutput(logits, encoded.hidden_states, encoded.attentions)

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[TokenClassifierOutput, Tape]:
        refuse_positions(self, positions)
        tape = self.encoder_train(input_ids, attention_mask, token_type_ids, dropout_rng)
        hidden = tape.last_hidden_state
        mask = dropout_mask(dropout_rng, hidden.shape, self.classifier_dropout(), hidden.dtype)
        dropped = apply_dropout(hidden, mask)  # [B, L, D]
        logits = linear(dropped, *self.classifier)  # [B, L, C]
        tape.head = {"mask": mask, "dropped": dropped, "logits_shape": logits.shape}
        return TokenClassifierOutput(logits), tape

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: logits [B, L, C], last_hidden_state [B, L, D]."""
        _check_output_grads(self, output_grads, ("logits", "last_hidden_state"))
        like = np.empty(tape.head["logits_shape"], dtype=self.dtype)
        d_dropped, d_classifier = affine_backward(
            _grad_or_zeros(output_grads.get("logits"), like), tape.head["dropped"], self.classifier
        )
        grads = self.encoder_gradients(tape, apply_dropout(d_dropped, tape.head["mask"]), output_grads)
        self.add_head_gradients(grads, {"classifier": d_classifier})
        return grads

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        return _token_labels_loss(outputs.logits, targets["labels"])


class DistilBertForTokenClassification(TokenClassificationHead, PretrainedModel):
    """One label distribution per token."""

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config = _labelled_config(config, checkpoint)
        self.distilbert = DistilBertModel(config, checkpoint, dtype)
        self.dtype = dtype = self.distilbert.dtype
        d, c = config.dim, config.num_labels
        why = "token classification head"
        self.classifier = checkpoint.take_affine("classifier", c, d, dtype, why)

    def classifier_dropout(self) -> float:
        return dropout_rate(self.config.extra, "dropout", 0.1)


class QuestionAnsweringHead(TrainableHead):
    """h ─ dropout ─ qa_outputs -> a start and an end score per token [B, L]: the same head on
    DistilBERT (with `qa_dropout`) and BERT (no dropout in transformers' head)."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("qa_outputs.",)
    head_affines = (("qa_outputs", "qa_outputs"),)
    loss_targets: ClassVar[tuple[str, ...]] = ("start_positions", "end_positions")
    config: Any
    qa_outputs: tuple[np.ndarray, np.ndarray]

    def qa_dropout(self) -> float:
        raise NotImplementedError

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> QuestionAnsweringModelOutput:
        encoded = self.encoder()(
            input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions
        )
        logits = linear(encoded.last_hidden_state, *self.qa_outputs)  # [B, L, 2]
        return QuestionAnsweringModelOutput(
            logits[..., 0], logits[..., 1], encoded.hidden_states, encoded.attentions
        )

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[QuestionAnsweringModelOutput, Tape]:
        refuse_positions(self, positions)
        tape = self.encoder_train(input_ids, attention_mask, token_type_ids, dropout_rng)
        hidden = tape.last_hidden_state
        mask = dropout_mask(dropout_rng, hidden.shape, self.qa_dropout(), hidden.dtype)
        dropped = apply_dropout(hidden, mask)  # [B, L, D]
        logits = linear(dropped, *self.qa_outputs)  # [B, L, 2]
        tape.head = {"mask": mask, "dropped": dropped}
        return QuestionAnsweringModelOutput(logits[..., 0], logits[..., 1]), tape

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: start_logits [B, L], end_logits [B, L], last_hidden_state [B, L, D]."""
        _check_output_grads(self, output_grads, ("start_logits", "end_logits", "last_hidden_state"))
        dropped = tape.head["dropped"]
        d_start = _grad_or_zeros(output_grads.get("start_logits"), dropped[..., 0])
        d_end = _grad_or_zeros(output_grads.get("end_logits"), dropped[..., 0])
        d_logits = np.stack([d_start, d_end], axis=-1)  # [B, L, 2]
        d_dropped, d_qa = affine_backward(d_logits, dropped, self.qa_outputs)
        grads = self.encoder_gradients(tape, apply_dropout(d_dropped, tape.head["mask"]), output_grads)
        self.add_head_gradients(grads, {"qa_outputs": d_qa})
        return grads

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """The mean of start and end CE, positions clamped to [0, L] and L ignored, as transformers."""
        loss, d_start, d_end = question_answering_loss(
            outputs.start_logits, outputs.end_logits, targets["start_positions"], targets["end_positions"]
        )
        return loss, {"start_logits": d_start, "end_logits": d_end}


class DistilBertForQuestionAnswering(QuestionAnsweringHead, PretrainedModel):
    """Extractive QA: a start and an end score for every token."""

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.distilbert = DistilBertModel(config, checkpoint, dtype)
        self.dtype = dtype = self.distilbert.dtype
        why = "question answering head"
        self.qa_outputs = checkpoint.take_affine("qa_outputs", 2, config.dim, dtype, why)

    def qa_dropout(self) -> float:
        return dropout_rate(self.config.extra, "qa_dropout", 0.1)


class DistilBertForMultipleChoice(TrainableHead, PretrainedModel):
    """K candidate sequences per example, one score each: input_ids [B, K, L] -> logits [B, K]."""

    head_prefixes: ClassVar[tuple[str, ...]] = ("pre_classifier.", "classifier.")
    head_affines = (("pre_classifier", "pre_classifier"), ("classifier", "classifier"))
    loss_targets = ("labels",)

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

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[MultipleChoiceModelOutput, Tape]:
        """ids [B, K, L] -> logits [B, K]; the tape's last_hidden_state is [B·K, L, D]."""
        refuse_positions(self, positions)
        ids = np.asarray(input_ids)
        if ids.ndim != 3:
            raise ValueError(f"input_ids must have shape [batch, num_choices, length], got shape {ids.shape}")
        batch, choices, length = ids.shape
        mask = None if attention_mask is None else np.asarray(attention_mask).reshape(batch * choices, length)
        tape = self.encoder_train(ids.reshape(batch * choices, length), mask, None, dropout_rng)
        logits, tape.head = _pool_and_classify_train(
            tape.last_hidden_state, self.pre_classifier, self.classifier,
            _seq_classif_dropout(self.config), dropout_rng,
        )  # fmt: skip
        return MultipleChoiceModelOutput(logits.reshape(batch, choices)), tape

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: logits [B, K], last_hidden_state [B·K, L, D]."""
        _check_output_grads(self, output_grads, ("logits", "last_hidden_state"))
        d_logits = output_grads.get("logits")
        rows = tape.last_hidden_state.shape[0]
        like = np.empty((rows, 1), dtype=self.dtype)
        d_flat = _grad_or_zeros(None if d_logits is None else np.asarray(d_logits).reshape(rows, 1), like)
        d_hidden, head = _pool_and_classify_backward(
            d_flat, tape.head, tape.last_hidden_state.shape, self.pre_classifier, self.classifier
        )
        grads = self.encoder_gradients(tape, d_hidden, output_grads)
        self.add_head_gradients(grads, head)
        return grads

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """CE over the K choices, labels [B]."""
        loss, d_logits = cross_entropy(outputs.logits, np.asarray(targets["labels"]).reshape(-1))
        return loss, {"logits": d_logits}


__all__ = [
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
]
