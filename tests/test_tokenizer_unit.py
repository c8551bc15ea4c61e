"""Unit tests of each rule on a tiny in-memory vocabulary (no transformers needed).

Modelled on google-research/bert's tokenization_test.py: the expected outputs are BERT's
documented behaviour for these inputs, not something read off our own output.
"""

from __future__ import annotations

import json
import random
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tokenizer import WordPieceTokenizer, _unicode
from tokenizer.wordpiece import load_vocab_file

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "want", "##want", "##ed", "wa", "un",
         "runn", "##ing", ",", "low", "lowest", "hello", "world", "!", "?", "a", "b", "##b", "ab",
         "中", "国", "é", "e", "cafe", "café", "x", "$", "+", "=", "<", ">", "^", "|", "~", "the",
         "of", "[", "]", "mask", "'", "s", "##s", "aff", "##aff", "##able"]  # fmt: skip


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(VOCAB)


def test_wordpiece_greedy_longest_match_first(tok):
    assert tok.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tok.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert tok.tokenize("lowest") == ["lowest"]  # longest match, not "low" + ...
    assert tok.tokenize("") == []
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]


def test_max_input_chars_per_word():
    t = WordPieceTokenizer(VOCAB, max_input_chars_per_word=4)
    assert t.tokenize("want wantwant") == ["want", "[UNK]"]
    assert WordPieceTokenizer(VOCAB).tokenize("b" * 101) == ["[UNK]"]


def test_chinese_chars_are_words(tok):
    assert tok.tokenize("ah博推zz中国") == ["[UNK]", "[UNK]", "[UNK]", "[UNK]", "中", "国"]
    no_cjk = WordPieceTokenizer(VOCAB, tokenize_chinese_chars=False)
    assert no_cjk.tokenize("中国") == ["[UNK]"]


def test_punctuation_split_including_ascii_symbols(tok):
    assert tok.tokenize("hello,world!?") == ["hello", ",", "world", "!", "?"]
    assert tok.tokenize("a$b+a=b<a>b^a|b~x") == ["a", "$", "b", "+", "a", "=", "b", "<", "a", ">",
                                                 "b", "^", "a", "|", "b", "~", "x"]  # fmt: skip


def test_lower_case_and_accents():
    lower = WordPieceTokenizer(VOCAB, do_lower_case=True)  # strip_accents follows: True
    assert lower.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "[UNK]", "[UNK]", "[UNK]", "?"]
    assert lower.tokenize("Café") == ["cafe"]
    keep = WordPieceTokenizer(VOCAB, do_lower_case=True, strip_accents=False)
    assert keep.tokenize("Café") == ["café"]
    strip_only = WordPieceTokenizer(VOCAB, strip_accents=True)
    assert strip_only.tokenize("café Hello") == ["cafe", "[UNK]"]
    cased = WordPieceTokenizer(VOCAB)
    assert cased.tokenize("Café hello") == ["[UNK]", "hello"]


def test_clean_text_and_whitespace(tok):
    assert tok.tokenize("a\u200bb") == ["ab"]  # zero-width space: removed, word not split
    assert tok.tokenize("a\x00b\ufffdx") == ["[UNK]"]  # "abx": NUL and U+FFFD are dropped
    assert tok.tokenize("a\u00a0b\u3000a\tb\nx") == ["a", "b", "a", "b", "x"]
    assert tok.tokenize("a\u00adb") == ["ab"]  # soft hyphen is a format character
    raw = WordPieceTokenizer(VOCAB, clean_text=False)
    assert raw.tokenize("a\u200bb") == ["[UNK]"]


