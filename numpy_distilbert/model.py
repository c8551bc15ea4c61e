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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.hub import resolve_model
from numpy_distilbert.layers import (
    ACTIVATIONS,
    LAYER_NORM_EPS,
    attention_bias,
    embed,
    feed_forward,
    layer_norm,
    linear,
    multi_head_attention,
    sinusoidal_positions,
)
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

    def __init__(self, config: Any, checkpoint: Checkpoint, dtype: DTypeLike = np.float32):
        raise NotImplementedError

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


class DistilBertModel(PretrainedModel):
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
        if "vocab_projector.weight" in checkpoint:
            # A stored output matrix wins, tied or not: transformers 5 loads it as it is
            # (and only warns when the config says the weights are tied).
            self.projector = checkpoint.take("vocab_projector.weight", (v, d), dtype, why="MLM head")
        else:
            # Tied: the output matrix *is* the input embedding table; hub files omit the copy.
            self.projector = self.distilbert.word_embeddings  # [V, D]
        self.projector_bias = checkpoint.take("vocab_projector.bias", (v,), dtype, why="MLM head")
        self.activation = self.distilbert.activation

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        """The MLM head alone: hidden [..., D] -> logits [..., V]."""
        x = layer_norm(self.activation(linear(hidden, *self.transform)), *self.transform_norm)
        return linear(x, self.projector, self.projector_bias)

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
