"""Property tests: arbitrary Unicode text, pairs, truncation and padding against transformers.

Text is drawn from every general category (surrogates excluded: they are not text). Our
default mode is compared with the Rust ``BertTokenizer`` on everything it returns; our NFC
mode with ``BertTokenizerLegacy`` on ids. The documented divergence table lists none for
either mode, so any mismatch fails.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# Mostly words and spaces, with any character at all mixed in, and the special tokens.
_any_char = st.characters(exclude_categories=("Cs",))
_piece = st.one_of(
    st.text(_any_char, max_size=6),
    st.sampled_from([" ", "  ", "\n", "[MASK]", "[SEP]", "[mask]", "the", "unaffable", "naïve",
                     "Straße", "中文", "ليس", "हिंदी", "e\u0301", "\u200b", ".", "'", "$", "😀"]),
)  # fmt: skip
texts = st.lists(_piece, max_size=25).map("".join)


@pytest.fixture(scope="module")
def toks(bert_tokenizers):
    return bert_tokenizers


def _batch_rows(enc) -> list[list[int]]:
    ids = enc["input_ids"]
    return ids if ids and isinstance(ids[0], list) else [ids]


def _is_ragged(enc) -> bool:
    return len({len(row) for row in _batch_rows(enc)}) > 1


def _unpadded(enc) -> dict:
    """Every per-token list cut to the row's real tokens (attention mask 1); "length" dropped."""
    batched = isinstance(enc["input_ids"][0:1] and enc["input_ids"][0], list)
    masks = enc["attention_mask"] if batched else [enc["attention_mask"]]
    out = {}
    for key, value in enc.items():
        if key in ("length", "overflow_to_sample_mapping"):
            continue
        rows = value if batched else [value]
        out[key] = [row[: sum(mask)] for row, mask in zip(rows, masks, strict=True)]
    if "overflow_to_sample_mapping" in enc:
        out["overflow_to_sample_mapping"] = enc["overflow_to_sample_mapping"]
    return out


def _compare(rust, ours, args, kwargs):
    try:
        want = rust(*args, **kwargs)
    except BaseException as exc:  # tokenizers raises (or panics) on impossible settings
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        with pytest.raises(ValueError):
            ours(*args, **kwargs)
        return
    got = ours(*args, **kwargs)
    if kwargs.get("padding") and _is_ragged(want):
        # transformers leaves rows longer than its padding target ragged (max_length at most
        # the number of special tokens); we pad every row to the same length instead.
        assert not _is_ragged(got)
        assert _unpadded(got) == _unpadded(want)
    else:
        assert dict(got) == dict(want)
    rows = len(want["input_ids"]) if isinstance(want["input_ids"][0:1] and want["input_ids"][0], list) else 1
    for i in range(rows):
        for got_ids, want_ids in ((got.word_ids(i), want.word_ids(i)),
                                  (got.sequence_ids(i), want.sequence_ids(i))):  # fmt: skip
            n = len(want_ids)  # ours may go on with padding where transformers' row is ragged
            assert got_ids[:n] == want_ids and set(got_ids[n:]) <= {None}


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_any_text_default_mode(toks, text):
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    _compare(toks["rust"], toks["ours"], (text,), kw)
    assert toks["ours"].tokenize(text) == toks["rust"].tokenize(text)


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_any_text_nfc_mode(toks, text):
    assert toks["ours_nfc"](text)["input_ids"] == toks["legacy"](text)["input_ids"]
    assert toks["ours_nfc"].tokenize(text) == toks["legacy"].tokenize(text)


@settings(max_examples=200, deadline=None)
@given(
    batch=st.lists(st.tuples(texts, st.one_of(st.none(), texts)), min_size=1, max_size=4),
    padding=st.sampled_from([False, True, "longest", "max_length"]),
    truncation=st.sampled_from([None, False, True, "longest_first", "only_first", "only_second"]),
    max_length=st.one_of(st.none(), st.integers(0, 40)),
    stride=st.integers(0, 6),
    overflow=st.booleans(),
    add_special_tokens=st.booleans(),
    batched=st.booleans(),
)
def test_pairs_truncation_padding(toks, batch, padding, truncation, max_length, stride, overflow,
                                  add_special_tokens, batched):  # fmt: skip
    kw = dict(padding=padding, truncation=truncation, max_length=max_length, stride=stride,
              return_overflowing_tokens=overflow, add_special_tokens=add_special_tokens,
              return_offsets_mapping=True, return_special_tokens_mask=True, return_length=True)  # fmt: skip
    if batched:
        firsts = [a for a, _ in batch]
        pairs = None if any(b is None for _, b in batch) else [b for _, b in batch]
        _compare(toks["rust"], toks["ours"], (firsts, pairs), kw)
    else:
        _compare(toks["rust"], toks["ours"], batch[0], kw)


@pytest.fixture(scope="module")
def left_toks(shared_model_path):
    """Both tokenizers with padding_side and truncation_side "left" (as attributes)."""
    from conftest import require_module

    from tokenizer import WordPieceTokenizer

    transformers = require_module("transformers")
    sides = dict(padding_side="left", truncation_side="left")
    return {
        "rust": transformers.BertTokenizer.from_pretrained(shared_model_path, **sides),
        "ours": WordPieceTokenizer.from_pretrained(shared_model_path, **sides),
    }


@settings(max_examples=150, deadline=None)
@given(
    batch=st.lists(st.tuples(texts, texts), min_size=1, max_size=4),
    padding=st.sampled_from([False, True, "max_length"]),
    truncation=st.sampled_from([None, True, "only_first", "only_second"]),
    max_length=st.one_of(st.none(), st.integers(0, 40)),
    stride=st.integers(0, 6),
    overflow=st.booleans(),
    multiple=st.one_of(st.none(), st.integers(1, 8)),
    padding_side=st.sampled_from([None, "left", "right"]),
    left=st.booleans(),
    form=st.sampled_from(["lists", "tuples", "words"]),
)
def test_sides_multiples_tuples_and_words(toks, left_toks, batch, padding, truncation, max_length, stride,
                                          overflow, multiple, padding_side, left, form):  # fmt: skip
    """padding_side (attribute and call argument), truncation_side, pad_to_multiple_of, a batch
    of (text, pair) tuples and pre-split words, against Rust on random settings."""
    pair = toks if not left else left_toks
    kw = dict(padding=padding, truncation=truncation, max_length=max_length, stride=stride,
              return_overflowing_tokens=overflow, pad_to_multiple_of=multiple, padding_side=padding_side,
              return_offsets_mapping=True, return_special_tokens_mask=True)  # fmt: skip
    if form == "tuples":
        args: tuple = (batch,)
    elif form == "words":
        args = ([a.split() for a, _ in batch], [b.split() for _, b in batch])
        kw["is_split_into_words"] = True
    else:
        args = ([a for a, _ in batch], [b for _, b in batch])
    try:
        want = pair["rust"](*args, **kw)
    except BaseException as exc:  # tokenizers raises (or panics) on impossible settings
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        with pytest.raises(ValueError):
            pair["ours"](*args, **kw)
        return
    got = pair["ours"](*args, **kw)
    if padding and _is_ragged(want):  # transformers ragged, ours padded: see test_pairs_...
        assert not _is_ragged(got)
        return
    assert dict(got) == dict(want)
    for i in range(len(want["input_ids"])):
        assert got.word_ids(i) == want.word_ids(i) and got.sequence_ids(i) == want.sequence_ids(i)
