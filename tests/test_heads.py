"""The task heads against transformers' classes, on seeded perturbed checkpoints.

fp32 logits within 1e-4 of transformers fp32; float64 within 1e-10 of torch float64.
Every field transformers returns is compared (logits, or start/end logits, and the hidden
states and attention weights of every layer when asked for). Also: `load_model`'s choice by
`architectures`, label defaults, and the refusals (the Auto classes: test_auto.py).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from numpy_distilbert import tolerances
from numpy_distilbert.auto import load_model
from numpy_distilbert.heads import (
    DistilBertForMultipleChoice,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
)
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel
from numpy_distilbert.weights import CheckpointError

TINY = dict(vocab_size=500, max_position_embeddings=64, dim=32, n_layers=2, n_heads=4, hidden_dim=64)
LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
HEADS = {
    "DistilBertForSequenceClassification": (DistilBertForSequenceClassification, {"id2label": LABELS}),
    "DistilBertForTokenClassification": (DistilBertForTokenClassification, {"id2label": LABELS}),
    "DistilBertForQuestionAnswering": (DistilBertForQuestionAnswering, {}),
    "DistilBertForMultipleChoice": (DistilBertForMultipleChoice, {}),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, torch_module, transformers_module):
    from checkpoints import build_checkpoint

    built = {}
    for seed, (name, (_, extra)) in enumerate(HEADS.items()):
        directory = tmp_path_factory.mktemp(name)
        label2id = {v: k for k, v in extra["id2label"].items()} if "id2label" in extra else {}
        ref = build_checkpoint(directory, name, seed=seed + 1, **TINY, **extra,
                               **({"label2id": label2id} if label2id else {}))  # fmt: skip
        built[name] = (directory, ref)
    return built


def _inputs(rng: np.random.Generator, batch: int = 3, length: int = 11):
    ids = rng.integers(1, TINY["vocab_size"], size=(batch, length))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0  # one padded row
    mask[2, 4:] = 0
    return ids, mask


def _reference(ref, ids, mask, torch, double: bool = False) -> dict:
    """Every field transformers returns, by its name; eager attention, so that it returns weights."""
    model = copy.deepcopy(ref).double() if double else copy.deepcopy(ref)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
            output_hidden_states=True, output_attentions=True,
        )  # fmt: skip
    return {
        name: tuple(v.numpy() for v in value) if isinstance(value, tuple) else value.numpy()
        for name, value in out.items()
    }


def _ours(model, ids, mask) -> dict:
    return dict(model(ids, mask, output_hidden_states=True, output_attentions=True).items())


def _mc_inputs(rng):
    ids = rng.integers(1, TINY["vocab_size"], size=(2, 3, 9))
    mask = np.ones_like(ids)
    mask[0, 1, 5:] = 0
    return ids, mask


@pytest.mark.parametrize("name", list(HEADS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_head_matches_transformers(checkpoints, torch_module, name, dtype):
    directory, ref = checkpoints[name]
    cls = HEADS[name][0]
    model = cls.from_pretrained(directory, dtype=dtype)
    rng = np.random.default_rng(7)
    ids, mask = _mc_inputs(rng) if name == "DistilBertForMultipleChoice" else _inputs(rng)
    double = dtype == np.float64
    expected = _reference(ref, ids, mask, torch_module, double=double)
    got = _ours(model, ids, mask)
    assert list(got) == list(expected)  # the same field names, in the same order
    for field, want in expected.items():
        ours = got[field]
        if field in ("hidden_states", "attentions"):
            assert len(ours) == len(want), field
            ours, want = np.stack(ours), np.stack(want)  # [layers, ...]
            limit = tolerances.FP32_ATTENTION if field == "attentions" else tolerances.FP32_HIDDEN
            tolerance = tolerances.FP64 if double else limit
        else:
            tolerance = tolerances.FP64 if double else tolerances.FP32_LOGITS
        assert ours.shape == want.shape, field
        assert ours.dtype == np.dtype(dtype), field
        # Padded positions of token-level outputs are compared too: transformers computes them alike.
        diff = float(np.abs(ours - want).max())
        print(f"{name} {np.dtype(dtype)} {field}: max |diff| = {diff:.3e}")
        assert diff <= tolerance, (field, diff)


def test_labels_come_from_config(checkpoints):
    directory, _ = checkpoints["DistilBertForTokenClassification"]
    model = DistilBertForTokenClassification.from_pretrained(directory)
    assert model.config.id2label == LABELS
    assert model.config.label2id == {v: k for k, v in LABELS.items()}


@pytest.mark.parametrize("name", list(HEADS))
def test_load_model_picks_the_class_from_architectures(checkpoints, name):
    directory, _ = checkpoints[name]
    assert type(load_model(directory)) is HEADS[name][0]
    assert type(load_model(directory, dtype=np.float64)) is HEADS[name][0]


def _rewrite_config(src, dst, **changes):
    """A copy of checkpoint directory `src` at `dst` with config.json keys changed (None deletes)."""
    dst.mkdir()
    (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    config = json.loads((src / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_auto_model_bare_encoder_and_mlm(tmp_path, checkpoints):
    src, _ = checkpoints["DistilBertForTokenClassification"]
    bare = _rewrite_config(src, tmp_path / "bare", architectures=["DistilBertModel"])
    assert type(load_model(bare)) is DistilBertModel
    empty = _rewrite_config(src, tmp_path / "empty", architectures=[])
    assert type(load_model(empty)) is DistilBertModel
    mlm = _rewrite_config(src, tmp_path / "mlm", architectures=["DistilBertForMaskedLM"])
    with pytest.raises(CheckpointError, match="vocab_transform"):  # a token head has no MLM tensors
        load_model(mlm)
    assert DistilBertForMaskedLM.__name__ == "DistilBertForMaskedLM"


def test_unknown_architecture_is_refused(tmp_path, checkpoints):
    src, _ = checkpoints["DistilBertForTokenClassification"]
    other = _rewrite_config(src, tmp_path / "other", architectures=["BertForTokenClassification"])
    with pytest.raises(ValueError, match=r"BertForTokenClassification.*supported: DistilBertModel"):
        load_model(other)


def test_missing_id2label_defaults_like_transformers(tmp_path, checkpoints, transformers_module):
    # A 2-label classifier saved without id2label: transformers names them LABEL_0, LABEL_1.
    from checkpoints import build_checkpoint

    directory = tmp_path / "two"
    build_checkpoint(directory, "DistilBertForSequenceClassification", seed=5, **TINY)
    stripped = _rewrite_config(directory, tmp_path / "stripped", id2label=None, label2id=None)
    ours = DistilBertForSequenceClassification.from_pretrained(stripped)
    theirs = transformers_module.AutoConfig.from_pretrained(stripped)
    assert ours.config.id2label == theirs.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert ours.config.label2id == theirs.label2id


def test_id2label_disagreeing_with_classifier_is_refused(tmp_path, checkpoints):
    src, _ = checkpoints["DistilBertForTokenClassification"]
    bad = _rewrite_config(src, tmp_path / "bad", id2label={"0": "A", "1": "B"}, label2id={"A": 0, "B": 1})
    with pytest.raises(CheckpointError, match="2 labels, but the classifier has 5 outputs"):
        DistilBertForTokenClassification.from_pretrained(bad)
    declared = _rewrite_config(src, tmp_path / "declared", id2label=None, label2id=None, num_labels=3)
    with pytest.raises(CheckpointError, match="num_labels=3"):
        DistilBertForTokenClassification.from_pretrained(declared)


def test_wrong_head_for_checkpoint_names_the_missing_tensor(checkpoints):
    directory, _ = checkpoints["DistilBertForTokenClassification"]
    with pytest.raises(CheckpointError, match="pre_classifier"):
        DistilBertForSequenceClassification.from_pretrained(directory)
    with pytest.raises(CheckpointError, match="qa_outputs"):
        DistilBertForQuestionAnswering.from_pretrained(directory)


def test_multiple_choice_needs_three_dimensions(checkpoints):
    directory, _ = checkpoints["DistilBertForMultipleChoice"]
    model = DistilBertForMultipleChoice.from_pretrained(directory)
    with pytest.raises(ValueError, match="num_choices"):
        model(np.ones((2, 5), dtype=np.int64))


@pytest.mark.parametrize("name", list(HEADS))
def test_bare_encoder_from_a_head_checkpoint_matches_transformers(checkpoints, torch_module, name):
    """As transformers' DistilBertModel.from_pretrained, ours loads the encoder of any head's checkpoint."""
    from checkpoints import load_reference

    directory, _ = checkpoints[name]
    ids, mask = _inputs(np.random.default_rng(11))
    with torch_module.no_grad():
        reference = load_reference(directory, "DistilBertModel")
        want = reference(input_ids=torch_module.tensor(ids), attention_mask=torch_module.tensor(mask))
    got = DistilBertModel.from_pretrained(directory)(ids, mask).last_hidden_state
    diff = float(np.abs(got - want.last_hidden_state.numpy()).max())
    print(f"DistilBertModel from a {name} checkpoint: max |diff| = {diff:.3e}")
    assert diff <= 1e-5


def test_a_head_refuses_another_heads_checkpoint_transformers_would_half_load(checkpoints):
    """transformers would load `classifier.*` of a sentiment model into an NER head and drop
    `pre_classifier.*` with a warning; we refuse, naming both classes."""
    directory, _ = checkpoints["DistilBertForSequenceClassification"]
    with pytest.raises(
        CheckpointError,
        match=r"DistilBertForSequenceClassification checkpoint, not DistilBertForTokenClassification",
    ):
        DistilBertForTokenClassification.from_pretrained(directory)
