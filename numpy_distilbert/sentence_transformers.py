"""Sentence embeddings as sentence-transformers computes them: encoder -> pooling -> normalise.

    from numpy_distilbert import SentenceTransformer
    model = SentenceTransformer("path/to/all-MiniLM-L6-v2")
    vectors = model.encode(["A man is eating food.", "A man is eating a piece of bread."])  # [2, 384]
    model.similarity(vectors, vectors)                                                      # [2, 2]

A sentence-transformers directory describes its pipeline in `modules.json`, a list of modules
run in order. This module implements the three that make a text embedding model:

    Transformer   the encoder (any family `AutoModel` loads) and its tokenizer; options in
                  `sentence_bert_config.json`: `max_seq_length` (inputs are cut there) and
                  `do_lower_case` (the text is lowercased before tokenizing)
    Pooling       token vectors [L, D] -> one vector; `1_Pooling/config.json` names the modes
                  (several are concatenated, in the order sentence-transformers uses)
    Normalize     scale to unit length (L2)

Any other module (Dense, LayerNorm, a Router, ...) is refused with its name, as is a prompt
the model would prepend by default (`default_prompt_name`): nothing here would compute it.
A plain model directory without `modules.json` gets mean pooling and no normalisation, as
sentence-transformers gives it.

This file is named after the library it follows; it is `numpy_distilbert.sentence_transformers`,
so it never shadows the `sentence_transformers` package itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from numpy_distilbert._checks import as_int
from numpy_distilbert.config import ConfigError, read_config_json
from numpy_distilbert.hub import resolve_model
from numpy_distilbert.pipelines.base import length_sorted_batches, pad_batch

MODULES_FILE = "modules.json"
TRANSFORMER_CONFIG_FILE = "sentence_bert_config.json"
POOLING_CONFIG_FILE = "config.json"  # inside the Pooling module's folder
MODEL_CONFIG_FILE = "config_sentence_transformers.json"

# The pooling modes sentence-transformers 6 names, in the order it concatenates the legacy
# boolean flags (`pooling_mode_<x>_tokens: true`) of older 1_Pooling/config.json files.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
LEGACY_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SIMILARITY_FUNCTIONS = ("cosine", "dot", "euclidean", "manhattan")
OUTPUT_VALUES = ("sentence_embedding", "token_embeddings")
NORM_EPS = 1e-12  # torch.nn.functional.normalize's floor on the norm: a zero vector stays zero
COUNT_EPS = 1e-9  # sentence-transformers' floor on a pooling denominator

# The last part of a module's `type` in modules.json: sentence-transformers has written these
# under several package paths over its versions (`sentence_transformers.models.Pooling`,
# `sentence_transformers.sentence_transformer.modules.pooling.Pooling`, ...).
TRANSFORMER, POOLING, NORMALIZE = "Transformer", "Pooling", "Normalize"


# --------------------------------------------------------------------- pooling
def pool(hidden: NDArray[np.floating], mask: NDArray[np.integer], mode: str) -> NDArray[np.floating]:
    """hidden [B, L, D], right-padded mask [B, L] (1 = token) -> [B, D] by one pooling mode.

    Padding is on the right (the tokenizer pads there), so a row's first token is position 0
    and weighted-mean weights are 1, 2, ..., its length.
    """
    weights = mask[..., None].astype(hidden.dtype)  # [B, L, 1]
    count = np.maximum(weights.sum(axis=1), COUNT_EPS)  # [B, 1]
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return np.where(weights > 0, hidden, -np.inf).max(axis=1)
    if mode == "mean":
        return (hidden * weights).sum(axis=1) / count
    if mode == "mean_sqrt_len_tokens":
        return (hidden * weights).sum(axis=1) / np.sqrt(count)
    if mode == "weightedmean":
        positions = np.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype)[None, :, None]  # [1, L, 1]
        weighted = weights * positions  # [B, L, 1]
        return (hidden * weighted).sum(axis=1) / np.maximum(weighted.sum(axis=1), COUNT_EPS)
    if mode == "lasttoken":
        last = mask.sum(axis=1) - 1  # [B]: the final real token ([SEP] for BERT tokenizers)
        return hidden[np.arange(len(hidden)), last]
    raise ValueError(f"unknown pooling mode {mode!r}; the modes are {', '.join(POOLING_MODES)}")


def mean_pool_backward(d_pooled: np.ndarray, mask: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """The gradient of `pool(hidden, mask, "mean")`: d_pooled [B, D] -> d_hidden [B, L, D],
    spread evenly over each row's tokens (mask[b, l] / count[b]), 0 at padding."""
    weights = mask[..., None].astype(dtype)  # [B, L, 1]
    count = np.maximum(weights.sum(axis=1), COUNT_EPS)  # [B, 1]
    return weights * (d_pooled / count)[:, None, :]