def test_character_rules():
    assert _unicode.is_whitespace(" ") and _unicode.is_whitespace("\t") and _unicode.is_whitespace("\u00a0")
    assert not _unicode.is_whitespace("A") and not _unicode.is_whitespace("-")
    assert _unicode.is_control("\u0005") and _unicode.is_control("\u200b")
    assert not _unicode.is_control("A") and not _unicode.is_control(" ")
    assert not _unicode.is_control("\t") and not _unicode.is_control("\r")
    for ch in "-$`.":
        assert _unicode.is_punctuation(ch)
    assert not _unicode.is_punctuation("A") and not _unicode.is_punctuation(" ")
    assert _unicode.is_chinese_char(ord("中")) and not _unicode.is_chinese_char(ord("か"))
    # the documented Rust/Python differences
    assert _unicode.is_chinese_char(0x2B820, "python") and not _unicode.is_chinese_char(0x2B820, "rust")
    assert _unicode.is_control("\u0378", "python") and not _unicode.is_control("\u0378", "rust")
    assert _unicode.is_punctuation("\u2e52", "python") and not _unicode.is_punctuation("\u2e52", "rust")
    assert _unicode.is_whitespace("\u2028", "rust") and _unicode.is_whitespace("\u2028", "python")


class _NoUnicodedata:
    """Stands in for the unicodedata module: any use is a test failure."""

    def __getattr__(self, name):
        raise AssertionError(f"the default mode called unicodedata.{name}")


def test_default_mode_does_not_depend_on_pythons_unicodedata(monkeypatch):
    """The default mode reads frozen tables (Rust's Unicode 8.0 classes), so it gives the same
    tokens on every Python; the code points below changed category between Python 3.11 and
    3.13 (Unicode 14 -> 15.1) but are plain word characters for the Rust tokenizer."""
    import tokenizer.basic

    monkeypatch.setattr(_unicode, "unicodedata", _NoUnicodedata())
    monkeypatch.setattr(tokenizer.basic, "unicodedata", _NoUnicodedata())
    _unicode.code_point_classes.cache_clear()
    try:
        t = WordPieceTokenizer(VOCAB, word_cache_size=16)
        text = "a\U00011b00b a\U00011f43b a\U00013439b hello, world! 中国 a\u200bb \u0378 x\u3000x"
        got = t(text, return_offsets_mapping=True)
        assert t.tokenize("a\U00011b00b a\U00011f43b a\U00013439b") == ["[UNK]"] * 3
        assert got.tokens()[4:] == ["hello", ",", "world", "!", "中", "国", "ab", "[UNK]", "x", "x",
                                    "[SEP]"]  # fmt: skip
        for cp in (0x11B00, 0x11F43, 0x13439, 0x0378, 0x1E95E):
            ch = chr(cp)
            assert not (_unicode.is_punctuation(ch) or _unicode.is_removed(ch) or _unicode.is_whitespace(ch))
    finally:
        _unicode.code_point_classes.cache_clear()


def test_special_tokens_in_text(tok):
    assert tok.tokenize("the[MASK]of") == ["the", "[MASK]", "of"]
    assert tok.tokenize("the [mask] of") == ["the", "[", "mask", "]", "of"]
    enc = tok("the[MASK]of", return_offsets_mapping=True, return_special_tokens_mask=True)
    assert enc["offset_mapping"] == [(0, 0), (0, 3), (3, 9), (9, 11), (0, 0)]
    assert enc["special_tokens_mask"] == [1, 0, 0, 0, 1]
    assert enc.word_ids() == [None, 0, 1, 2, None]


def test_empty_string_gives_cls_sep(tok):
    assert tok("")["input_ids"] == [tok.cls_token_id, tok.sep_token_id]
    assert tok.encode("") == [2, 3]


def test_offsets_point_into_original_text(tok):
    text = "x\u200bab \u4e2d lowest"
    enc = tok(text, return_offsets_mapping=True)
    spans = [text[a:b] for a, b in enc["offset_mapping"][1:-1]]
    assert spans == ["x\u200bab", "中", "lowest"]
    assert enc["offset_mapping"][0] == (0, 0)


def test_pair_truncation_and_overflow(tok):
    enc = tok("a b a b a b", "x x", truncation="only_first", max_length=7, stride=1,
              return_overflowing_tokens=True)  # fmt: skip
    ids = enc["input_ids"]
    # budget 7 - 3 = 4 -> first text keeps 2 tokens; windows of 2 overlapping by 1
    assert [row[1:3] for row in ids] == [[19, 20], [20, 19], [19, 20], [20, 19], [19, 20]]
    assert enc["overflow_to_sample_mapping"] == [0] * 5
    assert all(row[3:] == [3, 29, 29, 3] for row in ids)
    assert enc.sequence_ids(0) == [None, 0, 0, None, 1, 1, None]


