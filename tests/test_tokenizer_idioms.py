"""The transformers idioms the tokenizer supports, each against transformers' Rust
`BertTokenizer` (and, where the Rust one lacks the method, `BertTokenizerLegacy`) on the real
vocabulary and the multilingual corpus.
"""

from __future__ import annotations

import json
import logging

import pytest
from conftest import require_module
from tokenizer_corpus import corpus

from tokenizer import WordPieceTokenizer

DETAIL = dict(return_offsets_mapping=True, return_special_tokens_mask=True, return_length=True)


@pytest.fixture(scope="module")
def toks(bert_tokenizers):
    return bert_tokenizers


@pytest.fixture(scope="module")
def np():
    return require_module("numpy")


def _lines() -> list[str]:
    return [line for line in corpus() if line.strip()]


def _pairs() -> tuple[list[str], list[str]]:
    lines = _lines()
    firsts, seconds = lines[::2], lines[1::2]
    return firsts[: len(seconds)], seconds


def _plain(enc) -> dict:
    """An encoding's values as Python lists (numpy arrays and tuples too)."""
    out = {}
    for key, value in enc.items():
        out[key] = value.tolist() if hasattr(value, "tolist") else json.loads(json.dumps(value))
    return out


def _same_rows(got, want) -> None:
    assert _plain(got) == _plain(want)
    for i in range(len(want["input_ids"]) if isinstance(want["input_ids"][0], list) else 1):
        assert got.word_ids(i) == want.word_ids(i), i
        assert got.sequence_ids(i) == want.sequence_ids(i), i
        assert got.tokens(i) == want.tokens(i), i


# --- return_tensors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, options",
    [
        (("Hello I'm a [MASK] model.",), {}),
        (
            ("Where is it?", "It is here, naïvely."),
            dict(return_overflowing_tokens=True, truncation=True, max_length=12, stride=1, padding=True),
        ),
        ((_lines(),), dict(padding=True)),
        ((_lines(),), dict(padding="max_length", truncation=True, max_length=32)),
        (
            (*_pairs(),),
            dict(padding=True, truncation=True, max_length=48, stride=4, return_overflowing_tokens=True),
        ),
    ],
)
def test_return_tensors_np_is_int64_like_transformers(toks, np, args, options):
    want = toks["rust"](*args, return_tensors="np", **DETAIL, **options)
    got = toks["ours"](*args, return_tensors="np", **DETAIL, **options)
    assert list(got) == list(want)
    for key in want:
        assert isinstance(got[key], np.ndarray) and got[key].dtype == np.int64 == want[key].dtype, key
        assert got[key].shape == want[key].shape, key
        assert np.array_equal(got[key], want[key]), key


@pytest.mark.parametrize("framework", ["pt", "tf", "jax", "mlx"])
def test_return_tensors_of_other_frameworks_are_refused_clearly(toks, framework):
    with pytest.raises(ValueError, match=f"return_tensors='{framework}' needs .*return_tensors='np'"):
        toks["ours"]("hello", return_tensors=framework)


@pytest.mark.parametrize("value", ["xx", "NP", 1, True])
def test_return_tensors_unknown_is_refused(toks, value):
    with pytest.raises(ValueError, match="return_tensors must be None or 'np'"):
        toks["ours"]("hello", return_tensors=value)


def test_return_tensors_np_refuses_ragged_rows(toks):
    """transformers returns an object array of arrays here; we refuse and say what to do."""
    with pytest.raises(ValueError, match="different lengths; pass padding=True"):
        toks["ours"](["a", "a b c"], return_tensors="np")


# --- attribute access -----------------------------------------------------------------------------


def test_keys_read_as_attributes(toks):
    args = (["Hello there.", "x"], ["a pair", "b"])
    want = toks["rust"](*args, return_offsets_mapping=True, padding=True)
    got = toks["ours"](*args, return_offsets_mapping=True, padding=True)
    for key in want:
        assert getattr(got, key) == got[key] == want[key]
    with pytest.raises(AttributeError):
        _ = want.no_such_key
    with pytest.raises(AttributeError, match=r"no attribute or key 'no_such_key' .*input_ids"):
        _ = got.no_such_key