def l2_normalize(vectors: NDArray[np.floating]) -> NDArray[np.floating]:
    """[..., D] -> unit length along the last axis (a zero vector stays zero), dtype kept."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, NORM_EPS)).astype(vectors.dtype, copy=False)


# ------------------------------------------------------------------ similarity
def similarity_matrix(a: ArrayLike, b: ArrayLike, function: str = "cosine") -> NDArray[np.floating]:
    """a [N, D] (or [D]) and b [M, D] (or [D]) -> scores [N, M], as sentence-transformers' util.

    cosine: dot product of the unit vectors; dot: plain dot product; euclidean and manhattan:
    the negated L2 / L1 distance (higher is more similar, as for the other two).
    """
    x, y = _as_matrix(a, "a"), _as_matrix(b, "b")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"similarity needs vectors of one size: a has {x.shape[1]} values, b has {y.shape[1]}"
        )
    if function == "cosine":
        return l2_normalize(x) @ l2_normalize(y).T
    if function == "dot":
        return x @ y.T
    if function == "euclidean":
        return -np.sqrt(np.maximum(_squared_distances(x, y), 0.0)).astype(x.dtype, copy=False)
    if function == "manhattan":
        return -np.abs(x[:, None, :] - y[None, :, :]).sum(axis=-1)
    raise ValueError(
        f"unknown similarity function {function!r}; the functions are {', '.join(SIMILARITY_FUNCTIONS)}"
    )


def _squared_distances(x: NDArray[np.floating], y: NDArray[np.floating]) -> NDArray[np.floating]:
    diff = x[:, None, :] - y[None, :, :]  # [N, M, D]: exact, unlike |x|^2 + |y|^2 - 2xy
    return np.asarray((diff * diff).sum(axis=-1))


def _as_matrix(values: ArrayLike, name: str) -> NDArray[np.floating]:
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        if array.dtype.kind in "iub":
            array = array.astype(np.float64)
        else:
            raise TypeError(f"{name} must hold numbers (embeddings), got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must be one embedding [D] or a matrix [N, D], got shape {array.shape}")
    return array


# ---------------------------------------------------------------- the modules
@dataclass(frozen=True)
class Pooling:
    """`1_Pooling/config.json`: the modes, concatenated in order, and the embedding size."""

    modes: tuple[str, ...]
    embedding_dimension: int
    include_prompt: bool = True  # nothing here adds a prompt, so there is never one to exclude

    def __call__(self, hidden: NDArray[np.floating], mask: NDArray[np.integer]) -> NDArray[np.floating]:
        """hidden [B, L, D], mask [B, L] -> [B, len(modes) * D]."""
        return np.concatenate([pool(hidden, mask, mode) for mode in self.modes], axis=-1)


def read_pooling(path: Path, hidden_size: int) -> Pooling:
    """The Pooling module whose config.json is at `path`, checked against the encoder's size."""
    data = _read_object(path)
    modes = _pooling_modes(path, data)
    dimension = data.get("embedding_dimension", data.get("word_embedding_dimension", hidden_size))
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension != hidden_size:
        raise ConfigError(
            f"{path}: embedding_dimension {dimension!r} is not the encoder's hidden size {hidden_size}"
        )
    include_prompt = data.get("include_prompt", True)
    if not isinstance(include_prompt, bool):
        raise ConfigError(f"{path}: include_prompt must be true or false, got {include_prompt!r}")
    return Pooling(modes, hidden_size, include_prompt)


