"""`Encoding`, what the tokenizer returns: transformers' dict plus `BatchEncoding`'s accessors."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .checks import is_int
from .postprocess import Row

T = TypeVar("T")


class LazyRows:
    """Row details (word ids, sequence ids, tokens) computed on first use by `build`
    (re-encoding the same strings with offsets); keeps plain calls as fast as possible."""

    def __init__(self, build: Callable[[], list[Row]]) -> None:
        self._build = build
        self._rows: list[Row] | None = None

    def _get(self) -> list[Row]:
        if self._rows is None:
            self._rows = self._build()
        return self._rows

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, i: int) -> Row:
        return self._get()[i]


def _detail(values: list[T] | None) -> list[T]:
    if values is None:  # LazyRows always builds rows with detail
        raise RuntimeError("row built without per-token detail")
    return list(values)


class Encoding(dict[str, Any]):
    """The result of `WordPieceTokenizer.__call__`: a plain dict with transformers' keys and
    values, plus `word_ids(i)`, `sequence_ids(i)` and `tokens(i)` like transformers'
    `BatchEncoding`. ``i`` indexes the rows of the output (after overflow), default 0.
    """

    def __init__(self, data: dict[str, Any], rows: Sequence[Row] | LazyRows) -> None:
        super().__init__(data)
        self._rows = rows

    def _row(self, batch_index: int) -> Row:
        n = len(self._rows)
        if not is_int(batch_index) or not -n <= operator.index(batch_index) < n:
            raise IndexError(f"batch_index {batch_index!r} out of range for {n} rows")
        return self._rows[operator.index(batch_index)]

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, the index of the word it belongs to in its sequence (None for
        special and padding tokens). A word is what the pre-tokenizer produced: a run of word
        characters, one punctuation character, one CJK ideograph or a special token."""
        return _detail(self._row(batch_index).words)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token: 0 for the first text, 1 for the pair, None for special/padding."""
        return _detail(self._row(batch_index).seq_ids)

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of a row."""
        return _detail(self._row(batch_index).tokens)