# --- is_split_into_words --------------------------------------------------------------------------


def _word_lists() -> list[list[str]]:
    lists = [line.split() for line in _lines()]
    # words that the pre-tokenizer splits again, special tokens inside words, spaces in a word,
    # empty words and an empty list
    lists += [["don't", "wörld[MASK]x", "  ", "x y", "", "a.b,c"], [], ["[CLS]", "é\u0301", "猫はどこ"]]
    return lists


def test_is_split_into_words_single_batch_and_pairs(toks):
    lists = _word_lists()
    for words in lists[:20] + lists[-3:]:
        want = toks["rust"](words, is_split_into_words=True, **DETAIL)
        got = toks["ours"](words, is_split_into_words=True, **DETAIL)
        _same_rows(got, want)
    want = toks["rust"](lists, is_split_into_words=True, padding=True, **DETAIL)
    got = toks["ours"](lists, is_split_into_words=True, padding=True, **DETAIL)
    _same_rows(got, want)
    firsts, seconds = lists[::2], lists[1::2]
    firsts = firsts[: len(seconds)]
    options = dict(truncation=True, max_length=24, stride=4, return_overflowing_tokens=True, padding=True)
    want = toks["rust"](firsts, seconds, is_split_into_words=True, **DETAIL, **options)
    got = toks["ours"](firsts, seconds, is_split_into_words=True, **DETAIL, **options)
    _same_rows(got, want)
    # word ids without offsets (computed lazily) are the same
    got = toks["ours"](lists, is_split_into_words=True)
    assert [got.word_ids(i) for i in range(len(lists))] == [
        toks["rust"](lists, is_split_into_words=True).word_ids(i) for i in range(len(lists))
    ]


def test_is_split_into_words_needs_lists_of_words(toks):
    with pytest.raises(TypeError, match="text must be a list of words"):
        toks["ours"]("not split", is_split_into_words=True)
    with pytest.raises(TypeError, match=r"text\[1\] must be str"):
        toks["ours"](["a", 3], is_split_into_words=True)


# --- a batch of (text, pair) tuples ----------------------------------------------------------------


def test_batch_of_text_pair_tuples(toks):
    firsts, seconds = _pairs()
    batch = [*zip(firsts, seconds, strict=True), "a single text", ["a list", "pair"], ("x", "")]
    options = dict(truncation=True, max_length=40, stride=6, return_overflowing_tokens=True, padding=True)
    want = toks["rust"](batch, **DETAIL, **options)
    got = toks["ours"](batch, **DETAIL, **options)
    _same_rows(got, want)


def test_batch_items_that_are_not_texts_or_pairs_are_refused(toks):
    with pytest.raises(ValueError, match=r"text\[0\] must be a str or a \(text, pair\) tuple, got 3 items"):
        toks["ours"]([("a", "b", "c")])


# --- padding_side, truncation_side, pad_to_multiple_of ----------------------------------------------


@pytest.fixture(scope="module")
def left_toks(shared_model_path):
    transformers = require_module("transformers")
    sides = dict(padding_side="left", truncation_side="left")
    return {
        "rust": transformers.BertTokenizer.from_pretrained(shared_model_path, **sides),
        "ours": WordPieceTokenizer.from_pretrained(shared_model_path, **sides),
    }


