"""BERT, on the same transformer stack as DistilBERT (`model.run_encoder`).

DistilBERT is BERT with the token-type embeddings and the pooler removed and half the layers.
So BERT here is DistilBERT's encoder with three additions, and nothing else of its own:

    ids [B, L], types [B, L] ─ embed (word + type + position, LayerNorm) ─ N × transformer_block
    pooler:        pooled = tanh(h[:, 0] @ Wp.T + bp)                            [B, D]
    MLM head:      logits = LN(act(h @ Wt.T + bt)) @ E.T + b   (E: word embeddings, tied)
    NSP head:      seq_relationship = pooled @ Wn.T + bn                         [B, 2]
    sequence cls:  pooled ─ classifier       token cls: h ─ classifier     QA: h ─ qa_outputs

and the checkpoint's own names (`BERT_BLOCK_NAMES`): `encoder.layer.N.attention.self.query`,
`attention.output.dense`, `intermediate.dense`, `output.dense`, `…LayerNorm`, with the
`bert.` prefix that task models add (or not), and LayerNorm's legacy `gamma`/`beta`
(`weights.canonical_name` renames those for every family). LayerNorm's epsilon is the
config's `layer_norm_eps` everywhere (DistilBERT's is a fixed 1e-12).

Loading, dtypes and mmap work as for the DistilBERT classes (`model.PretrainedModel`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from numpy_distilbert.config import BertConfig
from numpy_distilbert.dropout import apply_dropout, dropout_mask, dropout_rate
from numpy_distilbert.heads import QuestionAnsweringHead, TokenClassificationHead, _labelled_config
from numpy_distilbert.layers import ACTIVATION_BACKWARDS, ACTIVATIONS, embed, layer_norm, linear
from numpy_distilbert.losses import cross_entropy, sequence_classification_loss
from numpy_distilbert.model import (
    BlockNames,
    DropoutRates,
    Positions,
    PretrainedModel,
    Tape,
    TrainableEncoder,
    TrainableHead,
    _check_output_grads,
    _grad_or_zeros,
    _select_positions,
    affine_backward,
    as_float_dtype,
    masked_lm_loss,
    mlm_head_backward,
    mlm_head_train,
    mlm_label_positions,
    mlm_logits_grad,
    position_indices,
    prepare_inputs,
    refuse_positions,
    run_encoder,
    scatter_rows,
    take_block,
    writable,
)
from numpy_distilbert.outputs import (
    BaseModelOutputWithPooling,
    BertForPreTrainingOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
)
from numpy_distilbert.weights import Checkpoint, CheckpointError

BERT_BLOCK_NAMES = BlockNames(
    layer="encoder.layer.{i}.", query="attention.self.query", key="attention.self.key",
    value="attention.self.value", attention_out="attention.output.dense",
    attention_norm="attention.output.LayerNorm", ffn_in="intermediate.dense", ffn_out="output.dense",
    output_norm="output.LayerNorm",
)  # fmt: skip
ENCODER_PREFIX = "bert."  # what task models put before the encoder's names
MLM_PREFIX = "cls.predictions."
NSP_PREFIX = "cls.seq_relationship."
BERT_HEAD_PREFIXES = (MLM_PREFIX, NSP_PREFIX, "classifier.", "qa_outputs.")
BERT_ARCHITECTURE_NAMES = (
    "BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification",
    "BertForTokenClassification", "BertForQuestionAnswering",
)  # fmt: skip


def strip_encoder_prefix(checkpoint: Checkpoint) -> None:
    """Rename `bert.X` to `X` in place, so that BertModel and task checkpoints read alike.

    A file holding both spellings of one tensor is refused: which one would be meant?
    """
    for name in [n for n in checkpoint.tensors if n.startswith(ENCODER_PREFIX)]:
        bare = name[len(ENCODER_PREFIX) :]
        if bare in checkpoint.tensors:
            raise CheckpointError(
                f"{checkpoint.sources[name]}: tensor {name!r} duplicates {bare!r} from "
                f"{checkpoint.sources[bare]}"
            )
        checkpoint.tensors[bare] = checkpoint.tensors.pop(name)
        checkpoint.sources[bare] = checkpoint.sources.pop(name)


def prepare_token_types(
    token_type_ids: ArrayLike | None, shape: tuple[int, ...], n_types: int
) -> NDArray[np.int64]:
    """token_type_ids as int64 [B, L] (zeros when None), checked against input_ids' shape and
    the type vocabulary [0, n_types); a 1-D sequence counts as a batch of one."""
    if token_type_ids is None:
        return np.zeros(shape, dtype=np.int64)
    types = np.asarray(token_type_ids)
    if types.ndim == 1:
        types = types[None, :]
    if types.shape != shape:
        raise ValueError(f"token_type_ids has shape {types.shape}, input_ids {shape}")
    if types.size and not np.issubdtype(types.dtype, np.integer):
        raise TypeError(f"token_type_ids must be integers, got dtype {types.dtype}")
    bad = (types < 0) | (types >= n_types)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"token type {int(types[row, col])} at position ({row}, {col}) is outside "
            f"[0, {n_types}) (config type_vocab_size)"
        )
    return types.astype(np.int64, copy=False)


class _BertFamily(PretrainedModel):
    """BERT's checkpoint conventions for `PretrainedModel`'s loading checks."""

    config: BertConfig
    config_class: ClassVar[type[BertConfig]] = BertConfig
    family_name: ClassVar[str] = "BERT"
    base_class_name: ClassVar[str] = "BertModel"
    architecture_names: ClassVar[tuple[str, ...]] = BERT_ARCHITECTURE_NAMES
    known_head_prefixes: ClassVar[tuple[str, ...]] = BERT_HEAD_PREFIXES
    ignored_prefixes: ClassVar[tuple[str, ...]] = ("embeddings.position_ids",)

    @staticmethod
    def canonicalize_names(checkpoint: Checkpoint) -> None:
        strip_encoder_prefix(checkpoint)


class BertModel(TrainableEncoder, _BertFamily):
    """The bare encoder: ids (and token types) -> contextual vectors and the pooled [CLS] vector.

    The pooler is loaded when the checkpoint has one (`pooler_output` is None otherwise:
    checkpoints saved from BertForMaskedLM, token classification and QA carry none, and
    transformers would draw one at random). `pooler=True` requires it; `pooler=False` leaves a
    checkpoint's pooler out, as transformers' `add_pooling_layer=False` does for the MLM,
    token-classification and QA heads (so their parameters are exactly transformers').
    """

    def __init__(
        self,
        config: BertConfig,
        checkpoint: Checkpoint,
        dtype: DTypeLike = np.float32,
        pooler: bool | None = None,
    ):
        strip_encoder_prefix(checkpoint)  # also when built directly, not through from_pretrained
        self.config = config
        self.dtype = dtype = as_float_dtype(dtype)
        d = config.dim
        self.word_embeddings = checkpoint.take(
            "embeddings.word_embeddings.weight", (config.vocab_size, d), dtype
        )
        self.position_embeddings = checkpoint.take(
            "embeddings.position_embeddings.weight", (config.max_position_embeddings, d), dtype
        )  # [P, D]
        self.token_type_embeddings = checkpoint.take(
            "embeddings.token_type_embeddings.weight", (config.type_vocab_size, d), dtype
        )  # [T, D]
        self.embedding_norm = checkpoint.take_affine("embeddings.LayerNorm", d, None, dtype)
        self.blocks = [
            take_block(checkpoint, config, i, dtype, BERT_BLOCK_NAMES) for i in range(config.n_layers)
        ]
        self.activation = ACTIVATIONS[config.hidden_act]
        self.eps = float(config.layer_norm_eps)
        has_pooler = "pooler.dense.weight" in checkpoint or "pooler.dense.bias" in checkpoint
        if pooler is False:
            checkpoint.leave_out(("pooler.dense.weight", "pooler.dense.bias"))
        self.pooler = (
            checkpoint.take_affine("pooler.dense", d, d, dtype, why="pooler")
            if pooler or (pooler is None and has_pooler)
            else None
        )

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutputWithPooling:
        """ids [B, L] (or [L]) -> (last_hidden_state [B, L, D], pooler_output [B, D], ...).

        token_type_ids: [B, L], 0 for the first segment and 1 for the second (default: all 0).
        """
        ids, mask = prepare_inputs(input_ids, attention_mask, self.config)
        types = prepare_token_types(token_type_ids, ids.shape, self.config.type_vocab_size)
        x = embed(
            ids, self.word_embeddings, self.position_embeddings, *self.embedding_norm,
            token_type_ids=types, token_type_embeddings=self.token_type_embeddings, eps=self.eps,
        )  # fmt: skip
        encoded = run_encoder(
            x, self.blocks, self.config.n_heads, mask, self.activation, self.eps,
            output_hidden_states, output_attentions,
        )  # fmt: skip
        hidden = encoded.last_hidden_state  # [B, L, D]
        pooled = None if self.pooler is None else np.tanh(linear(hidden[:, 0], *self.pooler))  # [B, D]
        return BaseModelOutputWithPooling(hidden, pooled, encoded.hidden_states, encoded.attentions)

    # -------------------------------------------------------------- training
    block_names = BERT_BLOCK_NAMES

    def dropout_rates(self) -> DropoutRates:
        extra = self.config.extra
        hidden = dropout_rate(extra, "hidden_dropout_prob", 0.1)
        attention = dropout_rate(extra, "attention_probs_dropout_prob", 0.1)
        return DropoutRates(
            embeddings=hidden, attention=attention, attention_output=hidden, ffn_output=hidden
        )

    def classifier_dropout(self) -> float:
        """The task heads' rate: `classifier_dropout`, else `hidden_dropout_prob`, as transformers."""
        extra = self.config.extra
        return dropout_rate(extra, "classifier_dropout", dropout_rate(extra, "hidden_dropout_prob", 0.1))

    def named_parameters(self) -> dict[str, np.ndarray]:
        return self.encoder_parameters()

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[BaseModelOutputWithPooling, Tape]:
        """As `__call__` (no hidden states or attentions), plus the tape `backward` needs."""
        refuse_positions(self, positions)
        ids, mask = prepare_inputs(input_ids, attention_mask, self.config)
        types = prepare_token_types(token_type_ids, ids.shape, self.config.type_vocab_size)
        encoded = self.encode_train(ids, mask, types, dropout_rng)
        outputs = BaseModelOutputWithPooling(encoded.last_hidden_state, encoded.pooled)
        return outputs, Tape(encoded.last_hidden_state, encoded, {})

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: last_hidden_state [B, L, D], pooler_output [B, D]."""
        _check_output_grads(self, output_grads, ("last_hidden_state", "pooler_output"))
        return self.encode_bert_backward(tape, "", output_grads.get("last_hidden_state"),
                                         output_grads.get("pooler_output"))  # fmt: skip

    def encode_bert_backward(
        self, tape: Tape, prefix: str, d_hidden: np.ndarray | None, d_pooled: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """The encoder's (and pooler's) gradients under `prefix`, from optional output gradients."""
        d_hidden = _grad_or_zeros(d_hidden, tape.last_hidden_state)
        if d_pooled is not None:
            assert tape.encoder.pooled is not None, "this BertModel has no pooler"
            d_pooled = _grad_or_zeros(d_pooled, tape.encoder.pooled)
        return self.encode_backward(d_hidden, tape.encoder, d_pooled, prefix)


class _MaskedLMHead:
    """`cls.predictions`: transform (dense + activation + LayerNorm), then the decoder, tied to
    the word embeddings unless the file stores its own matrix."""

    def __init__(self, bert: BertModel, checkpoint: Checkpoint):
        config, dtype = bert.config, bert.dtype
        d, v = config.dim, config.vocab_size
        why = "MLM head"
        self.transform = checkpoint.take_affine(MLM_PREFIX + "transform.dense", d, d, dtype, why)
        self.transform_norm = checkpoint.take_affine(MLM_PREFIX + "transform.LayerNorm", d, None, dtype, why)
        decoder = MLM_PREFIX + "decoder.weight"
        # A stored matrix wins, tied or not, as transformers loads it; else the embeddings *are* it.
        self.tied = decoder not in checkpoint
        self._bert = bert
        self._own_decoder = None if self.tied else checkpoint.take(decoder, (v, d), dtype, why)
        self.bias = self._bias(checkpoint, v, dtype)
        self.activation = bert.activation
        self.eps = bert.eps

    @property
    def decoder(self) -> np.ndarray:
        """The output matrix [V, D]: the encoder's (live) word-embedding table when tied."""
        return self._bert.word_embeddings if self._own_decoder is None else self._own_decoder

    @staticmethod
    def _bias(checkpoint: Checkpoint, v: int, dtype: np.dtype) -> np.ndarray:
        """The output bias: `cls.predictions.bias` and/or `cls.predictions.decoder.bias`, one
        tensor in transformers (the decoder's bias is tied to it); two different ones are refused."""
        names = [name for name in (MLM_PREFIX + "bias", MLM_PREFIX + "decoder.bias") if name in checkpoint]
        if not names:
            return checkpoint.take(MLM_PREFIX + "bias", (v,), dtype, "MLM head")  # raises: missing
        biases = [checkpoint.take(name, (v,), dtype, "MLM head") for name in names]
        if len(biases) == 2 and not np.array_equal(biases[0], biases[1]):
            raise CheckpointError(
                f"{checkpoint.directory}: {names[0]!r} and {names[1]!r} differ; they are one tied "
                f"parameter in BERT, so the checkpoint is inconsistent"
            )
        return biases[0]

    def __call__(self, hidden: np.ndarray) -> np.ndarray:
        """hidden [..., D] -> logits [..., V]."""
        x = layer_norm(self.activation(linear(hidden, *self.transform)), *self.transform_norm, self.eps)
        return linear(x, self.decoder, self.bias)

    # -------------------------------------------------------------- training
    def parameters(self) -> dict[str, np.ndarray]:
        """Writable (copied once) and named as transformers does; a tied decoder is not listed."""
        if not self.transform[0].flags.writeable or isinstance(self.transform[0], np.memmap):
            self.transform = (writable(self.transform[0]), writable(self.transform[1]))
            self.transform_norm = (writable(self.transform_norm[0]), writable(self.transform_norm[1]))
            self.bias = writable(self.bias)
            if self._own_decoder is not None:
                self._own_decoder = writable(self._own_decoder)
        params = {MLM_PREFIX + "bias": self.bias}
        dense = MLM_PREFIX + "transform.dense."
        params[dense + "weight"], params[dense + "bias"] = self.transform
        norm = MLM_PREFIX + "transform.LayerNorm."
        params[norm + "weight"], params[norm + "bias"] = self.transform_norm
        if not self.tied:
            params[MLM_PREFIX + "decoder.weight"] = self.decoder
        return params

    def train(self, hidden: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Selected rows hidden [N, D] -> (logits [N, V], saved values)."""
        return mlm_head_train(
            hidden, self.transform, self.transform_norm, self.decoder, self.bias, self.activation, self.eps
        )

    def backward(
        self, d_logits: np.ndarray, saved: dict[str, Any], activation: str
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
        """-> (d_hidden rows [N, D], named head gradients, the tied decoder's [V, D] gradient or None)."""
        d_rows, head = mlm_head_backward(
            d_logits, saved, self.transform, self.transform_norm, self.decoder,
            ACTIVATION_BACKWARDS[activation], self.eps,
        )  # fmt: skip
        norm = MLM_PREFIX + "transform.LayerNorm."
        grads = {MLM_PREFIX + "bias": head["projector.bias"],
                 MLM_PREFIX + "transform.dense.weight": head["transform.weight"],
                 MLM_PREFIX + "transform.dense.bias": head["transform.bias"],
                 norm + "weight": head["norm.weight"], norm + "bias": head["norm.bias"]}  # fmt: skip
        if not self.tied:
            grads[MLM_PREFIX + "decoder.weight"] = head["projector.weight"]
            return d_rows, grads, None
        return d_rows, grads, head["projector.weight"]


def _mlm_forward_train(
    model: BertForMaskedLM | BertForPreTraining,
    input_ids: ArrayLike,
    attention_mask: ArrayLike | None,
    token_type_ids: ArrayLike | None,
    positions: Positions | None,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, Tape]:
    """The encoder, then the MLM head at `positions` (all rows when None): (logits, tape)."""
    tape = model.encoder_train(input_ids, attention_mask, token_type_ids, rng)
    hidden = tape.last_hidden_state
    rows, cols = position_indices(hidden.shape[:2], positions)
    logits, tape.head = model.predictions.train(hidden[rows, cols])
    if positions is None:
        logits = logits.reshape(*hidden.shape[:2], -1)  # [B, L, V]
    tape.head.update(rows=rows, cols=cols, logits_shape=logits.shape)
    return logits, tape


def _mlm_backward(
    model: BertForMaskedLM | BertForPreTraining, tape: Tape, d_logits: np.ndarray | None
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
    """d_logits (as forward_train returned them, or None) -> (d_hidden [B, L, D], head grads, d_word)."""
    saved = tape.head
    d_logits = mlm_logits_grad(d_logits, saved, model.dtype)  # [N, V]
    d_rows, grads, d_word = model.predictions.backward(d_logits, saved, model.config.hidden_act)
    return scatter_rows(d_rows, saved["rows"], saved["cols"], tape.last_hidden_state), grads, d_word


def _mlm_targets(input_ids: ArrayLike, targets: dict[str, Any]) -> np.ndarray:
    """Validates `labels` in place in `targets`; returns the bool [B, L] mask of counted positions."""
    ids = np.asarray(input_ids)
    shape = (1, ids.shape[0]) if ids.ndim == 1 else ids.shape
    targets["labels"], counted = mlm_label_positions(targets["labels"], shape)
    return counted


class BertForMaskedLM(TrainableHead, _BertFamily):
    """Encoder + MLM head. Loads BertForPreTraining checkpoints too (their NSP head is unused),
    as transformers' fill-mask does."""

    encoder_prefix = ENCODER_PREFIX
    loss_targets = ("labels",)
    head_prefixes: ClassVar[tuple[str, ...]] = (MLM_PREFIX,)
    also_loads: ClassVar[tuple[str, ...]] = ("BertForPreTraining",)
    tolerated_prefixes: ClassVar[tuple[str, ...]] = (NSP_PREFIX,)

    def __init__(self, config: BertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.bert = BertModel(config, checkpoint, dtype, pooler=False)  # as add_pooling_layer=False
        self.dtype = self.bert.dtype
        self.predictions = _MaskedLMHead(self.bert, checkpoint)

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        """The MLM head alone: hidden [..., D] -> logits [..., V]."""
        return self.predictions(hidden)

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MaskedLMOutput:
        """MaskedLMOutput(logits [B, L, V]); with `positions`, only those rows: logits [N, V]
        (as `DistilBertForMaskedLM`)."""
        encoded = self.bert(
            input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions
        )
        hidden = encoded.last_hidden_state  # [B, L, D]
        if positions is not None:
            hidden = _select_positions(hidden, positions)  # [N, D]
        return MaskedLMOutput(self.predictions(hidden), encoded.hidden_states, encoded.attentions)

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {**self.bert.encoder_parameters(ENCODER_PREFIX), **self.predictions.parameters()}

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[MaskedLMOutput, Tape]:
        """As `__call__`: logits [B, L, V], or [N, V] at `positions`; plus the tape."""
        logits, tape = _mlm_forward_train(
            self, input_ids, attention_mask, token_type_ids, positions, dropout_rng
        )
        return MaskedLMOutput(logits), tape

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: logits (as forward_train returned them), last_hidden_state [B, L, D]."""
        _check_output_grads(self, output_grads, ("logits", "last_hidden_state"))
        d_hidden, head, d_word = _mlm_backward(self, tape, output_grads.get("logits"))
        grads = self.encoder_gradients(tape, d_hidden, output_grads, d_word=d_word)  # tied: summed
        grads.update(head)
        return grads

    def _forward_train_for_loss(
        self, input_ids: ArrayLike, attention_mask: ArrayLike | None, token_type_ids: ArrayLike | None,
        rng: np.random.Generator | None, targets: dict[str, Any],
    ) -> tuple[MaskedLMOutput, Tape]:  # fmt: skip
        counted = _mlm_targets(input_ids, targets)  # only those rows are projected
        return self.forward_train(input_ids, attention_mask, token_type_ids, counted, rng)

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        loss, d_logits = masked_lm_loss(outputs.logits, np.asarray(targets["labels"]))
        return loss, {"logits": d_logits}


class BertForPreTraining(TrainableHead, _BertFamily):
    """Encoder + MLM head + next-sentence prediction on the pooled [CLS] vector."""

    encoder_prefix = ENCODER_PREFIX
    head_affines = (("seq_relationship", "cls.seq_relationship"),)
    loss_targets = ("labels", "next_sentence_label")
    head_prefixes: ClassVar[tuple[str, ...]] = (MLM_PREFIX, NSP_PREFIX)

    def __init__(self, config: BertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.bert = BertModel(config, checkpoint, dtype, pooler=True)
        self.dtype = dtype = self.bert.dtype
        self.predictions = _MaskedLMHead(self.bert, checkpoint)
        self.seq_relationship = checkpoint.take_affine(
            "cls.seq_relationship", 2, config.dim, dtype, "NSP head"
        )

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        return self.predictions(hidden)

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertForPreTrainingOutput:
        """(prediction_logits [B, L, V] or [N, V] with `positions`, seq_relationship_logits [B, 2])."""
        encoded = self.bert(
            input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions
        )
        hidden = encoded.last_hidden_state  # [B, L, D]
        if positions is not None:
            hidden = _select_positions(hidden, positions)  # [N, D]
        assert encoded.pooler_output is not None  # pooler=True above
        return BertForPreTrainingOutput(
            self.predictions(hidden),
            linear(encoded.pooler_output, *self.seq_relationship),
            encoded.hidden_states,
            encoded.attentions,
        )

    def named_parameters(self) -> dict[str, np.ndarray]:
        params = TrainableHead.named_parameters(self)  # encoder + seq_relationship
        return {**params, **self.predictions.parameters()}

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[BertForPreTrainingOutput, Tape]:
        """(prediction_logits [B, L, V] or [N, V] at `positions`, seq_relationship_logits [B, 2])."""
        logits, tape = _mlm_forward_train(
            self, input_ids, attention_mask, token_type_ids, positions, dropout_rng
        )
        pooled = tape.encoder.pooled
        assert pooled is not None  # pooler=True
        return BertForPreTrainingOutput(logits, linear(pooled, *self.seq_relationship)), tape

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: prediction_logits, seq_relationship_logits [B, 2], last_hidden_state."""
        allowed = ("prediction_logits", "seq_relationship_logits", "last_hidden_state")
        _check_output_grads(self, output_grads, allowed)
        d_hidden, head, d_word = _mlm_backward(self, tape, output_grads.get("prediction_logits"))
        pooled = tape.encoder.pooled
        assert pooled is not None
        like = np.empty((pooled.shape[0], 2), dtype=self.dtype)
        d_nsp = _grad_or_zeros(output_grads.get("seq_relationship_logits"), like)
        d_pooled, d_seq_relationship = affine_backward(d_nsp, pooled, self.seq_relationship)
        grads = self.encoder_gradients(tape, d_hidden, output_grads, d_pooled=d_pooled, d_word=d_word)
        grads.update(head)
        self.add_head_gradients(grads, {"seq_relationship": d_seq_relationship})
        return grads

    def _forward_train_for_loss(
        self, input_ids: ArrayLike, attention_mask: ArrayLike | None, token_type_ids: ArrayLike | None,
        rng: np.random.Generator | None, targets: dict[str, Any],
    ) -> tuple[BertForPreTrainingOutput, Tape]:  # fmt: skip
        counted = _mlm_targets(input_ids, targets)
        return self.forward_train(input_ids, attention_mask, token_type_ids, counted, rng)

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """MLM cross-entropy + next-sentence cross-entropy, as transformers sums them."""
        mlm, d_prediction = masked_lm_loss(outputs.prediction_logits, np.asarray(targets["labels"]))
        nsp_labels = np.asarray(targets["next_sentence_label"]).reshape(-1)
        nsp, d_nsp = cross_entropy(outputs.seq_relationship_logits, nsp_labels)
        return mlm + nsp, {"prediction_logits": d_prediction, "seq_relationship_logits": d_nsp}


class BertForSequenceClassification(TrainableHead, _BertFamily):
    """One label distribution per sequence, from the pooled [CLS] vector: pooled ─ classifier."""

    encoder_prefix = ENCODER_PREFIX
    head_affines = (("classifier", "classifier"),)
    loss_targets = ("labels",)
    head_prefixes: ClassVar[tuple[str, ...]] = ("classifier.",)

    def __init__(self, config: BertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        strip_encoder_prefix(checkpoint)
        self.config = config = _labelled_config(config, checkpoint)
        self.bert = BertModel(config, checkpoint, dtype, pooler=True)
        self.dtype = dtype = self.bert.dtype
        why = "sequence classification head"
        self.classifier = checkpoint.take_affine("classifier", config.num_labels, config.dim, dtype, why)

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> SequenceClassifierOutput:
        encoded = self.bert(
            input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions
        )
        assert encoded.pooler_output is not None  # pooler=True above
        logits = linear(encoded.pooler_output, *self.classifier)  # [B, C]
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
        tape = self.encoder_train(input_ids, attention_mask, token_type_ids, dropout_rng)
        pooled = tape.encoder.pooled
        assert pooled is not None  # pooler=True
        mask = dropout_mask(dropout_rng, pooled.shape, self.bert.classifier_dropout(), pooled.dtype)
        dropped = apply_dropout(pooled, mask)  # [B, D]
        tape.head = {"mask": mask, "dropped": dropped}
        return SequenceClassifierOutput(linear(dropped, *self.classifier)), tape

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: logits [B, C], last_hidden_state [B, L, D]."""
        _check_output_grads(self, output_grads, ("logits", "last_hidden_state"))
        dropped = tape.head["dropped"]
        like = np.empty((dropped.shape[0], self.config.num_labels), dtype=self.dtype)
        d_dropped, d_classifier = affine_backward(
            _grad_or_zeros(output_grads.get("logits"), like), dropped, self.classifier
        )
        d_pooled = apply_dropout(d_dropped, tape.head["mask"])
        d_hidden = np.zeros_like(tape.last_hidden_state)
        grads = self.encoder_gradients(tape, d_hidden, output_grads, d_pooled=d_pooled)
        self.add_head_gradients(grads, {"classifier": d_classifier})
        return grads

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """CE, MSE (one label: regression) or BCE-with-logits (multi-label), as transformers."""
        problem_type = self.config.problem_type
        loss, d_logits = sequence_classification_loss(outputs.logits, targets["labels"], problem_type)
        return loss, {"logits": d_logits}


class BertForTokenClassification(TokenClassificationHead, _BertFamily):
    """One label distribution per token: h ─ classifier (heads.TokenClassificationHead)."""

    encoder_prefix = ENCODER_PREFIX

    def __init__(self, config: BertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        strip_encoder_prefix(checkpoint)
        self.config = config = _labelled_config(config, checkpoint)
        self.bert = BertModel(config, checkpoint, dtype, pooler=False)  # as add_pooling_layer=False
        self.dtype = dtype = self.bert.dtype
        why = "token classification head"
        self.classifier = checkpoint.take_affine("classifier", config.num_labels, config.dim, dtype, why)

    def classifier_dropout(self) -> float:
        return self.bert.classifier_dropout()


class BertForQuestionAnswering(QuestionAnsweringHead, _BertFamily):
    """Extractive QA: h ─ qa_outputs -> a start and an end score per token
    (heads.QuestionAnsweringHead; no dropout in transformers' BERT head)."""

    encoder_prefix = ENCODER_PREFIX

    def __init__(self, config: BertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.bert = BertModel(config, checkpoint, dtype, pooler=False)  # as add_pooling_layer=False
        self.dtype = dtype = self.bert.dtype
        self.qa_outputs = checkpoint.take_affine(
            "qa_outputs", 2, config.dim, dtype, "question answering head"
        )

    def qa_dropout(self) -> float:
        return 0.0


__all__ = [
    "BERT_BLOCK_NAMES",
    "BertForMaskedLM",
    "BertForPreTraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
]
