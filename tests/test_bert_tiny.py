"""BERT on tiny checkpoints that transformers builds: properties, heads, loading rules, pipelines.

* hypothesis over tiny BertConfigs (1-3 layers, odd widths, gelu / relu / gelu_new, a random
  layer_norm_eps, 1-3 token types, any padding): every hidden state, attention map, pooler,
  MLM and NSP logits of BertForPreTraining against transformers' eager attention (fp32 within
  the derived bound) and against torch float64 (<= 1e-10);
* every head class against transformers' class of the same name;
* what is refused, and how: unsupported config options, another head's checkpoint, two
  different MLM biases, token types outside the table;
* the pipelines on BERT heads against transformers' pipelines (pairs get token type 1).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numpy_distilbert import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    load_model,
    pipeline,
    tolerances,
)
from numpy_distilbert.config import BertConfig, ConfigError
from numpy_distilbert.weights import CheckpointError

SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
MEASURED = {"fp32": 0.0, "fp64": 0.0}


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    print("\n--- tiny BERT configs, largest max abs difference ---")
    for name, diff in MEASURED.items():
        print(f"  {name:<16} {diff:.2e}")


@pytest.fixture(scope="module")
def reference(torch_module, transformers_module):
    import checkpoints

    return SimpleNamespace(
        torch=torch_module, transformers=transformers_module, build=checkpoints.build_bert_checkpoint
    )


def max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def torch_run(reference, model, ids, mask, types, **kwargs):
    torch = reference.torch
    with torch.no_grad():
        return model(
            torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types),
            **kwargs,
        )


# -------------------------------------------------------------------- hypothesis
@st.composite
def tiny_configs(draw) -> dict:
    heads = draw(st.integers(1, 4))
    return dict(
        num_hidden_layers=draw(st.integers(1, 3)),
        num_attention_heads=heads,
        hidden_size=heads * draw(st.integers(1, 8)),
        intermediate_size=draw(st.integers(1, 40)),
        hidden_act=draw(st.sampled_from(["gelu", "relu", "gelu_new"])),
        max_position_embeddings=draw(st.integers(2, 24)),
        vocab_size=draw(st.integers(2, 60)),
        type_vocab_size=draw(st.integers(1, 3)),
        layer_norm_eps=draw(st.sampled_from([1e-12, 1e-6, 1e-3])),
    )


@st.composite
def batches(draw, config: dict):
    batch = draw(st.integers(1, 3))
    length = draw(st.integers(1, config["max_position_embeddings"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = rng.integers(0, config["vocab_size"], size=(batch, length))
    types = rng.integers(0, config["type_vocab_size"], size=(batch, length))
    mask = np.ones((batch, length), dtype=np.int64)
    for row in range(batch):
        if draw(st.booleans()):
            mask[row, draw(st.integers(1, length)) :] = 0
    return ids, mask, types


@settings(max_examples=12, deadline=None, suppress_health_check=SUPPRESSED)
@given(data=st.data(), config=tiny_configs(), seed=st.integers(0, 1000))
def test_pretraining_equals_transformers(reference, data, config, seed):
    ids, mask, types = data.draw(batches(config))
    with tempfile.TemporaryDirectory() as directory:
        model = reference.build(directory, "BertForPreTraining", seed=seed, **config)
        ours = BertForPreTraining.from_pretrained(directory, mmap=False)
        oracle = BertForPreTraining.from_pretrained(directory, dtype=np.float64, mmap=False)
    model.set_attn_implementation("eager")
    theirs = torch_run(reference, model, ids, mask, types, output_hidden_states=True, output_attentions=True)
    mine = ours(ids, mask, types, output_hidden_states=True, output_attentions=True)
    exact = oracle(ids, mask, types, output_hidden_states=True, output_attentions=True)
    pairs = [
        *zip(mine.hidden_states, theirs.hidden_states, exact.hidden_states, strict=True),
        *zip(mine.attentions, theirs.attentions, exact.attentions, strict=True),
        (mine.prediction_logits, theirs.prediction_logits, exact.prediction_logits),
        (mine.seq_relationship_logits, theirs.seq_relationship_logits, exact.seq_relationship_logits),
    ]
    for ours_fp32, theirs_fp32, oracle_fp64 in pairs:
        theirs_np = theirs_fp32.numpy()
        limit = tolerances.derived_bound(tolerances.FP32_HIDDEN, max_diff(theirs_np, oracle_fp64))
        diff = max_diff(ours_fp32, theirs_np)
        MEASURED["fp32"] = max(MEASURED["fp32"], diff)
        assert diff <= limit

    double = model.double()
    theirs64 = torch_run(reference, double, ids, mask, types, output_hidden_states=True)
    diffs = [max_diff(a, b.numpy()) for a, b in zip(exact.hidden_states, theirs64.hidden_states, strict=True)]
    diffs.append(max_diff(exact.prediction_logits, theirs64.prediction_logits.numpy()))
    diffs.append(max_diff(exact.seq_relationship_logits, theirs64.seq_relationship_logits.numpy()))
    MEASURED["fp64"] = max(MEASURED["fp64"], *diffs)
    assert max(diffs) <= tolerances.FP64, diffs


# ------------------------------------------------------------------------ heads
TINY = dict(vocab_size=120, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
            max_position_embeddings=32, type_vocab_size=2)  # fmt: skip
LABELS = {0: "O", 1: "B-PER", 2: "I-PER"}


@pytest.fixture(scope="module")
def heads(reference, tmp_path_factory):
    """{transformers class name: (directory, transformers model)} for each BERT class."""
    built = {}
    for seed, name in enumerate(
        ["BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification",
         "BertForTokenClassification", "BertForQuestionAnswering"], start=1,
    ):  # fmt: skip
        directory = tmp_path_factory.mktemp(name)
        extra = (
            {"id2label": LABELS, "label2id": {v: k for k, v in LABELS.items()}}
            if "Classification" in name
            else {}
        )
        model = reference.build(directory, name, seed=seed, **TINY, **extra)
        model.set_attn_implementation("eager")
        built[name] = (directory, model)
    return built


def tiny_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, TINY["vocab_size"], size=(3, 11))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 9:] = 0
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    types[mask == 0] = 0
    return ids, mask, types


OUTPUT_FIELDS = {
    "BertModel": ("last_hidden_state", "pooler_output"),
    "BertForMaskedLM": ("logits",),
    "BertForPreTraining": ("prediction_logits", "seq_relationship_logits"),
    "BertForSequenceClassification": ("logits",),
    "BertForTokenClassification": ("logits",),
    "BertForQuestionAnswering": ("start_logits", "end_logits"),
}
AUTO = {
    "BertModel": AutoModel,
    "BertForMaskedLM": AutoModelForMaskedLM,
    "BertForPreTraining": AutoModelForPreTraining,
    "BertForSequenceClassification": AutoModelForSequenceClassification,
    "BertForTokenClassification": AutoModelForTokenClassification,
    "BertForQuestionAnswering": AutoModelForQuestionAnswering,
}


@pytest.mark.parametrize("name", list(OUTPUT_FIELDS))
def test_head_equals_transformers(reference, heads, name):
    directory, model = heads[name]
    ids, mask, types = tiny_batch()
    theirs = torch_run(reference, model, ids, mask, types)
    ours = load_model(directory)  # by config.json's architectures
    assert type(ours).__name__ == name
    assert type(AUTO[name].from_pretrained(directory)).__name__ == name
    double = type(ours).from_pretrained(directory, dtype=np.float64)
    theirs64 = torch_run(reference, model.double(), ids, mask, types)
    model.float()
    got, got64 = ours(ids, mask, types), double(ids, mask, types)
    for field in OUTPUT_FIELDS[name]:
        want = getattr(theirs, field).numpy()
        assert max_diff(getattr(got, field), want) <= tolerances.FP32_LOGITS, field
        assert max_diff(getattr(got64, field), getattr(theirs64, field).numpy()) <= tolerances.FP64, field
    if "Classification" in name:
        assert ours.config.id2label == LABELS


def test_masked_lm_loads_a_pretraining_checkpoint(reference, heads):
    """As transformers' fill-mask does: AutoModelForMaskedLM on a BertForPreTraining checkpoint."""
    directory, model = heads["BertForPreTraining"]
    ours = AutoModelForMaskedLM.from_pretrained(directory)
    assert type(ours) is BertForMaskedLM
    ids, mask, types = tiny_batch(1)
    want = torch_run(reference, model, ids, mask, types).prediction_logits.numpy()
    assert max_diff(ours(ids, mask, types).logits, want) <= tolerances.FP32_LOGITS