SIDE_OPTIONS = [
    dict(padding=True),
    dict(padding=True, pad_to_multiple_of=8),
    dict(padding="max_length", max_length=32, pad_to_multiple_of=16, truncation=True),
    dict(padding="max_length", max_length=20, pad_to_multiple_of=16, truncation=True),  # refused
    dict(truncation=True, max_length=24, stride=5, return_overflowing_tokens=True, padding=True),
    dict(truncation="only_second", max_length=40, stride=8, return_overflowing_tokens=True),
    dict(
        truncation="only_first", max_length=40, stride=3, return_overflowing_tokens=True, padding="max_length"
    ),
    dict(truncation="longest_first", max_length=17, padding="max_length", pad_to_multiple_of=3),
    dict(truncation=True, max_length=7, stride=1, return_overflowing_tokens=True, padding=True),
    dict(pad_to_multiple_of=8),  # no padding: the multiple does nothing
]


@pytest.mark.parametrize("options", SIDE_OPTIONS)
def test_left_sides_as_tokenizer_options(left_toks, options):
    firsts, seconds = _pairs()
    assert left_toks["ours"].padding_side == left_toks["rust"].padding_side == "left"
    assert left_toks["ours"].truncation_side == left_toks["rust"].truncation_side == "left"
    for args in ((firsts, seconds), (firsts,)):
        _same_or_both_refuse(left_toks["ours"], left_toks["rust"], args, {**DETAIL, **options})


def _same_or_both_refuse(ours, rust, args, options) -> None:
    try:
        want = rust(*args, **options)
    except BaseException:  # tokenizers panics on strides too large for a pair's budget
        with pytest.raises(ValueError):
            ours(*args, **options)  # ...and we refuse with a clear ValueError
        return
    _same_rows(ours(*args, **options), want)


@pytest.mark.parametrize("options", SIDE_OPTIONS[:4])
def test_padding_side_as_call_argument(toks, options):
    _same_or_both_refuse(toks["ours"], toks["rust"], _pairs(), {**DETAIL, **options, "padding_side": "left"})
    assert toks["ours"].padding_side == "right"  # the call argument does not stick


def test_sides_set_as_attributes(shared_model_path, left_toks):
    ours = WordPieceTokenizer.from_pretrained(shared_model_path)
    ours.padding_side = ours.truncation_side = "left"
    firsts, seconds = _pairs()
    options = dict(truncation=True, max_length=24, stride=5, return_overflowing_tokens=True, padding=True)
    _same_rows(
        ours(firsts, seconds, **DETAIL, **options), left_toks["rust"](firsts, seconds, **DETAIL, **options)
    )


def test_bad_sides_and_multiples_are_refused(toks, shared_model_path, tmp_path):
    with pytest.raises(ValueError, match="padding_side must be 'left' or 'right', got 'up'"):
        toks["ours"]("a", padding=True, padding_side="up")
    with pytest.raises(ValueError, match="truncation_side must be 'left' or 'right', got 'middle'"):
        WordPieceTokenizer.from_pretrained(shared_model_path, truncation_side="middle")
    with pytest.raises(ValueError, match=r"pad_to_multiple_of must be a positive int, got 0"):
        toks["ours"]("a", padding=True, pad_to_multiple_of=0)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    (tmp_path / "tokenizer_config.json").write_text('{"padding_side": "top"}')
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: padding_side must be 'left' or 'right'"):
        WordPieceTokenizer.from_pretrained(tmp_path)


# --- pad() -----------------------------------------------------------------------------------------


def _pad_cases(ours_tok) -> list:
    enc = ours_tok(_lines()[:6], return_special_tokens_mask=True)
    single = ours_tok("Hello there.")
    return [
        (dict(enc), {}),
        (dict(enc), dict(pad_to_multiple_of=8)),
        (dict(enc), dict(padding="max_length", max_length=64, padding_side="left")),
        (dict(enc), dict(padding=False)),
        ([{k: enc[k][i] for k in enc} for i in range(6)], dict(padding="longest")),
        ({"input_ids": enc["input_ids"]}, {}),
        (dict(single), dict(padding="max_length", max_length=9)),
        (dict(single), {}),
        (dict(single), dict(pad_to_multiple_of=5, padding_side="left")),
    ]


