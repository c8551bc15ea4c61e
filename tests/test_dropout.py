"""Dropout in training: the masks' statistics, the backward through them (finite differences,
no torch), and their placement and rates against transformers (our masks fed to torch).

Feeding the same masks to both sides is possible because every dropout in transformers'
DistilBERT and BERT goes through `torch.nn.functional.dropout`: replaced for the test by a
function that multiplies by our next mask (after checking that torch asks for the same rate
at that point), it makes torch's training-mode forward use exactly our randomness. Loss and
every gradient must then agree, with the bounds of the eval-mode tests.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import pytest

from numpy_distilbert.auto import load_model
from numpy_distilbert.config import BertConfig, DistilBertConfig
from numpy_distilbert.dropout import dropout_mask, dropout_rate
from numpy_distilbert.random_weights import write_random_checkpoint
from numpy_distilbert.tolerances import FD_ABS, FD_REL, FD_STEP, gradient_bound

# Distinct rates everywhere, so that a rate read from the wrong field is caught.
DISTILBERT_RATES = {"dropout": 0.2, "attention_dropout": 0.3, "seq_classif_dropout": 0.4, "qa_dropout": 0.25}
BERT_RATES = {"hidden_dropout_prob": 0.15, "attention_probs_dropout_prob": 0.35, "classifier_dropout": 0.45}


def test_mask_statistics() -> None:
    """Each element dropped with probability p, the kept ones scaled by exactly 1/(1 - p)."""
    n = 200_000
    for p in (0.1, 0.5, 0.9):
        mask = dropout_mask(np.random.default_rng(0), (n,), p, np.float64)
        assert mask is not None
        dropped = np.mean(mask == 0.0)
        assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)  # five standard deviations
        assert set(np.unique(mask)) == {0.0, 1.0 / (1.0 - p)}
        assert abs(mask.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)  # unbiased in expectation
    float32 = dropout_mask(np.random.default_rng(0), (4, 5), 0.5, np.float32)
    assert float32 is not None and float32.dtype == np.float32


def test_masks_follow_the_generator() -> None:
    a = dropout_mask(np.random.default_rng(7), (50,), 0.5, np.float64)
    b = dropout_mask(np.random.default_rng(7), (50,), 0.5, np.float64)
    rng = np.random.default_rng(7)
    dropout_mask(rng, (50,), 0.5, np.float64)
    c = dropout_mask(rng, (50,), 0.5, np.float64)
    assert a is not None and b is not None and c is not None
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert dropout_mask(None, (3,), 0.5, np.float64) is None  # eval mode
    assert dropout_mask(np.random.default_rng(0), (3,), 0.0, np.float64) is None
    np.testing.assert_array_equal(dropout_mask(np.random.default_rng(0), (3,), 1.0, np.float64), 0.0)


def test_rates_are_validated() -> None:
    assert dropout_rate({}, "dropout", 0.1) == 0.1
    assert dropout_rate({"classifier_dropout": None}, "classifier_dropout", 0.2) == 0.2
    for bad in (-0.1, 1.5, "0.1", True, float("nan")):
        with pytest.raises(ValueError, match="'dropout' must be a probability"):
            dropout_rate({"dropout": bad}, "dropout", 0.1)


def tiny_model(directory: str, architecture: str) -> Any:
    if architecture.startswith("Bert"):
        config: Any = BertConfig(
            vocab_size=20, max_position_embeddings=10, num_hidden_layers=2, num_attention_heads=2,
            hidden_size=6, intermediate_size=8, extra=BERT_RATES,
        )  # fmt: skip
    else:
        config = DistilBertConfig(vocab_size=20, max_position_embeddings=10, n_layers=2, n_heads=2, dim=6,
                                  hidden_dim=8, extra=DISTILBERT_RATES)  # fmt: skip
    path = write_random_checkpoint(directory, config, seed=3, architecture=architecture)
    model = load_model(path, dtype=np.float64)
    rng = np.random.default_rng(4)
    for param in model.named_parameters().values():
        param += rng.normal(size=param.shape) * 0.3
    return model


TRAINING_CASES = {
    "DistilBertForSequenceClassification": {"labels": np.array([1, 0])},
    "DistilBertForTokenClassification": {"labels": np.array([[1, 0, 1, -100], [0, 1, -100, -100]])},
    "DistilBertForQuestionAnswering": {"start_positions": np.array([1, 2]),
                                       "end_positions": np.array([2, 9])},  # 9: past the input
    "DistilBertForMaskedLM": {"labels": np.array([[3, -100, 5, -100], [-100, 7, -100, -100]])},
    "BertForSequenceClassification": {"labels": np.array([1, 0])},
    "BertForTokenClassification": {"labels": np.array([[1, 0, 1, -100], [0, 1, -100, -100]])},
    "BertForPreTraining": {"labels": np.array([[3, -100, 5, -100], [-100, 7, -100, -100]]),
                           "next_sentence_label": np.array([0, 1])},
}  # fmt: skip
BATCH = {
    "input_ids": np.array([[2, 5, 7, 9], [4, 6, 1, 1]]),
    "attention_mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]]),
}


@pytest.mark.parametrize("architecture", sorted(TRAINING_CASES))
def test_backward_through_dropout_fd(architecture: str) -> None:
    """With the generator re-seeded for every evaluation the masks are fixed, so the loss is a
    function of the parameters alone and its finite differences must equal the gradients."""
    targets = TRAINING_CASES[architecture]
    with tempfile.TemporaryDirectory() as directory:
        model = tiny_model(directory, architecture)

        def loss_and_grads() -> tuple[float, dict[str, np.ndarray]]:
            return model.loss_and_grads(**BATCH, **targets, dropout_rng=np.random.default_rng(11))

        loss, grads = loss_and_grads()
        eval_loss, _ = model.loss_and_grads(**BATCH, **targets)
        assert loss != eval_loss  # dropout did something
        check = np.random.default_rng(12)
        for name, param in model.named_parameters().items():
            flat = param.reshape(-1)
            for i in check.choice(flat.size, size=min(2, flat.size), replace=False):
                saved = flat[i]
                flat[i] = saved + FD_STEP
                plus = loss_and_grads()[0]
                flat[i] = saved - FD_STEP
                minus = loss_and_grads()[0]
                flat[i] = saved
                numeric = (plus - minus) / (2 * FD_STEP)
                analytic = grads[name].reshape(-1)[i]
                bound = FD_ABS * max(1.0, abs(loss)) + FD_REL * abs(numeric)
                assert abs(analytic - numeric) <= bound, name


# ------------------------------------------------------------ against torch
def our_masks(tape: Any) -> list[np.ndarray]:
    """Every dropout mask of one forward_train, in the order transformers applies dropout."""
    encoder = tape.encoder
    masks = [encoder.embedding_mask]
    for block in encoder.blocks:
        masks += [block.weights_mask, block.attention_mask, block.ffn_mask]
    masks.append(tape.head.get("mask") if isinstance(tape.head, dict) else None)
    return [mask for mask in masks if mask is not None]


@pytest.mark.parametrize("architecture", sorted(TRAINING_CASES))
def test_same_masks_as_torch(
    architecture: str, tmp_path, torch_module, transformers_module, monkeypatch
) -> None:
    """Our masks, fed to transformers in training mode, give the same loss and gradients; at
    each dropout call torch's own rate must be the one our mask was drawn with."""
    torch = torch_module
    targets = TRAINING_CASES[architecture]
    ours = tiny_model(str(tmp_path), architecture)
    ours.save_pretrained(tmp_path / "saved")
    reference = getattr(transformers_module, architecture).from_pretrained(
        tmp_path / "saved", attn_implementation="eager", dtype=torch.float64
    ).train()

    # the masks loss_and_grads draws from this seed (forward_train draws the same, in the same order)
    _, tape = ours.forward_train(**BATCH, dropout_rng=np.random.default_rng(5))
    queue = our_masks(tape)
    loss, grads = ours.loss_and_grads(**BATCH, **targets, dropout_rng=np.random.default_rng(5))

    calls: list[float] = []

    def fed_dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
        if not training or p == 0.0:
            return input
        mask = queue[len(calls)]
        calls.append(p)
        kept = mask[mask != 0]
        where = f"dropout call {len(calls)}"
        assert kept.size == 0 or np.allclose(kept, 1.0 / (1.0 - p), rtol=1e-12), f"{where}: torch's rate {p}"
        assert tuple(input.shape) == mask.shape, f"{where}: shape {tuple(input.shape)} vs ours {mask.shape}"
        return input * torch.tensor(mask)

    monkeypatch.setattr(torch.nn.functional, "dropout", fed_dropout)
    torch_inputs = {key: torch.tensor(value) for key, value in {**BATCH, **targets}.items()}
    out = reference(**torch_inputs)
    out.loss.backward()
    assert len(calls) == len(queue), f"torch applied dropout {len(calls)} times, ours {len(queue)}"
    assert loss == pytest.approx(out.loss.item(), rel=1e-12)
    for name, param in reference.named_parameters():
        expected = param.grad.numpy()
        bound = gradient_bound(np.float64, float(np.abs(expected).max()))
        assert np.abs(grads[name] - expected).max() <= bound, name