def _pooling_modes(path: Path, data: dict[str, Any]) -> tuple[str, ...]:
    """`pooling_mode` (a name or a list of names), else the legacy flags; neither means mean."""
    unknown_flags = sorted(k for k in data if k.startswith("pooling_mode_") and k not in LEGACY_POOLING_FLAGS)
    if unknown_flags:
        raise ConfigError(
            f"{path}: unknown pooling option(s) {unknown_flags}; this package implements "
            f"{', '.join(POOLING_MODES)}"
        )
    if "pooling_mode" in data:
        named = data["pooling_mode"]
        modes = [named] if isinstance(named, str) else named
        if not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes):
            raise ConfigError(
                f"{path}: pooling_mode must be a mode name or a non-empty list of them, got {named!r}"
            )
    else:
        for flag in LEGACY_POOLING_FLAGS:
            if not isinstance(data.get(flag, False), bool):
                raise ConfigError(f"{path}: {flag} must be true or false, got {data[flag]!r}")
        modes = [mode for flag, mode in LEGACY_POOLING_FLAGS.items() if data.get(flag, False)] or ["mean"]
    for mode in modes:
        if mode not in POOLING_MODES:
            raise ConfigError(
                f"{path}: pooling mode {mode!r} is not implemented; the modes are {', '.join(POOLING_MODES)}"
            )
    return tuple(modes)


@dataclass(frozen=True)
class TransformerOptions:
    """`sentence_bert_config.json` of the Transformer module: what the text goes through."""

    max_seq_length: int | None  # None: the tokenizer's limit, capped by the position table
    do_lower_case: bool


# Keys of sentence_bert_config.json that change nothing for text embeddings at their default;
# any other value asks for something this package does not compute.
_TRANSFORMER_DEFAULTS: dict[str, Any] = {
    "transformer_task": "feature-extraction",
    "module_output_name": "token_embeddings",
    "processing_kwargs": {},
    "query_length": None,
    "document_length": None,
    "query_expansion": None,
    "unpad_inputs": None,
}
_TEXT_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}


def read_transformer_options(path: Path) -> TransformerOptions:
    """sentence_bert_config.json at `path` (absent: the defaults)."""
    if not path.is_file():
        return TransformerOptions(None, False)
    data = _read_object(path)
    for key, default in _TRANSFORMER_DEFAULTS.items():
        value = data.get(key, default)
        if value != default and not (key == "unpad_inputs" and isinstance(value, bool)):
            raise ConfigError(f"{path}: {key} = {value!r} is not implemented (only {default!r})")
    if data.get("modality_config", _TEXT_MODALITY) != _TEXT_MODALITY:
        raise ConfigError(
            f"{path}: modality_config {data['modality_config']!r} is not implemented "
            f"(only text through the encoder's last hidden state)"
        )
    max_seq_length = data.get("max_seq_length")
    if max_seq_length is not None:
        max_seq_length = as_int(max_seq_length, f"{path}: max_seq_length", minimum=2, error=ConfigError)
    do_lower_case = data.get("do_lower_case", False)
    if not isinstance(do_lower_case, bool):
        raise ConfigError(f"{path}: do_lower_case must be true or false, got {do_lower_case!r}")
    return TransformerOptions(max_seq_length, do_lower_case)


def _read_object(path: Path) -> dict[str, Any]:
    data = read_config_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class ModuleSpec:
    """One entry of modules.json: its kind (TRANSFORMER, POOLING, NORMALIZE) and its folder."""

    kind: str
    directory: Path


