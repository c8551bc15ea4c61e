"""`WordPieceTokenizer`: BERT's tokenizer, equal to transformers' `BertTokenizer` token for token.

The pipeline for one text:

1. reject what is not text (TypeError for non-str, ValueError for lone surrogates);
2. split out the special tokens written in the text (``"the[MASK]of"`` -> ``the [MASK] of``),
   matched on the raw text, case-sensitively, longest first;
3. basic tokenization of the pieces in between (`basic.Segmenter`): cleaning, CJK, accents,
   case, whitespace and punctuation splitting;
4. WordPiece on each word (`wordpiece.wordpiece`), through a bounded word -> pieces cache;
5. for `__call__`: truncation (with `stride` overflow windows), ``[CLS] A [SEP] (B [SEP])``,
   padding, and the dict transformers returns.

Offsets are character offsets into the original string; special tokens get ``(0, 0)``.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .basic import Segmenter
from .wordpiece import (
    CONTINUATION_PREFIX,
    check_vocab,
    load_tokenizer_json,
    load_vocab_file,
    wordpiece,
)

# transformers' stand-in for "no limit" (model_max_length when the config gives none).
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)

_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest",
            "max_length": "max_length"}  # fmt: skip
_TRUNCATION = {None: None, False: None, "do_not_truncate": None, True: "longest_first",
               "longest_first": "longest_first", "only_first": "only_first",
               "only_second": "only_second"}  # fmt: skip
_SPECIAL_ROLES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class Encoding(dict):
    """The result of `WordPieceTokenizer.__call__`: a plain dict with transformers' keys and
    values, plus `word_ids(i)`, `sequence_ids(i)` and `tokens(i)` like transformers'
    `BatchEncoding`. ``i`` indexes the rows of the output (after overflow), default 0.
    """

    def __init__(self, data: dict, rows: list[_Row] | _LazyRows) -> None:
        super().__init__(data)
        self._rows = rows

    def _row(self, batch_index: int) -> _Row:
        n = len(self._rows)
        if not _is_int(batch_index) or not -n <= operator.index(batch_index) < n:
            raise IndexError(f"batch_index {batch_index!r} out of range for {n} rows")
        return self._rows[operator.index(batch_index)]

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token, the index of the word it belongs to in its sequence (None for
        special and padding tokens). A word is what the pre-tokenizer produced: a run of word
        characters, one punctuation character, one CJK ideograph or a special token."""
        return list(self._row(batch_index).words)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token: 0 for the first text, 1 for the pair, None for special/padding."""
        return list(self._row(batch_index).seq_ids)

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of a row."""
        return list(self._row(batch_index).tokens)


class _Seq:
    """One encoded text before post-processing: ids, offsets and word ids of its tokens."""

    __slots__ = ("ids", "offsets", "words")

    def __init__(self, ids: list[int], offsets: list[tuple[int, int]], words: list[int]) -> None:
        self.ids, self.offsets, self.words = ids, offsets, words

    def window(self, lo: int, hi: int) -> _Seq:
        return _Seq(self.ids[lo:hi], self.offsets[lo:hi], self.words[lo:hi])


class _Row:
    """One output row (what the model sees), with per-token detail for the accessors."""

    __slots__ = (
        "attention",
        "ids",
        "offsets",
        "seq_ids",
        "special",
        "tokens",
        "type_ids",
        "words",
    )  # fmt: skip


