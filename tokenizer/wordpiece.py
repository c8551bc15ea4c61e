"""The vocabulary and the WordPiece algorithm: greedy longest-match-first.

A word is cut into the longest vocabulary entry that starts it, then the longest entry
(with the continuation prefix ``##``) that starts the rest, and so on. If at some point no
entry matches, the *whole word* becomes ``[UNK]`` - BERT never emits half a word. Words longer
than ``max_input_chars_per_word`` characters are ``[UNK]`` without trying.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

CONTINUATION_PREFIX = "##"


def load_vocab_file(path: str | os.PathLike) -> dict[str, int]:
    """Read ``vocab.txt``: one token per line, its id is the line number (from 0).

    Errors name the file and line: a missing file, bytes that are not UTF-8, an empty line
    (the tokenizer could never produce it, so the file is broken), or a repeated token.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"vocabulary file not found: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"vocabulary path is a directory, not a file: {path}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_number = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line_number}: vocabulary is not valid UTF-8 ({exc.reason})"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    if not lines:
        raise ValueError(f"{path}: vocabulary file is empty")
    vocab: dict[str, int] = {}
    for number, line in enumerate(lines):
        token = line[:-1] if line.endswith("\r") else line
        if token == "":
            raise ValueError(f"{path}, line {number + 1}: empty token in vocabulary")
        if token in vocab:
            raise ValueError(
                f"{path}, line {number + 1}: token {token!r} repeats line {vocab[token] + 1}"
            )
        vocab[token] = number
    return vocab


def load_tokenizer_json(path: str | os.PathLike) -> dict:
    """Parse a ``tokenizer.json`` and check it describes a BERT WordPiece tokenizer."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"tokenizer file not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f", line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValueError(f"{path}{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be a tokenizer file") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "WordPiece":
        raise ValueError(f"{path}: 'model' is not a WordPiece model")
    if not isinstance(model.get("vocab"), dict) or not model["vocab"]:
        raise ValueError(f"{path}: 'model.vocab' is missing or empty")
    return data


def check_vocab(vocab: Mapping[str, int] | Iterable[str], source: str = "vocab") -> dict[str, int]:
    """A ``token -> id`` dict from a mapping or a list (ids = positions), checked for sanity."""
    if isinstance(vocab, Mapping):
        out = dict(vocab)
    elif isinstance(vocab, (str, bytes)):
        raise TypeError(f"{source}: expected a mapping or a list of tokens, got {type(vocab).__name__}")
    else:
        out = {}
        for i, tok in enumerate(vocab):
            if tok in out:
                raise ValueError(f"{source}: token {tok!r} at position {i} repeats position {out[tok]}")
            out[tok] = i
    for tok, idx in out.items():
        if not isinstance(tok, str) or tok == "":
            raise ValueError(f"{source}: tokens must be non-empty strings, got {tok!r}")
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ValueError(f"{source}: id of {tok!r} must be a non-negative int, got {idx!r}")
    if len(set(out.values())) != len(out):
        raise ValueError(f"{source}: two tokens share an id")
    return out


def wordpiece(
    word: str,
    vocab: Mapping[str, int],
    max_token_chars: int,
) -> list[tuple[int, int]] | None:
    """Split `word` greedily into vocabulary pieces; ``None`` if some part matches nothing.

    Returns ``(start, end)`` character spans of the pieces in `word`. The first piece is looked
    up as is, later ones with the ``##`` prefix. `max_token_chars` (the longest entry in the
    vocabulary) bounds the search.

    Cost, for a word of ``n`` characters and ``m = min(n, max_token_chars)``: each piece tries
    at most ``m`` candidate ends, and every try builds and hashes a string of up to ``m``
    characters, so a piece costs O(m**2) character operations and the word at most ``n`` such
    pieces: O(n * m**2) in all, at most ``1 + n * m`` dictionary lookups. The cost grows with
    the *square* of the longest vocabulary token, not linearly. The caller bounds ``n`` by
    ``max_input_chars_per_word`` (100 by default; longer words are ``[UNK]`` without trying),
    which also bounds ``m``: at most 100 * 100**2 = 10**6 character operations per distinct
    word (and words are cached).
    """
    n = len(word)
    if word in vocab:  # the common case: the whole word is a vocabulary entry
        return [(0, n)]
    spans = []
    start = 0
    while start < n:
        end = n if n - start < max_token_chars else start + max_token_chars
        prefix = CONTINUATION_PREFIX if start else ""
        while end > start and prefix + word[start:end] not in vocab:
            end -= 1
        if end == start:
            return None
        spans.append((start, end))
        start = end
    return spans