def test_pad_matches_transformers(toks, np):
    for inputs, options in _pad_cases(toks["ours"]):
        for return_tensors in (None, "np"):
            if return_tensors and options.get("padding") is False:
                with pytest.raises(ValueError, match="different lengths"):  # transformers: object arrays
                    toks["ours"].pad(inputs, return_tensors=return_tensors, **options)
                continue
            copy = json.loads(json.dumps(inputs))  # transformers' pad changes its input in place
            want = toks["rust"].pad(copy, return_tensors=return_tensors, **options)
            got = toks["ours"].pad(json.loads(json.dumps(inputs)), return_tensors=return_tensors, **options)
            assert _plain(got) == _plain(want), (options, return_tensors)
            if return_tensors:
                assert all(v.dtype == np.int64 for v in got.values())


def test_pad_takes_numpy_arrays_and_gives_them_back(toks, np):
    enc = toks["ours"](["a b c", "d"], padding=True, return_tensors="np")
    enc = {k: list(v) for k, v in enc.items()}  # a list of arrays per key
    want = toks["rust"].pad(dict(enc), padding="max_length", max_length=8)
    got = toks["ours"].pad(dict(enc), padding="max_length", max_length=8)
    assert isinstance(got["input_ids"], np.ndarray) and _plain(got) == _plain(want)


def test_pad_without_input_ids_is_refused(toks):
    with pytest.raises(ValueError, match="must include 'input_ids'"):
        toks["ours"].pad({"token_type_ids": [0, 0]})
    with pytest.raises(ValueError, match="per-token information"):
        toks["ours"].pad({"input_ids": [1, 2]}).word_ids()


# --- save_pretrained ------------------------------------------------------------------------------


def test_save_pretrained_loads_back_in_transformers_and_ours(toks, tmp_path, shared_model_path):
    transformers = require_module("transformers")
    options = dict(padding_side="left", truncation_side="left", model_max_length=128)
    ours = WordPieceTokenizer.from_pretrained(shared_model_path, **options)
    written = ours.save_pretrained(tmp_path / "saved")
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == [
        "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"]  # fmt: skip
    theirs_back = transformers.BertTokenizer.from_pretrained(tmp_path / "saved")
    ours_back = WordPieceTokenizer.from_pretrained(tmp_path / "saved")
    reference = transformers.BertTokenizer.from_pretrained(shared_model_path, **options)
    for name in ("padding_side", "truncation_side", "model_max_length", "all_special_tokens"):
        assert getattr(theirs_back, name) == getattr(ours_back, name) == getattr(reference, name), name
    firsts, seconds = _pairs()
    kw = dict(
        truncation=True, max_length=40, stride=4, return_overflowing_tokens=True, padding=True, **DETAIL
    )
    want = reference(firsts, seconds, **kw)
    _same_rows(theirs_back(firsts, seconds, **kw), want)
    _same_rows(ours_back(firsts, seconds, **kw), want)
    assert theirs_back.decode(want["input_ids"][0]) == ours_back.decode(want["input_ids"][0])


def test_save_pretrained_keeps_every_option(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "a", "##b"]
    tok = WordPieceTokenizer(vocab, do_lower_case=True, strip_accents=False, tokenize_chinese_chars=False,
                             never_split=["a.b"], max_input_chars_per_word=7, unicode_normalization="NFC",
                             clean_up_tokenization_spaces=False, cls_token="<s>")  # fmt: skip
    tok.save_pretrained(tmp_path)
    back = WordPieceTokenizer.from_pretrained(tmp_path)
    for name in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "clean_text", "never_split",
                 "max_input_chars_per_word", "unicode_normalization", "clean_up_tokenization_spaces",
                 "model_max_length", "special_tokens_map", "vocab"):  # fmt: skip
        assert getattr(back, name) == getattr(tok, name), name


