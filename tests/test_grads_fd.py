"""Whole-model gradients against finite differences, in float64, on tiny random configs.

No torch: the checkpoints are written by `random_weights` (NumPy + safetensors), so this proof
of `loss_and_grads` / `backward` runs in the no-torch tier too. Hypothesis draws the config
(layers, heads, widths, activation gelu / relu (and gelu_new for BERT, whose config allows
it), sinusoidal positions), the batch
shape, the padding and the labels (with -100 ignored); for every parameter tensor a few entries
are perturbed by ±step and the loss's difference quotient must equal the analytic gradient.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from finite_differences import central_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_distilbert.auto import load_model
from numpy_distilbert.config import BertConfig, DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint
from numpy_distilbert.tolerances import FD_ABS, FD_REL

VOCAB = 13
ENTRIES_PER_TENSOR = 3


@dataclasses.dataclass(frozen=True)
class Case:
    architecture: str
    batch: int
    seq_len: int
    seed: int
    padded: bool
    num_labels: int = 3


def distilbert_config(draw: Callable[[Any], Any]) -> DistilBertConfig:
    heads = draw(st.integers(1, 2))
    return DistilBertConfig(
        vocab_size=VOCAB, max_position_embeddings=8, n_layers=draw(st.integers(1, 2)), n_heads=heads,
        dim=heads * draw(st.integers(1, 3)), hidden_dim=draw(st.integers(2, 5)),
        activation=draw(st.sampled_from(["gelu", "relu"])),  # our DistilBertConfig's choices
        sinusoidal_pos_embds=draw(st.booleans()),
    )  # fmt: skip


def bert_config(draw: Callable[[Any], Any]) -> BertConfig:
    heads = draw(st.integers(1, 2))
    return BertConfig(
        vocab_size=VOCAB, max_position_embeddings=8, num_hidden_layers=draw(st.integers(1, 2)),
        num_attention_heads=heads, hidden_size=heads * draw(st.integers(1, 3)),
        intermediate_size=draw(st.integers(2, 5)),
        hidden_act=draw(st.sampled_from(["gelu", "relu", "gelu_new"])),
        layer_norm_eps=draw(st.sampled_from([1e-12, 1e-5])), type_vocab_size=2,
    )  # fmt: skip


def build(directory: str, config: DistilBertConfig | BertConfig, case: Case) -> Any:
    """The model in float64, every parameter moved well away from the small initialisation
    (so that activations leave GELU's and softmax's nearly linear regions)."""
    labelled = "Classification" in case.architecture
    path = write_random_checkpoint(
        directory, config, seed=case.seed, architecture=case.architecture,
        num_labels=case.num_labels if labelled else None,
    )  # fmt: skip
    model = load_model(path, dtype=np.float64)
    rng = np.random.default_rng(case.seed)
    for param in model.named_parameters().values():
        param += rng.normal(size=param.shape) * 0.4
    return model


def make_batch(case: Case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ids avoid the padding id 0, whose embedding row torch never trains (nn.Embedding(padding_idx))."""
    ids = rng.integers(1, VOCAB, size=(case.batch, case.seq_len))
    mask = np.ones_like(ids)
    if case.padded:
        for row in range(1, case.batch):
            mask[row, rng.integers(1, case.seq_len + 1) :] = 0
    return {"input_ids": ids, "attention_mask": mask}


def fd_check(
    model: Any, loss_of: Callable[[], float], grads: dict[str, np.ndarray], rng: np.random.Generator
) -> None:
    """For a few entries of every parameter: the central difference of the loss vs grads[name]."""
    params = model.named_parameters()
    assert set(grads) == set(params)
    magnitude = max(1.0, abs(loss_of()))
    for name, param in params.items():
        assert grads[name].shape == param.shape, name
        flat, grad = param.reshape(-1), grads[name].reshape(-1)
        assert np.shares_memory(flat, param)
        for i in rng.choice(flat.size, size=min(ENTRIES_PER_TENSOR, flat.size), replace=False):
            numeric = central_difference(loss_of, flat, i)
            assert abs(grad[i] - numeric) <= FD_ABS * magnitude + FD_REL * abs(numeric), (
                f"{name}[{i}]: analytic {grad[i]:.10g}, numeric {numeric:.10g}"
            )


def mlm_labels(case: Case, rng: np.random.Generator) -> np.ndarray:
    shape = (case.batch, case.seq_len)
    labels = np.where(rng.random(shape) < 0.5, rng.integers(0, VOCAB, shape), -100)
    labels[0, 0] = 3  # at least one counted position
    return labels


cases = st.builds(
    Case, architecture=st.just(""), batch=st.integers(1, 3), seq_len=st.integers(1, 5),
    seed=st.integers(0, 2**31), padded=st.booleans(),
)  # fmt: skip


