"""`WordPieceTokenizer`: BERT's tokenizer, equal to transformers' `BertTokenizer` token for token.

This module ties the steps together; each lives in its own module:

* `loading` - the files (``vocab.txt``, ``tokenizer_config.json``, ``tokenizer.json``);
* `encoder` - text -> ids (special tokens in the text, basic tokenization, WordPiece, cache);
* `postprocess` - truncation with overflow windows, ``[CLS] A [SEP] (B [SEP])``, padding;
* `encoding` - the `Encoding` dict returned by `__call__`;
* `decoding` - ids -> text.

`__call__` runs in three steps: normalise the inputs (`_inputs`: one text, a pair, a batch),
build the rows (`_build_rows`: text -> ids, truncation, special tokens, padding), assemble
transformers' dict (`_assemble`). Offsets are character offsets into the original string;
special tokens get ``(0, 0)``.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import postprocess as pp
from .basic import Segmenter
from .checks import check_bool, check_index, check_model_max_length, check_never_split, is_int
from .decoding import clean_up_tokenization, join_wordpieces
from .encoder import TextEncoder, TokenSeq, check_text
from .encoding import Encoding, LazyRows
from .loading import SPECIAL_ROLES, load_pretrained
from .wordpiece import check_vocab, load_vocab_file

# One input of `__call__`: (text, pair or None).
_Inputs = tuple[tuple[str, ...], tuple["str | None", ...]]


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
            raise ValueError(f"unicode_normalization must be None or 'NFC', got {unicode_normalization!r}")
        check_bool("do_lower_case", do_lower_case)
        check_bool("tokenize_chinese_chars", tokenize_chinese_chars)
        check_bool("clean_text", clean_text)
        if clean_up_tokenization_spaces is not None:
            check_bool("clean_up_tokenization_spaces", clean_up_tokenization_spaces)
        if strip_accents is not None:
            check_bool("strip_accents", strip_accents, "None or a bool")
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.clean_text = clean_text
        self.never_split = check_never_split(never_split)
        self.max_input_chars_per_word = check_index("max_input_chars_per_word", max_input_chars_per_word, 1)
        self.unicode_normalization = unicode_normalization
        self.model_max_length = check_model_max_length(model_max_length)
        # None: the default (on), as when tokenizer_config.json does not say.
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces is not False
        self.max_overflow_tokens = check_index("max_overflow_tokens", max_overflow_tokens, 1)
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self._check_special_tokens()
        # At least 16 words, so that eviction (the older half) is never a per-word cost.
        cache_size = max(16, check_index("word_cache_size", word_cache_size, 1))
        self._encoder = TextEncoder(
            self.vocab,
            self._segmenter(),
            unk_token=unk_token,
            special_tokens=[getattr(self, r) for r in SPECIAL_ROLES],
            never_split=self.never_split,
            max_input_chars_per_word=self.max_input_chars_per_word,
            cache_size=cache_size,
        )
        self._cache = self._encoder.cache  # the same dict (tests and benchmarks clear it)

    def _check_special_tokens(self) -> None:
        for role in SPECIAL_ROLES:
            token = getattr(self, role)
            if not isinstance(token, str):
                raise TypeError(f"{role} must be a str, got {type(token).__name__}")
            if token not in self.vocab:
                raise ValueError(f"{role} {token!r} is not in the vocabulary")

    def _segmenter(self) -> Segmenter:
        nfc = self.unicode_normalization == "NFC"
        # strip_accents=None follows lower-casing, as in google-research/bert.
        strip = self.do_lower_case if self.strip_accents is None else self.strip_accents
        return Segmenter(
            flavour="python" if nfc else "rust",
            clean_text=self.clean_text,
            tokenize_chinese_chars=self.tokenize_chinese_chars,
            lowercase=self.do_lower_case,
            strip_accents=strip,
            nfc=nfc,
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], **overrides: Any) -> WordPieceTokenizer:
        """Load from a model directory: ``vocab.txt`` (+ ``tokenizer_config.json`` and
        ``special_tokens_map.json`` when present), or ``tokenizer.json`` alone.
        Keyword arguments override what the files say."""
        vocab, options = load_pretrained(path, overrides)
        return cls(vocab, **options)

    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike[str], **options: Any) -> WordPieceTokenizer:
        """A tokenizer on ``vocab.txt`` at `path` with the given options."""
        return cls(load_vocab_file(path), **options)

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
        return {role: getattr(self, role) for role in SPECIAL_ROLES}

    @property
    def all_special_tokens(self) -> list[str]:
        """The special tokens, in transformers' order (unk, sep, pad, cls, mask)."""
        return list(dict.fromkeys(getattr(self, role) for role in SPECIAL_ROLES))

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

    @property
    def _specials(self) -> pp.SpecialIds:
        vocab = self.vocab  # read per call: the special-token attributes may be reassigned
        cls, sep, pad = vocab[self.cls_token], vocab[self.sep_token], vocab[self.pad_token]
        return pp.SpecialIds(cls, sep, pad, self.pad_token)

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
        if is_int(ids):
            return self._id_to_token(ids)
        return self._tokens_of(_as_sequence(ids), skip_special_tokens)

    def _tokens_of(self, ids: Sequence[Any], skip_special_tokens: bool) -> list[str]:
        special: Iterable[int] = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(i) for i in ids if not (is_int(i) and i in special)]

    def _id_to_token(self, i: Any) -> str:
        if not is_int(i):
            raise TypeError(f"token ids must be int, got {type(i).__name__}")
        try:
            return self.ids_to_tokens[operator.index(i)]
        except KeyError:
            raise ValueError(f"token id {i} is not in the vocabulary (size {self.vocab_size})") from None

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
        check_text(text)
        if text_pair is not None:
            check_text(text_pair, "text_pair")
        if truncation in (None, False) and max_length is None:
            return self._encode_untruncated(text, text_pair, add_special_tokens)
        out = self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                   max_length=max_length, stride=stride, return_token_type_ids=False,
                   return_attention_mask=False)  # fmt: skip
        ids: list[int] = out["input_ids"]
        return ids

    def _encode_untruncated(self, text: str, text_pair: str | None, add_special_tokens: bool) -> list[int]:
        ids = self._encoder.ids(text)
        pair_ids = self._encoder.ids(text_pair) if text_pair else None
        if not add_special_tokens:
            return ids + (pair_ids or [])
        cls, sep = self.cls_token_id, self.sep_token_id
        if pair_ids is not None:
            return [cls, *ids, sep, *pair_ids, sep]
        return [cls, *ids, sep]

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
        inputs = self._inputs(text, text_pair)
        settings = pp.resolve_settings(
            padding, truncation, max_length, stride, add_special_tokens=add_special_tokens,
            overflow=return_overflowing_tokens, model_max_length=self.model_max_length,
        )  # fmt: skip
        groups = self._build_rows(inputs, settings, detail=return_offsets_mapping)
        keys = {
            "token_type_ids": return_token_type_ids is not False,
            "attention_mask": return_attention_mask is not False,
            "special_tokens_mask": return_special_tokens_mask,
            "offset_mapping": return_offsets_mapping,
            "length": return_length,
            "overflow_to_sample_mapping": return_overflowing_tokens,
        }
        built = _flatten(groups)
        data = _assemble(built, groups, keys, batched)
        rows: list[pp.Row] | LazyRows = built
        if not return_offsets_mapping:
            # The Encoding's word_ids()/tokens() re-encode the same (immutable) strings.
            rows = LazyRows(lambda: _flatten(self._build_rows(inputs, settings, detail=True)))
        return Encoding(data, rows)

    # ------------------------------------------------------------------ the steps of __call__

    def _inputs(self, text: Any, text_pair: Any) -> _Inputs:
        """(texts, pairs) as tuples of checked strings, whether one text or a batch was given.

        Tuples of the strings, not the caller's lists: the Encoding may re-encode them later
        for word_ids(), and must see what was encoded now.
        """
        if not isinstance(text, (list, tuple)):
            check_text(text)
            if text_pair is not None:
                check_text(text_pair, "text_pair")
            # transformers treats an empty pair of a single text as no pair at all.
            return (text,), (text_pair if text_pair else None,)
        texts = tuple(check_text(t, f"text[{i}]") for i, t in enumerate(text))
        if text_pair is None:
            return texts, (None,) * len(texts)
        if not isinstance(text_pair, (list, tuple)):
            raise TypeError(
                f"when text is a batch, text_pair must be a list of str too, got {type(text_pair).__name__}"
            )
        if len(text_pair) != len(texts):
            raise ValueError(f"batch length of text ({len(texts)}) and text_pair ({len(text_pair)}) differ")
        return texts, tuple(check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair))

    def _build_rows(self, inputs: _Inputs, settings: pp.Settings, *, detail: bool) -> list[list[pp.Row]]:
        """The output rows of each input (main row first, then its overflow), padded."""
        specials = self._specials
        ids_to_tokens = self.ids_to_tokens if detail else None
        groups: list[list[pp.Row]] = []
        for index, (text, pair) in enumerate(zip(*inputs, strict=True)):
            a = self._token_seq(text, detail)
            b = None if pair is None else self._token_seq(pair, detail)
            combos = pp.row_combinations(a, b, settings, index, self.max_overflow_tokens)
            groups.append(
                [pp.build_row(x, y, settings.add_special_tokens, specials, ids_to_tokens) for x, y in combos]
            )
        if settings.padding is not None:
            target = pp.padding_target(groups, settings)
            for group in groups:
                for row in group:
                    pp.pad_row(row, target, specials)
        return groups

    def _token_seq(self, text: str, detail: bool) -> TokenSeq:
        return self._encoder.seq(text) if detail else TokenSeq(self._encoder.ids(text), [], [])

    # ------------------------------------------------------------------ decoding

    def decode(
        self,
        ids: int | Sequence[int] | Mapping[str, Any],
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
        if isinstance(ids, Mapping) and "input_ids" in ids:
            ids = ids["input_ids"]
        id_list: list[Any] = [ids] if is_int(ids) else _as_sequence(ids)
        text = join_wordpieces(self._tokens_of(id_list, skip_special_tokens))
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            text = clean_up_tokenization(text)
        return text

    def batch_decode(self, sequences: Iterable[Sequence[int]], **kwargs: Any) -> list[str]:
        return [self.decode(s, **kwargs) for s in sequences]


def _as_sequence(ids: Any) -> list[Any]:
    """A sequence of ids (a list, a tuple, a numpy array...) as a list to iterate."""
    return list(ids)


def _flatten(groups: list[list[pp.Row]]) -> list[pp.Row]:
    return [row for group in groups for row in group]


# The optional columns of the output, in transformers' order: key -> column(rows, groups).
_COLUMNS: dict[str, Callable[[list[pp.Row], list[list[pp.Row]]], list[Any]]] = {
    "token_type_ids": lambda rows, groups: [r.type_ids for r in rows],
    "attention_mask": lambda rows, groups: [r.attention for r in rows],
    "special_tokens_mask": lambda rows, groups: [r.special for r in rows],
    "offset_mapping": lambda rows, groups: [r.offsets for r in rows],
    "length": lambda rows, groups: [len(r.ids) for r in rows],
    "overflow_to_sample_mapping": lambda rows, groups: [i for i, g in enumerate(groups) for _ in g],
}


def _assemble(
    rows: list[pp.Row], groups: list[list[pp.Row]], keys: dict[str, bool], batched: bool
) -> dict[str, Any]:
    """transformers' dict from the rows (`groups` flattened): ``input_ids`` and the asked-for
    `keys`."""
    data: dict[str, Any] = {"input_ids": [r.ids for r in rows]}
    for key, column in _COLUMNS.items():
        if keys[key]:
            data[key] = column(rows, groups)
    if not batched and not keys["overflow_to_sample_mapping"]:
        data = _unbatch(data)
    return data


def _unbatch(data: dict[str, Any]) -> dict[str, Any]:
    """One text: transformers removes the batch level of the per-token lists ("length" stays)."""
    return {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
