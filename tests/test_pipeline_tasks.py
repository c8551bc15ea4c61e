"""Every pipeline against transformers' pipeline, on checkpoints transformers builds.

Checkpoints have the real vocabulary (119,547 tokens, the real vocab.txt and
tokenizer_config.json symlinked in) and tiny dimensions; both sides load the same
directory. Outputs must have the same structure, keys, key order, tokens, labels and
offsets; scores agree within 1e-5. Ours must be plain Python values (transformers' token
classification gives np.float32 scores; we give float).

Random weights give flat distributions, where top-k order could hinge on ties. The heads'
output layers are therefore scaled up (the MLM head's LayerNorm gain x6, the classifiers
x10, the NLI one x30) so that distributions are peaked and the ranked scores are well separated; the tests
check that separation (neighbours differ by > 0.01%) before comparing orders.

Intended differences, checked as such:
* token classification: our `word` is `text[start:end]` (the original characters);
  transformers' is re-decoded from tokens ("##èvre", "Jean - Pierre"). Both are compared
  with the "##" and spaces removed;
* decode clean-up: set explicitly on both sides (transformers 5's fast tokenizer does not
  clean up by default; ours does unless tokenizer_config.json says otherwise).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from numpy_distilbert import pipeline

DIMS = dict(vocab_size=119547, dim=64, n_layers=2, n_heads=4, hidden_dim=128)
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "B-ORG", 6: "I-ORG", 7: "MISC"}
NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}
SCORE_TOLERANCE = 1e-5

MULTILINGUAL = [
    "Jean-Pierre Lefèvre habite à Zürich, près de l'ETH.",
    "東京は日本の首都です。 Владимир посетил Санкт-Петербург в 2019 году.",
    "Angela Merkel war Bundeskanzlerin; Ünal Çelik arbeitet bei Siemens AG in München.",
    "El Niño afectó a Perú y Ecuador. مرحبا بالعالم",
]


# ------------------------------------------------------------------- fixtures
def _finish(directory: Path, shared: Path) -> Path:
    for name in ("vocab.txt", "tokenizer_config.json"):
        (directory / name).symlink_to(shared / name)
    return directory


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_model_path, torch_module, transformers_module):
    """{name: directory} for an MLM, an NER head, an NLI head and a one-output regression head."""
    from checkpoints import build_checkpoint

    torch = torch_module
    dirs = {}

    def make(name, model_class, seed, scale_up, **config):
        directory = tmp_path_factory.mktemp(name)
        model = build_checkpoint(directory, model_class, seed=seed, **DIMS, **config)
        with torch.no_grad():
            scale_up(model)
        model.save_pretrained(directory, safe_serialization=True)
        dirs[name] = _finish(directory, shared_model_path)

    def labels(id2label):
        return {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}

    make("mlm", "DistilBertForMaskedLM", 11, lambda m: m.vocab_layer_norm.weight.mul_(6))
    make("ner", "DistilBertForTokenClassification", 12, lambda m: m.classifier.weight.mul_(10),
         **labels(NER_LABELS))  # fmt: skip
    make("nli", "DistilBertForSequenceClassification", 13, lambda m: m.classifier.weight.mul_(30),
         **labels(NLI_LABELS))  # fmt: skip
    make("regression", "DistilBertForSequenceClassification", 14, lambda m: None,
         problem_type="regression", **labels({0: "LABEL_0"}))  # fmt: skip
    return dirs


@pytest.fixture(scope="module")
def theirs(built, transformers_module):
    """transformers.pipeline(task, model=dir, tokenizer=dir), cached per (task, dir, options)."""
    cache = {}

    def get(task, name, **options):
        key = (task, name, tuple(sorted(options.items())))
        if key not in cache:
            directory = str(built[name])
            cache[key] = transformers_module.pipeline(task, model=directory, tokenizer=directory, **options)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def ours(built):
    cache = {}

    def get(task, name, **options):
        key = (task, name, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = pipeline(task, model=built[name], **options)
        return cache[key]

    return get


# ------------------------------------------------------------------ comparing
def assert_same(got, want, path="out", word_check=None):
    """Same nesting, keys in the same order, equal str/int, floats within SCORE_TOLERANCE.

    `got` must hold plain Python values only.
    """
    if isinstance(want, dict):
        assert type(got) is dict, f"{path}: {type(got).__name__} instead of dict"
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for key in want:
            if key == "word" and word_check is not None:
                word_check(got[key], want[key], f"{path}.word")
            else:
                assert_same(got[key], want[key], f"{path}.{key}", word_check)
    elif isinstance(want, (list, tuple)):
        assert type(got) is list, f"{path}: {type(got).__name__} instead of list"
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]", word_check)
    elif isinstance(want, str):
        assert got == want, f"{path}: {got!r} != {want!r}"
    elif isinstance(want, (bool, np.bool_)):
        assert got == want and type(got) is bool, path
    elif isinstance(want, (int, np.integer)):
        assert type(got) is int, f"{path}: {type(got).__name__} instead of int"
        assert got == int(want), f"{path}: {got} != {want}"
    elif isinstance(want, (float, np.floating)):
        assert type(got) is float, f"{path}: {type(got).__name__} instead of float"
        assert math.isclose(got, float(want), rel_tol=0, abs_tol=SCORE_TOLERANCE), f"{path}: {got} vs {want}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def max_score_diff(got, want) -> float:
    if isinstance(want, dict):
        return max((max_score_diff(got[k], want[k]) for k in want), default=0.0)
    if isinstance(want, (list, tuple)):
        return max((max_score_diff(g, w) for g, w in zip(got, want, strict=True)), default=0.0)
    if isinstance(want, (float, np.floating)) and not isinstance(want, bool):
        return abs(got - float(want))
    return 0.0


def assert_separated(scores, relative_gap=1e-4):
    """Ranked scores must not be near-ties (within 0.01% of each other), or their order would
    hinge on float32 rounding (logits agree to ~1e-5)."""
    ordered = sorted(scores, reverse=True)
    ties = [(a, b) for a, b in itertools.pairwise(ordered) if a - b <= relative_gap * abs(a)]
    assert not ties, f"near-tied scores {ties}: choose other seeds/scales"


# ------------------------------------------------------------------ fill-mask
FILL_INPUTS = [
    "Hello I'm a [MASK] model.",
    "Paris est la [MASK] de la France.",
    "Der [MASK] ist heute sehr [MASK] und [MASK].",  # several masks
    "東京は[MASK]の首都です。",
]


@pytest.mark.parametrize("clean_up", [True, False])
def test_fill_mask_matches_transformers(ours, theirs, monkeypatch, clean_up):
    ref = theirs("fill-mask", "mlm")
    monkeypatch.setattr(ref.tokenizer, "clean_up_tokenization_spaces", clean_up)
    pipe = ours("fill-mask", "mlm", clean_up_tokenization_spaces=clean_up)
    worst = 0.0
    for text in FILL_INPUTS:
        want, got = ref(text), pipe(text)
        rows = want if isinstance(want[0], list) else [want]
        for row in rows:
            assert_separated([entry["score"] for entry in row])
        assert_same(got, want, text)
        worst = max(worst, max_score_diff(got, want))
    # A list of inputs, with top_k, and a list of one (unwrapped, as transformers does).
    want, got = ref(FILL_INPUTS, top_k=3), pipe(FILL_INPUTS, top_k=3, batch_size=3)
    assert_same(got, want, "batch")
    assert_same(pipe(FILL_INPUTS[:1]), ref(FILL_INPUTS[:1]), "list of one")
    print(f"fill-mask clean_up={clean_up}: max |score diff| = {worst:.2e}")


def test_fill_mask_several_masks_structure(ours):
    out = ours("fill-mask", "mlm")(FILL_INPUTS[2], top_k=2)
    assert len(out) == 3 and all(len(row) == 2 for row in out)  # one list per mask
    assert "[CLS]" in out[0][0]["sequence"]  # several masks: special tokens kept, as transformers


def test_fill_mask_targets(ours, theirs, monkeypatch):
    ref, pipe = theirs("fill-mask", "mlm"), ours("fill-mask", "mlm", clean_up_tokenization_spaces=False)
    monkeypatch.setattr(ref.tokenizer, "clean_up_tokenization_spaces", False)
    top = [entry["token_str"] for entry in ref(FILL_INPUTS[0], top_k=30)]
    targets = [top[25], top[3], "Haus", top[12], "Paris"]  # in-vocabulary tokens, in a shuffled order
    text = FILL_INPUTS[0]
    want, got = ref(text, targets=targets), pipe(text, targets=targets)
    assert_same(got, want, "targets")
    assert len(got) == len(targets)  # top_k=5 cut to the number of targets (all 5 here)
    assert_same(pipe(text, targets=targets, top_k=2), ref(text, targets=targets, top_k=2), "targets top_k")
    assert_same(pipe(FILL_INPUTS[2], targets="Haus"), ref(FILL_INPUTS[2], targets="Haus"), "one target")


def test_fill_mask_target_outside_vocabulary(ours, theirs, monkeypatch):
    ref, pipe = theirs("fill-mask", "mlm"), ours("fill-mask", "mlm", clean_up_tokenization_spaces=False)
    monkeypatch.setattr(ref.tokenizer, "clean_up_tokenization_spaces", False)
    targets = ["Xylophonspielerin", "Paris"]  # the first is not one token: its first token is used
    with pytest.warns(UserWarning, match="first token"):
        got = pipe(FILL_INPUTS[0], targets=targets)
    assert_same(got, ref(FILL_INPUTS[0], targets=targets), "oov target")


def test_fill_mask_default_clean_up_reproduces_model_card(ours):
    # The model card prints "Hello I'm a ... model." (cleaned up); that is our default.
    text = "Hello I'm a [MASK] model."
    default = ours("fill-mask", "mlm")(text)
    assert default == ours("fill-mask", "mlm", clean_up_tokenization_spaces=True)(text)
    for entry in default:
        assert entry["sequence"].startswith("Hello I'm a") and entry["sequence"].endswith(" model.")
    for entry in ours("fill-mask", "mlm", clean_up_tokenization_spaces=False)(text):
        assert entry["sequence"].startswith("Hello I ' m a")


def test_fill_mask_bad_input(ours):
    pipe = ours("fill-mask", "mlm")
    with pytest.raises(ValueError, match=r"No mask_token \(\[MASK\]\) found"):
        pipe("There is no mask here.")
    with pytest.raises(ValueError, match=r"input 1"):
        pipe(["a [MASK].", "no mask"])
    with pytest.raises(ValueError, match="top_k"):
        pipe("a [MASK].", top_k=0)
    with pytest.raises(TypeError, match="unknown option"):
        pipe("a [MASK].", topk=3)


def test_fill_mask_projects_only_mask_positions(ours, monkeypatch):
    pipe = ours("fill-mask", "mlm")
    seen = []
    original = type(pipe.model).mlm_logits

    def spy(self, hidden):
        seen.append(hidden.shape)
        return original(self, hidden)

    monkeypatch.setattr(type(pipe.model), "mlm_logits", spy)
    pipe(FILL_INPUTS, batch_size=8)
    assert seen == [(1 + 1 + 3 + 1, DIMS["dim"])]  # one row per [MASK], not per token


# ---------------------------------------------------------- feature-extraction
def test_feature_extraction_matches_transformers(ours, theirs):
    ref, pipe = theirs("feature-extraction", "mlm"), ours("feature-extraction", "mlm")
    texts = MULTILINGUAL[:3]
    want, got = ref(texts), pipe(texts, batch_size=2)  # batched with padding on our side
    assert_same(got, want, "features")
    single_want, single_got = ref(texts[0]), pipe(texts[0])
    assert_same(single_got, single_want, "single")
    assert len(single_got) == 1 and len(single_got[0][0]) == DIMS["dim"]  # [1][L][D], [CLS]/[SEP] included
    print(f"feature-extraction: max |diff| = {max_score_diff(got, want):.2e}")


def test_feature_extraction_tensors_and_pooling(ours, theirs):
    ref, pipe = theirs("feature-extraction", "mlm"), ours("feature-extraction", "mlm")
    texts = [MULTILINGUAL[0], "Kurz."]  # very different lengths: the short one is padded in the batch
    want = [np.asarray(ref(t, return_tensors=True)) for t in texts]  # torch tensors [1, L, D]
    arrays = pipe(texts, return_tensors=True)
    for a, w in zip(arrays, want, strict=True):
        assert isinstance(a, np.ndarray) and a.shape == w.shape
        np.testing.assert_allclose(a, w, atol=1e-5)
    cls = pipe(texts, pooling="cls")
    mean = pipe(texts, pooling="mean", return_tensors=True)
    for c, m, w in zip(cls, mean, want, strict=True):
        np.testing.assert_allclose(np.asarray(c), w[:, 0], atol=1e-5)
        np.testing.assert_allclose(m, w.mean(axis=1), atol=1e-5)  # padding excluded from the mean
    with pytest.raises(ValueError, match="pooling"):
        pipe("x", pooling="max")


# --------------------------------------------------------- text-classification
def test_text_classification_matches_transformers(ours, theirs):
    ref, pipe = theirs("text-classification", "nli"), ours("text-classification", "nli")
    texts = MULTILINGUAL
    cases = [
        ((texts[0],), {}),  # legacy: [{"label", "score"}]
        ((texts,), {}),  # legacy: one dict per input
        ((texts[0],), {"top_k": 2}),
        ((texts,), {"top_k": None}),
        ((texts,), {"top_k": 3, "function_to_apply": "sigmoid"}),
        ((texts[1],), {"top_k": None, "function_to_apply": "none"}),
        (({"text": texts[0], "text_pair": texts[2]},), {}),  # a sentence pair
        (({"text": texts[0], "text_pair": texts[2]},), {"top_k": None}),
    ]
    for args, kwargs in cases:
        want, got = ref(*args, **kwargs), pipe(*args, **kwargs)
        assert_same(got, want, f"{kwargs}")
    for row in ref(texts, top_k=None):
        assert_separated([entry["score"] for entry in row])


def test_text_classification_top_k_at_construction(built, transformers_module):
    directory = str(built["nli"])
    ref = transformers_module.pipeline("text-classification", model=directory, tokenizer=directory, top_k=2)
    pipe = pipeline("sentiment-analysis", model=directory, top_k=2)
    assert_same(pipe(MULTILINGUAL[0]), ref(MULTILINGUAL[0]), "construction top_k")  # [[..., ...]]
    assert_same(pipe(MULTILINGUAL), ref(MULTILINGUAL), "construction top_k batch")


def test_text_classification_regression_default_function(ours, theirs):
    ref, pipe = theirs("text-classification", "regression"), ours("text-classification", "regression")
    assert_same(pipe(MULTILINGUAL), ref(MULTILINGUAL), "regression")  # raw logit, no function
    assert_same(pipe(MULTILINGUAL[0], function_to_apply="sigmoid"),
                ref(MULTILINGUAL[0], function_to_apply="sigmoid"), "regression sigmoid")  # fmt: skip


def test_text_classification_bad_input(ours):
    pipe = ours("text-classification", "nli")
    with pytest.raises(ValueError, match="function_to_apply"):
        pipe("x", function_to_apply="relu")
    with pytest.raises(ValueError, match="text_pair"):
        pipe([{"premise": "x"}])
    with pytest.raises(TypeError, match="string or a list"):
        pipe(42)


# -------------------------------------------------------- token-classification
def _same_word(got, want, path):
    # Ours is the original text; transformers' is decoded from tokens. Equal up to "##" and spaces.
    assert got.replace(" ", "") == want.replace("##", "").replace(" ", ""), f"{path}: {got!r} vs {want!r}"


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches_transformers(ours, theirs, strategy):
    ref = theirs("token-classification", "ner", aggregation_strategy=strategy)
    pipe = ours("ner", "ner", aggregation_strategy=strategy)
    want, got = ref(MULTILINGUAL), pipe(MULTILINGUAL, batch_size=3)
    assert_same(got, want, strategy, word_check=_same_word)
    for text, entities in zip(MULTILINGUAL, got, strict=True):
        assert entities, "the random head should find entities"
        for entity in entities:
            assert entity["word"] == text[entity["start"]:entity["end"]]
    assert_same(pipe(MULTILINGUAL[0]), ref(MULTILINGUAL[0]), "single", word_check=_same_word)
    print(f"token-classification {strategy}: {sum(map(len, got))} entities, "
          f"max |score diff| = {max_score_diff(got, want):.2e}")  # fmt: skip


def test_token_classification_subword_words_come_from_offsets(ours):
    pipe = ours("ner", "ner", aggregation_strategy="none")
    text = MULTILINGUAL[0]
    words = [e["word"] for e in pipe(text, ignore_labels=[])]
    assert "".join(words) == text.replace(" ", "")  # every non-space character, once, in order
    assert not any(w.startswith("##") for w in words)


def test_token_classification_ignore_labels(ours, theirs):
    texts = MULTILINGUAL[:2]
    for ignore, strategy in (([], "none"), (["O", "B-PER", "PER"], "simple"), (["MISC", "I-LOC"], "none")):
        ref = theirs("token-classification", "ner", aggregation_strategy=strategy)
        pipe = ours("ner", "ner", aggregation_strategy=strategy)
        want, got = ref(texts, ignore_labels=ignore), pipe(texts, ignore_labels=ignore)
        assert_same(got, want, f"{strategy} {ignore}", word_check=_same_word)


def test_token_classification_stride_windows(ours, theirs, built, transformers_module):
    # A text longer than the model takes, cut into overlapping windows on both sides.
    text = " ".join(MULTILINGUAL * 30)
    directory = str(built["ner"])
    ref = transformers_module.pipeline("token-classification", model=directory, tokenizer=directory,
                                       aggregation_strategy="first", stride=32)  # fmt: skip
    pipe = pipeline("ner", model=built["ner"], aggregation_strategy="first", stride=32)
    windows = pipe.tokenizer(text, truncation=True, max_length=512, stride=32, return_overflowing_tokens=True)
    assert len(windows["input_ids"]) >= 2
    want, got = ref(text), pipe(text)
    assert_same(got, want, "stride", word_check=_same_word)
    assert got[-1]["end"] > len(text) - 20  # the end of the text was reached
    with pytest.raises(ValueError, match="aggregation_strategy"):
        pipe(text, aggregation_strategy="none")


def test_token_classification_bad_input(ours):
    pipe = ours("ner", "ner")
    with pytest.raises(ValueError, match=r"unknown aggregation_strategy 'longest'.*none, simple, first"):
        pipe("x", aggregation_strategy="longest")
    with pytest.raises(TypeError, match="input 1 must be a string"):
        pipe(["x", 3])


# ---------------------------------------------------- zero-shot-classification
@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_matches_transformers(ours, theirs, multi_label):
    ref, pipe = theirs("zero-shot-classification", "nli"), ours("zero-shot-classification", "nli")
    labels = ["politique", "sport", "Wirtschaft", "科学", "культура"]
    want = ref(MULTILINGUAL, candidate_labels=labels, multi_label=multi_label)
    got = pipe(MULTILINGUAL, candidate_labels=labels, multi_label=multi_label, batch_size=4)
    for result in want:
        assert_separated(result["scores"])
    assert_same(got, want, f"multi_label={multi_label}")
    template = "Das Thema ist {}."
    assert_same(
        pipe(MULTILINGUAL[2], labels, hypothesis_template=template, multi_label=multi_label),
        ref(MULTILINGUAL[2], labels, hypothesis_template=template, multi_label=multi_label),
        "single with template",
    )
    print(f"zero-shot multi_label={multi_label}: max |score diff| = {max_score_diff(got, want):.2e}")


def test_zero_shot_label_string_and_single_label(ours, theirs):
    ref, pipe = theirs("zero-shot-classification", "nli"), ours("zero-shot-classification", "nli")
    for labels in ("sport, politique , science", "sport"):  # one label: scored on its own
        assert_same(pipe(MULTILINGUAL[0], candidate_labels=labels),
                    ref(MULTILINGUAL[0], candidate_labels=labels), labels)  # fmt: skip


def test_zero_shot_bad_input(ours, built, tmp_path):
    pipe = ours("zero-shot-classification", "nli")
    with pytest.raises(ValueError, match="at least one label"):
        pipe("x", candidate_labels=[])
    with pytest.raises(ValueError, match="at least one label"):
        pipe("x")
    with pytest.raises(ValueError, match="hypothesis_template"):
        pipe("x", candidate_labels=["a"], hypothesis_template="no placeholder")
    # A classifier without an entailment label is refused rather than guessed.
    plain = ours("zero-shot-classification", "regression")
    with pytest.raises(ValueError, match="entailment"):
        plain("x", candidate_labels=["a", "b"])


# ------------------------------------------------------------ shared behaviour
def test_float64_pipeline_agrees(built):
    pipe32 = pipeline("zero-shot-classification", model=built["nli"])
    pipe64 = pipeline("zero-shot-classification", model=built["nli"], dtype=np.float64)
    a = pipe32(MULTILINGUAL[0], candidate_labels=["a", "b", "c"])
    b = pipe64(MULTILINGUAL[0], candidate_labels=["a", "b", "c"])
    assert a["labels"] == b["labels"]
    np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)


def test_batch_size_does_not_change_results(ours):
    # Batches are padded and sorted by length; results must not depend on it (beyond fp32 noise).
    pipe = ours("ner", "ner", aggregation_strategy="simple")
    assert_same(pipe(MULTILINGUAL, batch_size=1), pipe(MULTILINGUAL, batch_size=4), "batch sizes")


# ------------------------------------------------------------- integer options
def test_numpy_integers_are_integer_options_and_bools_are_not(ours):
    """An option computed with NumPy (np.int64) is an integer; True is not the integer 1."""
    fill = ours("fill-mask", "mlm")
    assert_same(fill(FILL_INPUTS[0], top_k=np.int64(3)), fill(FILL_INPUTS[0], top_k=3), "np.int64 top_k")
    classify = ours("text-classification", "nli")
    assert_same(classify(MULTILINGUAL[0], top_k=np.int32(2)), classify(MULTILINGUAL[0], top_k=2), "np.int32")
    assert_same(fill(FILL_INPUTS, batch_size=np.int64(2)), fill(FILL_INPUTS, batch_size=2), "batch_size")
    for call in (lambda: fill(FILL_INPUTS[0], top_k=True), lambda: classify("x", top_k=True),
                 lambda: fill(FILL_INPUTS[0], batch_size=True)):  # fmt: skip
        with pytest.raises(ValueError, match="must be a positive integer, got True"):
            call()


# ------------------------------------------------- transformers' input conventions
def test_text_classification_pairs_in_every_form(ours, theirs):
    """Dicts (transformers), (text, text_pair) tuples and text_pair= give the same pairs."""
    ref, pipe = theirs("text-classification", "nli"), ours("text-classification", "nli")
    pairs = [(MULTILINGUAL[0], MULTILINGUAL[2]), (MULTILINGUAL[1], MULTILINGUAL[3])]
    as_dicts = [{"text": a, "text_pair": b} for a, b in pairs]
    want = ref(as_dicts)
    assert_same(pipe(pairs), want, "list of tuples")
    assert_same(pipe([list(p) for p in pairs]), want, "list of two-string lists")
    assert_same(pipe(as_dicts), want, "list of dicts")
    # text_pair= is transformers' tokenizer keyword: one second text for every input.
    texts, hypothesis = MULTILINGUAL[:2], MULTILINGUAL[3]
    assert_same(pipe(texts, text_pair=hypothesis), ref(texts, text_pair=hypothesis), "list, text_pair=")
    for kwargs in ({}, {"top_k": None}):
        got, want = (p(texts[0], text_pair=hypothesis, **kwargs) for p in (pipe, ref))
        assert_same(got, want, f"one text, text_pair=, {kwargs}")
    with pytest.raises(ValueError, match="is a pair"):
        pipe(pairs, text_pair=hypothesis)
    with pytest.raises(TypeError, match="two strings"):
        pipe([(MULTILINGUAL[0], 3)])
    with pytest.raises(ValueError, match="text_pair"):
        pipe([("a", "b", "c")])


@pytest.mark.parametrize("strategy", ["none", "simple", "first"])
def test_token_classification_pre_split_words(ours, theirs, strategy):
    ref = theirs("token-classification", "ner", aggregation_strategy=strategy)
    pipe = ours("ner", "ner", aggregation_strategy=strategy)
    batch = [text.split() for text in MULTILINGUAL] + [["New York", "", "Zürich,"]]  # a word holding a space
    for delimiter in (None, "|"):
        kwargs = {"is_split_into_words": True} | ({} if delimiter is None else {"delimiter": delimiter})
        want, got = ref(batch, **kwargs), pipe(batch, **kwargs)

        def same_word(got_word, want_word, path, delimiter=delimiter or " "):
            _same_word(got_word.replace(delimiter, " "), want_word, path)  # a group spans delimiters

        assert_same(got, want, f"words {strategy} {delimiter}", word_check=same_word)
        joined = [(delimiter or " ").join(words) for words in batch]
        for entities, text in zip(got, joined, strict=True):
            assert all(e["word"] == text[e["start"]:e["end"]] for e in entities)
        # One list of words is one input, and gives a list holding its result, as transformers.
        assert_same(pipe(batch[0], **kwargs), ref(batch[0], **kwargs), "one list of words",
                    word_check=same_word)  # fmt: skip
    with pytest.raises(TypeError, match="list of word strings"):
        pipe("Jean Dupont", is_split_into_words=True)
    with pytest.raises(TypeError, match="is_split_into_words=True"):
        pipe([["Jean", "Dupont"]])
    with pytest.raises(ValueError, match="delimiter"):
        pipe("Jean Dupont", delimiter="|")


def test_inputs_keyword_as_transformers(ours, theirs):
    ref, pipe = theirs("token-classification", "ner"), ours("ner", "ner")
    assert_same(pipe(inputs=MULTILINGUAL[:2]), ref(inputs=MULTILINGUAL[:2]), "inputs=", word_check=_same_word)
    with pytest.raises(TypeError, match="positional"):
        pipe()