class WordPieceTokenizer:
    """BERT's WordPiece tokenizer in pure Python.

    Build it with `from_pretrained(directory)` (``vocab.txt`` + ``tokenizer_config.json``, or
    ``tokenizer.json`` alone), `from_vocab_file(path, **options)` or directly from a vocabulary
    (``WordPieceTokenizer(vocab=["[PAD]", ...])`` or a ``{token: id}`` dict).

    Options (defaults in brackets; `from_pretrained` reads them from ``tokenizer_config.json``):

    * ``do_lower_case`` [False] - lower-case the text. transformers defaults to True; we never
      lower-case unless told, since the shipped model is cased.
    * ``strip_accents`` [None] - strip accents; None means "same as do_lower_case".
    * ``tokenize_chinese_chars`` [True] - make every CJK ideograph its own word.
    * ``clean_text`` [True] - drop control/format characters, NUL, U+FFFD; all whitespace is a
      space.
    * ``never_split`` [()] - a list of whitespace-delimited words kept whole (legacy
      semantics); a bare string is refused (transformers would read ``"ab"`` as two words).
    * ``max_input_chars_per_word`` [100] - longer words become ``[UNK]``.
    * ``unicode_normalization`` [None] - None reproduces transformers' default (Rust-backed)
      ``BertTokenizer``; ``"NFC"`` reproduces ``BertTokenizerLegacy``: NFC first, and Python's
      ``unicodedata`` for the character classes.
    * ``model_max_length`` [no limit], ``clean_up_tokenization_spaces`` [True], and the special
      tokens ``unk_token`` ``sep_token`` ``pad_token`` ``cls_token`` ``mask_token``.
    * ``word_cache_size`` [65536] - how many distinct words the word -> pieces cache holds.
    * ``max_overflow_tokens`` [4,194,304] - the most tokens the rows of one input may hold with
      ``return_overflowing_tokens`` (a pair truncated on both sides gives windows x windows
      rows); beyond it `__call__` raises ValueError instead of filling the memory.

    Integer options (and ``max_length``, ``stride``, token ids) accept Python and numpy
    integers, never bools. A shared tokenizer may be used from several threads at once.
    """

    def __init__(
        self,
        vocab: Mapping[str, int] | Iterable[str],
        *,
        do_lower_case: bool = False,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        clean_text: bool = True,
        never_split: Iterable[str] | None = None,
        max_input_chars_per_word: int = 100,
        unicode_normalization: str | None = None,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int | None = None,
        clean_up_tokenization_spaces: bool | None = True,
        word_cache_size: int = 65536,
        max_overflow_tokens: int = 1 << 22,
    ) -> None:
        self.vocab: dict[str, int] = check_vocab(vocab)
        self.ids_to_tokens: dict[int, str] = {i: t for t, i in self.vocab.items()}
        if unicode_normalization not in (None, "NFC"):
            raise ValueError(
                f"unicode_normalization must be None or 'NFC', got {unicode_normalization!r}"
            )
        for name, value in (("do_lower_case", do_lower_case), ("tokenize_chinese_chars",
                            tokenize_chinese_chars), ("clean_text", clean_text),
                            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces)):  # fmt: skip
            if not (name == "clean_up_tokenization_spaces" and value is None):
                _check_bool(name, value)
        if strip_accents is not None:
            _check_bool("strip_accents", strip_accents, "None or a bool")
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.clean_text = clean_text
        self.never_split = _check_never_split(never_split)
        self.max_input_chars_per_word = _check_index("max_input_chars_per_word", max_input_chars_per_word, 1)
        self.unicode_normalization = unicode_normalization
        self.model_max_length = _check_model_max_length(model_max_length)
        # None: the default (on), as when tokenizer_config.json does not say.
        self.clean_up_tokenization_spaces = (
            True if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        )
        self.max_overflow_tokens = _check_index("max_overflow_tokens", max_overflow_tokens, 1)
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        for role in _SPECIAL_ROLES:
            token = getattr(self, role)
            if not isinstance(token, str):
                raise TypeError(f"{role} must be a str, got {type(token).__name__}")
            if token not in self.vocab:
                raise ValueError(f"{role} {token!r} is not in the vocabulary")
        self._max_token_chars = max(len(t) for t in self.vocab)
        self._cache: dict[str, tuple] = {}
        # At least 16 words, so that eviction (the older half) is never a per-word cost.
        self._cache_size = max(16, _check_index("word_cache_size", word_cache_size, 1))

        nfc = unicode_normalization == "NFC"
        # strip_accents=None follows lower-casing, as in google-research/bert.
        strip = do_lower_case if strip_accents is None else strip_accents
        self._segmenter = Segmenter(
            flavour="python" if nfc else "rust",
            clean_text=clean_text,
            tokenize_chinese_chars=tokenize_chinese_chars,
            lowercase=do_lower_case,
            strip_accents=strip,
            nfc=nfc,
        )
        self._nfc = nfc
        # Words need no per-character work unless they are lower-cased or accent-stripped.
        self._plain_words = not (do_lower_case or strip)
        self._word_re = self._segmenter.word_re
        # Special tokens in the text are matched first, on the raw text, longest first.
        specials = sorted({getattr(self, r) for r in _SPECIAL_ROLES}, key=len, reverse=True)
        alternatives = [re.escape(t) for t in specials]
        if self.never_split:
            # never_split entries only count as whole whitespace-delimited chunks.
            words = sorted(set(self.never_split), key=len, reverse=True)
            alternatives.append(r"(?<!\S)(?:" + "|".join(map(re.escape, words)) + r")(?!\S)")
        self._special_re = re.compile("|".join(alternatives))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> WordPieceTokenizer:
        """Load from a model directory: ``vocab.txt`` (+ ``tokenizer_config.json`` and
        ``special_tokens_map.json`` when present), or ``tokenizer.json`` alone.
        Keyword arguments override what the files say."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"tokenizer path not found: {path}")
        if path.is_file():
            if path.suffix == ".json":
                return cls._from_tokenizer_json(path, overrides)
            return cls.from_vocab_file(path, **overrides)
        config_path = path / "tokenizer_config.json"
        config = _read_json_config(config_path)
        for role, value in _read_json_config(path / "special_tokens_map.json").items():
            config.setdefault(role, value)
        # What the caller overrides is not read from the file (nor checked there).
        config = {k: v for k, v in config.items() if k not in overrides}
        options = {**_options_from_config(config, config_path), **overrides}
        if (path / "vocab.txt").is_file():
            return cls(load_vocab_file(path / "vocab.txt"), **options)
        if (path / "tokenizer.json").is_file():
            return cls._from_tokenizer_json(path / "tokenizer.json", options)
        raise FileNotFoundError(f"{path}: neither vocab.txt nor tokenizer.json found")

    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike, **options: Any) -> WordPieceTokenizer:
        """A tokenizer on ``vocab.txt`` at `path` with the given options."""
        return cls(load_vocab_file(path), **options)

    @classmethod
    def _from_tokenizer_json(cls, path: Path, overrides: dict) -> WordPieceTokenizer:
        data = load_tokenizer_json(path)
        try:
            options = _options_from_tokenizer_json(data, path)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: malformed tokenizer.json ({type(exc).__name__}: {exc})") from None
        options.update(overrides)
        return cls(data["model"]["vocab"], **options)

    # ------------------------------------------------------------------ special tokens

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    @property
    def unk_token_id(self) -> int:
        return self.vocab[self.unk_token]

    @property
    def sep_token_id(self) -> int:
        return self.vocab[self.sep_token]

    @property
    def pad_token_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        return self.vocab[self.cls_token]

    @property
    def mask_token_id(self) -> int:
        return self.vocab[self.mask_token]

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {role: getattr(self, role) for role in _SPECIAL_ROLES}

    @property
    def all_special_tokens(self) -> list[str]:
        """The special tokens, in transformers' order (unk, sep, pad, cls, mask)."""
        return list(dict.fromkeys(getattr(self, role) for role in _SPECIAL_ROLES))

    @property
    def all_special_ids(self) -> list[int]:
        return [self.vocab[t] for t in self.all_special_tokens]

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    def __repr__(self) -> str:
        return (
            f"WordPieceTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self.strip_accents}, unicode_normalization={self.unicode_normalization!r}, "
            f"model_max_length={self.model_max_length})"
        )

    # ------------------------------------------------------------------ conversions

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Token(s) to id(s); unknown tokens map to the ``[UNK]`` id, as in transformers."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self.vocab.get(tokens, unk)
        out = []
        for t in tokens:
            if not isinstance(t, str):
                raise TypeError(f"tokens must be str, got {type(t).__name__}")
            out.append(self.vocab.get(t, unk))
        return out

    def convert_ids_to_tokens(
        self, ids: int | Sequence[int], skip_special_tokens: bool = False
    ) -> str | list[str]:
        """Id(s) to token(s). An id outside the vocabulary is a ValueError (transformers
        returns None for it)."""
        if _is_int(ids):
            return self._id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(i) for i in ids if not (_is_int(i) and i in special)]

    def _id_to_token(self, i: Any) -> str:
        if not _is_int(i):
            raise TypeError(f"token ids must be int, got {type(i).__name__}")
        try:
            return self.ids_to_tokens[operator.index(i)]
        except KeyError:
            raise ValueError(f"token id {i} is not in the vocabulary (size {self.vocab_size})") from None

    # ------------------------------------------------------------------ tokenization core

    def _check_text(self, text: Any, what: str = "text") -> str:
        if not isinstance(text, str):
            hint = " (decode bytes to str first)" if isinstance(text, (bytes, bytearray)) else ""
            raise TypeError(f"{what} must be str, got {type(text).__name__}{hint}")
        if not text.isascii():
            m = _SURROGATE_RE.search(text)
            if m:
                raise ValueError(
                    f"{what} is not valid Unicode: lone surrogate U+{ord(m.group()):04X} at index "
                    f"{m.start()} (decode the source with errors='replace' or fix it)"
                )
        return text

    def _word_entry(self, word: str) -> tuple:
        """(ids, spans, sub-word index per piece, number of sub-words) for one raw word.

        Cached: natural text repeats words, and WordPiece is the expensive part. The cache is
        bounded: when full, the older half is dropped.
        """
        seg = self._segmenter
        vocab, unk = self.vocab, self.vocab[self.unk_token]
        if self._plain_words and (seg.removed_re is None or not seg.removed_re.search(word)):
            # Default options: the word is already normalized, one sub-word, offsets 1:1.
            n = len(word)
            pieces = None
            if n <= self.max_input_chars_per_word:
                pieces = wordpiece(word, vocab, self._max_token_chars)
            if pieces is None:
                entry: tuple = ((unk,), ((0, n),), (0,), 1)
            else:
                ids_ = [vocab[word[a:b]] if a == 0 else vocab[CONTINUATION_PREFIX + word[a:b]]
                        for a, b in pieces]  # fmt: skip
                entry = (tuple(ids_), tuple(pieces), (0,) * len(pieces), 1)
            return self._remember(word, entry)
        chars, origin = seg.normalize_word(word)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        subs: list[int] = []
        ranges = seg.split_normalized(chars)
        for k, (lo, hi) in enumerate(ranges):
            sub = "".join(chars[lo:hi])
            pieces = None
            if hi - lo <= self.max_input_chars_per_word:
                pieces = wordpiece(sub, vocab, self._max_token_chars)
            if pieces is None:  # too long, or some part matches nothing: the whole word is UNK
                ids.append(unk)
                spans.append((origin[lo], origin[hi - 1] + 1))
            else:
                for a, b in pieces:
                    piece = sub[a:b] if a == 0 else CONTINUATION_PREFIX + sub[a:b]
                    ids.append(vocab[piece])
                    spans.append((origin[lo + a], origin[lo + b - 1] + 1))
            subs.extend([k] * (len(ids) - len(subs)))
        return self._remember(word, (tuple(ids), tuple(spans), tuple(subs), len(ranges)))

    def _remember(self, word: str, entry: tuple) -> tuple:
        cache = self._cache
        if len(cache) >= self._cache_size:
            _evict_older_half(cache)
        cache[word] = entry
        return entry

    def _chunks(self, text: str):
        """(chunk, start, special_id or None): the text cut at special tokens."""
        pos = 0
        for m in self._special_re.finditer(text):
            if m.start() > pos:
                yield text[pos : m.start()], pos, None
            yield m.group(), m.start(), self.vocab.get(m.group(), self.unk_token_id)
            pos = m.end()
        if pos < len(text):
            yield text[pos:], pos, None

    def _ids(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens added): the fast path, without offsets."""
        ids: list[int] = []
        cache, entry_of, word_re = self._cache, self._word_entry, self._word_re
        if self._special_re.search(text) is None:
            chunks: Iterable = ((text, 0, None),)
        else:
            chunks = self._chunks(text)
        for chunk, _, special in chunks:
            if special is not None:
                ids.append(special)
                continue
            if self._nfc:
                chunk = self._segmenter.prepare_text(chunk)
            for word in word_re.findall(chunk):
                entry = cache.get(word)
                if entry is None:
                    entry = entry_of(word)
                ids.extend(entry[0])
        return ids

    def _seq(self, text: str) -> _Seq:
        """Ids, character offsets into `text` and word ids of its tokens."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        words: list[int] = []
        n_words = 0
        cache, entry_of = self._cache, self._word_entry
        for chunk, base, special in self._chunks(text):
            if special is not None:
                ids.append(special)
                offsets.append((base, base + len(chunk)))
                words.append(n_words)
                n_words += 1
                continue
            starts = ends = None
            if self._nfc:
                chunk, starts, ends = self._segmenter.prepare_text_with_map(chunk)
            for m in self._word_re.finditer(chunk):
                word = m.group()
                entry = cache.get(word)
                if entry is None:
                    entry = entry_of(word)
                ids.extend(entry[0])
                w0 = m.start()
                if starts is None:
                    at = base + w0
                    offsets.extend([(at + a, at + b) for a, b in entry[1]])
                else:
                    offsets.extend(
                        [(base + starts[w0 + a], base + ends[w0 + b - 1]) for a, b in entry[1]]
                    )
                words.extend([n_words + k for k in entry[2]])
                n_words += entry[3]
        return _Seq(ids, offsets, words)

    # ------------------------------------------------------------------ public API

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """The token strings of `text` (and `pair`), without special tokens unless asked."""
        ids = self.encode(text, pair, add_special_tokens=add_special_tokens)
        return [self.ids_to_tokens[i] for i in ids]

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
    ) -> list[int]:
        """Token ids of one text (or pair), like transformers' ``encode`` (no overflow)."""
        self._check_text(text)
        if text_pair is not None:
            self._check_text(text_pair, "text_pair")
        if truncation in (None, False) and max_length is None:
            ids = self._ids(text)
            if not add_special_tokens:
                return ids + (self._ids(text_pair) if text_pair else [])
            cls, sep = self.cls_token_id, self.sep_token_id
            if text_pair:
                return [cls, *ids, sep, *self._ids(text_pair), sep]
            return [cls, *ids, sep]
        out = self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                   max_length=max_length, stride=stride, return_token_type_ids=False,
                   return_attention_mask=False)  # fmt: skip
        return out["input_ids"]

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
    ) -> Encoding:
        """Encode a text, a pair, or a batch (a list of texts, `text_pair` a list too).

        Returns transformers' dict: ``input_ids``, ``token_type_ids`` and ``attention_mask``
        (unless ``return_token_type_ids`` / ``return_attention_mask`` is False), plus
        ``special_tokens_mask``, ``offset_mapping``, ``length`` and
        ``overflow_to_sample_mapping`` when asked. A single text gives flat lists unless
        overflowing tokens are returned. `padding`: False, True/"longest", "max_length";
        `truncation`: False, True/"longest_first", "only_first", "only_second"; with
        ``return_overflowing_tokens`` the truncated tokens come back as extra rows, each
        window overlapping the previous one by `stride` tokens.
        """
        batched = isinstance(text, (list, tuple))
        if batched:
            texts = [self._check_text(t, f"text[{i}]") for i, t in enumerate(text)]
            if text_pair is None:
                pairs: list[str | None] = [None] * len(texts)
            elif isinstance(text_pair, (list, tuple)):
                if len(text_pair) != len(texts):
                    raise ValueError(
                        f"batch length of text ({len(texts)}) and text_pair ({len(text_pair)}) differ"
                    )
                pairs = [self._check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair)]
            else:
                raise TypeError(
                    "when text is a batch, text_pair must be a list of str too, "
                    f"got {type(text_pair).__name__}"
                )
        else:
            texts = [self._check_text(text)]
            if text_pair is not None:
                self._check_text(text_pair, "text_pair")
            # transformers treats an empty pair of a single text as no pair at all.
            pairs = [text_pair if text_pair else None]

        pad_strategy, trunc_strategy, max_length = self._strategies(padding, truncation, max_length)
        stride = _check_index("stride", stride, 0)
        if trunc_strategy is not None and max_length >= 2 and stride >= max_length - 1:
            raise ValueError(
                f"stride ({stride}) must be smaller than max_length ({max_length}) minus the "
                f"special tokens of a single text (2), i.e. at most {max_length - 2}"
            )

        detail = return_offsets_mapping
        # The plain strings (immutable), not the caller's list: the Encoding may re-encode them
        # later for word_ids(), and must see what was encoded now.
        plan = (tuple(texts), tuple(pairs), add_special_tokens, pad_strategy, trunc_strategy,
                max_length, stride, return_overflowing_tokens)  # fmt: skip
        groups = self._encode_groups(*plan, detail=detail)
        rows = [row for g in groups for row in g]
        if return_token_type_ids is None:
            return_token_type_ids = True
        if return_attention_mask is None:
            return_attention_mask = True
        data: dict[str, list] = {"input_ids": [r.ids for r in rows]}
        if return_token_type_ids:
            data["token_type_ids"] = [r.type_ids for r in rows]
        if return_attention_mask:
            data["attention_mask"] = [r.attention for r in rows]
        if return_special_tokens_mask:
            data["special_tokens_mask"] = [r.special for r in rows]
        if return_offsets_mapping:
            data["offset_mapping"] = [r.offsets for r in rows]
        if return_length:
            data["length"] = [len(r.ids) for r in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = [i for i, g in enumerate(groups) for _ in g]
        elif not batched:
            # transformers removes the batch level of the per-token lists only ("length" stays).
            data = {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
        if not detail:
            rows = _LazyRows(self, plan)
        return Encoding(data, rows)

    def _encode_groups(
        self, texts: Sequence[str], pairs: Sequence[str | None], add_special_tokens: bool,
        pad_strategy: str | None, trunc_strategy: str | None, max_length: int | None,
        stride: int, overflow: bool, *, detail: bool,
    ) -> list[list[_Row]]:
        """The output rows of each input (main row first, then its overflow), padded."""
        groups: list[list[_Row]] = []
        for index, (t, p) in enumerate(zip(texts, pairs, strict=True)):
            a = self._seq(t) if detail else _Seq(self._ids(t), [], [])
            b = None
            if p is not None:
                b = self._seq(p) if detail else _Seq(self._ids(p), [], [])
            combos = self._truncate(a, b, trunc_strategy, max_length, stride, add_special_tokens,
                                    overflow, index)  # fmt: skip
            groups.append([self._post_process(x, y, add_special_tokens, detail) for x, y in combos])
        if pad_strategy is not None:
            # Every row gets the same length. transformers pads to the longest *main* row (or
            # max_length) and leaves longer rows ragged; rows can only be longer when
            # max_length leaves no room for the text (it is at most the number of special
            # tokens), and there we pad to the longest row instead of returning ragged lists.
            longest = max(len(row.ids) for g in groups for row in g)
            target = max(max_length, longest) if pad_strategy == "max_length" else longest
            for g in groups:
                for row in g:
                    self._pad(row, target)
        return groups

    # ------------------------------------------------------------------ truncation & co

    def _strategies(self, padding: Any, truncation: Any, max_length: int | None):
        """transformers' rules for combining `padding`, `truncation` and `max_length`."""
        if max_length is not None:
            max_length = _check_index("max_length", max_length, 0)
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # transformers: max_length alone means truncate
        try:
            pad = _PADDING[padding]
        except (KeyError, TypeError):
            raise ValueError(
                f"padding must be False, True, 'longest' or 'max_length', got {padding!r}"
            ) from None
        try:
            trunc = _TRUNCATION[truncation]
        except (KeyError, TypeError):
            raise ValueError(
                "truncation must be False, True, 'longest_first', 'only_first' or 'only_second', "
                f"got {truncation!r}"
            ) from None
        if max_length is None:
            unlimited = self.model_max_length > LARGE_INTEGER
            if pad == "max_length":
                if unlimited:
                    pad = None
                else:
                    max_length = self.model_max_length
            if trunc is not None:
                if unlimited:
                    trunc = None
                else:
                    max_length = self.model_max_length
        return pad, trunc, max_length

    def _kept_lengths(
        self, a: _Seq, b: _Seq | None, strategy: str | None, max_length: int | None,
        add_special_tokens: bool,
    ) -> tuple[int | None, int | None]:
        """How many tokens of the text and of the pair the main row keeps (None: all of them).

        Mirrors `tokenizers`: the budget is max_length minus the special tokens; if that is
        negative nothing is truncated, if it is 0 both sequences are cut to nothing.
        """
        if strategy is None:
            return None, None
        n_added = (3 if b is not None else 2) if add_special_tokens else 0
        budget = max_length - n_added
        if budget < 0:
            return None, None
        if budget == 0:
            return 0, (0 if b is not None else None)
        a_len, b_len = len(a.ids), len(b.ids) if b is not None else 0
        if a_len + b_len <= budget:
            return None, None
        if strategy == "longest_first":
            return (budget, None) if b is None else _longest_first(a_len, b_len, budget)
        if strategy == "only_second" and b is None:
            raise ValueError("truncation='only_second' needs a text_pair")
        target_len = a_len if strategy == "only_first" else b_len
        to_remove = a_len + b_len - budget
        if target_len <= to_remove:
            raise ValueError(
                f"truncation={strategy!r} cannot fit max_length={max_length}: the sequence to "
                f"truncate has {target_len} tokens but {to_remove} must go"
            )
        keep = target_len - to_remove
        return (keep, None) if strategy == "only_first" else (None, keep)

    def _truncate(
        self, a: _Seq, b: _Seq | None, strategy: str | None, max_length: int | None,
        stride: int, add_special_tokens: bool, overflow: bool, index: int,
    ) -> list[tuple[_Seq, _Seq | None]]:
        """The (first, pair) combinations of the output rows, main one first.

        Mirrors `tokenizers`: each truncated sequence becomes windows (the first is kept, the
        rest overflow); rows are then: (A0, B0), every A overflow with every B window, and
        finally A0 with every B overflow - ``windows(A) * windows(B)`` rows, which is why the
        count is checked against `max_overflow_tokens` before any row is built. Without
        `overflow` only the main row is built.
        """
        keep_a, keep_b = self._kept_lengths(a, b, strategy, max_length, add_special_tokens)
        if not overflow:
            return [(_first_window(a, keep_a, stride), _first_window(b, keep_b, stride))]
        n_a = _window_count(len(a.ids), keep_a, stride)
        n_b = _window_count(len(b.ids), keep_b, stride) if b is not None else 1
        if n_a * n_b > 1:
            # The longest row: kept lengths, or whole sequences when the budget is 0 (their
            # overflow "window" is the whole sequence).
            row_len = _longest_window(a, keep_a) + _longest_window(b, keep_b) + (
                (3 if b is not None else 2) if add_special_tokens else 0
            )
            self._check_overflow_size(index, n_a, n_b, row_len, strategy, max_length, stride)
        a_wins = _windows(a, keep_a, stride)
        b_wins = [None] if b is None else _windows(b, keep_b, stride)
        combos = [(a_wins[0], b_wins[0])]
        combos += [(x, y) for x in a_wins[1:] for y in b_wins]
        combos += [(a_wins[0], y) for y in b_wins[1:]]
        return combos

    def _check_overflow_size(
        self, index: int, n_a: int, n_b: int, row_len: int, strategy: str | None,
        max_length: int | None, stride: int,
    ) -> None:
        """Refuse an overflow that would build more than `max_overflow_tokens` tokens for one
        input: a pair truncated on both sides gives ``n_a * n_b`` rows (2,000 tokens each with
        max_length=5 would be 4,000,000 rows)."""
        rows = n_a * n_b
        if rows * row_len <= self.max_overflow_tokens:
            return
        pair = f" x {n_b:,} windows of the pair" if n_b > 1 else ""
        raise ValueError(
            f"input {index}: return_overflowing_tokens with truncation={strategy!r}, "
            f"max_length={max_length}, stride={stride} would build {rows:,} rows ({n_a:,} windows "
            f"of the text{pair}, as transformers does), about {rows * row_len:,} tokens, over "
            f"the limit of {self.max_overflow_tokens:,} (max_overflow_tokens). Use "
            "truncation='only_first' or 'only_second', a larger max_length or a smaller stride."
        )

    def _post_process(self, a: _Seq, b: _Seq | None, add_special_tokens: bool, detail: bool) -> _Row:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` with type ids, masks and offsets."""
        row = _Row()
        cls, sep = self.cls_token_id, self.sep_token_id
        na, nb = len(a.ids), (len(b.ids) if b is not None else 0)
        if add_special_tokens:
            ids = [cls, *a.ids, sep]
            type_ids = [0] * (na + 2)
            special = [1, *([0] * na), 1]
            if b is not None:
                ids += [*b.ids, sep]
                type_ids += [1] * (nb + 1)
                special += [*([0] * nb), 1]
        else:
            ids = a.ids + (b.ids if b is not None else [])
            type_ids = [0] * na + [1] * nb
            special = [0] * (na + nb)
        row.ids, row.type_ids, row.special = ids, type_ids, special
        row.attention = [1] * len(ids)
        if detail:
            z: list = [(0, 0)] if add_special_tokens else []
            none: list = [None] if add_special_tokens else []
            row.offsets = z + a.offsets + z
            row.words = none + a.words + none
            row.seq_ids = none + [0] * na + none
            if b is not None:
                row.offsets += b.offsets + z
                row.words += b.words + none
                row.seq_ids += [1] * nb + none
            row.tokens = [self.ids_to_tokens[i] for i in ids]
        return row

    def _pad(self, row: _Row, target: int) -> None:
        k = target - len(row.ids)
        if k <= 0:
            return
        row.ids = row.ids + [self.pad_token_id] * k
        row.type_ids = row.type_ids + [0] * k
        row.attention = row.attention + [0] * k
        row.special = row.special + [1] * k
        if hasattr(row, "offsets"):
            row.offsets = row.offsets + [(0, 0)] * k
            row.words = row.words + [None] * k
            row.seq_ids = row.seq_ids + [None] * k
            row.tokens = row.tokens + [self.pad_token] * k

    # ------------------------------------------------------------------ decoding

    def decode(
        self,
        ids: int | Sequence[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Ids back to text, as transformers does.

        WordPiece decoding: ``##`` pieces are glued to the previous token, other tokens get a
        space before them, and each token goes through the decoder's clean-up (``" ."`` ->
        ``"."`` ...). Then, if `clean_up_tokenization_spaces` (default: the tokenizer's setting,
        from ``tokenizer_config.json`` when it says, else True) the same clean-up runs on the
        whole string, which also joins ``"I ' m"`` into ``"I'm"``.
        """
        if _is_int(ids):
            ids = [ids]
        if isinstance(ids, Mapping) and "input_ids" in ids:
            ids = ids["input_ids"]
        tokens = self.convert_ids_to_tokens(list(ids), skip_special_tokens=skip_special_tokens)
        parts = []
        for i, tok in enumerate(tokens):
            if i:
                tok = tok[len(CONTINUATION_PREFIX):] if tok.startswith(CONTINUATION_PREFIX) else " " + tok
            parts.append(_decoder_cleanup(tok))
        text = "".join(parts)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            text = clean_up_tokenization(text)
        return text

    def batch_decode(self, sequences: Iterable[Sequence[int]], **kwargs: Any) -> list[str]:
        return [self.decode(s, **kwargs) for s in sequences]


class _LazyRows:
    """Row details (word ids, sequence ids, tokens) computed on first use, by re-encoding the
    same strings with offsets; keeps plain calls as fast as possible."""

    def __init__(self, tok: WordPieceTokenizer, plan: tuple) -> None:
        self._tok, self._plan = tok, plan
        self._rows: list[_Row] | None = None

    def _get(self) -> list[_Row]:
        if self._rows is None:
            groups = self._tok._encode_groups(*self._plan, detail=True)
            self._rows = [row for g in groups for row in g]
        return self._rows

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, i: int) -> _Row:
        return self._get()[i]


def _evict_older_half(cache: dict) -> None:
    """Drop the older half of the word cache (dicts keep insertion order).

    One tokenizer may be shared by threads that fill and evict the same cache at once, and no
    lock guards it (the hot path stays lock-free): a key another thread already evicted is
    skipped, and if the dict changes size while its keys are listed this eviction is skipped
    too - the next insertion tries again. Entries are pure functions of their word, so which
    ones survive never changes a result, only the speed.
    """
    try:
        old = list(itertools.islice(cache, len(cache) // 2))
    except RuntimeError:  # "dictionary changed size during iteration", from another thread
        return
    for key in old:
        cache.pop(key, None)


def _check_stride(n: int, stride: int) -> None:
    if stride >= n:
        raise ValueError(
            f"stride ({stride}) must be smaller than the tokens left for the text after "
            f"truncation and special tokens ({n})"
        )


def _first_window(seq: _Seq | None, n: int | None, stride: int) -> _Seq | None:
    """`seq` cut to its first `n` tokens (None: uncut), i.e. ``_windows(seq, n, stride)[0]``."""
    if seq is None or n is None or n >= len(seq.ids):
        return seq
    if n > 0:
        _check_stride(n, stride)  # tokenizers refuses it even when the overflow is not returned
    return seq.window(0, n)


def _longest_window(seq: _Seq | None, n: int | None) -> int:
    """The length of the longest of `_windows(seq, n, ...)` (0 for no sequence)."""
    if seq is None:
        return 0
    length = len(seq.ids)
    return length if n is None or n == 0 else min(n, length)


def _window_count(length: int, n: int | None, stride: int) -> int:
    """``len(_windows(seq, n, stride))`` for a sequence of `length` tokens, without building them."""
    if n is None or n >= length:
        return 1
    if n == 0:
        return 2
    _check_stride(n, stride)
    return 1 + -(-(length - n) // (n - stride))


def _windows(seq: _Seq, n: int | None, stride: int) -> list[_Seq]:
    """`seq` cut to its first `n` tokens, followed by the overflow windows: each of at most
    `n` tokens, starting `n - stride` tokens after the previous one."""
    length = len(seq.ids)
    if n is None or n >= length:
        return [seq]
    if n == 0:
        return [seq.window(0, 0), seq]
    _check_stride(n, stride)
    out, start = [], 0
    while True:
        stop = min(start + n, length)
        out.append(seq.window(start, stop))
        if stop == length:
            return out
        start += n - stride


def _longest_first(n1: int, n2: int, budget: int) -> tuple[int, int]:
    """Lengths to keep of two sequences: cut the longer one first, then both evenly."""
    swap = n1 > n2
    if swap:
        n1, n2 = n2, n1
    n2 = n1 if n1 > budget else max(n1, budget - n1)
    if n1 + n2 > budget:
        n1 = budget // 2
        n2 = n1 + budget % 2
    return (n2, n1) if swap else (n1, n2)


def _decoder_cleanup(s: str) -> str:
    """The WordPiece decoder's per-token clean-up (tokenizers' ``cleanup=True``)."""
    return (
        s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
        .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m")
        .replace(" do not", " don't").replace(" 's", "'s").replace(" 've", "'ve")
        .replace(" 're", "'re")
    )  # fmt: skip


def clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization``: remove spaces before punctuation and
    inside English contractions."""
    return (
        text.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
        .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
        .replace(" 've", "'ve").replace(" 're", "'re")
    )  # fmt: skip


def _is_int(x: Any) -> bool:
    """A Python or numpy integer (anything with ``__index__``), but not a bool."""
    if isinstance(x, bool) or type(x).__name__ in ("bool", "bool_"):
        return False
    try:
        operator.index(x)
    except TypeError:
        return False
    return True


def _check_index(name: str, value: Any, minimum: int, where: str = "") -> int:
    """`value` as a Python int >= `minimum`; Python and numpy integers only (no bool, float, str)."""
    if not _is_int(value) or operator.index(value) < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{where}{name} must be {what}, got {value!r}")
    return operator.index(value)


def _check_bool(name: str, value: Any, what: str = "a bool", where: str = "") -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{where}{name} must be {what}, got {type(value).__name__} {value!r}")


def _check_model_max_length(value: Any, where: str = "") -> int:
    """None (no limit) or a non-negative integer. A float is accepted when it is a whole number
    (configs written by other tools say ``1e+30``); infinity means no limit. A negative value
    would silently turn truncation off, so it is refused, as are NaN, strings and bools."""
    if value is None:
        return VERY_LARGE_INTEGER
    if isinstance(value, float) and value == math.inf:
        return VERY_LARGE_INTEGER
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if _is_int(value) and operator.index(value) >= 0:
        return operator.index(value)
    raise ValueError(f"{where}model_max_length must be a non-negative int or None, got {value!r}")


def _check_never_split(value: Any, where: str = "") -> tuple[str, ...]:
    """A list of words, each non-empty and without whitespace (they are matched as whole
    whitespace-delimited chunks). A bare string is refused: transformers' legacy tokenizer
    would take ``"ab"`` as the two words ``a`` and ``b``, which is never what was meant."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{where}never_split must be a list of words, got the {type(value).__name__} {value!r} "
            f"(write [{value!r}] for one word)"
        )
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{where}never_split must be a list of words, got {type(value).__name__}")
    words = tuple(value)
    for word in words:
        if not isinstance(word, str):
            raise TypeError(f"{where}never_split entries must be str, got {type(word).__name__} {word!r}")
        if word == "" or any(ch.isspace() for ch in word):
            raise ValueError(
                f"{where}never_split entries must be non-empty words without whitespace, got {word!r}"
            )
    return words


def _options_from_tokenizer_json(data: dict, path: Path) -> dict[str, Any]:
    """The constructor options a ``tokenizer.json`` implies (model, normalizer, specials)."""
    model = data["model"]
    if model.get("continuing_subword_prefix", CONTINUATION_PREFIX) != CONTINUATION_PREFIX:
        raise ValueError(f"{path}: only the '##' continuation prefix is supported")
    options: dict[str, Any] = {
        "unk_token": model.get("unk_token", "[UNK]"),
        "max_input_chars_per_word": model.get("max_input_chars_per_word", 100),
    }
    norm = data.get("normalizer")
    if norm is not None:
        if norm.get("type") != "BertNormalizer":
            raise ValueError(f"{path}: normalizer {norm.get('type')!r} is not BertNormalizer")
        options.update(
            clean_text=bool(norm.get("clean_text", True)),
            tokenize_chinese_chars=bool(norm.get("handle_chinese_chars", True)),
            strip_accents=norm.get("strip_accents"),
            do_lower_case=bool(norm.get("lowercase", False)),
        )
    post = data.get("post_processor") or {}
    if post.get("type") == "BertProcessing":
        options["sep_token"], options["cls_token"] = post["sep"][0], post["cls"][0]
    elif post.get("type") == "TemplateProcessing":
        single = [p["SpecialToken"]["id"] for p in post.get("single", []) if "SpecialToken" in p]
        if len(single) == 2:
            options["cls_token"], options["sep_token"] = single
    padding = data.get("padding") or {}
    if padding.get("pad_token"):
        options["pad_token"] = padding["pad_token"]
    added = {t["content"] for t in data.get("added_tokens", []) if t.get("special")}
    if "[MASK]" not in added and len(added) == 5:
        rest = added - {options.get(r) for r in ("unk_token", "sep_token", "cls_token")}
        rest.discard(options.get("pad_token", "[PAD]"))
        if len(rest) == 1:
            options["mask_token"] = rest.pop()
    return options


def _read_json_config(path: Path) -> dict:
    """A JSON object from `path` ({} when the file is absent); errors name the file."""
    if not path.is_file():
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be a tokenizer configuration") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _options_from_config(config: dict, source: str | os.PathLike) -> dict[str, Any]:
    """The constructor options a ``tokenizer_config.json`` sets, checked: a bad value is an
    error naming the file and the field (the same rules as the constructor's)."""
    where = f"{source}: "
    keys = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "clean_text",
            "never_split", "max_input_chars_per_word", "unicode_normalization",
            "model_max_length", "clean_up_tokenization_spaces")  # fmt: skip
    options = {k: config[k] for k in keys if k in config and config[k] is not None}
    try:
        for name in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "clean_text",
                     "clean_up_tokenization_spaces"):  # fmt: skip
            if name in options:
                _check_bool(name, options[name], where=where)
        if "never_split" in options:
            options["never_split"] = _check_never_split(options["never_split"], where)
    except TypeError as exc:  # a wrong type in a file is bad file content: ValueError
        raise ValueError(str(exc)) from None
    if "max_input_chars_per_word" in options:
        _check_index("max_input_chars_per_word", options["max_input_chars_per_word"], 1, where)
    if "model_max_length" in options:
        options["model_max_length"] = _check_model_max_length(options["model_max_length"], where)
    if options.get("unicode_normalization", "NFC") != "NFC":
        raise ValueError(f"{where}unicode_normalization must be null or 'NFC', "
                         f"got {options['unicode_normalization']!r}")  # fmt: skip
    for role in _SPECIAL_ROLES:
        value = config.get(role)
        if isinstance(value, dict):  # serialized AddedToken
            value = value.get("content")
        if isinstance(value, str):
            options[role] = value
    return options
