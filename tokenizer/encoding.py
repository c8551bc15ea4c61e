"""`Encoding`, what the tokenizer returns: transformers' dict plus `BatchEncoding`'s accessors.

Keys read as attributes too (``enc.input_ids``). The alignment methods follow `BatchEncoding`'s
convention: ``enc.f(i)`` asks about position ``i`` of row 0, ``enc.f(row, i)`` about row
``row``; positions of tokens may be negative (counted from the end of the row).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from .checks import is_int
from .postprocess import Row

T = TypeVar("T")

# return_tensors values that name a framework this project does not use.
_FRAMEWORKS = {"pt": "PyTorch", "tf": "TensorFlow", "jax": "JAX", "mlx": "MLX"}


class CharSpan(NamedTuple):
    """Characters ``start:end`` of the original string."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Tokens ``start:end`` of a row."""

    start: int
    end: int


class RowSource(Protocol):
    def rows_with_detail(self, inputs: Any, settings: Any) -> list[Row]: ...


class LazyRows:
    """Row details (word ids, sequence ids, tokens) computed on first use by
    ``source.rows_with_detail(inputs, settings)`` (re-encoding the same strings with offsets);
    keeps plain calls as fast as possible. Slots and no closure: every Encoding holds one, and
    fewer objects per result is less work for the garbage collector."""

    __slots__ = ("_inputs", "_rows", "_settings", "_source")

    def __init__(self, source: RowSource, inputs: Any, settings: Any) -> None:
        self._source, self._inputs, self._settings = source, inputs, settings
        self._rows: list[Row] | None = None

    def _get(self) -> list[Row]:
        if self._rows is None:
            self._rows = self._source.rows_with_detail(self._inputs, self._settings)
        return self._rows

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, i: int) -> Row:
        return self._get()[i]


def _detail(values: list[T] | None) -> list[T]:
    if values is None:  # LazyRows always builds rows with detail
        raise RuntimeError("row built without per-token detail")
    return values


def _split(first: int, second: int | None) -> tuple[int, int]:
    """BatchEncoding's convention: ``f(i)`` is (row 0, i); ``f(b, i)`` is (row b, i)."""
    return (0, first) if second is None else (first, second)


def _index(name: str, value: Any) -> int:
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return operator.index(value)


