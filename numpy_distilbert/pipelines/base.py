"""What every pipeline shares: loading, option handling, batching, and Python-typed scores.

A pipeline is a model head, a tokenizer and a set of default options:

    pipe = SomePipeline.from_pretrained(path, dtype=np.float32, **options)
    pipe(inputs, **call_options)      # call options override the defaults, for this call only

Subclasses set `model_class` (the head to load) and `default_options` (every option the
pipeline accepts, with its default), and implement `_run(items, batch_size=..., **options)`,
which maps a list of inputs to a list of results. `__call__` handles the single-input case: a
single input (a string, or whatever `_is_single` accepts) gives a single result, a list gives
a list, as in transformers. A pipeline whose inputs are not one positional argument
(question-answering's question=/context=) overrides `_collect_inputs` instead of `__call__`,
so batch_size and option checks stay here.

Outputs hold plain Python `float`/`int`/`str`, never NumPy scalars, so that they print,
compare and serialise (json.dumps) exactly like transformers' pipeline outputs.

A model output holding NaN or infinity (a corrupt checkpoint, or weights too large for the
dtype) is refused with `NonFiniteOutputError` before it becomes a score: NaN would otherwise
slip through comparisons silently (a top-k of nothing, an argmax of garbage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from numpy_distilbert import layers
from numpy_distilbert._checks import as_int
from numpy_distilbert.model import DistilBertModel

DEFAULT_BATCH_SIZE = 8


class NonFiniteOutputError(ValueError):
    """The model computed NaN or infinity for an input: its weights are not usable as they are."""


class Pipeline:
    """Base class: `model_class.from_pretrained` + `WordPieceTokenizer.from_pretrained` + options."""

    model_class: ClassVar[type[Any]] = DistilBertModel
    task: ClassVar[str] = ""
    # Every option a subclass accepts (at construction or per call), with its default.
    default_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = DEFAULT_BATCH_SIZE, **options: Any):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _check_batch_size(batch_size)
        self.options = self._merge_options(dict(self.default_options), options)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, dtype: Any = np.float32, tokenizer: Any = None, mmap: bool = True,
        **options: Any,
    ) -> Pipeline:
        """Load the head (`cls.model_class`) and the tokenizer from one model directory.

        `tokenizer` may be a loaded tokenizer or another directory to read it from. `mmap`:
        see the model classes' `from_pretrained` (False copies the weights into memory).
        """
        from numpy_distilbert._tokenizer_package import wordpiece_tokenizer_class

        if tokenizer is None or isinstance(tokenizer, (str, Path)):
            word_piece_tokenizer = wordpiece_tokenizer_class()  # the sibling package, imported when needed
            tokenizer = word_piece_tokenizer.from_pretrained(path if tokenizer is None else tokenizer)
        model = cls.model_class_for(Path(path)).from_pretrained(path, dtype=dtype, mmap=mmap)
        return cls(model, tokenizer, **options)

    @classmethod
    def model_class_for(cls, directory: Path) -> type[Any]:
        """The class to load: `model_class` for DistilBERT (and for a config.json without a
        model_type, read as DistilBERT), else the same task's class of the config's family
        (`auto`), e.g. BertForMaskedLM for fill-mask on a BERT checkpoint."""
        from numpy_distilbert.auto import family_for
        from numpy_distilbert.config import read_config_json

        path = directory / "config.json"
        data = read_config_json(path) if path.is_file() else None
        model_type = data.get("model_type") if isinstance(data, dict) else None
        if model_type is None or model_type == cls.model_class.config_class.model_type:
            return cls.model_class
        family = family_for(model_type, source=str(path))
        for task, model_class in family_for(cls.model_class.config_class.model_type).models.items():
            if model_class is cls.model_class:
                return family.model_class(task)
        raise ValueError(f"{cls.__name__} has no model for model_type {model_type!r}")

    # ------------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run on one input (returns one result) or a list of inputs (returns a list)."""
        items, single = self._collect_inputs(args, kwargs)  # takes the input-bearing kwargs out
        batch_size = _check_batch_size(kwargs.pop("batch_size", self.batch_size))
        options = self._merge_options(dict(self.options), kwargs)
        if not items:
            return []
        results = self._run(items, batch_size=batch_size, **options)
        return results[0] if single else results

    def _collect_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], bool]:
        """The call's inputs as a list, and whether they were one input (unwrap the one result).

        The hook for pipelines whose inputs are not one positional argument (question-answering
        takes question=/context=): such a subclass pops its input keywords from `kwargs`; what
        is left there are options.
        """
        if not args and "inputs" in kwargs:  # pipe(inputs=...), as transformers allows
            args = (kwargs.pop("inputs"),)
        if len(args) != 1:
            raise TypeError(
                f"{type(self).__name__} takes one input or a list of inputs as its positional "
                f"argument, got {len(args)} positional arguments"
            )
        inputs = args[0]
        single = self._is_single(inputs)
        return ([inputs] if single else list(inputs)), single

    def _is_single(self, inputs: Any) -> bool:
        """A str is one input; a list or tuple is a batch. Subclasses with richer inputs override."""
        if isinstance(inputs, str):
            return True
        if isinstance(inputs, (list, tuple)):
            return False
        raise TypeError(
            f"{type(self).__name__} takes a string or a list of strings, got {type(inputs).__name__}"
        )

    @property
    def max_length(self) -> int:
        """The longest input the model takes: the tokenizer's limit, capped by the position table."""
        limit = self.model.config.max_position_embeddings
        declared = getattr(self.tokenizer, "model_max_length", None)
        return min(limit, declared) if isinstance(declared, int) and declared > 0 else limit

    def encode(self, text: str, text_pair: str | None = None, truncation: bool = False) -> list[int]:
        """Token ids with [CLS]/[SEP]; with `truncation`, cut to `max_length` (the longest first)."""
        limit = {"truncation": True, "max_length": self.max_length} if truncation else {}
        return self.tokenizer.encode(text, text_pair=text_pair, **limit)

    def encode_with_types(
        self, text: str, text_pair: str | None = None, truncation: bool | str = False, **kwargs: Any
    ) -> tuple[list[int], list[int]]:
        """`encode`, with the token types BERT reads: 0 for [CLS] text [SEP], 1 for text_pair [SEP].

        truncation: False, True (cut to `max_length`, the longest first) or a tokenizer strategy.
        """
        limit = {"truncation": truncation, "max_length": self.max_length} if truncation else {}
        encoding = self.tokenizer(text, text_pair=text_pair, **limit, **kwargs)
        return list(encoding["input_ids"]), list(encoding["token_type_ids"])

    def _run(self, *args: Any, **options: Any) -> list[Any]:
        """`_run(items, batch_size=..., **options)`: one result per item. Each subclass names the
        options it takes (its `default_options`), so the base signature is left open."""
        raise NotImplementedError

    def _merge_options(self, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self.default_options))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown option(s) {', '.join(map(repr, unknown))}; "
                f"it accepts: {', '.join(sorted(self.default_options)) or 'none'} and batch_size"
            )
        base.update(overrides)
        return base

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__})"


