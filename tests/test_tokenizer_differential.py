"""Differential tests: our WordPieceTokenizer against transformers on the real vocabulary.

Default mode against transformers' default (Rust-backed) ``BertTokenizer``; NFC mode against
the pure-Python ``BertTokenizerLegacy``. The corpus (``tests/tokenizer_corpus``) has sentences
in 50+ languages and scripts, their NFD forms, and lines of hard characters.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import require_module
from tokenizer_corpus import corpus, sentences

from tokenizer import WordPieceTokenizer

ALL_KEYS = dict(return_offsets_mapping=True, return_special_tokens_mask=True)


@pytest.fixture(scope="module")
def rust_tok(shared_model_path):
    transformers = require_module("transformers")
    tok = transformers.BertTokenizer.from_pretrained(shared_model_path)
    # Make sure the oracle is what we think: the Rust backend, cased, the real vocabulary.
    assert tok.is_fast and type(tok.backend_tokenizer.model).__name__ == "WordPiece"
    norm = json.loads(tok.backend_tokenizer.to_str())["normalizer"]
    assert norm["type"] == "BertNormalizer" and norm["lowercase"] is False, norm
    assert tok.vocab_size == 119547 and tok.model_max_length == 512
    return tok


@pytest.fixture(scope="module")
def legacy_tok(shared_model_path):
    require_module("transformers")
    legacy = require_module("transformers.models.bert.tokenization_bert_legacy")
    tok = legacy.BertTokenizerLegacy.from_pretrained(shared_model_path)
    assert not tok.is_fast and tok.do_lower_case is False and tok.vocab_size == 119547
    return tok


@pytest.fixture(scope="module")
def ours(shared_model_path):
    return WordPieceTokenizer.from_pretrained(shared_model_path)


@pytest.fixture(scope="module")
def ours_nfc(shared_model_path):
    return WordPieceTokenizer.from_pretrained(shared_model_path, unicode_normalization="NFC")


def _rows(enc, n):
    return [{k: enc[k][i] for k in enc} for i in range(n)]


def test_corpus_is_multilingual():
    lines = sentences()
    assert len(lines) >= 45
    scripts = {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "BENGALI", "TAMIL",
               "THAI", "KHMER", "GEORGIAN", "ARMENIAN", "CJK", "HIRAGANA", "KATAKANA", "HANGUL",
               "ETHIOPIC", "CHEROKEE", "TIBETAN", "MYANMAR", "SINHALA", "LAO", "TELUGU"}  # fmt: skip
    import unicodedata

    seen = {unicodedata.name(ch, "?").split()[0] for line in lines for ch in line}
    assert scripts <= seen, scripts - seen


def test_loaded_from_config(ours, shared_model_path):
    cfg = json.loads((shared_model_path / "tokenizer_config.json").read_text())
    assert ours.do_lower_case is cfg["do_lower_case"] is False
    assert ours.model_max_length == cfg["model_max_length"] == 512
    assert ours.clean_up_tokenization_spaces is True  # the config is silent: default on


def test_corpus_default_mode_matches_rust(rust_tok, ours):
    lines = corpus()
    want = rust_tok(lines, **ALL_KEYS)
    got = ours(lines, **ALL_KEYS)
    assert set(got) == set(want)
    mismatches = [
        (line, w, g)
        for line, w, g in zip(lines, _rows(want, len(lines)), _rows(got, len(lines)), strict=True)
        if w != g
    ]
    word_mismatches = [i for i in range(len(lines)) if want.word_ids(i) != got.word_ids(i)]
    print(f"default mode: {len(lines)} corpus lines, {len(mismatches)} mismatches")
    assert not mismatches, mismatches[:3]
    assert not word_mismatches
    # the same one text at a time, and through tokenize()/encode()
    for line in lines:
        assert dict(ours(line, **ALL_KEYS)) == dict(rust_tok(line, **ALL_KEYS)), line
        assert ours.tokenize(line) == rust_tok.tokenize(line), line
        assert ours.encode(line) == rust_tok.encode(line), line


def test_corpus_nfc_mode_matches_legacy(legacy_tok, ours_nfc):
    lines = corpus()
    mismatches = []
    for line in lines:
        want = legacy_tok(line)["input_ids"]
        if ours_nfc(line)["input_ids"] != want or ours_nfc.encode(line) != want:
            mismatches.append(line)
        if ours_nfc(line, return_offsets_mapping=True)["input_ids"] != want:
            mismatches.append(line)
        if ours_nfc.tokenize(line) != legacy_tok.tokenize(line):
            mismatches.append(line)
    print(f"NFC mode: {len(lines)} corpus lines, {len(mismatches)} mismatches")
    assert not mismatches, mismatches[:3]


def test_modes_differ_where_documented(ours, ours_nfc, rust_tok, legacy_tok):
    """Non-NFC text (Vietnamese with combining marks, Hindi nukta, Arabic harakat order) is
    where Rust and legacy disagree; each mode follows its own oracle."""
    texts = ["Vie\u0302\u0323t Nam", "\u0958\u0932\u092e", "\u0645\u0651\u064e\u0627"]
    for text in texts:
        assert rust_tok(text)["input_ids"] != legacy_tok(text)["input_ids"], text
        assert ours(text)["input_ids"] == rust_tok(text)["input_ids"]
        assert ours_nfc(text)["input_ids"] == legacy_tok(text)["input_ids"]


@pytest.mark.parametrize(
    "options",
    [
        dict(truncation=True, max_length=24, stride=5, return_overflowing_tokens=True, padding=True),
        dict(truncation="only_second", max_length=40, stride=8, return_overflowing_tokens=True),
        dict(truncation="only_first", max_length=40, stride=3, return_overflowing_tokens=True,
             padding="max_length"),
        dict(truncation="longest_first", max_length=17, padding="max_length"),
        dict(padding="longest"),
        dict(truncation=True, max_length=64, stride=16, return_overflowing_tokens=True,
             padding=True, add_special_tokens=False),
    ],
)
def test_corpus_pairs_truncation_padding_overflow(rust_tok, ours, options):
    lines = [line for line in corpus() if line.strip()]
    firsts, seconds = lines[::2], lines[1::2][: len(lines[::2])]
    firsts = firsts[: len(seconds)]
    kw = {**ALL_KEYS, **options}
    try:
        want = rust_tok(firsts, seconds, **kw)
    except BaseException:  # tokenizers errors (or panics) on impossible strides/lengths
        with pytest.raises(ValueError):
            ours(firsts, seconds, **kw)  # ...and so do we, with a clear ValueError
        return
    got = ours(firsts, seconds, **kw)
    assert set(got) == set(want)
    n = len(want["input_ids"])
    assert _rows(got, n) == _rows(want, n)
    for i in range(n):
        assert got.word_ids(i) == want.word_ids(i)
        assert got.sequence_ids(i) == want.sequence_ids(i)
        assert got.tokens(i) == want.tokens(i)


def test_word_and_sequence_ids_without_offsets(rust_tok, ours):
    """word_ids()/sequence_ids() also work when offsets were not asked for."""
    q, ctx = "Where is the cat?", "The cat sat on the mat, naïvely unaffable. 猫はどこ？"
    want = rust_tok(q, ctx, truncation="only_second", max_length=12, stride=2,
                    return_overflowing_tokens=True)  # fmt: skip
    got = ours(q, ctx, truncation="only_second", max_length=12, stride=2, return_overflowing_tokens=True)
    assert dict(got) == dict(want)
    for i in range(len(want["input_ids"])):
        assert got.word_ids(i) == want.word_ids(i)
        assert got.sequence_ids(i) == want.sequence_ids(i)


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("cleanup", [None, False, True])
def test_decode_matches_transformers(rust_tok, ours, skip, cleanup):
    lines = [*corpus(), "Hello I'm a [MASK] model.", "I don't know, do not ask ! 's 've 're n't"]
    for line in lines:
        ids = rust_tok(line)["input_ids"]
        want = rust_tok.decode(ids, skip_special_tokens=skip,
                               clean_up_tokenization_spaces=True if cleanup is None else cleanup)  # fmt: skip
        assert ours.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=cleanup) == want


def test_model_card_example(ours):
    """The model card prints "Hello I'm a virtual model." - transformers' clean-up, on by
    default here because tokenizer_config.json does not say otherwise."""
    ids = ours.encode("Hello I'm a virtual model.")
    assert ours.decode(ids, skip_special_tokens=True) == "Hello I'm a virtual model."
    assert ours.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) == (
        "Hello I ' m a virtual model."
    )


def test_special_tokens_match_transformers(rust_tok, ours):
    for name in ("unk", "sep", "pad", "cls", "mask"):
        assert getattr(ours, f"{name}_token") == getattr(rust_tok, f"{name}_token")
        assert getattr(ours, f"{name}_token_id") == getattr(rust_tok, f"{name}_token_id")
    assert ours.all_special_ids == rust_tok.all_special_ids
    assert ours.all_special_tokens == rust_tok.all_special_tokens
    assert ours.vocab_size == rust_tok.vocab_size
    assert ours.model_max_length == rust_tok.model_max_length
    tokens = ["Hello", "hello", "[MASK]", "##ing", "nope-not-a-token"]
    assert ours.convert_tokens_to_ids(tokens) == rust_tok.convert_tokens_to_ids(tokens)
    ids = list(range(0, 119547, 997))
    assert ours.convert_ids_to_tokens(ids) == rust_tok.convert_ids_to_tokens(ids)


def test_tokenizer_json_alone(rust_tok, ours, tmp_path):
    """A directory with only tokenizer.json (written by transformers) loads and agrees."""
    saved = tmp_path / "saved"
    rust_tok.save_pretrained(saved)
    only = tmp_path / "only_json"
    only.mkdir()
    shutil.copy(saved / "tokenizer.json", only / "tokenizer.json")
    from_json = WordPieceTokenizer.from_pretrained(only)
    assert from_json.vocab == ours.vocab
    assert from_json.special_tokens_map == ours.special_tokens_map
    assert from_json.do_lower_case is False
    lines = corpus()
    assert dict(from_json(lines, **ALL_KEYS)) == dict(ours(lines, **ALL_KEYS))
    # and the full save (tokenizer.json + tokenizer_config.json) reads model_max_length too
    full = WordPieceTokenizer.from_pretrained(saved)
    assert full.model_max_length == 512
    assert dict(full(lines)) == dict(rust_tok(lines))


def test_lowercase_options_match_rust(shared_model_path):
    """do_lower_case / strip_accents options against a Rust BertTokenizer built the same way
    (the real vocabulary is cased, so this checks the rules, not the model's needs)."""
    transformers = require_module("transformers")
    lines = [line for line in corpus()]
    for lower, strip in [(True, None), (False, True), (True, False)]:
        want_tok = transformers.BertTokenizer.from_pretrained(
            shared_model_path, do_lower_case=lower, strip_accents=strip
        )
        got_tok = WordPieceTokenizer.from_pretrained(
            shared_model_path, do_lower_case=lower, strip_accents=strip
        )
        want = want_tok(lines, **ALL_KEYS)
        got = got_tok(lines, **ALL_KEYS)
        bad = [lines[i] for i in range(len(lines))
               if {k: got[k][i] for k in got} != {k: want[k][i] for k in want}]  # fmt: skip
        assert not bad, (lower, strip, bad[:2])


def test_legacy_options_match(shared_model_path):
    """NFC mode with lower-casing (final sigma by context) and never_split against legacy."""
    require_module("transformers")
    legacy = require_module("transformers.models.bert.tokenization_bert_legacy")
    lines = corpus()
    for options in [dict(do_lower_case=True), dict(do_lower_case=False, strip_accents=True),
                    dict(never_split=["[foo]", "ΟΔΟΣ."])]:  # fmt: skip
        want_tok = legacy.BertTokenizerLegacy.from_pretrained(shared_model_path, **options)
        got_tok = WordPieceTokenizer.from_pretrained(
            shared_model_path, unicode_normalization="NFC", **options
        )
        extra = ["x [foo] y [foo]z", "ΟΔΟΣ. ΟΔΟΣ.x", "ΣΑΣ ΟΔΥΣΣΕΥΣ"]
        for line in lines + extra:
            assert got_tok(line)["input_ids"] == want_tok(line)["input_ids"], (options, line)


@pytest.mark.parametrize(
    "options",
    [dict(max_length=5), dict(max_length=7, stride=1), dict(max_length=12, stride=3),
     dict(max_length=3), dict(max_length=9, add_special_tokens=False, stride=2)],
)  # fmt: skip
def test_pair_overflow_rows_are_windows_times_windows_like_rust(rust_tok, ours, options):
    """A pair truncated on both sides: tokenizers returns every window of the text with every
    window of the pair. Same rows, same order, on moderate sizes (the large case is refused,
    see test_tokenizer_unit.py)."""
    a = " ".join(sentences()[:3])
    b = " ".join(sentences()[3:6])
    kw = dict(truncation="longest_first", return_overflowing_tokens=True, **ALL_KEYS, **options)
    want = rust_tok(a, b, **kw)
    got = ours(a, b, **kw)
    n = len(want["input_ids"])
    print(f"{options}: {len(rust_tok.tokenize(a))} x {len(rust_tok.tokenize(b))} tokens -> {n} rows")
    assert n >= 4  # max_length=3 is a budget of 0: [CLS] [SEP] [SEP] rows and whole texts
    assert dict(got) == dict(want)
    for i in range(0, n, 37):
        assert got.word_ids(i) == want.word_ids(i) and got.sequence_ids(i) == want.sequence_ids(i)


def test_padding_with_overflow_is_rectangular_where_rust_is_ragged(rust_tok, ours):
    """max_length=2 leaves no room for text: tokenizers' main rows are [CLS] [SEP] and the
    overflow rows whole texts, longer than the padding target, which it leaves ragged. Ours
    are padded to the longest row; without the padding they are exactly transformers' rows."""
    texts = ["Hello world, this is longer.", "a", "Zürich ist schön"]
    kw = dict(truncation=True, max_length=2, return_overflowing_tokens=True, padding=True, **ALL_KEYS)
    want = rust_tok(texts, **kw)
    got = ours(texts, **kw)
    assert len({len(row) for row in want["input_ids"]}) > 1  # transformers: ragged
    assert len({len(row) for row in got["input_ids"]}) == 1
    assert got["overflow_to_sample_mapping"] == want["overflow_to_sample_mapping"]
    for i, want_ids in enumerate(want["input_ids"]):
        n, pad = len(want_ids), len(got["input_ids"][i]) - len(want_ids)
        for key in want:
            if key != "overflow_to_sample_mapping":
                assert got[key][i][:n] == want[key][i], key
        assert got["input_ids"][i][n:] == [ours.pad_token_id] * pad
        assert got["attention_mask"][i][n:] == [0] * pad
