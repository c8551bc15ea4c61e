"""DistilBERT's encoder and its masked-language-model head, composed from `layers.py`.

    ids [B, L] ─ embed (word + position, LayerNorm) ─ 6 × transformer_block ─ hidden [B, L, D]
    transformer_block:  x = LN(x + MHA(x));  x = LN(x + FFN(x))        (post-LayerNorm)
    MLM head:           logits = LN(gelu(hidden @ Wt.T + bt)) @ E.T + b  (E: word embeddings)

Every class loads with `.from_pretrained(directory_or_model_id, dtype=np.float32, mmap=True,
revision=None)` (a model id is found as `pipeline()` finds it: `hub.resolve_model`) and returns
the dataclasses of `outputs.py`, with transformers' field names. With
`dtype=np.float64` all arithmetic runs in float64: the oracle mode that measures
everyone else's float32 error. With the default `mmap=True` most weights are views of
the memory-mapped checkpoint: do not rewrite or truncate its files while the model is in
use (results change silently, or the process dies of SIGBUS); `mmap=False` copies the
weights into memory at load.

A model is read-only after loading, so one instance may serve many threads at once.

Training (issue 12), on every class: `named_parameters()` (transformers' names; the first call
replaces the memory-mapped weights by writable copies, after which the model is mutable and
no longer safe to share across threads while it trains), `forward_train(...)` (the forward
pass that keeps a tape of activations and applies dropout when given a generator),
`backward(tape, **output_grads)`, `loss_and_grads(...)` (transformers' losses) and
`save_pretrained(directory)`. The backward of each layer sits beside its forward in
`layers.py`; this module composes them in reverse:

    embed ─ N × [x → LN(x + MHA(x)) → LN(h + FFN(h))] ─ head ─ loss
    d_word ← scatter-add ← LN' ← N × [MHA' + residual ← LN' ← FFN' + residual ← LN'] ← head' ← d_logits

The MLM loss projects only the rows whose label is not -100 onto the vocabulary (torch
projects all B·L), and the tied output matrix's gradient and the lookup's are summed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.dropout import apply_dropout, dropout_mask, dropout_rate
from numpy_distilbert.hub import resolve_model
from numpy_distilbert.layers import (
    ACTIVATION_BACKWARDS,
    ACTIVATIONS,
    LAYER_NORM_EPS,
    attention_bias,
    attention_weights,
    embed,
    embed_backward,
    feed_forward,
    feed_forward_backward,
    layer_norm,
    layer_norm_backward,
    linear,
    linear_backward,
    merge_heads,
    multi_head_attention,
    multi_head_attention_backward,
    sinusoidal_positions,
    split_heads,
)
from numpy_distilbert.losses import IGNORE_INDEX, cross_entropy
from numpy_distilbert.outputs import BaseModelOutput, MaskedLMOutput
from numpy_distilbert.weights import Checkpoint, CheckpointError, load_checkpoint

# Tensors a DistilBERT checkpoint may carry besides the encoder's: the task heads', and
# the `position_ids` buffer that older transformers versions saved.
MLM_HEAD_PREFIXES = ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.")
KNOWN_HEAD_PREFIXES = (*MLM_HEAD_PREFIXES, "pre_classifier.", "classifier.", "qa_outputs.")
IGNORED_BUFFERS = ("embeddings.position_ids",)
# Every DistilBERT class transformers saves checkpoints of, by the name config.json's
# `architectures` gives it (auto.py registers each one).
ARCHITECTURE_NAMES = (
    "DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification", "DistilBertForQuestionAnswering", "DistilBertForMultipleChoice",
)  # fmt: skip
# Files `save_pretrained` copies along from the directory a model was loaded from.
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json")
# A sinusoidal table missing from the file is computed from config.json alone; this many
# elements (positions x dim; 8,192 x 1,024) bounds what a hostile config can make us
# allocate. The real model has 512 x 768.
MAX_COMPUTED_POSITION_ELEMENTS = 2**23


def as_float_dtype(dtype: DTypeLike) -> np.dtype:
    """float32 (the default) or float64 (the oracle mode); anything else is refused."""
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


_Model = TypeVar("_Model", bound="PretrainedModel")
# Which rows the MLM head projects: (batch indices, sequence indices), as np.nonzero gives
# them, or a bool [B, L] mask.
Positions = Sequence[ArrayLike] | NDArray[np.bool_]


# ----------------------------------------------------------------------- weights
@dataclass(frozen=True)
class BlockWeights:
    """One transformer block's parameters, in nn.Linear's [out, in] layout."""

    w_qkv: np.ndarray  # [3D, D]: q_lin, k_lin, v_lin stacked
    b_qkv: np.ndarray  # [3D]
    w_out: np.ndarray  # [D, D]  out_lin
    b_out: np.ndarray  # [D]
    sa_norm: tuple[np.ndarray, np.ndarray]  # ([D], [D]) LayerNorm after attention
    w_ffn1: np.ndarray  # [F, D]
    b_ffn1: np.ndarray  # [F]
    w_ffn2: np.ndarray  # [D, F]
    b_ffn2: np.ndarray  # [D]
    out_norm: tuple[np.ndarray, np.ndarray]  # ([D], [D]) LayerNorm after the FFN


@dataclass(frozen=True)
class BlockNames:
    """Where one family's checkpoint keeps a block's parameters: the one thing (with the
    embeddings) in which BERT and DistilBERT differ. `layer` is formatted with the block
    index; every other field names an nn.Linear / nn.LayerNorm under it (`.weight`, `.bias`)."""

    layer: str
    query: str
    key: str
    value: str
    attention_out: str
    attention_norm: str
    ffn_in: str
    ffn_out: str
    output_norm: str


DISTILBERT_BLOCK_NAMES = BlockNames(
    layer="transformer.layer.{i}.", query="attention.q_lin", key="attention.k_lin",
    value="attention.v_lin", attention_out="attention.out_lin", attention_norm="sa_layer_norm",
    ffn_in="ffn.lin1", ffn_out="ffn.lin2", output_norm="output_layer_norm",
)  # fmt: skip


class EncoderConfig(Protocol):
    """What the shared transformer stack reads of a family's config (DistilBERT's names)."""

    @property
    def dim(self) -> int: ...
    @property
    def hidden_dim(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def max_position_embeddings(self) -> int: ...


def take_block(
    ckpt: Checkpoint,
    config: EncoderConfig,
    i: int,
    dtype: np.dtype,
    names: BlockNames = DISTILBERT_BLOCK_NAMES,
) -> BlockWeights:
    """Block `i`'s parameters, found under `names` (the family's checkpoint layout)."""
    d, f = config.dim, config.hidden_dim
    prefix = names.layer.format(i=i)

    def affine(name: str, out_features: int, in_features: int | None) -> tuple[np.ndarray, np.ndarray]:
        return ckpt.take_affine(prefix + name, out_features, in_features, dtype, why=f"layer {i}")

    qkv_names = (names.query, names.key, names.value)
    (w_q, b_q), (w_k, b_k), (w_v, b_v) = (affine(name, d, d) for name in qkv_names)
    w_out, b_out = affine(names.attention_out, d, d)
    w_ffn1, b_ffn1 = affine(names.ffn_in, f, d)
    w_ffn2, b_ffn2 = affine(names.ffn_out, d, f)
    return BlockWeights(
        # One [3D, D] matrix makes q, k and v in a single matrix product (a copy of 3·D² floats).
        w_qkv=np.concatenate([w_q, w_k, w_v]),
        b_qkv=np.concatenate([b_q, b_k, b_v]),
        w_out=w_out,
        b_out=b_out,
        sa_norm=affine(names.attention_norm, d, None),
        w_ffn1=w_ffn1,
        b_ffn1=b_ffn1,
        w_ffn2=w_ffn2,
        b_ffn2=b_ffn2,
        out_norm=affine(names.output_norm, d, None),
    )


def transformer_block(
    x: np.ndarray,
    p: BlockWeights,
    n_heads: int,
    bias: np.ndarray | None,
    activation: Callable[[np.ndarray], np.ndarray],
    eps: float = LAYER_NORM_EPS,
) -> tuple[np.ndarray, np.ndarray]:
    """x: [B, L, D] -> ([B, L, D], attention weights [B, H, L, L]).

    Post-LayerNorm, as DistilBERT and BERT: the sum of input and sub-layer output is
    normalised (eps: DistilBERT's fixed 1e-12, BERT's config.layer_norm_eps).
    """
    attended, weights = multi_head_attention(x, p.w_qkv, p.b_qkv, p.w_out, p.b_out, n_heads, bias)
    attended += x  # the residual, added in place into the sub-layer's fresh output
    x = layer_norm(attended, *p.sa_norm, eps)
    fed = feed_forward(x, p.w_ffn1, p.b_ffn1, p.w_ffn2, p.b_ffn2, activation)
    fed += x
    return layer_norm(fed, *p.out_norm, eps), weights


def run_encoder(
    x: np.ndarray,
    blocks: Sequence[BlockWeights],
    n_heads: int,
    mask: np.ndarray | None,
    activation: Callable[[np.ndarray], np.ndarray],
    eps: float = LAYER_NORM_EPS,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
) -> BaseModelOutput:
    """The transformer stack both families share: embeddings x [B, L, D] -> BaseModelOutput.

    mask: [B, L] bool (True = token) or None for no padding.
    """
    bias = None if mask is None or mask.all() else attention_bias(mask, x.dtype)
    # Intermediates are kept only when asked for: at 32×128 the attention weights alone
    # are 25 MB a layer.
    hidden_states = [x] if output_hidden_states else None
    attentions: list[np.ndarray] | None = [] if output_attentions else None
    for block in blocks:
        x, weights = transformer_block(x, block, n_heads, bias, activation, eps)
        if hidden_states is not None:
            hidden_states.append(x)
        if attentions is not None:
            attentions.append(weights)
    return BaseModelOutput(
        last_hidden_state=x,
        hidden_states=None if hidden_states is None else tuple(hidden_states),
        attentions=None if attentions is None else tuple(attentions),
    )


# ---------------------------------------------------------------------- training
# `forward_train` runs the same arithmetic as `__call__` but keeps what the backward pass
# needs (a "tape"), and applies dropout when given a generator; `__call__` keeps nothing.
@dataclass(frozen=True)
class DropoutRates:
    """Where the encoder drops activations in training, by transformers' modules.

    DistilBERT: embeddings and FFN output (`dropout`), attention weights (`attention_dropout`).
    BERT: embeddings, attention output and FFN output (`hidden_dropout_prob`), attention
    weights (`attention_probs_dropout_prob`).
    """

    embeddings: float = 0.0
    attention: float = 0.0  # on the softmax weights, before they multiply v
    attention_output: float = 0.0  # after the attention's output projection (BERT only)
    ffn_output: float = 0.0  # after the FFN's second linear


@dataclass
class BlockTape:
    """What one transformer block's backward needs from its forward."""

    x: np.ndarray  # [B, L, D] the block's input
    qkv: np.ndarray  # [B, L, 3D] fused projection
    weights: np.ndarray  # [B, H, L, L] softmax (before dropout)
    weights_mask: np.ndarray | None  # [B, H, L, L] attention dropout factors
    context: np.ndarray  # [B, L, D] merged heads, input of the output projection
    attention_mask: np.ndarray | None  # [B, L, D] dropout after the output projection (BERT)
    attention_sum: np.ndarray  # [B, L, D] x + attention: input of the first LayerNorm
    h: np.ndarray  # [B, L, D] first LayerNorm's output, the FFN's input
    pre_activation: np.ndarray  # [B, L, F]
    activated: np.ndarray  # [B, L, F]
    ffn_mask: np.ndarray | None  # [B, L, D] dropout after the FFN
    ffn_sum: np.ndarray  # [B, L, D] h + FFN: input of the second LayerNorm