class Encoding(dict[str, Any]):
    """The result of `WordPieceTokenizer.__call__`: a plain dict with transformers' keys and
    values, plus `BatchEncoding`'s accessors: `word_ids(i)`, `sequence_ids(i)`, `tokens(i)`
    (``i`` indexes the rows of the output, after overflow, default 0), the alignment methods
    (`char_to_token`, `token_to_chars`, `word_to_tokens`, `char_to_word`, `word_to_chars`,
    `token_to_word`, `token_to_sequence`) and attribute access to the keys.
    """

    def __init__(self, data: dict[str, Any], rows: Sequence[Row] | LazyRows | None) -> None:
        super().__init__(data)
        self._rows = rows

    def __getattr__(self, name: str) -> Any:
        # Only called when normal attribute lookup fails: the keys, as BatchEncoding allows.
        if not name.startswith("__") and name in self:
            return self[name]
        raise AttributeError(f"Encoding has no attribute or key {name!r} (its keys: {', '.join(self)})")

    def _row(self, batch_index: int) -> Row:
        if self._rows is None:
            raise ValueError("this Encoding has no per-token information (it was made by pad())")
        n = len(self._rows)
        if not is_int(batch_index) or not -n <= operator.index(batch_index) < n:
            raise IndexError(f"batch_index {batch_index!r} out of range for {n} rows")
        return self._rows[operator.index(batch_index)]

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, the index of the word it belongs to in its sequence (None for
        special and padding tokens). A word is what the pre-tokenizer produced: a run of word
        characters, one punctuation character, one CJK ideograph or a special token (with
        ``is_split_into_words=True``: the caller's word)."""
        return list(_detail(self._row(batch_index).words))

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token: 0 for the first text, 1 for the pair, None for special/padding."""
        return list(_detail(self._row(batch_index).seq_ids))

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of a row."""
        return list(_detail(self._row(batch_index).tokens))

    # -- alignment, as BatchEncoding: f(position) is row 0, f(row, position) -------------

    def _token(self, first: int, second: int | None) -> tuple[Row, int | None]:
        """The row and the token position (None when past the row; negative counts from the end)."""
        batch_index, position = _split(first, second)
        row = self._row(batch_index)
        position = _index("token_index", position)
        n = len(row.ids)
        if position < 0:
            position += n
        return row, position if 0 <= position < n else None

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """0 or 1: the sequence (text or pair) a token comes from; None for special tokens."""
        row, t = self._token(batch_or_token_index, token_index)
        return None if t is None else _detail(row.seq_ids)[t]

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """The index of a token's word in its sequence; None for special tokens."""
        row, t = self._token(batch_or_token_index, token_index)
        return None if t is None else _detail(row.words)[t]

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        """The characters of the original string a token comes from; None for special tokens."""
        row, t = self._token(batch_or_token_index, token_index)
        if t is None or _detail(row.seq_ids)[t] is None:
            return None
        return CharSpan(*_detail(row.offsets)[t])

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> TokenSpan | None:
        """The tokens of word `word_index` of sequence `sequence_index`; None if it has none."""
        batch_index, word = _split(batch_or_word_index, word_index)
        row = self._row(batch_index)
        word = _index("word_index", word)
        hits = [t for t, (w, s) in enumerate(zip(_detail(row.words), _detail(row.seq_ids), strict=True))
                if w == word and s == sequence_index]  # fmt: skip
        return TokenSpan(hits[0], hits[-1] + 1) if hits else None

    def word_to_chars(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> CharSpan | None:
        """The characters of word `word_index` of sequence `sequence_index`; None if it has no
        tokens (transformers raises a TypeError there)."""
        span = self.word_to_tokens(batch_or_word_index, word_index, sequence_index)
        if span is None:
            return None
        batch_index, _ = _split(batch_or_word_index, word_index)
        offsets = _detail(self._row(batch_index).offsets)
        return CharSpan(offsets[span.start][0], offsets[span.end - 1][1])

    def char_to_token(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """The token holding character `char_index` of sequence `sequence_index`; None for
        characters no token covers (spaces, removed characters)."""
        batch_index, char = _split(batch_or_char_index, char_index)
        row = self._row(batch_index)
        char = _index("char_index", char)
        for t, (s, (start, end)) in enumerate(zip(_detail(row.seq_ids), _detail(row.offsets), strict=True)):
            if s == sequence_index and start <= char < end:
                return t
        return None

    def char_to_word(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        """The word holding character `char_index` of sequence `sequence_index`, or None."""
        batch_index, _ = _split(batch_or_char_index, char_index)
        t = self.char_to_token(batch_or_char_index, char_index, sequence_index)
        return None if t is None else _detail(self._row(batch_index).words)[t]


def check_return_tensors(value: Any) -> None:
    """None (lists) or "np" (numpy arrays); frameworks this project does not use are refused."""
    if value is None or value == "np":
        return
    if isinstance(value, str) and value in _FRAMEWORKS:
        raise ValueError(
            f"return_tensors={value!r} needs {_FRAMEWORKS[value]}, which numpy-distilbert does not "
            "use: pass return_tensors='np' for numpy arrays, or None for lists"
        )
    raise ValueError(f"return_tensors must be None or 'np', got {value!r}")


def as_numpy(data: dict[str, Any]) -> dict[str, Any]:
    """Every value as an int64 numpy array (transformers' dtype). Rows of different lengths
    are refused (transformers would make an object array of arrays)."""
    import numpy as np  # only here: the tokenizer itself needs no numpy

    out = {}
    for key, value in data.items():
        try:
            out[key] = np.asarray(value, dtype=np.int64)
        except ValueError:
            raise ValueError(
                f"return_tensors='np': the rows of {key!r} have different lengths; pass "
                "padding=True (and truncation=True to bound them), or return_tensors=None"
            ) from None
    return out
