"""The Auto classes, model ids and the output dataclasses, against transformers' own.

Each checkpoint is built and saved by transformers (seeded, every parameter perturbed), then
loaded twice: by transformers' `AutoModel` / `AutoModelFor<Task>` and by ours, from the same
directory. Both are called with the same tokenizer output (`model(**encoding)`, token_type_ids
included), and must return the same field names, in the same order, with values within
`numpy_distilbert.tolerances`. NumPy-only tests (registry, model ids, outputs) come last.
"""

from __future__ import annotations

import ast
import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import numpy_distilbert
from numpy_distilbert import auto, tolerances
from numpy_distilbert.config import ConfigError, DistilBertConfig
from numpy_distilbert.heads import DistilBertForTokenClassification
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel
from numpy_distilbert.outputs import BaseModelOutput, MaskedLMOutput
from numpy_distilbert.random_weights import write_random_checkpoint
from numpy_distilbert.weights import CheckpointError

TINY = dict(vocab_size=64, max_position_embeddings=32, dim=16, n_layers=2, n_heads=2, hidden_dim=24)
# A small WordPiece vocabulary, so that a real tokenizer feeds the tiny models.
VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "'", "##s", "##ing", "##ed",
    *"the a cat dog sat on mat is where did go hello world i am model paris lives in who what".split(),
    *"run walk book read fast slow red blue".split(),
]  # fmt: skip
TEXTS = ["the cat sat on the mat .", "where did the dog go ?"]
PAIRS = ["who sat ?", "the dogs walked ."]
LABELS = {0: "NEG", 1: "POS", 2: "MID"}
# Auto class -> (the transformers class that saves its checkpoint, config overrides)
TASKS = {
    "AutoModelForMaskedLM": ("DistilBertForMaskedLM", {}),
    "AutoModelForSequenceClassification": ("DistilBertForSequenceClassification", {"id2label": LABELS}),
    "AutoModelForTokenClassification": ("DistilBertForTokenClassification", {"id2label": LABELS}),
    "AutoModelForQuestionAnswering": ("DistilBertForQuestionAnswering", {}),
    "AutoModelForMultipleChoice": ("DistilBertForMultipleChoice", {}),
}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, torch_module, transformers_module) -> dict[str, Path]:
    """One transformers-saved checkpoint per head, each with vocab.txt beside it."""
    from checkpoints import build_checkpoint

    built = {}
    for seed, (auto_name, (architecture, extra)) in enumerate(TASKS.items(), start=1):
        directory = tmp_path_factory.mktemp(architecture)
        build_checkpoint(directory, architecture, seed=seed, **TINY, **extra)
        (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
        built[auto_name] = directory
    return built


def _encode(directory: Path, multiple_choice: bool) -> dict[str, np.ndarray]:
    """The tokenizer's output as arrays: [B, L], or [1, K, L] for multiple choice."""
    tokenizer = numpy_distilbert.AutoTokenizer.from_pretrained(directory)
    encoding = tokenizer(TEXTS, PAIRS, padding=True)
    assert set(encoding) == {"input_ids", "token_type_ids", "attention_mask"}
    arrays = {key: np.asarray(value) for key, value in encoding.items()}
    assert arrays["token_type_ids"].any()  # pairs: the segment ids are not all zero
    return {key: value[None] for key, value in arrays.items()} if multiple_choice else arrays


def _theirs(transformers, torch, auto_name: str, directory: Path, encoding: dict) -> dict:
    model = getattr(transformers, auto_name).from_pretrained(directory, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(
            **{key: torch.from_numpy(value) for key, value in encoding.items()},
            output_hidden_states=True, output_attentions=True,
        )  # fmt: skip
    return {key: tuple(v.numpy() for v in value) if isinstance(value, tuple) else value.numpy()
            for key, value in out.items()}  # fmt: skip


def _assert_same_fields(ours, theirs: dict, label: str) -> None:
    """Same names in the same order, and values within the project's tolerances."""
    assert list(ours.keys()) == list(theirs), label
    for field, want in theirs.items():
        got = ours[field]
        if isinstance(want, tuple):
            assert len(got) == len(want), (label, field)
            got, want = np.stack(got), np.stack(want)
            limit = tolerances.FP32_ATTENTION if field == "attentions" else tolerances.FP32_HIDDEN
        else:
            limit = tolerances.FP32_LOGITS
        assert got.shape == want.shape, (label, field)
        diff = float(np.abs(got - want).max())
        print(f"{label} {field}: max |diff| = {diff:.2e}")
        assert diff <= limit, (label, field, diff)


# ------------------------------------------------------ against transformers
@pytest.mark.parametrize("auto_name", list(TASKS))
def test_auto_model_for_task_matches_transformers(checkpoints, torch_module, transformers_module, auto_name):
    directory = checkpoints[auto_name]
    encoding = _encode(directory, multiple_choice=auto_name == "AutoModelForMultipleChoice")
    model = getattr(numpy_distilbert, auto_name).from_pretrained(directory)
    assert type(model).__name__ == TASKS[auto_name][0]
    ours = model(**encoding, output_hidden_states=True, output_attentions=True)
    theirs = _theirs(transformers_module, torch_module, auto_name, directory, encoding)
    _assert_same_fields(ours, theirs, auto_name)


@pytest.mark.parametrize("auto_name", list(TASKS))
def test_auto_model_is_the_bare_encoder_of_any_checkpoint(
    checkpoints, torch_module, transformers_module, auto_name
):
    """transformers' AutoModel gives DistilBertModel for every DistilBERT checkpoint; so does ours."""
    directory = checkpoints[auto_name]
    encoding = _encode(directory, multiple_choice=False)
    model = numpy_distilbert.AutoModel.from_pretrained(directory)
    assert type(model) is DistilBertModel
    theirs = _theirs(transformers_module, torch_module, "AutoModel", directory, encoding)
    ours = model(**encoding, output_hidden_states=True, output_attentions=True)
    _assert_same_fields(ours, theirs, auto_name)
    # the example: the MLM checkpoint's encoder output, straight from the tokenizer
    assert model(**encoding).last_hidden_state.shape == (*encoding["input_ids"].shape, TINY["dim"])


def test_outputs_index_like_transformers(checkpoints, torch_module, transformers_module):
    """Keys, positions and to_tuple() hold only what was computed, as ModelOutput's do."""
    directory = checkpoints["AutoModelForQuestionAnswering"]
    encoding = _encode(directory, multiple_choice=False)
    ours = numpy_distilbert.AutoModelForQuestionAnswering.from_pretrained(directory)(**encoding)
    reference = transformers_module.AutoModelForQuestionAnswering.from_pretrained(directory).eval()
    with torch_module.no_grad():
        theirs = reference(**{key: torch_module.from_numpy(value) for key, value in encoding.items()})
    assert list(ours.keys()) == list(theirs.keys()) == ["start_logits", "end_logits"]
    assert len(ours.to_tuple()) == len(theirs.to_tuple()) == 2
    for key_or_index in ("start_logits", "end_logits", 0, 1, -1):
        diff = np.abs(ours[key_or_index] - theirs[key_or_index].numpy()).max()
        assert diff <= tolerances.FP32_LOGITS, key_or_index
    for missing in ("hidden_states", "loss"):
        with pytest.raises(KeyError):
            theirs[missing]
        with pytest.raises(KeyError, match=missing):
            ours[missing]


def test_config_generic_names_match_transformers(checkpoints, transformers_module):
    directory = checkpoints["AutoModelForMaskedLM"]
    theirs = transformers_module.AutoConfig.from_pretrained(directory)
    ours = numpy_distilbert.AutoConfig.from_pretrained(directory)
    assert type(ours) is DistilBertConfig and ours.model_type == theirs.model_type
    for name in ("hidden_size", "num_attention_heads", "num_hidden_layers"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.intermediate_size == theirs.hidden_dim  # transformers maps no intermediate_size
    sizes = dict(hidden_size=24, num_attention_heads=3, num_hidden_layers=5)
    built, reference = DistilBertConfig(**sizes), transformers_module.DistilBertConfig(**sizes)
    for own in ("dim", "n_heads", "n_layers"):
        assert getattr(built, own) == getattr(reference, own), own


def test_token_type_ids_are_ignored_as_transformers_ignores_them(
    checkpoints, torch_module, transformers_module
):
    """transformers' DistilBertModel.forward takes no token_type_ids parameter, yet accepts the
    keyword and ignores it (it lands in **kwargs): segment ids change nothing there, nor here."""
    directory = checkpoints["AutoModelForMaskedLM"]
    reference = transformers_module.AutoModel.from_pretrained(directory).eval()
    assert "token_type_ids" not in inspect.signature(reference.forward).parameters
    ids = np.array([[2, 20, 21, 3, 22, 23, 3]])
    segments = np.array([[0, 0, 0, 0, 1, 1, 1]])
    with torch_module.no_grad():
        plain, typed = (
            reference(input_ids=torch_module.from_numpy(ids), token_type_ids=torch_module.from_numpy(t))
            .last_hidden_state.numpy()
            for t in (np.zeros_like(segments), segments)
        )
    np.testing.assert_array_equal(plain, typed)
    model = numpy_distilbert.AutoModel.from_pretrained(directory)
    np.testing.assert_array_equal(
        model(ids, token_type_ids=segments).last_hidden_state, model(ids).last_hidden_state
    )


# ------------------------------------------------------------ NumPy only
CONFIG = DistilBertConfig(
    vocab_size=40, max_position_embeddings=16, n_layers=2, n_heads=2, dim=8, hidden_dim=12
)


@pytest.fixture(scope="module")
def random_checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("random")
    return {
        name: write_random_checkpoint(root / name, CONFIG, architecture=name, seed=1)
        for name in ("DistilBertForMaskedLM", "DistilBertForTokenClassification", "DistilBertModel")
    }


def test_auto_model_loads_the_encoder_of_the_mlm_checkpoint(random_checkpoints):
    """The issue's failing case: AutoModel on an MLM checkpoint gave the MLM model (no last_hidden_state)."""
    directory = random_checkpoints["DistilBertForMaskedLM"]
    ids = np.array([[1, 5, 9, 2]])
    out = numpy_distilbert.AutoModel.from_pretrained(directory)(input_ids=ids)
    assert isinstance(out, BaseModelOutput)
    encoder_of_mlm = DistilBertForMaskedLM.from_pretrained(directory).distilbert
    np.testing.assert_array_equal(out.last_hidden_state, encoder_of_mlm(ids).last_hidden_state)
    assert type(numpy_distilbert.load_model(directory)) is DistilBertForMaskedLM  # architectures decide


def test_auto_head_class_refuses_another_heads_checkpoint(random_checkpoints):
    directory = random_checkpoints["DistilBertForTokenClassification"]
    with pytest.raises(CheckpointError, match="DistilBertForTokenClassification checkpoint"):
        numpy_distilbert.AutoModelForSequenceClassification.from_pretrained(directory)
    with pytest.raises(CheckpointError, match="vocab_transform"):  # the bare checkpoint has no MLM head
        numpy_distilbert.AutoModelForMaskedLM.from_pretrained(random_checkpoints["DistilBertModel"])


def _with_config(source: Path, target: Path, **changes) -> Path:
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize(
    ("model_type", "message"),
    [
        ("gpt2", r"model_type 'gpt2' is not supported; supported: 'bert', 'distilbert'"),
        (["distilbert"], r"model_type \['distilbert'\] is not supported; supported: 'bert', 'distilbert'"),
        (None, r"has no 'model_type'.*supported: 'bert', 'distilbert'"),
    ],
)
def test_unknown_model_type_lists_the_supported_ones(random_checkpoints, tmp_path, model_type, message):
    directory = _with_config(random_checkpoints["DistilBertModel"], tmp_path / "m", model_type=model_type)
    loaders = (numpy_distilbert.AutoModel, numpy_distilbert.AutoModelForMaskedLM, numpy_distilbert.AutoConfig)
    for loader in loaders:
        with pytest.raises(ConfigError, match=message):
            loader.from_pretrained(directory)
    with pytest.raises(ConfigError, match=message):
        numpy_distilbert.load_model(directory)


def test_a_family_joins_in_one_registration(random_checkpoints, tmp_path, monkeypatch):
    """What the next architecture does: register a config class and a class per task."""

    class ToyConfig(DistilBertConfig):
        model_type = "toy"

    class ToyModel(DistilBertModel):
        config_class = ToyConfig

    class ToyForMaskedLM(DistilBertForMaskedLM):
        config_class = ToyConfig

    monkeypatch.setattr(auto, "_FAMILIES", dict(auto._FAMILIES))  # undone after the test
    auto.register_family("toy", ToyConfig, {auto.BASE: ToyModel, auto.MASKED_LM: ToyForMaskedLM})
    directory = _with_config(
        random_checkpoints["DistilBertForMaskedLM"], tmp_path / "toy", model_type="toy",
        architectures=["ToyForMaskedLM"],
    )  # fmt: skip
    assert type(numpy_distilbert.AutoModel.from_pretrained(directory)) is ToyModel
    assert type(numpy_distilbert.AutoModelForMaskedLM.from_pretrained(directory)) is ToyForMaskedLM
    assert type(numpy_distilbert.load_model(directory)) is ToyForMaskedLM
    with pytest.raises(ValueError, match="'toy' has no model for the task 'token-classification'"):
        numpy_distilbert.AutoModelForTokenClassification.from_pretrained(directory)
    assert auto.supported_model_types() == ["bert", "distilbert", "toy"]


def test_register_family_refuses_mistakes(monkeypatch):
    monkeypatch.setattr(auto, "_FAMILIES", dict(auto._FAMILIES))
    with pytest.raises(ValueError, match="already registered"):
        auto.register_family("distilbert", DistilBertConfig, {auto.BASE: DistilBertModel})
    with pytest.raises(ValueError, match=r"unknown tasks \['fill'\]"):
        auto.register_family("other", DistilBertConfig, {auto.BASE: DistilBertModel, "fill": DistilBertModel})
    with pytest.raises(ValueError, match="needs a 'base' model"):
        auto.register_family("other", DistilBertConfig, {auto.MASKED_LM: DistilBertForMaskedLM})
    with pytest.raises(ValueError, match="model_type is 'distilbert', not 'other'"):
        auto.register_family("other", DistilBertConfig, {auto.BASE: DistilBertModel})


def test_auto_classes_are_not_instantiated():
    for name in ("AutoModel", "AutoModelForMaskedLM", "AutoTokenizer", "AutoConfig"):
        with pytest.raises(TypeError, match=rf"use {name}\.from_pretrained"):
            getattr(numpy_distilbert, name)()


# ----------------------------------------------------------------- model ids
COMMIT = "c" * 40


def _cache_with(cache: Path, repo_id: str, directory: Path, revision: str = "v1") -> None:
    """A Hugging Face cache holding `directory` as `repo_id` at tag `revision` (not at main)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / revision).write_text(COMMIT)
    shutil.copytree(directory, repo / "snapshots" / COMMIT)


def test_model_ids_and_revisions_everywhere(random_checkpoints, tmp_path, monkeypatch):
    """Every loader takes a model id and revision=, resolved as pipeline() resolves them."""
    from numpy_distilbert import hub

    source = random_checkpoints["DistilBertForTokenClassification"]
    (source / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    cache = tmp_path / "cache"
    _cache_with(cache, "someone/tiny-ner", source)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = hub.resolve_model("someone/tiny-ner", revision="v1")
    ids = np.array([[1, 5, 9, 2]])
    want = DistilBertForTokenClassification.from_pretrained(snapshot)(ids).logits
    loaders = [
        DistilBertForTokenClassification.from_pretrained,
        numpy_distilbert.AutoModelForTokenClassification.from_pretrained,
        numpy_distilbert.load_model,
    ]
    for load in loaders:
        np.testing.assert_array_equal(load("someone/tiny-ner", revision="v1")(ids).logits, want)
        with pytest.raises(hub.ModelNotFoundError, match="no refs/main"):
            load("someone/tiny-ner")  # the default revision is not in this cache
    encoder = numpy_distilbert.AutoModel.from_pretrained("someone/tiny-ner", revision="v1")
    assert type(encoder) is DistilBertModel
    config = numpy_distilbert.AutoConfig.from_pretrained("someone/tiny-ner", revision="v1")
    assert config == DistilBertConfig.from_pretrained(snapshot)
    load_tokenizer = numpy_distilbert.AutoTokenizer.from_pretrained
    tokenizer = load_tokenizer("someone/tiny-ner", revision="v1", model_max_length=7)
    assert tokenizer.model_max_length == 7  # keyword arguments reach the tokenizer
    assert tokenizer.get_vocab() == numpy_distilbert.AutoTokenizer.from_pretrained(snapshot).get_vocab()
    with pytest.raises(hub.InvalidModelReference):
        numpy_distilbert.AutoModel.from_pretrained("someone/tiny-ner", revision="../../etc")


def test_missing_model_is_a_not_found_error(tmp_path, monkeypatch):
    from numpy_distilbert import hub

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for load in (DistilBertModel.from_pretrained, numpy_distilbert.AutoModel.from_pretrained,
                 numpy_distilbert.AutoTokenizer.from_pretrained):  # fmt: skip
        with pytest.raises(hub.ModelNotFoundError, match="nobody/nothing"):
            load("nobody/nothing")
        with pytest.raises(hub.ModelNotFoundError, match="not found"):
            load(tmp_path / "no-such-directory")


# ------------------------------------------------------------------ outputs
def test_output_mapping_behaviour():
    logits = np.zeros((1, 3, 5))
    out = MaskedLMOutput(logits=logits)
    assert out.keys() == ["logits"] and len(out) == 1 and "logits" in out and "attentions" not in out
    assert out["logits"] is logits and out[0] is logits and out.to_tuple() == (logits,)
    assert dict(out) == {"logits": logits} and {**out}["logits"] is logits
    with pytest.raises(KeyError, match="'attentions' was not computed"):
        out["attentions"]
    with pytest.raises(KeyError, match="'last_hidden_state' is not a field"):
        out["last_hidden_state"]
    with pytest.raises(IndexError):
        out[1]
    layers = (np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match=r"MaskedLMOutput is not an array; take a field: \.logits"):
        logits - out  # the models returned bare arrays before; NumPy must not array the field names
    full = MaskedLMOutput(logits=logits, attentions=layers)
    assert full.keys() == ["logits", "attentions"] and full[1] is layers


# ------------------------------------------------------------------ package surface
def test_exports_type_checking_imports_and_all_agree():
    """`__all__`, the lazy table and the TYPE_CHECKING imports name the same public names."""
    source = Path(numpy_distilbert.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    guarded = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    typed = {
        (alias.name, node.module)
        for node in guarded.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }  # fmt: skip
    assert typed == {(name, module) for name, module in numpy_distilbert._EXPORTS.items()}
    assert sorted(numpy_distilbert.__all__) == sorted(numpy_distilbert._EXPORTS)
    for name in numpy_distilbert.__all__:
        assert getattr(numpy_distilbert, name) is not None, name