def transformer_block_train(
    x: np.ndarray,
    p: BlockWeights,
    n_heads: int,
    bias: np.ndarray | None,
    activation: Callable[[np.ndarray], np.ndarray],
    eps: float,
    rates: DropoutRates,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, BlockTape]:
    """`transformer_block` with dropout and a tape: x [B, L, D] -> ([B, L, D], BlockTape)."""
    qkv = linear(x, p.w_qkv, p.b_qkv)  # [B, L, 3D]
    q, k, v = split_heads(qkv, n_heads)  # each [B, H, L, Dh]
    weights = attention_weights(q, k, bias)  # [B, H, L, L]
    weights_mask = dropout_mask(rng, weights.shape, rates.attention, x.dtype)
    context = merge_heads(apply_dropout(weights, weights_mask) @ v)  # [B, L, D]
    attended = linear(context, p.w_out, p.b_out)
    attention_mask = dropout_mask(rng, attended.shape, rates.attention_output, x.dtype)
    attention_sum = apply_dropout(attended, attention_mask) + x
    h = layer_norm(attention_sum, *p.sa_norm, eps)
    pre_activation = linear(h, p.w_ffn1, p.b_ffn1)  # [B, L, F]
    activated = activation(pre_activation)
    fed = linear(activated, p.w_ffn2, p.b_ffn2)
    ffn_mask = dropout_mask(rng, fed.shape, rates.ffn_output, x.dtype)
    ffn_sum = apply_dropout(fed, ffn_mask) + h
    tape = BlockTape(x, qkv, weights, weights_mask, context, attention_mask, attention_sum, h,
                     pre_activation, activated, ffn_mask, ffn_sum)  # fmt: skip
    return layer_norm(ffn_sum, *p.out_norm, eps), tape


def transformer_block_backward(
    d_y: np.ndarray,
    p: BlockWeights,
    tape: BlockTape,
    n_heads: int,
    activation_backward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    eps: float,
) -> tuple[np.ndarray, BlockWeights]:
    """d_y [B, L, D] (gradient of the block's output) -> (d_x [B, L, D], the parameters'
    gradients, in a BlockWeights of the same shapes)."""
    d_ffn_sum, d_out_g, d_out_b = layer_norm_backward(d_y, tape.ffn_sum, p.out_norm[0], eps)
    d_fed = apply_dropout(d_ffn_sum, tape.ffn_mask)
    d_h, ffn = feed_forward_backward(
        d_fed, tape.h, tape.pre_activation, tape.activated, p.w_ffn1, p.w_ffn2, activation_backward
    )
    d_h += d_ffn_sum  # the residual passes the gradient through unchanged
    d_attention_sum, d_sa_g, d_sa_b = layer_norm_backward(d_h, tape.attention_sum, p.sa_norm[0], eps)
    d_attended = apply_dropout(d_attention_sum, tape.attention_mask)
    d_x, att = multi_head_attention_backward(
        d_attended, tape.x, tape.qkv, tape.weights, tape.context, p.w_qkv, p.w_out, n_heads,
        tape.weights_mask,
    )  # fmt: skip
    d_x += d_attention_sum
    grads = BlockWeights(
        w_qkv=att["w_qkv"], b_qkv=att["b_qkv"], w_out=att["w_out"], b_out=att["b_out"],
        sa_norm=(d_sa_g, d_sa_b), w_ffn1=ffn["w1"], b_ffn1=ffn["b1"], w_ffn2=ffn["w2"],
        b_ffn2=ffn["b2"], out_norm=(d_out_g, d_out_b),
    )  # fmt: skip
    return d_x, grads


