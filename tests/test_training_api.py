"""The training API's contract, without torch: named_parameters are live and writable, loading
stays read-only until asked, the arguments are checked, and hostile labels get clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from numpy_distilbert.auto import load_model
from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.random_weights import write_random_checkpoint

TINY = DistilBertConfig(
    vocab_size=30, max_position_embeddings=12, n_layers=2, n_heads=2, dim=8, hidden_dim=10
)


@pytest.fixture
def mlm(tmp_path):
    return load_model(write_random_checkpoint(tmp_path, TINY, seed=1), dtype=np.float64)


def test_loading_stays_read_only_until_asked(tmp_path) -> None:
    mlm = load_model(write_random_checkpoint(tmp_path, TINY, seed=1))  # float32: the file's own arrays
    assert not mlm.distilbert.word_embeddings.flags.writeable  # the memory map
    mlm.loss_and_grads(np.array([[3, 4]]), labels=np.array([[5, 6]]))  # gradients need no copy
    assert not mlm.distilbert.word_embeddings.flags.writeable
    params = mlm.named_parameters()
    assert all(p.flags.writeable for p in params.values())
    assert not any(isinstance(p, np.memmap) for p in params.values())


def test_named_parameters_are_live_and_writable(mlm) -> None:
    ids = np.array([[2, 5, 7, 9]])
    before = mlm(ids).logits.copy()
    params = mlm.named_parameters()
    assert all(p.flags.writeable for p in params.values())
    # tied: the output matrix is listed once, under the embeddings' name, as torch does
    assert "vocab_projector.weight" not in params
    assert params["distilbert.embeddings.word_embeddings.weight"] is mlm.projector
    # a second call returns the same arrays (no second copy)
    again = mlm.named_parameters()
    assert all(again[name] is params[name] or np.shares_memory(again[name], params[name]) for name in params)
    np.testing.assert_array_equal(mlm(ids).logits, before)  # copying changed nothing
    # q_lin is a view into the fused projection: an in-place update reaches the forward pass
    q = params["distilbert.transformer.layer.1.attention.q_lin.weight"]
    assert np.shares_memory(q, mlm.distilbert.blocks[1].w_qkv)
    noise = np.random.default_rng(0).normal(size=q.shape) * 2.0
    q += noise
    assert np.abs(mlm(ids).logits - before).max() > 1e-6  # small random weights damp it, but it moves
    q -= noise
    np.testing.assert_allclose(mlm(ids).logits, before, rtol=0, atol=1e-12)


def test_parameter_count_and_shapes(mlm) -> None:
    params = mlm.named_parameters()
    d, f, v, p = TINY.dim, TINY.hidden_dim, TINY.vocab_size, TINY.max_position_embeddings
    per_layer = 4 * (d * d + d) + 2 * 2 * d + (f * d + f) + (d * f + d)
    expected = v * d + p * d + 2 * d + TINY.n_layers * per_layer + (d * d + d) + 2 * d + v
    assert sum(a.size for a in params.values()) == expected
    grads = mlm.loss_and_grads(np.array([[3, 4, 5]]), labels=np.array([[-100, 4, -100]]))[1]
    assert list(grads) == list(params) or set(grads) == set(params)
    assert all(grads[name].shape == params[name].shape for name in params)


def test_arguments_are_checked(mlm) -> None:
    ids = np.array([[3, 4, 5]])
    with pytest.raises(ValueError, match="every MLM label is -100"):
        mlm.loss_and_grads(ids, labels=np.full((1, 3), -100))
    with pytest.raises(ValueError, match="labels have shape"):
        mlm.loss_and_grads(ids, labels=np.array([[1, 2]]))
    with pytest.raises(ValueError, match="outside"):
        mlm.loss_and_grads(ids, labels=np.array([[1, 30, -100]]))
    with pytest.raises(ValueError, match="needs labels"):
        mlm.loss_and_grads(ids)
    with pytest.raises(TypeError, match="not start_positions"):
        mlm.loss_and_grads(ids, labels=np.array([[1, 2, 3]]), start_positions=np.array([0]))
    _, tape = mlm.forward_train(ids)
    with pytest.raises(TypeError, match="takes gradients of logits"):
        mlm.backward(tape, start_logits=np.zeros(3))
    with pytest.raises(TypeError, match="no training loss"):
        mlm.distilbert.loss_and_grads(ids)


def test_non_finite_loss_is_refused(mlm) -> None:
    mlm.named_parameters()["vocab_projector.bias"][4] = np.inf
    with pytest.raises(FloatingPointError, match="non-finite"):
        mlm.loss_and_grads(np.array([[3, 4, 5]]), labels=np.array([[-100, 4, -100]]))


def test_forward_train_equals_inference(mlm) -> None:
    ids, mask = np.array([[3, 4, 5, 6], [7, 8, 0, 0]]), np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    outputs, tape = mlm.forward_train(ids, mask)
    np.testing.assert_array_equal(outputs.logits, mlm(ids, mask).logits)
    np.testing.assert_array_equal(tape.last_hidden_state, mlm.distilbert(ids, mask).last_hidden_state)
    rows = np.nonzero(mask)
    selected = mlm.forward_train(ids, mask, positions=rows)[0].logits
    np.testing.assert_array_equal(selected, mlm(ids, mask).logits[rows])


def test_tied_matrix_stays_tied_when_the_encoder_is_copied_first(mlm) -> None:
    """Making the encoder writable on its own must not leave the output matrix on the old copy."""
    encoder_params = mlm.distilbert.named_parameters()
    word = encoder_params["embeddings.word_embeddings.weight"]
    assert mlm.projector is word
    before = mlm(np.array([[2, 5]])).logits.copy()
    word[:] += 0.5  # moves both the lookup and the output projection
    assert not np.allclose(mlm(np.array([[2, 5]])).logits, before)
    assert mlm.named_parameters()["distilbert.embeddings.word_embeddings.weight"] is word