@settings(max_examples=12)
@given(data=st.data(), case=cases)
def test_distilbert_masked_lm_fd(data: st.DataObject, case: Case) -> None:
    case = dataclasses.replace(case, architecture="DistilBertForMaskedLM")
    config = distilbert_config(data.draw)
    rng = np.random.default_rng(case.seed)
    with tempfile.TemporaryDirectory() as directory:
        model = build(directory, config, case)
        batch = make_batch(case, rng)
        labels = mlm_labels(case, rng)
        _, grads = model.loss_and_grads(**batch, labels=labels)
        fd_check(model, lambda: model.loss_and_grads(**batch, labels=labels)[0], grads, rng)


@settings(max_examples=10)
@given(data=st.data(), case=cases)
def test_encoder_backward_fd(data: st.DataObject, case: Case) -> None:
    """The bare encoders (DistilBertModel, BertModel with its pooler): backward of the scalar
    Σ h·G + Σ pooled·P for fixed random G, P."""
    bert = data.draw(st.booleans())
    case = dataclasses.replace(case, architecture="BertModel" if bert else "DistilBertModel")
    config = bert_config(data.draw) if bert else distilbert_config(data.draw)
    rng = np.random.default_rng(case.seed)
    with tempfile.TemporaryDirectory() as directory:
        model = build(directory, config, case)
        batch = make_batch(case, rng)
        if bert:
            batch["token_type_ids"] = rng.integers(0, 2, size=batch["input_ids"].shape)
        outputs, tape = model.forward_train(**batch)
        upstream = {"last_hidden_state": rng.normal(size=outputs.last_hidden_state.shape)}
        if bert:
            upstream["pooler_output"] = rng.normal(size=outputs.pooler_output.shape)

        def scalar() -> float:
            out, _ = model.forward_train(**batch)
            return float(sum(np.sum(getattr(out, k) * g) for k, g in upstream.items()))

        fd_check(model, scalar, model.backward(tape, **upstream), rng)


def head_targets(kind: str, case: Case, rng: np.random.Generator, mask: np.ndarray) -> dict[str, np.ndarray]:
    b, length = case.batch, case.seq_len
    if kind == "mlm":
        return {"labels": mlm_labels(case, rng)}
    if kind == "pretraining":
        return {"labels": mlm_labels(case, rng), "next_sentence_label": rng.integers(0, 2, b)}
    if kind == "single_label":
        return {"labels": rng.integers(0, case.num_labels, b)}
    if kind == "regression":
        return {"labels": rng.normal(size=b)}
    if kind == "multi_label":
        return {"labels": (rng.random((b, case.num_labels)) < 0.5).astype(np.float64)}
    if kind == "tokens":
        labels = np.where(mask == 1, rng.integers(0, case.num_labels, (b, length)), -100)
        labels[0, 0] = 1
        return {"labels": labels}
    if kind == "span":  # positions past the input are clamped and ignored; row 0 always counts
        starts, ends = rng.integers(-2, length + 3, b), rng.integers(0, length + 3, b)
        starts[0], ends[0] = 0, length - 1
        return {"start_positions": starts, "end_positions": ends}
    if kind == "choice":
        return {"labels": rng.integers(0, 2, b)}
    raise AssertionError(kind)


HEAD_CASES = [
    ("DistilBertForSequenceClassification", "single_label", 3),
    ("DistilBertForSequenceClassification", "regression", 1),
    ("DistilBertForSequenceClassification", "multi_label", 3),
    ("DistilBertForTokenClassification", "tokens", 3),
    ("DistilBertForQuestionAnswering", "span", 2), ("DistilBertForMultipleChoice", "choice", 1),
    ("BertForMaskedLM", "mlm", 2), ("BertForPreTraining", "pretraining", 2),
    ("BertForSequenceClassification", "single_label", 3), ("BertForSequenceClassification", "multi_label", 2),
    ("BertForSequenceClassification", "regression", 1), ("BertForTokenClassification", "tokens", 3),
    ("BertForQuestionAnswering", "span", 2),
]  # fmt: skip


@pytest.mark.parametrize(("architecture", "kind", "num_labels"), HEAD_CASES)
@settings(max_examples=4)
@given(data=st.data(), case=cases)
def test_every_head_fd(
    data: st.DataObject, case: Case, architecture: str, kind: str, num_labels: int
) -> None:
    """Each head's loss_and_grads (classification CE / MSE / BCE, token CE with -100, QA with
    clamped positions, multiple choice, BERT MLM and pre-training) against finite differences."""
    case = dataclasses.replace(case, architecture=architecture, num_labels=num_labels)
    bert = architecture.startswith("Bert")
    config = bert_config(data.draw) if bert else distilbert_config(data.draw)
    rng = np.random.default_rng(case.seed)
    with tempfile.TemporaryDirectory() as directory:
        model = build(directory, config, case)
        batch = make_batch(case, rng)
        targets = head_targets(kind, case, rng, batch["attention_mask"])
        if bert:
            batch["token_type_ids"] = rng.integers(0, 2, size=batch["input_ids"].shape)
        if kind == "choice":  # two choices per example: [B, 2, L]
            batch = {key: np.stack([value, value[:, ::-1]], axis=1) for key, value in batch.items()}
        _, grads = model.loss_and_grads(**batch, **targets)
        fd_check(model, lambda: model.loss_and_grads(**batch, **targets)[0], grads, rng)