def block_parameters(p: BlockWeights, prefix: str, names: BlockNames) -> dict[str, np.ndarray]:
    """One block's tensors (parameters or their gradients) under transformers' names.

    q, k and v are views into the fused [3D, D] array, so that writing into them (an
    optimiser's in-place update) writes into the array the forward pass uses.
    """
    d = p.w_out.shape[0]
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate((names.query, names.key, names.value)):
        out[f"{prefix}{name}.weight"] = p.w_qkv[j * d : (j + 1) * d]
        out[f"{prefix}{name}.bias"] = p.b_qkv[j * d : (j + 1) * d]
    pairs = (
        (names.attention_out, (p.w_out, p.b_out)), (names.attention_norm, p.sa_norm),
        (names.ffn_in, (p.w_ffn1, p.b_ffn1)), (names.ffn_out, (p.w_ffn2, p.b_ffn2)),
        (names.output_norm, p.out_norm),
    )  # fmt: skip
    for name, (weight, bias) in pairs:
        out[f"{prefix}{name}.weight"] = weight
        out[f"{prefix}{name}.bias"] = bias
    return out


def writable(array: np.ndarray) -> np.ndarray:
    """A private, writable, C-ordered copy (a loaded weight may be a read-only memory map)."""
    return np.array(array, copy=True, order="C")


def writable_block(p: BlockWeights) -> BlockWeights:
    return BlockWeights(
        w_qkv=writable(p.w_qkv), b_qkv=writable(p.b_qkv), w_out=writable(p.w_out), b_out=writable(p.b_out),
        sa_norm=(writable(p.sa_norm[0]), writable(p.sa_norm[1])), w_ffn1=writable(p.w_ffn1),
        b_ffn1=writable(p.b_ffn1), w_ffn2=writable(p.w_ffn2), b_ffn2=writable(p.b_ffn2),
        out_norm=(writable(p.out_norm[0]), writable(p.out_norm[1])),
    )  # fmt: skip


@dataclass
class EncoderTape:
    """What the encoder's backward needs: inputs, the embedding sum, each block's tape."""

    ids: np.ndarray  # [B, L] int64
    token_types: np.ndarray | None  # [B, L] int64 (BERT)
    embedding_sum: np.ndarray  # [B, L, D] word (+ type) + position, before LayerNorm
    embedding_mask: np.ndarray | None  # [B, L, D] dropout after the embeddings' LayerNorm
    blocks: list[BlockTape]
    last_hidden_state: np.ndarray  # [B, L, D]
    pooled: np.ndarray | None = None  # [B, D] BERT's pooler output, when there is a pooler


@dataclass
class Tape:
    """Saved activations of one `forward_train` call, consumed by `backward`.

    `last_hidden_state` is the encoder's output [B, L, D] for every class; `head` holds what
    the task head saved (the class's own business).
    """

    last_hidden_state: np.ndarray
    encoder: EncoderTape
    head: dict[str, Any]