def test_bare_model_without_pooler_says_none(heads):
    """A BertForMaskedLM file has no pooler: BertModel gives pooler_output None, not random numbers."""
    directory, _ = heads["BertForMaskedLM"]
    out = BertModel.from_pretrained(directory)(*tiny_batch())
    assert out.pooler_output is None and out.last_hidden_state.shape == (3, 11, TINY["hidden_size"])


# ----------------------------------------------------------------------- refusals
def _copy_with(source: Path, target: Path, **config_changes) -> Path:
    target.mkdir()
    (target / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    config = json.loads((source / "config.json").read_text())
    config.update(config_changes)
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize(
    ("field", "value"),
    [("position_embedding_type", "relative_key"), ("hidden_act", "silu"), ("is_decoder", True),
     ("add_cross_attention", True), ("layer_norm_eps", -1.0), ("type_vocab_size", 0)],
)  # fmt: skip
def test_unsupported_config_is_refused(heads, tmp_path, field, value):
    directory = _copy_with(heads["BertModel"][0], tmp_path / "m", **{field: value})
    with pytest.raises(ConfigError, match=field):
        BertModel.from_pretrained(directory)
    with pytest.raises(ConfigError, match=field):
        AutoModel.from_pretrained(directory)


def test_another_heads_checkpoint_is_refused(heads):
    with pytest.raises(CheckpointError, match="BertForSequenceClassification checkpoint"):
        BertForTokenClassification.from_pretrained(heads["BertForSequenceClassification"][0])
    with pytest.raises(CheckpointError, match="qa_outputs"):
        BertForMaskedLM.from_pretrained(
            _strip_architectures(heads["BertForQuestionAnswering"][0], heads["BertForMaskedLM"][0])
        )
    with pytest.raises(CheckpointError, match="BertForMaskedLM checkpoint"):
        BertForPreTraining.from_pretrained(heads["BertForMaskedLM"][0])


def _strip_architectures(directory: Path, mlm: Path) -> Path:
    """An MLM head and a QA head in one file, with no architectures to say which: refused by tensors."""
    from safetensors.numpy import load_file, save_file

    target = Path(tempfile.mkdtemp())
    tensors = {**load_file(directory / "model.safetensors"), **{
        k: v for k, v in load_file(mlm / "model.safetensors").items() if k.startswith("cls.")
    }}  # fmt: skip
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((directory / "config.json").read_text())
    config.pop("architectures")
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_two_different_mlm_biases_are_refused(heads, tmp_path):
    from safetensors.numpy import load_file, save_file

    source = heads["BertForMaskedLM"][0]
    tensors = load_file(source / "model.safetensors")
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"] + 1.0
    target = _copy_with(source, tmp_path / "m")
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="differ"):
        BertForMaskedLM.from_pretrained(target)
    # Equal copies (as older files store them) load.
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"].copy()
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    BertForMaskedLM.from_pretrained(target)