def test_save_pretrained_refuses_what_vocab_txt_cannot_hold(tmp_path):
    tok = WordPieceTokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 7})
    with pytest.raises(ValueError, match=r"ids are not 0\.\.n-1"):
        tok.save_pretrained(tmp_path / "a")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]).save_pretrained(tmp_path / "file")


# --- special-token helpers and convert_tokens_to_string ----------------------------------------------


def test_special_token_helpers_match_transformers(toks):
    legacy, rust, ours = toks["legacy"], toks["rust"], toks["ours"]
    a, b = rust("Hello there.", add_special_tokens=False)["input_ids"], [5, 101, 102, 0]
    for ids_1 in (None, b, []):
        assert ours.build_inputs_with_special_tokens(a, ids_1) == legacy.build_inputs_with_special_tokens(
            a, ids_1
        )
        assert ours.get_special_tokens_mask(a, ids_1) == legacy.get_special_tokens_mask(a, ids_1)
    full = rust("Hello [MASK] there.", "[PAD] x [UNK]")["input_ids"] + [0, 0]
    for oracle in (rust, legacy):
        assert ours.get_special_tokens_mask(
            full, already_has_special_tokens=True
        ) == oracle.get_special_tokens_mask(full, already_has_special_tokens=True)
    with pytest.raises(ValueError):
        rust.get_special_tokens_mask(a, b, already_has_special_tokens=True)
    with pytest.raises(ValueError, match="token_ids_1 must be None"):
        ours.get_special_tokens_mask(a, b, already_has_special_tokens=True)


def test_convert_tokens_to_string_matches_transformers(toks):
    for line in _lines():
        tokens = toks["rust"].tokenize(line)
        assert toks["ours"].convert_tokens_to_string(tokens) == toks["rust"].convert_tokens_to_string(tokens)
    tokens = ["Hello", "##s", ",", "I", "'", "m", "do", "not", ".", "[SEP]"]
    assert toks["ours"].convert_tokens_to_string(tokens) == toks["rust"].convert_tokens_to_string(tokens)


# --- alignment methods ---------------------------------------------------------------------------


def _alignment(enc, row: int, texts: list[str]) -> dict:
    """Every alignment answer of one row: per character, per token, per word."""
    n_tokens = len(enc["input_ids"][row])
    words = [w for w in enc.word_ids(row) if w is not None]
    out: dict = {"char_to_token": [], "char_to_word": [], "word_to_tokens": [], "word_to_chars": []}
    for seq, text in enumerate(texts):
        for c in range(len(text) + 1):
            out["char_to_token"].append(enc.char_to_token(row, c, seq))
            out["char_to_word"].append(enc.char_to_word(row, c, seq))
        for w in range(max(words, default=0) + 2):
            span = enc.word_to_tokens(row, w, seq)
            out["word_to_tokens"].append(span)
            # transformers raises TypeError for a word without tokens; we return None
            out["word_to_chars"].append(None if span is None else enc.word_to_chars(row, w, seq))
    out["token_to_chars"] = [enc.token_to_chars(row, t) for t in range(n_tokens)]
    out["token_to_word"] = [enc.token_to_word(row, t) for t in range(n_tokens + 2)]
    out["token_to_sequence"] = [enc.token_to_sequence(row, t) for t in range(n_tokens + 2)]
    return out


def test_alignment_methods_match_rust_batch_encoding(toks):
    lines = _lines()
    want = toks["rust"](lines, padding=True)
    got = toks["ours"](lines, padding=True)  # without offsets: computed lazily
    for row, line in enumerate(lines):
        assert _alignment(got, row, [line]) == _alignment(want, row, [line]), row
    firsts, seconds = _pairs()
    kw = dict(truncation=True, max_length=32, stride=4, return_overflowing_tokens=True, padding=True,
              return_offsets_mapping=True, padding_side="left")  # fmt: skip
    want, got = toks["rust"](firsts, seconds, **kw), toks["ours"](firsts, seconds, **kw)
    for row, sample in enumerate(want["overflow_to_sample_mapping"]):
        texts = [firsts[sample], seconds[sample]]
        assert _alignment(got, row, texts) == _alignment(want, row, texts), row