class TrainableEncoder:
    """Training for the shared stack (`DistilBertModel`, `BertModel`): a forward pass that
    keeps a tape, its backward pass, and the parameters under transformers' names."""

    config: Any
    dtype: np.dtype
    word_embeddings: np.ndarray
    position_embeddings: np.ndarray
    embedding_norm: tuple[np.ndarray, np.ndarray]
    blocks: list[BlockWeights]
    activation: Callable[[np.ndarray], np.ndarray]
    eps: float = LAYER_NORM_EPS
    token_type_embeddings: np.ndarray | None = None
    pooler: tuple[np.ndarray, np.ndarray] | None = None
    block_names: ClassVar[BlockNames] = DISTILBERT_BLOCK_NAMES
    _writable: bool = False

    def dropout_rates(self) -> DropoutRates:
        """The config's dropout probabilities, placed where transformers applies them."""
        raise NotImplementedError

    def make_writable(self) -> None:
        """Replace every parameter by a private writable copy, once (the first `named_parameters`)."""
        if self._writable:
            return
        self.word_embeddings = writable(self.word_embeddings)
        self.position_embeddings = writable(self.position_embeddings)
        if self.token_type_embeddings is not None:
            self.token_type_embeddings = writable(self.token_type_embeddings)
        self.embedding_norm = (writable(self.embedding_norm[0]), writable(self.embedding_norm[1]))
        self.blocks = [writable_block(block) for block in self.blocks]
        if self.pooler is not None:
            self.pooler = (writable(self.pooler[0]), writable(self.pooler[1]))
        self._writable = True

    def encoder_tensors(
        self,
        word: np.ndarray,
        position: np.ndarray,
        token_type: np.ndarray | None,
        norm: tuple[np.ndarray, np.ndarray],
        blocks: Sequence[BlockWeights],
        pooler: tuple[np.ndarray, np.ndarray] | None,
        prefix: str = "",
    ) -> dict[str, np.ndarray]:
        """Parameters (or gradients, laid out alike) under transformers' names, in its order."""
        out = {f"{prefix}embeddings.word_embeddings.weight": word,
               f"{prefix}embeddings.position_embeddings.weight": position}  # fmt: skip
        if token_type is not None:
            out[f"{prefix}embeddings.token_type_embeddings.weight"] = token_type
        out[f"{prefix}embeddings.LayerNorm.weight"], out[f"{prefix}embeddings.LayerNorm.bias"] = norm
        layer = self.block_names.layer
        for i, block in enumerate(blocks):
            out.update(block_parameters(block, prefix + layer.format(i=i), self.block_names))
        if pooler is not None:
            out[f"{prefix}pooler.dense.weight"], out[f"{prefix}pooler.dense.bias"] = pooler
        return out

    def encoder_parameters(self, prefix: str = "") -> dict[str, np.ndarray]:
        self.make_writable()
        return self.encoder_tensors(
            self.word_embeddings, self.position_embeddings, self.token_type_embeddings,
            self.embedding_norm, self.blocks, self.pooler, prefix,
        )  # fmt: skip

    def encode_train(
        self,
        ids: np.ndarray,
        mask: np.ndarray | None,
        token_types: np.ndarray | None,
        rng: np.random.Generator | None,
    ) -> EncoderTape:
        """ids [B, L], mask [B, L] bool or None -> EncoderTape (its last_hidden_state [B, L, D])."""
        rates = self.dropout_rates() if rng is not None else DropoutRates()
        x = self.word_embeddings[ids]  # [B, L, D]
        if self.token_type_embeddings is not None and token_types is not None:
            x += self.token_type_embeddings[token_types]
        x += self.position_embeddings[: ids.shape[1]]
        embedding_sum = x
        x = layer_norm(embedding_sum, *self.embedding_norm, self.eps)
        embedding_mask = dropout_mask(rng, x.shape, rates.embeddings, x.dtype)
        x = apply_dropout(x, embedding_mask)
        bias = None if mask is None or mask.all() else attention_bias(mask, x.dtype)
        tapes = []
        for block in self.blocks:
            x, block_tape = transformer_block_train(
                x, block, self.config.n_heads, bias, self.activation, self.eps, rates, rng
            )
            tapes.append(block_tape)
        pooled = None if self.pooler is None else np.tanh(linear(x[:, 0], *self.pooler))  # [B, D]
        return EncoderTape(ids, token_types, embedding_sum, embedding_mask, tapes, x, pooled)

    def encode_backward(
        self,
        d_hidden: np.ndarray,
        tape: EncoderTape,
        d_pooled: np.ndarray | None = None,
        prefix: str = "",
        d_word: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Gradients of every encoder parameter, given d_hidden [B, L, D] (and d_pooled [B, D]
        for BERT's pooler), under transformers' names with `prefix`. `d_word` [V, D]: a gradient
        of the word embeddings from elsewhere (a tied output projection), added into in place."""
        d_pooler = None
        if self.pooler is not None:
            if d_pooled is not None and tape.pooled is not None:
                # pooled = tanh(h[:, 0] @ Wp.T + bp); tanh' = 1 - tanh²
                d_pre = d_pooled * (1.0 - tape.pooled * tape.pooled)
                d_first, d_wp, d_bp = linear_backward(d_pre, tape.last_hidden_state[:, 0], self.pooler[0])
                assert d_first is not None
                d_hidden = d_hidden.copy()
                d_hidden[:, 0] += d_first
                d_pooler = (d_wp, d_bp)
            else:
                d_pooler = (np.zeros_like(self.pooler[0]), np.zeros_like(self.pooler[1]))
        activation_backward = ACTIVATION_BACKWARDS[self.config.activation]
        block_grads: list[BlockWeights] = []
        d_x = d_hidden
        for block, block_tape in zip(reversed(self.blocks), reversed(tape.blocks), strict=True):
            d_x, grads = transformer_block_backward(
                d_x, block, block_tape, self.config.n_heads, activation_backward, self.eps
            )
            block_grads.append(grads)
        block_grads.reverse()
        d_x = apply_dropout(d_x, tape.embedding_mask)
        d_sum, d_norm_g, d_norm_b = layer_norm_backward(
            d_x, tape.embedding_sum, self.embedding_norm[0], self.eps
        )
        n_types = None if self.token_type_embeddings is None else self.token_type_embeddings.shape[0]
        d_word, d_position, d_type = embed_backward(
            d_sum, tape.ids, self.word_embeddings.shape[0], self.position_embeddings.shape[0],
            tape.token_types if self.token_type_embeddings is not None else None, n_types,
            padding_idx=self.config.pad_token_id, d_word=d_word,
        )  # fmt: skip
        return self.encoder_tensors(
            d_word, d_position, d_type, (d_norm_g, d_norm_b), block_grads, d_pooler, prefix
        )


# ------------------------------------------------------------------------ inputs
def prepare_inputs(
    input_ids: ArrayLike, attention_mask: ArrayLike | None, config: EncoderConfig
) -> tuple[NDArray[np.int64], NDArray[np.bool_] | None]:
    """Validate and convert inputs. A 1-D sequence counts as a batch of one.

    Returns (ids [B, L] int64, mask [B, L] bool or None).
    """
    try:
        ids = np.asarray(input_ids)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(
            "input_ids must be a rectangular [batch, length] array; pad ragged sequences "
            f"and pass attention_mask ({exc})"
        ) from None
    if ids.dtype == object:
        raise ValueError("input_ids must be a rectangular [batch, length] array of integers")
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2:
        raise ValueError(f"input_ids must have shape [batch, length], got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"input_ids must be integers, got dtype {ids.dtype}")
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"input_ids is empty (shape {ids.shape}); a sequence needs at least one token")
    if ids.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {ids.shape[1]} exceeds max_position_embeddings "
            f"({config.max_position_embeddings}); truncate the input"
        )
    bad = (ids < 0) | (ids >= config.vocab_size)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"token id {int(ids[row, col])} at position ({row}, {col}) is outside the "
            f"vocabulary [0, {config.vocab_size})"
        )
    ids = ids.astype(np.int64, copy=False)

    if attention_mask is None:
        return ids, None
    mask = np.asarray(attention_mask)
    if mask.ndim == 1:
        mask = mask[None, :]
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask has shape {mask.shape}, input_ids {ids.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    return ids, mask.astype(bool)


# ------------------------------------------------------------------------ models
def _check_computed_positions(checkpoint: Checkpoint, config: DistilBertConfig) -> None:
    elements = config.max_position_embeddings * config.dim
    if elements > MAX_COMPUTED_POSITION_ELEMENTS:
        raise CheckpointError(
            f"{checkpoint.directory}: config.json asks for a computed sinusoidal position table of "
            f"max_position_embeddings={config.max_position_embeddings} x dim={config.dim}, more than "
            f"{MAX_COMPUTED_POSITION_ELEMENTS} elements, and the checkpoint stores no "
            f"'embeddings.position_embeddings.weight' to check it against"
        )


def _list_names(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def declared_architecture(config: Any, names: Sequence[str] = ARCHITECTURE_NAMES) -> str | None:
    """The first class of `names` (default: DistilBERT's) config.json's `architectures` names, or None."""
    return next((name for name in config.architectures if name in names), None)


def _head_tensor_groups(checkpoint: Checkpoint, prefixes: Sequence[str] = KNOWN_HEAD_PREFIXES) -> list[str]:
    """Which head prefixes the checkpoint holds tensors under, e.g. ['pre_classifier.*', 'classifier.*']."""
    return [f"{p}*" for p in prefixes if any(n.startswith(p) for n in checkpoint.tensors)]


class PretrainedModel:
    """`from_pretrained` for every model class: config + checkpoint -> cls(config, checkpoint, dtype).

    `head_prefixes` names the tensors the class's head owns. The bare encoder owns none and
    loads from any DistilBERT checkpoint (it ignores a head, as transformers does). A head
    class refuses a checkpoint made for another head, by config.json's `architectures` or by
    its tensors: transformers would load the shared names (an NER model would reuse a
    sentiment classifier) and initialise the rest at random, which gives meaningless output.
    """

    config: Any
    dtype: np.dtype
    config_class: ClassVar[type[Any]] = DistilBertConfig  # reads config.json
    head_prefixes: ClassVar[tuple[str, ...]] = ()
    # The family's checkpoint conventions (DistilBERT's here; BERT's classes override them).
    family_name: ClassVar[str] = "DistilBERT"
    base_class_name: ClassVar[str] = "DistilBertModel"
    architecture_names: ClassVar[tuple[str, ...]] = ARCHITECTURE_NAMES
    known_head_prefixes: ClassVar[tuple[str, ...]] = KNOWN_HEAD_PREFIXES
    # Tensors (by name prefix) a class may leave unused without complaint.
    ignored_prefixes: ClassVar[tuple[str, ...]] = IGNORED_BUFFERS
    # Checkpoints declared as these classes also serve this one (a pre-training checkpoint
    # holds a whole MLM head), with the head tensors under `tolerated_prefixes` left unused.
    also_loads: ClassVar[tuple[str, ...]] = ()
    tolerated_prefixes: ClassVar[tuple[str, ...]] = ()

    # The label arguments `loss` accepts (the rest are refused by name).
    loss_targets: ClassVar[tuple[str, ...]] = ()
    # Where `from_pretrained` read the model (tokenizer files are copied from there on save).
    name_or_path: Path | None = None

    def __init__(self, config: Any, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        raise NotImplementedError

    # -------------------------------------------------------------- training API
    def named_parameters(self) -> dict[str, np.ndarray]:
        """{transformers' parameter name: the live parameter}, tied weights listed once.

        Loading keeps the weights memory-mapped and read-only; the first call replaces them by
        writable copies (one copy of the model in memory). Updating the returned arrays in
        place (an optimiser's step) updates the model: the q/k/v entries are views into the
        fused [3D, D] projection the forward pass uses.
        """
        raise NotImplementedError

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[Any, Tape]:
        """The forward pass that keeps a tape for `backward`; dropout_rng=None: eval mode.
        `positions` (MLM classes only) selects the rows projected onto the vocabulary."""
        raise NotImplementedError

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of every parameter (keys of `named_parameters`), given the gradient of a
        scalar loss with respect to outputs of `forward_train`, by field name."""
        raise NotImplementedError

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """(loss as transformers computes it, {output field: d loss / d field})."""
        raise TypeError(f"{type(self).__name__} has no training loss; use forward_train and backward")

    def _forward_train_for_loss(
        self, input_ids: ArrayLike, attention_mask: ArrayLike | None, token_type_ids: ArrayLike | None,
        rng: np.random.Generator | None, targets: dict[str, Any],
    ) -> tuple[Any, Tape]:  # fmt: skip
        return self.forward_train(input_ids, attention_mask, token_type_ids, dropout_rng=rng)

    def loss_and_grads(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        labels: ArrayLike | None = None,
        start_positions: ArrayLike | None = None,
        end_positions: ArrayLike | None = None,
        dropout_rng: np.random.Generator | None = None,
        next_sentence_label: ArrayLike | None = None,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """(loss, {parameter name: gradient}): one forward and one backward pass.

        The loss is transformers' for the class (issue 12): MLM cross-entropy over labels != -100,
        classification CE / MSE / BCE, QA's mean of start and end CE, pre-training MLM + NSP.
        dropout_rng=None: no dropout (equals torch in eval mode); a Generator: dropout as the
        config says. Gradients of tied weights are summed, as autograd does.
        """
        given = {"labels": labels, "start_positions": start_positions, "end_positions": end_positions,
                 "next_sentence_label": next_sentence_label}  # fmt: skip
        foreign = [n for n, value in given.items() if value is not None and n not in self.loss_targets]
        if foreign:
            raise TypeError(
                f"{type(self).__name__}.loss_and_grads takes {', '.join(self.loss_targets) or 'no labels'}, "
                f"not {', '.join(foreign)}"
            )
        targets = {name: given[name] for name in self.loss_targets}
        if not targets:
            raise TypeError(f"{type(self).__name__} has no training loss; use forward_train and backward")
        missing = [name for name, value in targets.items() if value is None]
        if missing:
            raise ValueError(f"{type(self).__name__}.loss_and_grads needs {', '.join(missing)}")
        outputs, tape = self._forward_train_for_loss(
            input_ids, attention_mask, token_type_ids, dropout_rng, targets
        )
        loss, output_grads = self.loss(outputs, **targets)
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"{type(self).__name__}: the loss is {loss} (non-finite); no gradients computed"
            )
        return loss, self.backward(tape, **output_grads)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json (architectures = this class, labels included) and model.safetensors
        (transformers' tensor names, tied weights stored once, in the model's dtype), plus the
        tokenizer files of the directory the model was loaded from, when there was one.
        transformers' `from_pretrained` and ours both load the result. Returns the directory."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"save_pretrained: {directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {name: np.ascontiguousarray(array) for name, array in self.named_parameters().items()}
        # Written beside and then renamed over the old file: a model still memory-mapping the old
        # file (this one, loaded from `directory`) keeps reading the old inode, never a truncated one.
        partial = directory / "model.safetensors.partial"
        save_file(tensors, str(partial), metadata={"format": "pt"})
        os.replace(partial, directory / "model.safetensors")
        data = self.config.to_dict()
        data["architectures"] = [type(self).__name__]
        if getattr(self.config, "id2label", None):
            data["id2label"] = {str(i): label for i, label in self.config.id2label.items()}
            data["label2id"] = {label: i for i, label in self.config.id2label.items()}
        else:  # as transformers: no label maps when there are none (an empty map means 0 labels)
            data.pop("id2label", None)
            data.pop("label2id", None)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        (directory / "config.json").write_text(text, encoding="utf-8")
        source = self.name_or_path
        if source is not None and source.resolve() != directory.resolve():
            for name in TOKENIZER_FILES:
                if (source / name).is_file():
                    shutil.copyfile(source / name, directory / name)
        return directory

    @classmethod
    def from_pretrained(
        cls: type[_Model],
        path_or_id: str | Path,
        dtype: DTypeLike = np.float32,
        mmap: bool = True,
        *,
        revision: str | None = None,
    ) -> _Model:
        """Load from a directory holding config.json and model.safetensors (or shards), or a model id.

        path_or_id: a directory, or a Hugging Face model id ("org/name"), found as `pipeline()`
            finds it (`hub.resolve_model`: the local directory, the HF cache, a download with
            the `hub` extra); `revision`: a branch, tag or commit hash, for model ids.
        dtype: np.float32 (default) or np.float64 for the oracle mode.
        mmap: True (default) maps the weight files: quick, no copy, but the files must stay
            unchanged while the model is in use (rewriting them changes results silently,
            truncating them kills the process with SIGBUS). False reads the weights into
            memory at load, after which the files may change or go away.
        Raises ConfigError / CheckpointError naming the file and field on a bad checkpoint,
        including one made for another head than `cls`, and hub.ModelNotFoundError when
        there is nothing to load.
        """
        path = resolve_model(path_or_id, revision=revision)
        config = cls.config_class.from_pretrained(path)
        checkpoint = load_checkpoint(path, mmap=mmap)
        cls.canonicalize_names(checkpoint)
        cls._check_declared_head(path, config, checkpoint)
        cls._check_foreign_head(path, config, checkpoint)
        model = cls(config, checkpoint, dtype)
        cls._check_unused(path, checkpoint)
        model.name_or_path = Path(path)
        return model

    @staticmethod
    def canonicalize_names(checkpoint: Checkpoint) -> None:
        """The family's spelling of tensor names, in place (weights.canonical_name did DistilBERT's)."""

    @classmethod
    def _check_declared_head(cls, path: str | Path, config: Any, checkpoint: Checkpoint) -> None:
        """A head class refuses a checkpoint whose config.json declares another head."""
        declared = declared_architecture(config, cls.architecture_names)
        if not cls.head_prefixes or declared in (None, cls.__name__, cls.base_class_name, *cls.also_loads):
            return
        raise CheckpointError(
            f"{path}: config.json's architectures say this is a {declared} checkpoint, not "
            f"{cls.__name__} ({cls._needs_and_holds(checkpoint)}). "
            f"Load it with {declared}, or with {cls.base_class_name} for the encoder alone."
        )

    @classmethod
    def _needs_and_holds(cls, checkpoint: Checkpoint) -> str:
        needs = ", ".join(f"{p}*" for p in cls.head_prefixes)
        holds = ", ".join(_head_tensor_groups(checkpoint, cls.known_head_prefixes)) or "no head tensors"
        return f"{cls.__name__} needs {needs}; the checkpoint holds {holds}"

    @classmethod
    def _check_foreign_head(cls, path: str | Path, config: Any, checkpoint: Checkpoint) -> None:
        """A head class refuses a checkpoint holding another head's tensors: they say what it is for."""
        if not cls.head_prefixes:
            return
        own = cls.head_prefixes + cls.tolerated_prefixes
        foreign = sorted(
            name for name in checkpoint.tensors
            if name.startswith(cls.known_head_prefixes) and not name.startswith(own)
        )  # fmt: skip
        if foreign:
            declared = declared_architecture(config, cls.architecture_names)
            made_for = f"a {declared} checkpoint" if declared else "a checkpoint of another head"
            raise CheckpointError(
                f"{path}: tensors {_list_names(foreign)} belong to another head: this is {made_for}, "
                f"not {cls.__name__} ({cls._needs_and_holds(checkpoint)}). Load it with the class "
                f"its head was trained as, or with {cls.base_class_name} for the encoder alone."
            )

    @classmethod
    def _check_unused(cls, path: str | Path, checkpoint: Checkpoint) -> None:
        """Tensors nobody took and no head owns: a name the family does not have is refused."""
        unexpected = [
            name for name in checkpoint.unused()
            if not name.startswith(cls.known_head_prefixes) and not name.startswith(cls.ignored_prefixes)
        ]  # fmt: skip
        if unexpected:
            raise CheckpointError(
                f"{path}: unexpected tensors for {cls.family_name}: {_list_names(unexpected)}"
            )


def refuse_positions(model: object, positions: object) -> None:
    """`positions` belongs to the MLM classes; elsewhere it is a mistake worth naming."""
    if positions is not None:
        raise TypeError(f"{type(model).__name__}.forward_train takes no positions (only the MLM classes do)")


def _check_output_grads(model: object, given: dict[str, Any], allowed: Sequence[str]) -> None:
    unknown = [name for name in given if name not in allowed]
    if unknown:
        raise TypeError(
            f"{type(model).__name__}.backward takes gradients of {', '.join(allowed)}; "
            f"got {', '.join(unknown)}"
        )


def _grad_or_zeros(grad: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    """A given output gradient as an array shaped like the output (zeros when None)."""
    if grad is None:
        return np.zeros_like(like)
    grad = np.asarray(grad, dtype=like.dtype)
    if grad.shape != like.shape:
        raise ValueError(f"gradient of shape {grad.shape} for an output of shape {like.shape}")
    return grad


class TrainableHead:
    """Training for a task head on an encoder (`self.distilbert` or `self.bert`): the encoder
    runs its own forward_train / encode_backward; the class adds its head's arithmetic.

    `head_affines` lists the head's (attribute, transformers module name) pairs, each
    attribute a (weight, bias) tuple, e.g. ("pre_classifier", "pre_classifier").
    """

    encoder_prefix: ClassVar[str] = "distilbert."
    head_affines: ClassVar[tuple[tuple[str, str], ...]] = ()
    _head_writable: bool = False

    def encoder(self) -> Any:
        return getattr(self, self.encoder_prefix.rstrip("."))

    def make_head_writable(self) -> None:
        """Writable copies of the head's own tensors (subclasses with more add theirs)."""
        for attribute, _ in self.head_affines:
            weight, bias = getattr(self, attribute)
            setattr(self, attribute, (writable(weight), writable(bias)))

    def named_parameters(self) -> dict[str, np.ndarray]:
        params: dict[str, np.ndarray] = self.encoder().encoder_parameters(self.encoder_prefix)
        if not self._head_writable:
            self.make_head_writable()
            self._head_writable = True
        for attribute, name in self.head_affines:
            params[f"{name}.weight"], params[f"{name}.bias"] = getattr(self, attribute)
        return params

    def encoder_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None,
        token_type_ids: ArrayLike | None,
        rng: np.random.Generator | None,
    ) -> Tape:
        """The encoder's forward_train; its tape's `head` is left for the head to fill."""
        return self.encoder().forward_train(input_ids, attention_mask, token_type_ids, dropout_rng=rng)[1]

    def encoder_gradients(
        self,
        tape: Tape,
        d_hidden: np.ndarray,
        output_grads: dict[str, Any],
        d_pooled: np.ndarray | None = None,
        d_word: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The encoder's gradients (prefixed), from the head's d_hidden [B, L, D] plus any
        `last_hidden_state` gradient the caller gave (distillation's cosine loss)."""
        if output_grads.get("last_hidden_state") is not None:
            d_hidden = d_hidden + _grad_or_zeros(output_grads["last_hidden_state"], tape.last_hidden_state)
        encoder = self.encoder()
        if d_pooled is not None and encoder.pooler is None:
            raise ValueError(f"{type(self).__name__}: a pooler_output gradient, but the model has no pooler")
        return encoder.encode_backward(d_hidden, tape.encoder, d_pooled, self.encoder_prefix, d_word)

    def add_head_gradients(
        self, grads: dict[str, np.ndarray], head: dict[str, tuple[np.ndarray, np.ndarray]]
    ) -> None:
        """grads["<name>.weight"], grads["<name>.bias"] from {attribute: (d_w, d_b)}."""
        names = dict(self.head_affines)
        for attribute, (d_weight, d_bias) in head.items():
            grads[f"{names[attribute]}.weight"], grads[f"{names[attribute]}.bias"] = d_weight, d_bias


def affine_backward(
    d_y: np.ndarray, x: np.ndarray, affine: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """`linear_backward` for a (weight, bias) pair: (d_x, (d_w, d_b))."""
    d_x, d_w, d_b = linear_backward(d_y, x, affine[0])
    assert d_x is not None
    return d_x, (d_w, d_b)


class DistilBertModel(TrainableEncoder, PretrainedModel):
    """The bare encoder: token ids -> contextual vectors."""

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.dtype = dtype = as_float_dtype(dtype)
        d = config.dim
        self.word_embeddings = checkpoint.take(
            "embeddings.word_embeddings.weight", (config.vocab_size, d), dtype
        )  # [V, D]
        positions = "embeddings.position_embeddings.weight"
        if config.sinusoidal_pos_embds and positions not in checkpoint:
            # transformers saves the fixed table too; compute it when a file left it out,
            # but only after bounding its size: config.json alone decides it here.
            _check_computed_positions(checkpoint, config)
            self.position_embeddings = sinusoidal_positions(config.max_position_embeddings, d).astype(dtype)
        else:
            self.position_embeddings = checkpoint.take(
                positions, (config.max_position_embeddings, d), dtype
            )  # [P, D]
        self.embedding_norm = checkpoint.take_affine("embeddings.LayerNorm", d, None, dtype)
        self.blocks = [take_block(checkpoint, config, i, dtype) for i in range(config.n_layers)]
        self.activation = ACTIVATIONS[config.activation]

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutput:
        """ids [B, L] (or [L]) -> BaseModelOutput(last_hidden_state [B, L, D], ...).

        `token_type_ids` is accepted and ignored, so that `model(**tokenizer(texts))` works:
        DistilBERT has no segment embeddings, and transformers' DistilBertModel ignores it too.
        """
        ids, mask = prepare_inputs(input_ids, attention_mask, self.config)
        x = embed(ids, self.word_embeddings, self.position_embeddings, *self.embedding_norm)
        return run_encoder(
            x, self.blocks, self.config.n_heads, mask, self.activation,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )  # fmt: skip

    def dropout_rates(self) -> DropoutRates:
        extra = self.config.extra
        hidden = dropout_rate(extra, "dropout", 0.1)
        return DropoutRates(embeddings=hidden, attention=dropout_rate(extra, "attention_dropout", 0.1),
                            ffn_output=hidden)  # fmt: skip

    def named_parameters(self) -> dict[str, np.ndarray]:
        return self.encoder_parameters()

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[BaseModelOutput, Tape]:
        """As `__call__` (no hidden states or attentions), plus the tape `backward` needs."""
        refuse_positions(self, positions)
        ids, mask = prepare_inputs(input_ids, attention_mask, self.config)
        encoded = self.encode_train(ids, mask, None, dropout_rng)
        return BaseModelOutput(encoded.last_hidden_state), Tape(encoded.last_hidden_state, encoded, {})

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: last_hidden_state [B, L, D]."""
        _check_output_grads(self, output_grads, ("last_hidden_state",))
        d_hidden = _grad_or_zeros(output_grads.get("last_hidden_state"), tape.last_hidden_state)
        return self.encode_backward(d_hidden, tape.encoder)


def _select_positions(hidden: np.ndarray, positions: Positions) -> np.ndarray:
    """hidden [B, L, D] -> [N, D] at `positions`: a (batch_idx, seq_idx) pair or a bool [B, L] mask."""
    batch, seq_len, _ = hidden.shape
    if isinstance(positions, np.ndarray) and positions.dtype == bool:
        if positions.shape != (batch, seq_len):
            raise ValueError(f"boolean positions must have shape {(batch, seq_len)}, got {positions.shape}")
        return hidden[positions]
    try:
        rows, cols = (np.asarray(p, dtype=np.int64) for p in positions)
    except (TypeError, ValueError):
        raise ValueError(
            "positions must be (batch_indices, seq_indices), as np.nonzero gives, or a bool [B, L] mask"
        ) from None
    if rows.shape != cols.shape:
        raise ValueError(f"positions: index arrays differ in shape, {rows.shape} vs {cols.shape}")
    if rows.size and (rows.min() < 0 or rows.max() >= batch or cols.min() < 0 or cols.max() >= seq_len):
        raise ValueError(f"positions out of range for a batch of shape {(batch, seq_len)}")
    return hidden[rows, cols]


def position_indices(shape: tuple[int, int], positions: Positions | None) -> tuple[np.ndarray, np.ndarray]:
    """(batch indices [N], sequence indices [N]) of `positions` (every position when None),
    checked as `_select_positions` checks them."""
    batch, seq_len = shape
    if positions is None:
        rows, cols = np.indices(shape)
        return rows.reshape(-1), cols.reshape(-1)
    if isinstance(positions, np.ndarray) and positions.dtype == bool:
        if positions.shape != shape:
            raise ValueError(f"boolean positions must have shape {shape}, got {positions.shape}")
        rows, cols = np.nonzero(positions)
        return rows, cols
    _select_positions(np.empty((batch, seq_len, 0)), positions)  # validates
    rows, cols = (np.asarray(p, dtype=np.int64).reshape(-1) for p in positions)
    return rows, cols


def mlm_head_train(
    hidden: np.ndarray,
    transform: tuple[np.ndarray, np.ndarray],
    norm: tuple[np.ndarray, np.ndarray],
    projector: np.ndarray,
    projector_bias: np.ndarray,
    activation: Callable[[np.ndarray], np.ndarray],
    eps: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The MLM head on selected rows hidden [N, D] -> (logits [N, V], saved values)."""
    pre_activation = linear(hidden, *transform)  # [N, D]
    activated = activation(pre_activation)
    normed = layer_norm(activated, *norm, eps)
    saved: dict[str, Any] = {"hidden": hidden, "pre_activation": pre_activation, "activated": activated,
                             "normed": normed}  # fmt: skip
    return linear(normed, projector, projector_bias), saved


def mlm_head_backward(
    d_logits: np.ndarray,
    saved: dict[str, Any],
    transform: tuple[np.ndarray, np.ndarray],
    norm: tuple[np.ndarray, np.ndarray],
    projector: np.ndarray,
    activation_backward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    eps: float,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """d_logits [N, V] -> (d_hidden [N, D], {"transform": (d_w, d_b) pieces, ...}).

    Returns gradients keyed "transform.weight", "transform.bias", "norm.weight", "norm.bias",
    "projector.weight" [V, D], "projector.bias" [V].
    """
    d_normed, d_projector, d_projector_bias = linear_backward(d_logits, saved["normed"], projector)
    assert d_normed is not None
    d_activated, d_norm_g, d_norm_b = layer_norm_backward(d_normed, saved["activated"], norm[0], eps)
    d_pre = activation_backward(d_activated, saved["pre_activation"])
    d_hidden, d_w, d_b = linear_backward(d_pre, saved["hidden"], transform[0])
    assert d_hidden is not None
    grads = {"transform.weight": d_w, "transform.bias": d_b, "norm.weight": d_norm_g, "norm.bias": d_norm_b,
             "projector.weight": d_projector, "projector.bias": d_projector_bias}  # fmt: skip
    return d_hidden, grads


def mlm_logits_grad(d_logits: np.ndarray | None, saved: dict[str, Any], dtype: np.dtype) -> np.ndarray:
    """The logits' gradient as [N, V] rows (zeros when None), checked against the forward's shape."""
    like = np.empty(saved["logits_shape"], dtype=dtype)  # uninitialised: only its shape is used
    return _grad_or_zeros(d_logits, like).reshape(saved["hidden"].shape[0], -1)


def scatter_rows(d_rows: np.ndarray, rows: np.ndarray, cols: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The gradient of hidden[rows, cols] -> [N, D]: d_rows [N, D] added back at their positions
    of a zero [B, L, D] (add.at, so that a position selected twice gets both)."""
    d_hidden = np.zeros_like(like)
    np.add.at(d_hidden, (rows, cols), d_rows)
    return d_hidden


def masked_lm_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-entropy of logits [N, V] (the rows at labels != -100) against those labels."""
    return cross_entropy(logits, labels[labels != IGNORE_INDEX])


def mlm_label_positions(
    labels: ArrayLike, shape: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """labels [B, L] (or [L]) as int64, and the bool mask of the positions that count."""
    array = np.asarray(labels)
    if array.ndim == 1:
        array = array[None, :]
    if array.shape != shape:
        raise ValueError(f"labels have shape {array.shape}, input_ids {shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"MLM labels must be integer token ids (or -100), got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    counted = array != IGNORE_INDEX
    if not counted.any():
        raise ValueError("every MLM label is -100: no position to predict, the loss is undefined")
    return array, counted


class DistilBertForMaskedLM(PretrainedModel):
    """Encoder + MLM head: logits over the vocabulary, the output layer tied to the word embeddings."""

    head_prefixes = MLM_HEAD_PREFIXES

    def __init__(self, config: DistilBertConfig, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        self.config = config
        self.distilbert = DistilBertModel(config, checkpoint, dtype)
        self.dtype = dtype = self.distilbert.dtype
        d, v = config.dim, config.vocab_size
        self.transform = checkpoint.take_affine("vocab_transform", d, d, dtype, why="MLM head")
        self.transform_norm = checkpoint.take_affine("vocab_layer_norm", d, None, dtype, why="MLM head")
        # Tied unless the file stores its own matrix: the output matrix *is* the input embedding
        # table (hub files omit the copy). A stored matrix wins, tied or not: transformers 5 loads
        # it as it is (and only warns when the config says the weights are tied).
        self.tied = "vocab_projector.weight" not in checkpoint
        self._own_projector = (
            None if self.tied else checkpoint.take("vocab_projector.weight", (v, d), dtype, why="MLM head")
        )
        self.projector_bias = checkpoint.take("vocab_projector.bias", (v,), dtype, why="MLM head")
        self.activation = self.distilbert.activation

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        """The MLM head alone: hidden [..., D] -> logits [..., V]."""
        x = layer_norm(self.activation(linear(hidden, *self.transform)), *self.transform_norm)
        return linear(x, self.projector, self.projector_bias)

    # -------------------------------------------------------------- training
    loss_targets: ClassVar[tuple[str, ...]] = ("labels",)

    @property
    def projector(self) -> np.ndarray:
        """The output matrix [V, D]: the word-embedding table itself when tied (looked up each
        time, so that it stays the encoder's live table after `named_parameters` copies it)."""
        return self.distilbert.word_embeddings if self._own_projector is None else self._own_projector

    def named_parameters(self) -> dict[str, np.ndarray]:
        tied = self.tied
        params = self.distilbert.encoder_parameters("distilbert.")
        if not self._head_writable:
            self.transform = (writable(self.transform[0]), writable(self.transform[1]))
            self.transform_norm = (writable(self.transform_norm[0]), writable(self.transform_norm[1]))
            if self._own_projector is not None:
                self._own_projector = writable(self._own_projector)
            self.projector_bias = writable(self.projector_bias)
            self._head_writable = True
        params["vocab_transform.weight"], params["vocab_transform.bias"] = self.transform
        params["vocab_layer_norm.weight"], params["vocab_layer_norm.bias"] = self.transform_norm
        if not tied:  # tied: listed once, as the embeddings (torch's named_parameters does the same)
            params["vocab_projector.weight"] = self.projector
        params["vocab_projector.bias"] = self.projector_bias
        return params

    _head_writable: bool = False

    def forward_train(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> tuple[MaskedLMOutput, Tape]:
        """As `__call__`: logits [B, L, V], or [N, V] at `positions`; plus the tape."""
        ids, mask = prepare_inputs(input_ids, attention_mask, self.config)
        encoded = self.distilbert.encode_train(ids, mask, None, dropout_rng)
        hidden = encoded.last_hidden_state  # [B, L, D]
        rows, cols = position_indices(ids.shape, positions)
        logits, saved = mlm_head_train(
            hidden[rows, cols], self.transform, self.transform_norm, self.projector, self.projector_bias,
            self.activation, LAYER_NORM_EPS,
        )  # fmt: skip
        if positions is None:
            logits = logits.reshape(*ids.shape, -1)  # [B, L, V]
        saved.update(rows=rows, cols=cols, logits_shape=logits.shape)
        return MaskedLMOutput(logits), Tape(hidden, encoded, saved)

    def backward(self, tape: Tape, **output_grads: np.ndarray) -> dict[str, np.ndarray]:
        """output_grads: logits ([B, L, V] or [N, V], as forward_train returned them),
        last_hidden_state [B, L, D]."""
        _check_output_grads(self, output_grads, ("logits", "last_hidden_state"))
        saved = tape.head
        d_logits = mlm_logits_grad(output_grads.get("logits"), saved, self.dtype)  # [N, V]
        d_rows, head = mlm_head_backward(
            d_logits, saved, self.transform, self.transform_norm, self.projector,
            ACTIVATION_BACKWARDS[self.config.activation], LAYER_NORM_EPS,
        )  # fmt: skip
        d_hidden = scatter_rows(d_rows, saved["rows"], saved["cols"], tape.last_hidden_state)
        if output_grads.get("last_hidden_state") is not None:
            d_hidden += _grad_or_zeros(output_grads["last_hidden_state"], tape.last_hidden_state)
        # Math (the tied projection): E is used twice, as the lookup table x = E[ids] and as the
        # output matrix logits = n·Eᵀ. The loss's total derivative with respect to E is the sum of
        # the two uses' partial derivatives: d_logitsᵀ·n [V, D], into which the lookup's
        # scatter-add is accumulated (no second [V, D] table).
        tied_grad = head["projector.weight"] if self.tied else None
        grads = self.distilbert.encode_backward(
            d_hidden, tape.encoder, prefix="distilbert.", d_word=tied_grad
        )
        ours = {"vocab_transform.weight": "transform.weight", "vocab_transform.bias": "transform.bias",
                "vocab_layer_norm.weight": "norm.weight", "vocab_layer_norm.bias": "norm.bias",
                "vocab_projector.bias": "projector.bias"}  # fmt: skip
        if not self.tied:
            ours["vocab_projector.weight"] = "projector.weight"
        grads.update({name: head[key] for name, key in ours.items()})
        return grads

    def _forward_train_for_loss(
        self, input_ids: ArrayLike, attention_mask: ArrayLike | None, token_type_ids: ArrayLike | None,
        rng: np.random.Generator | None, targets: dict[str, Any],
    ) -> tuple[MaskedLMOutput, Tape]:  # fmt: skip
        ids = np.asarray(input_ids)
        shape = (1, ids.shape[0]) if ids.ndim == 1 else ids.shape
        labels, counted = mlm_label_positions(targets["labels"], shape)
        targets["labels"] = labels
        # Only the counted positions are projected onto the vocabulary: torch projects all B·L.
        return self.forward_train(input_ids, attention_mask, dropout_rng=rng, positions=counted)

    def loss(self, outputs: Any, **targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """MLM cross-entropy; `outputs.logits` are the rows at labels != -100 ([N, V])."""
        loss, d_logits = masked_lm_loss(outputs.logits, np.asarray(targets["labels"]))
        return loss, {"logits": d_logits}

    def __call__(
        self,
        input_ids: ArrayLike,
        attention_mask: ArrayLike | None = None,
        token_type_ids: ArrayLike | None = None,
        positions: Positions | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MaskedLMOutput:
        """MaskedLMOutput(logits [B, L, V]); with `positions`, only those rows: logits [N, V].

        The vocabulary projection (D x 119,547) costs more than the whole encoder, so
        fill-mask asks for the mask positions only, e.g.
        `positions=np.nonzero(ids == mask_token_id)` (or a bool [B, L] mask). `positions` is
        this package's own; transformers always projects every position.
        """
        encoded = self.distilbert(
            input_ids, attention_mask,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )  # fmt: skip
        hidden = encoded.last_hidden_state  # [B, L, D]
        if positions is not None:
            hidden = _select_positions(hidden, positions)  # [N, D]
        return MaskedLMOutput(
            logits=self.mlm_logits(hidden), hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )
