"""Our tokenizer on an uncased vocabulary: all-MiniLM-L6-v2's, against two references.

* transformers' Rust-backed ``BertTokenizer`` loaded from the same directory, on everything it
  returns (ids, attention masks, token types of pairs, character offsets, special-token masks,
  word and sequence ids), with truncation at the lengths the model is used at (256, the
  sentence-transformers max_seq_length, and 512, its position table);
* the tokenizers library's own ``Tokenizer.from_file("tokenizer.json")``, without transformers'
  wrapper, once without truncation and padding and once with the file's own (longest-first at
  128, padded to 128).

The text: the multilingual corpus (``tests/tokenizer_corpus``) and hypothesis-generated text
aimed at what an uncased vocabulary changes: capitals with accents that lowercasing and accent
stripping remove (and characters whose lowercase is longer, like "İ"), CJK, punctuation, control
and format characters, and words around ``max_input_chars_per_word`` (100) before and after
lowercasing. Needs transformers' tokenizers only (no torch), so the no-torch tier runs it.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import require_module
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tokenizer_differential import ALL_KEYS, _rows
from test_tokenizer_hypothesis import _compare
from tokenizer_corpus import corpus, sentences

from tokenizer import WordPieceTokenizer

MINILM_VOCAB_SIZE = 30522
MAX_CHARS_PER_WORD = 100  # the WordPiece model's max_input_chars_per_word in tokenizer.json


@pytest.fixture(scope="module")
def rust(minilm_path):
    transformers = require_module("transformers")
    tok = transformers.BertTokenizer.from_pretrained(minilm_path)
    # The oracle is what we think: the Rust backend, lowercasing, accents stripped by default
    # (strip_accents null follows lowercase), the MiniLM vocabulary.
    assert tok.is_fast and type(tok.backend_tokenizer.model).__name__ == "WordPiece"
    normalizer = json.loads(tok.backend_tokenizer.to_str())["normalizer"]
    assert normalizer["type"] == "BertNormalizer" and normalizer["lowercase"] is True, normalizer
    assert normalizer["strip_accents"] is None, normalizer
    assert tok.vocab_size == MINILM_VOCAB_SIZE and tok.model_max_length == 512
    return tok


def file_tokenizer(minilm_path, as_configured: bool):
    """tokenizers' Tokenizer straight from tokenizer.json, with the file's truncation and
    padding (`as_configured`) or with neither."""
    tokenizers = require_module("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    if not as_configured:
        tok.no_truncation()
        tok.no_padding()
    return tok


@pytest.fixture(scope="module")
def plain_file_tok(minilm_path):
    return file_tokenizer(minilm_path, as_configured=False)


@pytest.fixture(scope="module")
def ours(minilm_path):
    return WordPieceTokenizer.from_pretrained(minilm_path)


def long_documents(n_sentences: int) -> list[str]:
    """The corpus sentences joined `n_sentences` at a time: texts past 256 and 512 tokens."""
    lines = sentences()
    wrapped = lines + lines[:n_sentences]  # every window is full
    return [" ".join(wrapped[i : i + n_sentences]) for i in range(0, len(lines), n_sentences // 2)]


# ------------------------------------------------------------------ loading
def test_uncased_options_are_read_from_the_files(ours, rust, minilm_path):
    config = json.loads((minilm_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["do_lower_case"] is True and ours.do_lower_case is True
    assert ours.model_max_length == config["model_max_length"] == 512
    assert ours.vocab == rust.get_vocab() and ours.vocab_size == MINILM_VOCAB_SIZE
    for name in ("unk", "sep", "pad", "cls", "mask"):
        assert getattr(ours, f"{name}_token_id") == getattr(rust, f"{name}_token_id"), name
    assert ours.all_special_ids == rust.all_special_ids


def test_do_lower_case_false_in_the_config_is_obeyed(minilm_path, tmp_path):
    """The same vocabulary with tokenizer_config.json saying do_lower_case false: no lowercasing,
    as transformers builds it from the same two files (capitals become [UNK] or pieces)."""
    transformers = require_module("transformers")
    shutil.copy(minilm_path / "vocab.txt", tmp_path / "vocab.txt")
    config = json.loads((minilm_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    want_tok = transformers.BertTokenizer.from_pretrained(tmp_path)
    got_tok = WordPieceTokenizer.from_pretrained(tmp_path)
    assert got_tok.do_lower_case is False
    lines = corpus()
    want, got = want_tok(lines, **ALL_KEYS), got_tok(lines, **ALL_KEYS)
    assert _rows(got, len(lines)) == _rows(want, len(lines))
    cased = got_tok("Hello WORLD Été")["input_ids"]
    assert cased != WordPieceTokenizer.from_pretrained(minilm_path)("Hello WORLD Été")["input_ids"]


def test_tokenizer_json_alone_reads_the_same_tokenizer(ours, minilm_path, tmp_path):
    """The directory's tokenizer.json without vocab.txt gives the same tokenizer: lowercase
    from its normalizer, the same vocabulary."""
    shutil.copy(minilm_path / "tokenizer.json", tmp_path / "tokenizer.json")
    from_json = WordPieceTokenizer.from_pretrained(tmp_path)
    assert from_json.do_lower_case is True and from_json.vocab == ours.vocab
    lines = corpus()
    assert dict(from_json(lines, **ALL_KEYS)) == dict(ours(lines, **ALL_KEYS))


# ------------------------------------------------------------------- corpus
def test_corpus_matches_rust(rust, ours):
    lines = corpus()
    want, got = rust(lines, **ALL_KEYS), ours(lines, **ALL_KEYS)
    assert set(got) == set(want) >= {"input_ids", "token_type_ids", "attention_mask", "offset_mapping"}
    mismatches = [(line, w, g) for line, w, g in zip(lines, _rows(want, len(lines)), _rows(got, len(lines)),
                                                      strict=True) if w != g]  # fmt: skip
    print(f"MiniLM vocabulary: {len(lines)} corpus lines, {len(mismatches)} mismatches")
    assert not mismatches, mismatches[:3]
    for i, line in enumerate(lines):
        assert got.word_ids(i) == want.word_ids(i), line
        assert ours.tokenize(line) == rust.tokenize(line), line
        ids = want["input_ids"][i]
        # Clean-up named on both sides: ours defaults to on (the model-card output, see
        # test_tokenizer_differential.test_model_card_example); transformers 5's Rust one to off.
        for skip in (False, True):
            for clean_up in (False, True):
                kw = dict(skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up)
                assert ours.decode(ids, **kw) == rust.decode(ids, **kw), (line, kw)


def test_corpus_matches_tokenizer_json(ours, plain_file_tok):
    """ids, masks, token types and offsets against tokenizers itself, singles and pairs."""
    file_tok = plain_file_tok
    lines = [line for line in corpus() if line.strip()]
    pairs = list(zip(lines[::2], lines[1::2], strict=False))
    for inputs, got in ((lines, ours(lines, return_offsets_mapping=True)),
                        (pairs, ours([a for a, _ in pairs], [b for _, b in pairs],
                                     return_offsets_mapping=True))):  # fmt: skip
        want = file_tok.encode_batch(inputs)
        assert got["input_ids"] == [e.ids for e in want]
        assert got["attention_mask"] == [e.attention_mask for e in want]
        assert got["token_type_ids"] == [e.type_ids for e in want]
        assert got["offset_mapping"] == [list(e.offsets) for e in want]
    assert any(1 in row for row in got["token_type_ids"])  # the pairs did have a second segment


def test_the_files_own_truncation_and_padding(ours, rust, minilm_path):
    """tokenizer.json carries longest-first truncation at 128 and padding to 128; ours asked for
    the same gives the same rows (transformers' wrapper ignores the file's settings, as we do)."""
    file_tok = file_tokenizer(minilm_path, as_configured=True)
    docs = long_documents(6)
    firsts, seconds = docs[::2], docs[1::2]
    firsts = firsts[: len(seconds)]
    want = file_tok.encode_batch(list(zip(firsts, seconds, strict=True)))
    got = ours(firsts, seconds, truncation="longest_first", max_length=128, padding="max_length",
               return_offsets_mapping=True)  # fmt: skip
    assert {len(e.ids) for e in want} == {128} and any(len(e.overflowing) for e in want)
    assert got["input_ids"] == [e.ids for e in want]
    assert got["attention_mask"] == [e.attention_mask for e in want]
    assert got["token_type_ids"] == [e.type_ids for e in want]
    assert got["offset_mapping"] == [list(e.offsets) for e in want]
    # ...and by default neither transformers nor ours applies the file's truncation
    assert ours(docs[0])["input_ids"] == rust(docs[0])["input_ids"] and len(rust(docs[0])["input_ids"]) > 128


@pytest.mark.parametrize("max_length", [256, 512])
@pytest.mark.parametrize(
    "options",
    [dict(truncation=True), dict(truncation="only_second"), dict(truncation="only_first"),
     dict(truncation="longest_first", stride=32, return_overflowing_tokens=True, padding=True)],
)  # fmt: skip
def test_long_pairs_truncated_at_the_models_lengths(rust, ours, max_length, options):
    docs = long_documents(20)
    firsts, seconds = docs[::2], docs[1::2]
    firsts = firsts[: len(seconds)]
    lengths = [len(ours.tokenize(doc)) for doc in docs]
    assert max(lengths) > 512 and min(lengths) > 128, lengths  # both sides really are cut
    _compare(rust, ours, (firsts, seconds), {**ALL_KEYS, "max_length": max_length, **options})
    _compare(rust, ours, (docs,), {**ALL_KEYS, "max_length": max_length, "truncation": True})


# --------------------------------------------------------------- hypothesis
_ACCENTED = "ÀÁÂÃÄÅĀĂĄÇĆČÈÉÊËĒĖĘĚÌÍÎÏĪĮİÑŃŇÒÓÔÕÖØŌŐŒÙÚÛÜŪŮŰÝŸŹŻŽÞẞßĲǄǅǆǇǈǊǱÆΆΈΉΊΌΎΏΪΫΣΐ"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + _ACCENTED
_uncased_piece = st.one_of(
    st.text(st.sampled_from(_LETTERS), min_size=1, max_size=12),
    st.sampled_from([
        " ", "  ", "\n", "\t", "É", "İ", "İstanbul", "ΟΔΟΣ", "Ὀδυσσεύς", "ΣΑΣ", "Straße", "STRASSE",
        "K", "Å", "Ω", "ﬁ", "ﬃ", "ŉ", "ǅ", "Ⅻ", "Ⓐ", "ＡＢＣ", "e\u0301", "E\u0301", "\u0301",
        "A\u030a", "\u0345", "Ǆ\u0327", "漢字", "中文", "日本語", "\u3400", "\U00020000", "한국어",
        "!", "?", ".", ",", ";", ":", "'", '"', "(", ")", "[", "]", "¿", "¡", "…", "—", "「", "」",
        "$", "+", "^", "`", "~", "\x00", "\x07", "\x1b", "\r", "\x0b", "\x85", "\u200b",
        "\ufeff", "\u00ad", "\u2028", "\ufffd", "[MASK]", "[SEP]", "[mask]", "[CLS]", "😀", "unaffable",
    ]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=4),
)  # fmt: skip
uncased_texts = st.lists(_uncased_piece, max_size=25).map("".join)

# Words at the 100-character limit: plain, with capitals, and with "İ" (one character that
# lowercases to two) or combining accents (which stripping removes), so that the length a word
# has before and after normalisation straddles the limit.
long_words = st.builds(
    lambda base, n, extra, k: (base * n)[: MAX_CHARS_PER_WORD - 3 + k] + extra,
    st.sampled_from(["a", "Ab", "İ", "é", "e\u0301", "ßa", "É\u0301x", "ﬃ"]),
    st.integers(50, 120), st.sampled_from(["", "İ", "\u0301", "é", "A", "!", "中"]), st.integers(0, 8),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(uncased_texts, st.tuples(uncased_texts, long_words, uncased_texts).map(" ".join)))
def test_any_text_matches_rust_and_tokenizer_json(rust, ours, plain_file_tok, text):
    _compare(rust, ours, (text,), ALL_KEYS)
    assert ours.tokenize(text) == rust.tokenize(text)
    want = plain_file_tok.encode(text)
    got = ours(text, return_offsets_mapping=True)
    assert got["input_ids"] == want.ids and got["offset_mapping"] == list(want.offsets)


@settings(max_examples=100, deadline=None)
@given(
    first=uncased_texts, second=uncased_texts, word=long_words,
    repeats=st.tuples(st.integers(1, 60), st.integers(1, 60)),
    max_length=st.sampled_from([256, 512]),
    truncation=st.sampled_from([True, "longest_first", "only_first", "only_second"]),
    stride=st.sampled_from([0, 16, 64]), overflow=st.booleans(), padding=st.sampled_from([False, True]),
)  # fmt: skip
def test_pairs_truncated_at_256_and_512(rust, ours, first, second, word, repeats, max_length, truncation,
                                        stride, overflow, padding):  # fmt: skip
    """Pairs long enough to be cut (texts repeated up to 60 times), at the model's lengths."""
    a = " ".join([first, word] * repeats[0])
    b = " ".join([second] * repeats[1])
    kw = dict(truncation=truncation, max_length=max_length, stride=stride,
              return_overflowing_tokens=overflow, padding=padding, **ALL_KEYS)  # fmt: skip
    _compare(rust, ours, (a, b), kw)