def read_modules(directory: Path) -> list[ModuleSpec]:
    """modules.json of `directory`, checked: a Transformer, then optionally Pooling, then Normalize."""
    path = directory / MODULES_FILE
    data = read_config_json(path)
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: expected a non-empty JSON list of modules")
    specs = [_module_spec(path, directory, n, entry) for n, entry in enumerate(data)]
    kinds = [spec.kind for spec in specs]
    allowed = (
        [TRANSFORMER],
        [TRANSFORMER, POOLING],
        [TRANSFORMER, POOLING, NORMALIZE],
        [TRANSFORMER, NORMALIZE],
    )
    if kinds not in allowed:
        raise ConfigError(
            f"{path}: modules {kinds} are not a Transformer followed by Pooling and/or Normalize, "
            f"the pipelines this package implements"
        )
    return specs


def _module_spec(path: Path, directory: Path, n: int, entry: Any) -> ModuleSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: module {n} must be a JSON object, got {type(entry).__name__}")
    kind, folder = entry.get("type"), entry.get("path", "")
    name = kind.rsplit(".", 1)[-1] if isinstance(kind, str) else None
    if (
        not isinstance(kind, str)
        or not kind.startswith("sentence_transformers.")
        or name not in (TRANSFORMER, POOLING, NORMALIZE)
    ):
        shown = repr(kind) if len(repr(kind)) <= 100 else repr(kind)[:97] + "..."
        raise ConfigError(
            f"{path}: module {n} has type {shown}, which this package does not implement "
            f"(it implements sentence-transformers' Transformer, Pooling and Normalize)"
        )
    if not isinstance(folder, str):
        raise ConfigError(f"{path}: module {n} path must be a string, got {type(folder).__name__}")
    try:
        resolved = (directory / folder).resolve()
    except (OSError, ValueError) as exc:  # a NUL byte, a symlink loop
        raise ConfigError(f"{path}: module {n} path {folder!r} cannot be used ({exc})") from None
    if Path(folder).is_absolute() or not resolved.is_relative_to(directory.resolve()):
        raise ConfigError(f"{path}: module {n} path {folder!r} leads outside {directory}")
    return ModuleSpec(name, directory / folder)


