"""`WordPieceTokenizer`: BERT's tokenizer, equal to transformers' `BertTokenizer` token for token.

This module ties the steps together; each lives in its own module:

* `loading` - the files (``vocab.txt``, ``tokenizer_config.json``, ``tokenizer.json``), read
  and written (`save_pretrained`);
* `inputs` - what `__call__` accepts (texts, pairs, batches, pre-split words), in one shape;
* `encoder` - text -> ids (special tokens in the text, basic tokenization, WordPiece, cache);
* `postprocess` - truncation with overflow windows, ``[CLS] A [SEP] (B [SEP])``, padding;
* `encoding` - the `Encoding` dict returned by `__call__`, its accessors, ``return_tensors``;
* `padding` - `pad()` of inputs encoded earlier;
* `decoding` - ids -> text.

`__call__` runs in three steps: normalise the inputs (`inputs.normalize_inputs`),
build the rows (`_build_rows`: text -> ids, truncation, special tokens, padding), assemble
transformers' dict (`_assemble`). Offsets are character offsets into the original string;
special tokens get ``(0, 0)``.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import postprocess as pp
from .basic import Segmenter
from .checks import check_bool, check_index, check_model_max_length, check_never_split, check_side, is_int
from .decoding import clean_up_tokenization, join_wordpieces
from .encoder import TextEncoder, TokenSeq, check_text, seq_of_words
from .encoding import Encoding, LazyRows, as_numpy, check_return_tensors
from .inputs import Inputs, Text, normalize_inputs
from .loading import SPECIAL_ROLES, load_pretrained, save_tokenizer
from .padding import pad_columns, padding_input
from .wordpiece import check_vocab, load_vocab_file

logger = logging.getLogger(__name__)


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
    * ``padding_side`` ["right"], ``truncation_side`` ["right"] - "left" pads before the tokens /
      keeps the end of a truncated text (as transformers' attributes of the same names).

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
        padding_side: str = "right",
        truncation_side: str = "right",
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
        self.padding_side = check_side("padding_side", padding_side)
        self.truncation_side = check_side("truncation_side", truncation_side)
        self._warned_too_long = False  # transformers warns once per tokenizer
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
            ids = self._encode_untruncated(text, text_pair, add_special_tokens)
            self._warn_if_too_long([len(ids)], None, verbose=True)
            return ids
        out = self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                   max_length=max_length, stride=stride, return_token_type_ids=False,
                   return_attention_mask=False)  # fmt: skip
        result: list[int] = out["input_ids"]
        return result

    def _encode_untruncated(self, text: str, text_pair: str | None, add_special_tokens: bool) -> list[int]:
        ids = self._encoder.ids(text)
        pair_ids = self._encoder.ids(text_pair) if text_pair else None
        if not add_special_tokens:
            return ids + (pair_ids or [])
        return self.build_inputs_with_special_tokens(ids, pair_ids)

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[tuple[str, str]] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> Encoding:
        """Encode a text, a pair, or a batch: a list of texts (`text_pair` a list too, or
        None), or a list of ``(text, pair)`` tuples. With ``is_split_into_words=True`` a text
        is a list of words (a batch: a list of such lists): each word is tokenized on its own
        and its tokens get its index in the list as word id.

        Returns transformers' dict: ``input_ids``, ``token_type_ids`` and ``attention_mask``
        (unless ``return_token_type_ids`` / ``return_attention_mask`` is False), plus
        ``special_tokens_mask``, ``offset_mapping``, ``length`` and
        ``overflow_to_sample_mapping`` when asked. A single text gives flat lists unless
        overflowing tokens or tensors are returned. `padding`: False, True/"longest",
        "max_length" (on `padding_side`, default the tokenizer's, to a multiple of
        `pad_to_multiple_of` if given); `truncation`: False, True/"longest_first",
        "only_first", "only_second" (on the tokenizer's `truncation_side`); with
        ``return_overflowing_tokens`` the truncated tokens come back as extra rows, each
        window overlapping the previous one by `stride` tokens. ``return_tensors="np"`` gives
        int64 numpy arrays. Without truncation, a row longer than `model_max_length` is logged
        once per tokenizer, as transformers does (``verbose=False``: not).
        """
        if return_tensors is not None:
            check_return_tensors(return_tensors)
        if is_split_into_words is not False:
            check_bool("is_split_into_words", is_split_into_words)
        inputs, batched = normalize_inputs(text, text_pair, is_split_into_words)
        settings = _settings(
            padding, truncation, max_length, stride, add_special_tokens, return_overflowing_tokens,
            self.model_max_length, pad_to_multiple_of,
            self.padding_side if padding_side is None else padding_side, self.truncation_side,
        )  # fmt: skip
        groups = self._build_rows(inputs, settings, detail=return_offsets_mapping)
        built = _flatten(groups)
        if verbose and not self._warned_too_long:
            self._warn_if_too_long([len(row.ids) for row in built], settings.max_length, verbose)
        columns = _columns(
            return_token_type_ids is not False, return_attention_mask is not False,
            bool(return_special_tokens_mask), bool(return_offsets_mapping), bool(return_length),
            bool(return_overflowing_tokens),
        )  # fmt: skip
        # A single text loses the batch level (not with overflow rows or tensors).
        flat = not batched and not return_overflowing_tokens and return_tensors is None
        data = _assemble(built, groups, columns, flat)
        if return_tensors == "np":
            data = as_numpy(data)
        rows: list[pp.Row] | LazyRows = built
        if not return_offsets_mapping:
            # The Encoding's word_ids()/tokens() re-encode the same (immutable) strings.
            rows = LazyRows(self, inputs, settings)
        return Encoding(data, rows)

    # ------------------------------------------------------------------ the steps of __call__

    def _build_rows(self, inputs: Inputs, settings: pp.Settings, *, detail: bool) -> list[list[pp.Row]]:
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
                    pp.pad_row(row, target, specials, settings.padding_side)
        return groups

    def rows_with_detail(self, inputs: Inputs, settings: pp.Settings) -> list[pp.Row]:
        """The rows of an earlier call, with offsets, word ids and tokens (for `LazyRows`)."""
        return _flatten(self._build_rows(inputs, settings, detail=True))

    def _token_seq(self, text: Text, detail: bool) -> TokenSeq:
        if isinstance(text, tuple):
            return seq_of_words(self._encoder, text, detail)
        return self._encoder.seq(text) if detail else TokenSeq(self._encoder.ids(text), [], [])

    def _warn_if_too_long(self, lengths: Iterable[int], max_length: int | None, verbose: bool) -> None:
        """transformers' warning, once per tokenizer, when no max_length applies (no
        truncation, no padding length) and a row is longer than model_max_length."""
        limit = self.model_max_length
        if max_length is not None or not verbose or limit == 0 or self._warned_too_long:
            return
        too_long = next((n for n in lengths if n > limit), None)
        if too_long is not None:
            self._warned_too_long = True
            logger.warning(
                "Token indices sequence length is longer than the specified maximum sequence length "
                f"for this model ({too_long} > {limit}). Running this sequence through the model "
                "will result in indexing errors"
            )

    # ------------------------------------------------------------------ transformers' helpers

    def build_inputs_with_special_tokens(
        self, token_ids_0: Sequence[int], token_ids_1: Sequence[int] | None = None
    ) -> list[int]:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``."""
        cls, sep = self.cls_token_id, self.sep_token_id
        if token_ids_1 is None:
            return [cls, *token_ids_0, sep]
        return [cls, *token_ids_0, sep, *token_ids_1, sep]

    def get_special_tokens_mask(
        self,
        token_ids_0: Sequence[int],
        token_ids_1: Sequence[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 where `build_inputs_with_special_tokens` would put a special token; with
        `already_has_special_tokens`, 1 for each id of a special token in `token_ids_0`."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "token_ids_1 must be None when already_has_special_tokens=True: the ids "
                    "already hold both sequences"
                )
            special = set(self.all_special_ids)
            return [1 if i in special else 0 for i in token_ids_0]
        mask = [1, *([0] * len(token_ids_0)), 1]
        if token_ids_1 is not None:
            mask += [*([0] * len(token_ids_1)), 1]
        return mask

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Tokens joined as the WordPiece decoder does (``##`` glued, its per-token clean-up)."""
        for token in tokens:
            if not isinstance(token, str):
                raise TypeError(f"tokens must be str, got {type(token).__name__}")
        return join_wordpieces(list(tokens))

    def pad(
        self,
        encoded_inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        verbose: bool = True,
    ) -> Encoding:
        """Pad encoded inputs, as transformers' ``pad``: one input (a dict of flat lists) or a
        batch (a dict of lists of rows, or a list of dicts). ``input_ids`` get the pad id,
        ``attention_mask`` (made if absent unless ``return_attention_mask=False``) 0,
        ``token_type_ids`` 0 and ``special_tokens_mask`` 1; other keys are left as they are.
        numpy arrays are accepted, and then come back as arrays unless `return_tensors` says."""
        check_return_tensors(return_tensors)
        data, was_numpy = padding_input(encoded_inputs)
        settings = pp.resolve_settings(
            padding, False, max_length, 0, add_special_tokens=True, overflow=False,
            model_max_length=self.model_max_length, pad_to_multiple_of=pad_to_multiple_of,
            padding_side=self.padding_side if padding_side is None else padding_side,
        )  # fmt: skip
        padded = pad_columns(data, settings, self.pad_token_id, return_attention_mask is not False)
        if return_tensors == "np" or (return_tensors is None and was_numpy):
            padded = as_numpy(padded)
        return Encoding(padded, None)

    def save_pretrained(self, save_directory: str | os.PathLike[str]) -> tuple[str, ...]:
        """Write ``vocab.txt``, ``tokenizer_config.json`` and ``special_tokens_map.json`` into
        `save_directory` (made if needed), which this class and transformers' `BertTokenizer`
        both load back as the same tokenizer. Returns the paths written."""
        return save_tokenizer(self, save_directory)

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


def _settings(*args: Any) -> pp.Settings:
    """`postprocess.resolve_settings` of (padding, truncation, max_length, stride,
    add_special_tokens, overflow, model_max_length, pad_to_multiple_of, padding_side,
    truncation_side), remembered: most calls repeat the same few settings, and resolving them
    costs more than tokenizing a short text. (Unhashable arguments, e.g. a list given as
    `padding`, skip the cache and get resolve_settings' error.)"""
    try:
        return _cached_settings(*args)
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
        return _resolve_settings(*args)


def _resolve_settings(
    padding: Any,
    truncation: Any,
    max_length: Any,
    stride: Any,
    add_special_tokens: bool,
    overflow: bool,
    model_max_length: int,
    pad_to_multiple_of: Any,
    padding_side: str,
    truncation_side: str,
) -> pp.Settings:
    return pp.resolve_settings(
        padding, truncation, max_length, stride, add_special_tokens=add_special_tokens,
        overflow=overflow, model_max_length=model_max_length, pad_to_multiple_of=pad_to_multiple_of,
        padding_side=padding_side, truncation_side=truncation_side,
    )  # fmt: skip


# typed: True and 1 (equal, same hash) are different arguments here.
_cached_settings = functools.lru_cache(maxsize=256, typed=True)(_resolve_settings)


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


@functools.lru_cache(maxsize=64)
def _columns(*flags: bool) -> tuple[str, ...]:
    """The optional keys asked for, in transformers' order (`flags` in the order of _COLUMNS)."""
    return tuple(key for key, wanted in zip(_COLUMNS, flags, strict=True) if wanted)


def _assemble(
    rows: list[pp.Row], groups: list[list[pp.Row]], columns: tuple[str, ...], flat: bool
) -> dict[str, Any]:
    """transformers' dict from the rows (`groups` flattened): ``input_ids`` and `columns`."""
    data: dict[str, Any] = {"input_ids": [r.ids for r in rows]}
    for key in columns:
        data[key] = _COLUMNS[key](rows, groups)
    return _unbatch(data) if flat else data


def _unbatch(data: dict[str, Any]) -> dict[str, Any]:
    """One text: transformers removes the batch level of the per-token lists ("length" stays)."""
    return {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