def test_padding(tok):
    enc = tok(["a", "a b a"], padding=True)
    assert enc["input_ids"] == [[2, 19, 3, 0, 0], [2, 19, 20, 19, 3]]
    assert enc["attention_mask"] == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    enc = tok(["a"], padding="max_length", max_length=4)
    assert enc["input_ids"] == [[2, 19, 3, 0]]


def test_decode(tok):
    ids = tok.encode("un want hello , world !")
    assert tok.decode(ids) == "[CLS] un want hello, world! [SEP]"
    assert tok.decode(tok.encode("unwanted"), skip_special_tokens=True) == "unwanted"
    assert tok.decode(tok.encode("a ' s"), skip_special_tokens=True) == "a's"
    raw = tok.decode(tok.encode("a ' s"), skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert raw == "a ' s"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([10_000])


def test_bad_input_types(tok):
    for bad in (None, 3, b"bytes", ["ok", 5]):
        with pytest.raises(TypeError, match=type(bad if not isinstance(bad, list) else 5).__name__):
            tok(bad)
    with pytest.raises(TypeError, match="bytes"):
        tok.tokenize(b"abc")
    with pytest.raises(TypeError):
        tok.encode("a", 7)


def test_lone_surrogates_are_a_value_error(tok):
    with pytest.raises(ValueError, match="surrogate U\\+D800"):
        tok("abc\ud800def")
    with pytest.raises(ValueError, match="surrogate"):
        tok(["fine", "\udfff"])


def test_bad_options(tok):
    with pytest.raises(ValueError, match="padding"):
        tok("a", padding="sideways")
    with pytest.raises(ValueError, match="truncation"):
        tok("a", truncation="middle")
    with pytest.raises(ValueError, match="only_second"):
        tok("a b a b", truncation="only_second", max_length=3)
    with pytest.raises(ValueError, match="stride"):
        tok("a b a b a b", truncation=True, max_length=4, stride=3)
    with pytest.raises(ValueError, match="unicode_normalization"):
        WordPieceTokenizer(VOCAB, unicode_normalization="NFKC")
    with pytest.raises(ValueError, match="mask_token"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])