def test_legacy_names_and_prefix_load_alike(reference, heads, tmp_path):
    """`bert.`-prefixed names with LayerNorm gamma/beta read as the bare names do."""
    from safetensors.numpy import load_file, save_file

    source = heads["BertModel"][0]
    legacy = {}
    for name, array in load_file(source / "model.safetensors").items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        legacy[f"bert.{name}"] = array
    target = _copy_with(source, tmp_path / "m")
    save_file(legacy, str(target / "model.safetensors"), metadata={"format": "pt"})
    ids, mask, types = tiny_batch()
    a, b = (
        BertModel.from_pretrained(source)(ids, mask, types),
        BertModel.from_pretrained(target)(ids, mask, types),
    )
    assert np.array_equal(a.last_hidden_state, b.last_hidden_state)
    assert np.array_equal(a.pooler_output, b.pooler_output)


def test_token_types_are_checked(heads):
    model = BertModel.from_pretrained(heads["BertModel"][0])
    ids, mask, types = tiny_batch()
    with pytest.raises(ValueError, match=r"token type 2 .* outside"):
        model(ids, mask, types + 2)
    with pytest.raises(ValueError, match="token_type_ids has shape"):
        model(ids, mask, types[:, :3])
    with pytest.raises(TypeError, match="token_type_ids must be integers"):
        model(ids, mask, types.astype(float))