def test_alignment_single_index_form_is_row_zero(toks):
    text = "Hello world, naïvely."
    want, got = toks["rust"](text), toks["ours"](text)
    for c in range(len(text)):
        assert got.char_to_token(c) == want.char_to_token(c) and got.char_to_word(c) == want.char_to_word(c)
    for t in range(len(want["input_ids"])):
        assert got.token_to_chars(t) == want.token_to_chars(t)
        assert got.token_to_word(t) == want.token_to_word(t)
        assert got.token_to_sequence(t) == want.token_to_sequence(t)
    for w in range(5):
        assert got.word_to_tokens(w) == want.word_to_tokens(w)
        assert tuple(got.word_to_chars(w)) == tuple(want.word_to_chars(w))
    # negative positions count from the end of the row (transformers 5.24 raises there)
    assert got.token_to_word(-2) == got.token_to_word(len(want["input_ids"]) - 2)
    with pytest.raises(TypeError, match="char_index must be an int"):
        got.char_to_token("3")


# --- the model_max_length warning ---------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _logged(logger_name: str, call) -> list[str]:
    handler = _Records()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        call()
    finally:
        logger.removeHandler(handler)
    return [m for m in handler.messages if m.startswith("Token indices sequence length")]


LONG = "a " * 600
WARNING_CASES = {
    "tokenize": lambda t: t.tokenize(LONG),
    "encode": lambda t: t.encode(LONG),
    "call": lambda t: t(LONG),
    "batch": lambda t: t(["x", LONG, LONG]),
    "truncation": lambda t: t(LONG, truncation=True),
    "padding with max_length": lambda t: t(LONG, padding=True, max_length=700),
    "verbose=False": lambda t: t(LONG, verbose=False),
    "pair": lambda t: t("a " * 300, "b " * 300),
    "exactly the limit": lambda t: t("a " * 510),
    "no special tokens": lambda t: t("a " * 513, add_special_tokens=False),
    "overflow without truncation": lambda t: t(LONG, return_overflowing_tokens=True),
    "twice": lambda t: (t(LONG), t("b " * 700)),
}


@pytest.mark.parametrize("case", list(WARNING_CASES))
def test_too_long_warning_like_transformers(shared_model_path, case):
    transformers = require_module("transformers")
    call = WARNING_CASES[case]
    rust = transformers.BertTokenizer.from_pretrained(shared_model_path)
    ours = WordPieceTokenizer.from_pretrained(shared_model_path)
    want = _logged("transformers.tokenization_utils_base", lambda: call(rust))
    got = _logged("tokenizer.tokenizer", lambda: call(ours))
    assert got == want


def test_too_long_warning_shows_without_logging_configured(shared_model_path):
    """As transformers' does: a program that configured no logging still sees it, once."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys\n"
        "from tokenizer import WordPieceTokenizer\n"
        "tok = WordPieceTokenizer.from_pretrained(sys.argv[1])\n"
        "tok('a ' * 600)\n"
        "tok('b ' * 700)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script, str(shared_model_path)], cwd=root,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stderr.count("Token indices sequence length is longer") == 1, done.stderr
    assert "(602 > 512)" in done.stderr


def test_an_empty_batch_is_empty_whatever_the_options(toks, np):
    """transformers' Rust tokenizer raises IndexError on an empty batch; ours returns empty rows
    (padding used to fail with max() of nothing)."""
    for options in ({}, dict(padding=True), dict(padding="max_length", max_length=8, pad_to_multiple_of=4)):
        enc = toks["ours"]([], **options)
        assert dict(enc) == {"input_ids": [], "token_type_ids": [], "attention_mask": []}
        assert toks["ours"]([], return_tensors="np", **options)["input_ids"].shape == (0,)