# ------------------------------------------------------------------ the model
class SentenceTransformer:
    """A sentence-transformers model run in NumPy: `encode` texts, compare with `similarity`."""

    similarity_functions: ClassVar[tuple[str, ...]] = SIMILARITY_FUNCTIONS

    def __init__(self, path_or_id: str | Path, revision: str | None = None, dtype: DTypeLike = np.float32):
        """Load from a directory or a model id (found as `AutoModel` finds one)."""
        from numpy_distilbert.auto import AutoModel, AutoTokenizer

        self.path = directory = resolve_model(path_or_id, revision=revision)
        has_modules = (directory / MODULES_FILE).is_file()
        specs = read_modules(directory) if has_modules else [ModuleSpec(TRANSFORMER, directory)]
        encoder_dir = specs[0].directory
        self.similarity_fn_name = self._read_model_config(directory)
        self.options = read_transformer_options(encoder_dir / TRANSFORMER_CONFIG_FILE)
        self.model = AutoModel.from_pretrained(resolve_model(encoder_dir), dtype=dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
        hidden_size = int(self.model.config.hidden_size)
        by_kind = {spec.kind: spec for spec in specs}
        if POOLING in by_kind:
            self.pooling: Pooling | None = read_pooling(
                by_kind[POOLING].directory / POOLING_CONFIG_FILE, hidden_size
            )
        elif has_modules:
            self.pooling = None  # no Pooling module: the token vectors are the output
        else:
            self.pooling = Pooling(("mean",), hidden_size)  # sentence-transformers' default for a plain model
        self.normalize = NORMALIZE in by_kind
        self.max_seq_length = self._max_seq_length(encoder_dir)

    @staticmethod
    def _read_model_config(directory: Path) -> str:
        """similarity_fn_name of config_sentence_transformers.json (cosine when absent)."""
        path = directory / MODEL_CONFIG_FILE
        if not path.is_file():
            return "cosine"
        data = _read_object(path)
        if data.get("default_prompt_name") is not None:
            raise ConfigError(
                f"{path}: default_prompt_name {data['default_prompt_name']!r} asks for a prompt "
                f"before every text, which this package does not add"
            )
        function = data.get("similarity_fn_name") or "cosine"
        if function not in SIMILARITY_FUNCTIONS:
            raise ConfigError(
                f"{path}: similarity_fn_name {function!r} is not one of {', '.join(SIMILARITY_FUNCTIONS)}"
            )
        return str(function)

    def _max_seq_length(self, encoder_dir: Path) -> int:
        """sentence_bert_config's max_seq_length, else the tokenizer's limit; never past the positions."""
        positions = int(self.model.config.max_position_embeddings)
        declared = self.options.max_seq_length
        if declared is not None:
            if declared > positions:
                raise ConfigError(
                    f"{encoder_dir / TRANSFORMER_CONFIG_FILE}: max_seq_length {declared} is more "
                    f"than the model's {positions} positions"
                )
            return declared
        limit = getattr(self.tokenizer, "model_max_length", None)
        return min(positions, limit) if isinstance(limit, int) and limit > 0 else positions

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.model.dtype)

    def get_sentence_embedding_dimension(self) -> int:
        hidden_size = int(self.model.config.hidden_size)
        return hidden_size if self.pooling is None else len(self.pooling.modes) * hidden_size

    def tokenize(self, text: str) -> list[int]:
        """Token ids with [CLS]/[SEP], cut at max_seq_length, as the Transformer module feeds them."""
        if self.options.do_lower_case:
            text = text.lower()
        return list(self.tokenizer.encode(text, truncation=True, max_length=self.max_seq_length))

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        output_value: Literal["sentence_embedding", "token_embeddings"] = "sentence_embedding",
        show_progress_bar: bool | None = None,
    ) -> Any:
        """Texts -> embeddings, as sentence-transformers' `encode` returns them.

        sentence_embedding: [N, D] (float32 by default) for a list, [D] for one string.
        token_embeddings: a list of [L_i, hidden] arrays, one per text (its real tokens,
        [CLS] and [SEP] included), or one such array for one string; never normalised.
        Texts are batched by token length (longest first); results come back in input order.
        """
        single = isinstance(sentences, str)
        texts = _check_sentences(sentences)
        batch_size = as_int(batch_size, "batch_size", minimum=1)
        if output_value not in OUTPUT_VALUES:
            raise ValueError(f"output_value must be one of {OUTPUT_VALUES}, got {output_value!r}")
        if output_value == "sentence_embedding" and self.pooling is None:
            raise ValueError(f"{self.path} has no Pooling module: use output_value='token_embeddings'")
        for name, flag in (
            ("normalize_embeddings", normalize_embeddings),
            ("show_progress_bar", show_progress_bar),
        ):
            if not isinstance(flag, bool) and not (flag is None and name == "show_progress_bar"):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        ids = [self.tokenize(text) for text in texts]
        results: list[Any] = [None] * len(ids)
        batches = list(length_sorted_batches([len(s) for s in ids], batch_size))
        for done, rows in enumerate(batches, 1):
            for i, value in zip(rows, self._encode_batch([ids[i] for i in rows], output_value), strict=True):
                results[i] = value
            if show_progress_bar:
                print(
                    f"\rBatches: {done}/{len(batches)}",
                    end="\n" if done == len(batches) else "",
                    file=sys.stderr,
                    flush=True,
                )
        if output_value == "token_embeddings":
            return results[0] if single else results
        hidden_size = self.get_sentence_embedding_dimension()
        matrix = np.stack(results) if results else np.zeros((0, hidden_size), self.dtype)  # [N, D]
        if normalize_embeddings:
            matrix = l2_normalize(matrix)
        return matrix[0] if single else matrix

    def _encode_batch(self, sequences: list[list[int]], output_value: str) -> list[NDArray[np.floating]]:
        """One padded batch -> one result per row (a [D] vector, or [L_i, hidden] token vectors)."""
        input_ids, mask = pad_batch(sequences, self.tokenizer.pad_token_id)  # [B, L] each
        hidden = self.model(input_ids, mask).last_hidden_state  # [B, L, hidden]
        if output_value == "token_embeddings":
            return [np.ascontiguousarray(hidden[b, : len(s)]) for b, s in enumerate(sequences)]
        assert self.pooling is not None  # checked by encode
        pooled = self.pooling(hidden, mask)  # [B, D]
        if self.normalize:
            pooled = l2_normalize(pooled)
        return list(pooled.astype(self.dtype, copy=False))

    def similarity(self, a: ArrayLike, b: ArrayLike) -> NDArray[np.floating]:
        """Scores [N, M] between embeddings a [N, D] and b [M, D] by the model's similarity
        function (config_sentence_transformers.json's similarity_fn_name; cosine by default)."""
        return similarity_matrix(a, b, self.similarity_fn_name)

    def __repr__(self) -> str:
        modes = None if self.pooling is None else list(self.pooling.modes)
        return (
            f"SentenceTransformer(path={str(self.path)!r}, encoder={type(self.model).__name__}, "
            f"max_seq_length={self.max_seq_length}, pooling={modes}, normalize={self.normalize})"
        )