def test_config_reads_transformers_names(heads):
    config = BertConfig.from_pretrained(heads["BertModel"][0])
    assert (config.dim, config.n_layers, config.n_heads, config.hidden_dim) == (16, 2, 4, 24)
    assert config.layer_norm_eps == 1e-12 and config.type_vocab_size == 2


# ---------------------------------------------------------------------- pipelines
@pytest.fixture(scope="module")
def vocab_heads(reference, tmp_path_factory, shared_model_path):
    """Heads with the real 119,547-token vocabulary, so both pipelines tokenize alike."""
    built = {}
    sizes = {**TINY, "vocab_size": 119547, "max_position_embeddings": 64}
    nli = {0: "entailment", 1: "neutral", 2: "contradiction"}
    specs = {
        "BertForSequenceClassification": nli,
        "BertForTokenClassification": LABELS,
        "BertForQuestionAnswering": None,
        "BertModel": None,
    }
    for seed, (name, labels) in enumerate(specs.items(), start=20):
        directory = tmp_path_factory.mktemp(f"vocab_{name}")
        extra = {"id2label": labels, "label2id": {v: k for k, v in labels.items()}} if labels else {}

        def scale_up(m, name=name):
            head = getattr(m, "classifier", None) or getattr(m, "qa_outputs", None)
            if head is not None:
                head.weight.mul_(30)

        reference.build(directory, name, seed=seed, scale_up=scale_up, **sizes, **extra)
        for file in ("vocab.txt", "tokenizer_config.json"):
            (directory / file).symlink_to(shared_model_path / file)
        built[name] = str(directory)
    return built


