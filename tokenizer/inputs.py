"""`__call__`'s inputs as transformers takes them, normalised to one shape.

One text, a text and its pair, a batch of texts (with a batch of pairs, or none), a batch of
``(text, pair)`` tuples, or with ``is_split_into_words=True`` the same made of word lists:
all become ``(texts, pairs)``, two tuples of equal length, a pair None where there is none,
every string checked (`encoder.check_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .encoder import check_text

# A text: a string, or (is_split_into_words=True) a tuple of words.
Text = str | tuple[str, ...]
# What `__call__` encodes: (texts, pairs).
Inputs = tuple[tuple[Text, ...], tuple[Text | None, ...]]


def normalize_inputs(text: Any, text_pair: Any, split_into_words: bool) -> tuple[Inputs, bool]:
    """((texts, pairs), batched): tuples of checked strings (pre-split words: tuples of
    strings), whether one text, a pair or a batch was given.

    Tuples of the strings, not the caller's lists: the Encoding may re-encode them later
    for word_ids(), and must see what was encoded now.
    """
    if split_into_words:
        return _word_inputs(text, text_pair)
    if not isinstance(text, (list, tuple)):
        check_text(text)
        if text_pair is not None:
            check_text(text_pair, "text_pair")
        # transformers treats an empty pair of a single text as no pair at all.
        return ((text,), (text_pair if text_pair else None,)), False
    if text_pair is None:
        return _batch_of_texts_or_pairs(text), True
    if not isinstance(text_pair, (list, tuple)):
        raise TypeError(
            f"when text is a batch, text_pair must be a list of str too, got {type(text_pair).__name__}"
        )
    if len(text_pair) != len(text):
        raise ValueError(f"batch length of text ({len(text)}) and text_pair ({len(text_pair)}) differ")
    texts = tuple(check_text(t, f"text[{i}]") for i, t in enumerate(text))
    return (texts, tuple(check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair))), True


def _batch_of_texts_or_pairs(batch: Sequence[Any]) -> Inputs:
    """A batch of texts, or of ``(text, pair)`` tuples (transformers takes both, mixed)."""
    texts: list[str] = []
    pairs: list[str | None] = []
    for i, item in enumerate(batch):
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise ValueError(f"text[{i}] must be a str or a (text, pair) tuple, got {len(item)} items")
            texts.append(check_text(item[0], f"text[{i}][0]"))
            pairs.append(check_text(item[1], f"text[{i}][1]"))
        else:
            texts.append(check_text(item, f"text[{i}]"))
            pairs.append(None)
    return tuple(texts), tuple(pairs)


def _words(value: Any, what: str) -> tuple[str, ...]:
    """One pre-split text: a list of words."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"with is_split_into_words=True, {what} must be a list of words (str), "
                        f"got {type(value).__name__}")  # fmt: skip
    return tuple(check_text(w, f"{what}[{j}]") for j, w in enumerate(value))


def _word_inputs(text: Any, text_pair: Any) -> tuple[Inputs, bool]:
    """is_split_into_words=True: a list of words, or a batch of such lists (as transformers
    tells them apart: by whether the first item is a list)."""
    batched = isinstance(text, (list, tuple)) and len(text) > 0 and isinstance(text[0], (list, tuple))
    if not batched:
        pair = None if text_pair is None else _words(text_pair, "text_pair")
        return ((_words(text, "text"),), (pair,)), False
    texts = tuple(_words(t, f"text[{i}]") for i, t in enumerate(text))
    if text_pair is None:
        return (texts, (None,) * len(texts)), True
    if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(texts):
        raise ValueError("with is_split_into_words=True and a batch, text_pair must be a list of as "
                         "many word lists as text")  # fmt: skip
    return (texts, tuple(_words(p, f"text_pair[{i}]") for i, p in enumerate(text_pair))), True