# ------------------------------------------------------------------ helpers
def _check_batch_size(batch_size: Any) -> int:
    return as_int(batch_size, "batch_size", minimum=1)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped in batches of similar length (longest first), to cut padding.

    Padding never changes a row's result (masked keys get no attention), so the order
    in which rows are batched is free; callers put results back by index.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def run_batched(
    sequences: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    forward: Callable[..., Sequence[Any]],
    token_types: Sequence[Sequence[int]] | None = None,
) -> list[Any]:
    """Run `forward(ids [B, L], attention_mask [B, L])` over length-sorted, padded batches, or
    `forward(ids, attention_mask, token_type_ids [B, L])` when `token_types` (one list per
    sequence) are given; padding gets type 0, as transformers pads it.

    `forward` returns one result per row of its batch; they come back in input order.
    """
    results: list[Any] = [None] * len(sequences)
    for rows in length_sorted_batches([len(s) for s in sequences], batch_size):
        ids, mask = pad_batch([sequences[i] for i in rows], pad_id)
        if token_types is None:
            outputs = forward(ids, mask)
        else:
            types, _ = pad_batch([token_types[i] for i in rows], 0)
            outputs = forward(ids, mask, types)
        for i, out in zip(rows, outputs, strict=True):
            results[i] = out
    return results


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists to one length. Returns (ids [B, L] int64, attention_mask [B, L] int64)."""
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return ids, mask


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """The model's softmax, computed in float64 (scores are reported as Python floats)."""
    return layers.softmax(np.asarray(logits, dtype=np.float64), axis=axis)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-x))


def to_python(value: Any) -> Any:
    """NumPy scalars and arrays (nested in lists/dicts/tuples) -> plain float/int/bool/list."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    return value


def check_finite(values: np.ndarray, what: str, where: str) -> np.ndarray:
    """`values` unchanged when every entry is finite; else NonFiniteOutputError naming what is not.

    `what` names the array ("logits", "hidden states"), `where` the input it belongs to
    ("input 3", see `nth_input`); the message gives the kinds found (NaN, inf, -inf) and the first bad index.
    """
    values = np.asarray(values)
    finite = np.isfinite(values)
    if finite.all():
        return values
    bad = values[~finite]
    found = {"NaN": np.isnan(bad), "inf": bad > 0, "-inf": bad < 0}  # NaN compares False to 0
    kinds = [name for name, where_found in found.items() if where_found.any()]
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise NonFiniteOutputError(
        f"model produced non-finite {what} ({', '.join(kinds)}) for {where}, first at index {first} "
        f"of shape {values.shape}: the checkpoint's weights may be corrupt (or too large for {values.dtype})"
    )


def nth_input(index: int, count: int, noun: str = "input") -> str:
    """How messages name one of `count` inputs: "the input" when it is the only one, else "input 3"."""
    return f"the {noun}" if count == 1 else f"{noun} {index}"


def check_texts(items: list[Any], what: str = "input") -> list[str]:
    """Every item must be a str; say which one is not."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{what} {i} must be a string, got {type(item).__name__}")
    return items