def test_vocab_file_errors_name_file_and_line(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        load_vocab_file(missing)
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[UNK]\n\n[CLS]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab.txt, line 3: empty token"):
        load_vocab_file(bad)
    bad.write_text("[PAD]\n[UNK]\n[PAD]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3: token '\[PAD\]' repeats line 1"):
        load_vocab_file(bad)
    bad.write_bytes(b"[PAD]\n[UNK]\n\xff\xfe\n")
    with pytest.raises(ValueError, match=r"line 3: vocabulary is not valid UTF-8"):
        load_vocab_file(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"neither vocab\.txt nor tokenizer\.json"):
        WordPieceTokenizer.from_pretrained(empty)
    (tmp_path / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    bad.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokenizer_config\.json, line 1"):
        WordPieceTokenizer.from_pretrained(tmp_path)


def test_from_pretrained_reads_config(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(
        '{"do_lower_case": true, "model_max_length": 8, "clean_up_tokenization_spaces": false}'
    )
    t = WordPieceTokenizer.from_pretrained(tmp_path)
    assert t.do_lower_case and t.model_max_length == 8 and not t.clean_up_tokenization_spaces
    assert t.tokenize("HELLO") == ["hello"]
    assert len(t("a " * 20, truncation=True)["input_ids"]) == 8
    assert WordPieceTokenizer.from_pretrained(tmp_path, do_lower_case=False).tokenize("HELLO") == ["[UNK]"]


def test_huge_input(tok):
    """10 MB of text: no recursion limit, and the tokens of 8 copies are 8 times the tokens.

    No timing is asserted (tests never time); a quadratic path would not finish at this size
    (~10^13 steps), so it shows as a hang. benchmarks/bench_tokenizer.py measures speed.
    """
    unit = "want unwanted a\u200bb 中国, lowest! " * 8
    small = unit * (1_250_000 // len(unit))
    big = small * 8  # ~10 MB
    n_small = len(tok.encode(small))
    n_big = len(tok.encode(big))
    assert n_big - 2 == 8 * (n_small - 2)
    one_word = "ab" * 5_000_000  # a single 10M-character word
    assert tok.tokenize(one_word) == ["[UNK]"]
    enc = tok("x" + "\u200b" * 1_000_000 + "x", return_offsets_mapping=True)
    assert enc["offset_mapping"][1:-1] == [(0, 1_000_002)]  # one word "xx", [UNK] in this vocab


def test_word_cache_is_bounded():
    t = WordPieceTokenizer(VOCAB, word_cache_size=64)
    t.tokenize(" ".join(f"w{i}" for i in range(1000)))
    assert len(t._cache) <= 64


def _many_texts(n: int, seed: int = 0) -> list[str]:
    """Texts with many distinct words, so that a small word cache evicts all the time."""
    rng = random.Random(seed)
    parts = ["want", "un", "##", "runn", "ing", "low", "est", "é", "中", "a", "b", "x", ",", "!", " "]
    return [" ".join("".join(rng.choices(parts, k=rng.randint(1, 4))) for _ in range(12)) for _ in range(n)]


@pytest.mark.parametrize("cache_size", [16, 64, 65536])
def test_shared_tokenizer_in_8_threads_equals_sequential(cache_size):
    """One tokenizer shared by 8 threads (the word cache is filled and evicted concurrently)
    gives exactly what a fresh tokenizer gives sequentially, and never raises."""
    texts = _many_texts(3000)
    reference = WordPieceTokenizer(VOCAB)
    want = [(reference.encode(t), dict(reference(t, return_offsets_mapping=True))) for t in texts]
    shared = WordPieceTokenizer(VOCAB, word_cache_size=cache_size)

    def work(k: int) -> list[tuple[int, tuple]]:
        return [(i, (shared.encode(texts[i]), dict(shared(texts[i], return_offsets_mapping=True))))
                for i in range(k, len(texts), 8)]  # fmt: skip

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to provoke races
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = [r for chunk in pool.map(work, range(8)) for r in chunk]  # re-raises
    finally:
        sys.setswitchinterval(interval)
    assert len(results) == len(texts)
    assert all(got == want[i] for i, got in results)
    assert len(shared._cache) <= 2 * max(cache_size, 16)  # still bounded


# --- hostile configuration files and arguments --------------------------------------------


def _model_dir(tmp_path, config_bytes: bytes):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_bytes(config_bytes)
    return tmp_path


def test_config_not_utf8_names_the_file(tmp_path):
    path = _model_dir(tmp_path, b'{"do_lower_case": "\xff\xfe"}')
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: not valid UTF-8"):
        WordPieceTokenizer.from_pretrained(path)


def test_deeply_nested_config_is_a_value_error(tmp_path):
    path = _model_dir(tmp_path, b'{"x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: JSON nested too deeply"):
        WordPieceTokenizer.from_pretrained(path)


def test_deeply_nested_tokenizer_json_is_a_value_error(tmp_path):
    (tmp_path / "tokenizer.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(ValueError, match=r"tokenizer\.json: JSON nested too deeply"):
        WordPieceTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("value", [b"NaN", b'"abc"', b"-3", b"true", b"[512]", b"2.5"])
def test_bad_model_max_length_in_config_names_file_and_field(tmp_path, value):
    path = _model_dir(tmp_path, b'{"model_max_length": ' + value + b"}")
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: model_max_length must be"):
        WordPieceTokenizer.from_pretrained(path)


def test_negative_model_max_length_is_refused_not_silently_ignored():
    """-3 would make every truncation budget negative, which tokenizers reads as "do not
    truncate": refused instead of silently switching truncation off."""
    with pytest.raises(ValueError, match="model_max_length"):
        WordPieceTokenizer(VOCAB, model_max_length=-3)
    assert WordPieceTokenizer(VOCAB, model_max_length=1e30).model_max_length == int(1e30)
    assert WordPieceTokenizer(VOCAB, model_max_length=float("inf")).model_max_length > 10**20


@pytest.mark.parametrize(
    ("value", "message"),
    [(b"[1]", r"never_split entries must be str, got int 1"),
     (b'"ab"', r"never_split must be a list of words, got the str 'ab'"),
     (b'[""]', r"never_split entries must be non-empty words"),
     (b'["a b"]', r"never_split entries .* without whitespace"),
     (b'{"a": 1}', r"never_split must be a list of words")],
)  # fmt: skip
def test_bad_never_split_in_config_names_file_and_field(tmp_path, value, message):
    """A bare string would be read by transformers' legacy tokenizer as a set of characters
    ("ab" -> {"a", "b"}): refused, like non-string entries (which could never match)."""
    path = _model_dir(tmp_path, b'{"never_split": ' + value + b"}")
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: " + message):
        WordPieceTokenizer.from_pretrained(path)
    with pytest.raises((TypeError, ValueError), match=message):
        WordPieceTokenizer(VOCAB, never_split=json.loads(value))


def test_override_replaces_a_bad_config_field(tmp_path):
    path = _model_dir(tmp_path, b'{"model_max_length": "abc", "do_lower_case": true}')
    t = WordPieceTokenizer.from_pretrained(path, model_max_length=8)
    assert t.model_max_length == 8 and t.do_lower_case


def test_numpy_integers_are_integers_and_bools_are_not(tok):
    np = pytest.importorskip("numpy")
    text = "a b a b a b a b"
    plain = tok(text, truncation=True, max_length=6, stride=2, return_overflowing_tokens=True)
    for kind in (np.int64, np.int32, np.int16, np.uint8):
        got = tok(text, truncation=True, max_length=kind(6), stride=kind(2), return_overflowing_tokens=True)
        assert dict(got) == dict(plain)
        assert tok.convert_ids_to_tokens(kind(5)) == VOCAB[5]
        assert tok.convert_ids_to_tokens([kind(5), 6]) == VOCAB[5:7]
        assert got.tokens(kind(1)) == plain.tokens(1)
    assert tok.decode(np.array([19, 20], dtype=np.int16)) == tok.decode([19, 20])
    assert WordPieceTokenizer(VOCAB, max_input_chars_per_word=np.int64(4)).tokenize("wantwant") == ["[UNK]"]
    for bad in (True, 2.0, "2"):
        with pytest.raises(ValueError, match="stride"):
            tok(text, truncation=True, max_length=6, stride=bad)
        with pytest.raises(ValueError, match="max_length"):
            tok(text, truncation=True, max_length=bad)
        with pytest.raises(ValueError, match="max_input_chars_per_word"):
            WordPieceTokenizer(VOCAB, max_input_chars_per_word=bad)
        with pytest.raises(TypeError, match="token ids must be int"):
            tok.convert_ids_to_tokens([bad])
    for bad in (0, -1, np.int64(0)):
        with pytest.raises(ValueError, match="max_input_chars_per_word must be a positive int"):
            WordPieceTokenizer(VOCAB, max_input_chars_per_word=bad)


# --- results that must not depend on what the caller does afterwards ------------------------


def test_encoding_does_not_see_later_changes_to_the_callers_list(tok):
    texts = ["hello world", "a b"]
    enc = tok(texts)
    texts[0] = "lowest lowest lowest"
    assert enc.tokens(0) == ["[CLS]", "hello", "world", "[SEP]"]
    assert enc.word_ids(0) == [None, 0, 1, None]


def test_padding_makes_every_row_the_same_length(tok):
    """max_length=2 leaves no room for the text: tokenizers' main row is [CLS] [SEP] and the
    overflow row the whole text, longer than the padding target; every row is padded to the
    longest (transformers leaves them ragged; see the differential test)."""
    for padding in (True, "max_length"):
        enc = tok(["a b a", "a"], truncation=True, max_length=2, return_overflowing_tokens=True,
                  padding=padding, return_offsets_mapping=True)  # fmt: skip
        assert len({len(row) for row in enc["input_ids"]}) == 1, enc["input_ids"]
        for key in ("attention_mask", "token_type_ids", "offset_mapping"):
            assert [len(r) for r in enc[key]] == [len(r) for r in enc["input_ids"]]
        assert enc["input_ids"][1][:5] == [2, 19, 20, 19, 3]  # the overflow: the whole text
        assert len(enc.tokens(0)) == len(enc["input_ids"][0])


# --- bounded work ---------------------------------------------------------------------------


def _count_windows(monkeypatch) -> list[int]:
    """Count the windows (slices of a token sequence) the tokenizer builds."""
    from tokenizer.encoder import TokenSeq

    calls = [0]
    original = TokenSeq.window

    def counting(self, lo, hi):
        calls[0] += 1
        return original(self, lo, hi)

    monkeypatch.setattr(TokenSeq, "window", counting)
    return calls


def test_pair_overflow_product_is_refused_before_it_is_built(tok, monkeypatch):
    """2,000 tokens each, max_length=5: tokenizers builds every window of the text with every
    window of the pair (4,000,000 rows). Refused with the count, before any row is built."""
    calls = _count_windows(monkeypatch)
    a, b = " ".join(["a"] * 2000), " ".join(["b"] * 2000)
    with pytest.raises(ValueError, match=r"input 0: .* 4,000,000 rows \(2,000 windows of the text x 2,000"):
        tok(a, b, truncation=True, max_length=5, return_overflowing_tokens=True)
    assert calls[0] == 0
    # the same call without overflow is one row, built from one window of each text
    enc = tok(a, b, truncation=True, max_length=5)
    assert enc["input_ids"] == [2, 19, 3, 20, 3] and calls[0] <= 2
    # a smaller product fits and has exactly windows x windows rows
    enc = tok(a[:199], b[:199], truncation=True, max_length=5, return_overflowing_tokens=True)
    assert len(enc["input_ids"]) == 100 * 100


def test_max_overflow_tokens_is_the_bound(tok):
    a = " ".join(["a"] * 50)
    small = WordPieceTokenizer(VOCAB, max_overflow_tokens=100)
    # budget 3, each window one token after the previous: 48 windows of 3 (+2 special) tokens
    with pytest.raises(ValueError, match=r"48 rows .*about 240 tokens, over the limit of 100"):
        small(a, truncation=True, max_length=5, stride=2, return_overflowing_tokens=True)
    assert len(small(a, truncation=True, max_length=25, return_overflowing_tokens=True)["input_ids"]) == 3
    with pytest.raises(ValueError, match="max_overflow_tokens must be a positive int"):
        WordPieceTokenizer(VOCAB, max_overflow_tokens=0)


def test_large_stride_without_overflow_builds_one_window(tok, monkeypatch):
    """stride close to max_length moves each window by one token: 20,000 windows of a 20,000
    token text. Without return_overflowing_tokens only the first one is needed."""
    calls = _count_windows(monkeypatch)
    text = " ".join(["a"] * 20_000)
    enc = tok(text, truncation=True, max_length=12, stride=9)
    assert enc["input_ids"] == [2, *[19] * 10, 3]
    assert calls[0] <= 1


def test_wordpiece_lookups_are_bounded(tok):
    """The documented bound: a word of n characters costs at most n * min(n, L) lookups (L the
    longest vocabulary entry), each of a string of at most min(n, L) characters."""
    from tokenizer.wordpiece import wordpiece

    class CountingVocab(dict):
        lookups = 0

        def __contains__(self, key):
            CountingVocab.lookups += 1
            return dict.__contains__(self, key)

    vocab = CountingVocab({t: i for i, t in enumerate([*VOCAB, "x" * 40, "##b"])})
    longest = max(map(len, vocab))
    for word in ("b" * 100, "ab" * 50, "x" * 39 + "q"):
        CountingVocab.lookups = 0
        wordpiece(word, vocab, longest)
        n = len(word)
        assert CountingVocab.lookups <= 1 + n * min(n, longest), (word, CountingVocab.lookups)


def test_package_carries_the_marker_numpy_distilbert_checks():
    """PyPI's unrelated `tokenizer` package has the same import name; numpy_distilbert tells
    ours from it by this marker (an impostor has no such attribute)."""
    import tokenizer

    assert tokenizer.NUMPY_DISTILBERT_TOKENIZER is True
    assert "NUMPY_DISTILBERT_TOKENIZER" in tokenizer.__all__