def _close(got, want, path="out"):
    if isinstance(want, dict):
        assert list(got) == list(want), path
        for key in want:
            _close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _close(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert abs(got - want) <= 1e-5, (path, got, want)
    else:
        assert got == want, (path, got, want)


PREMISES = ["Der Hund spielt im Garten.", "Paris est la capitale de la France, au bord de la Seine."]


def test_text_classification_pairs_use_token_types(reference, vocab_heads):
    directory = vocab_heads["BertForSequenceClassification"]
    theirs = reference.transformers.pipeline("text-classification", model=directory, tokenizer=directory)
    ours = pipeline("text-classification", model=directory)
    assert type(ours.model) is BertForSequenceClassification
    items = [{"text": PREMISES[0], "text_pair": PREMISES[1]}, {"text": PREMISES[1], "text_pair": "Oui."}]
    _close(ours(items, top_k=None), theirs(items, top_k=None))
    _close(ours(PREMISES, top_k=None), theirs(PREMISES, top_k=None))


def test_zero_shot_on_bert(reference, vocab_heads):
    directory = vocab_heads["BertForSequenceClassification"]
    theirs = reference.transformers.pipeline("zero-shot-classification", model=directory, tokenizer=directory)
    ours = pipeline("zero-shot-classification", model=directory)
    labels = ["Tiere", "Politik", "Geographie"]
    for multi_label in (False, True):
        _close(
            ours(PREMISES, labels, multi_label=multi_label), theirs(PREMISES, labels, multi_label=multi_label)
        )


def test_token_classification_on_bert(reference, vocab_heads):
    directory = vocab_heads["BertForTokenClassification"]
    theirs = reference.transformers.pipeline("token-classification", model=directory, tokenizer=directory)
    ours = pipeline("token-classification", model=directory)
    assert type(ours.model) is BertForTokenClassification
    got, want = ours(PREMISES), theirs(PREMISES)
    assert [[(e["entity"], e["index"], e["start"], e["end"]) for e in row] for row in got] == [
        [(e["entity"], e["index"], e["start"], e["end"]) for e in row] for row in want
    ]
    for g_row, w_row in zip(got, want, strict=True):
        for g, w in zip(g_row, w_row, strict=True):
            assert abs(g["score"] - float(w["score"])) <= 1e-5


def test_question_answering_on_bert(reference, vocab_heads):
    """transformers 5 has no QA pipeline: the window ours feeds the model must be transformers'
    encoding of the pair (ids and token types: the context is type 1), and give its logits."""
    directory = vocab_heads["BertForQuestionAnswering"]
    ours = pipeline("question-answering", model=directory)
    assert type(ours.model) is BertForQuestionAnswering
    seen = []

    class Spy:
        """The model, recording what the pipeline feeds it."""

        def __init__(self, model):
            self.model = model

        def __getattr__(self, name):
            return getattr(self.model, name)

        def __call__(self, ids, mask, types=None):
            out = self.model(ids, mask, types)
            seen.append((ids, mask, types, out))
            return out

    ours.model = Spy(ours.model)
    question, context = "Wo spielt der Hund?", "Der Hund spielt im Garten, und die Katze schläft im Haus."
    assert ours(question=question, context=context, max_seq_len=64)["answer"]
    ((ids, mask, types, out),) = seen
    tokenizer = reference.transformers.AutoTokenizer.from_pretrained(directory)
    encoding = tokenizer(question, context, return_tensors="np")
    assert ids.tolist() == encoding["input_ids"].tolist() and mask.all()
    assert types.tolist() == encoding["token_type_ids"].tolist() and types.any()
    theirs_model = reference.transformers.BertForQuestionAnswering.from_pretrained(directory).eval()
    theirs = torch_run(reference, theirs_model, ids, mask, types)
    assert max_diff(out.start_logits, theirs.start_logits.numpy()) <= tolerances.FP32_LOGITS
    assert max_diff(out.end_logits, theirs.end_logits.numpy()) <= tolerances.FP32_LOGITS


def test_feature_extraction_on_bert(reference, vocab_heads):
    directory = vocab_heads["BertModel"]
    theirs = reference.transformers.pipeline("feature-extraction", model=directory, tokenizer=directory)
    ours = pipeline("feature-extraction", model=directory)
    assert type(ours.model) is BertModel
    for text in PREMISES:
        assert max_diff(ours(text), theirs(text)) <= tolerances.FP32_HIDDEN


# ------------------------------------------------------------- random_weights
@pytest.mark.parametrize("architecture", list(OUTPUT_FIELDS))
def test_random_bert_checkpoint_loads_in_transformers(reference, tmp_path, architecture):
    """write_random_checkpoint (no torch) writes what transformers' class of that name loads
    with no key missing or unexpected, and both compute the same outputs."""
    from numpy_distilbert.random_weights import write_random_checkpoint

    config = BertConfig(**TINY)
    labels = LABELS if "Classification" in architecture else None
    directory = write_random_checkpoint(tmp_path, config, seed=3, architecture=architecture, id2label=labels)
    theirs_class = getattr(reference.transformers, architecture)
    model, info = theirs_class.from_pretrained(
        directory, output_loading_info=True, attn_implementation="eager"
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ours = load_model(directory)
    assert type(ours).__name__ == architecture
    ids, mask, types = tiny_batch(2)
    theirs = torch_run(reference, model.eval(), ids, mask, types)
    got = ours(ids, mask, types)
    for field in OUTPUT_FIELDS[architecture]:
        assert max_diff(getattr(got, field), getattr(theirs, field).numpy()) <= tolerances.FP32_LOGITS, field