def _check_sentences(sentences: Any) -> list[str]:
    if isinstance(sentences, str):
        return [sentences]
    if isinstance(sentences, np.ndarray) and sentences.ndim == 1:
        sentences = sentences.tolist()  # e.g. a column of texts, as sentence-transformers accepts
    if not isinstance(sentences, (list, tuple)):
        raise TypeError(f"sentences must be a string or a list of strings, got {type(sentences).__name__}")
    for i, text in enumerate(sentences):
        if not isinstance(text, str):
            raise TypeError(f"sentences[{i}] must be a string, got {type(text).__name__}")
    return list(sentences)


def has_sentence_transformers_config(directory: str | Path) -> bool:
    """Whether `directory` is a sentence-transformers model (it has modules.json)."""
    return (Path(directory) / MODULES_FILE).is_file()


__all__ = ["POOLING_MODES", "Pooling", "SentenceTransformer", "l2_normalize", "pool", "similarity_matrix"]


# ---------------------------------------------------------------- search
def top_k_scores(
    index: NDArray[np.floating], queries: NDArray[np.floating], k: int, block_rows: int = 65536
) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """The k best rows of `index` [N, D] for every query [Q, D] by dot product, reading the index
    `block_rows` rows at a time (a memory-mapped index is never loaded whole).

    With unit vectors on both sides the dot product is the cosine. Returns (rows [Q, k'],
    scores [Q, k']) best first, k' = min(k, N); equal scores keep the earlier row first.
    """
    k = as_int(k, "k", minimum=1)
    block_rows = as_int(block_rows, "block_rows", minimum=1)
    n_rows, n_queries = len(index), len(queries)
    best_rows = np.zeros((n_queries, 0), np.int64)
    best_scores = np.zeros((n_queries, 0), np.result_type(index.dtype, queries.dtype))
    for start in range(0, n_rows, block_rows):
        block = np.asarray(index[start : start + block_rows])  # [b, D], read from disk here
        scores = (block @ queries.T).T  # [Q, b]
        rows = np.broadcast_to(np.arange(start, start + len(block), dtype=np.int64), scores.shape)
        best_rows, best_scores = _keep_best(np.hstack([best_rows, rows]), np.hstack([best_scores, scores]), k)
    return best_rows, best_scores


def _keep_best(
    rows: NDArray[np.int64], scores: NDArray[np.floating], k: int
) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """Per query (a row of both [Q, C]): the k highest scores, ties by the lower row number."""
    order = np.lexsort((rows, -scores), axis=-1)[:, :k]  # [Q, min(k, C)]
    return np.take_along_axis(rows, order, axis=-1), np.take_along_axis(scores, order, axis=-1)
