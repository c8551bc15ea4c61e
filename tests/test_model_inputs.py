"""What the models accept, and the clear errors for everything else. NumPy only, no torch.

A tiny random checkpoint (numpy_distilbert.random_weights) is enough: these tests check
input handling and output structure, not numerics (those are proven against transformers
in test_model_hypothesis.py and test_model_real_size.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from numpy_distilbert.config import DistilBertConfig
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel
from numpy_distilbert.outputs import BaseModelOutput
from numpy_distilbert.random_weights import write_random_checkpoint

CONFIG = DistilBertConfig(
    vocab_size=40, max_position_embeddings=12, n_layers=3, n_heads=2, dim=8, hidden_dim=10
)


@pytest.fixture(scope="module")
def mlm(tmp_path_factory) -> DistilBertForMaskedLM:
    return DistilBertForMaskedLM.from_pretrained(
        write_random_checkpoint(tmp_path_factory.mktemp("inputs"), CONFIG, seed=0)
    )


IDS = np.array([[1, 5, 9, 2, 0, 0], [1, 30, 31, 32, 33, 2]])
MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])


# ------------------------------------------------------------------ output structure
def test_output_structure(mlm):
    out = mlm.distilbert(IDS, MASK, output_hidden_states=True, output_attentions=True)
    assert isinstance(out, BaseModelOutput)
    assert out.last_hidden_state.shape == (2, 6, CONFIG.dim)
    assert len(out.hidden_states) == CONFIG.n_layers + 1
    assert all(h.shape == (2, 6, CONFIG.dim) for h in out.hidden_states)
    assert np.array_equal(out.hidden_states[-1], out.last_hidden_state)
    assert len(out.attentions) == CONFIG.n_layers
    assert all(a.shape == (2, CONFIG.n_heads, 6, 6) for a in out.attentions)
    # Attention rows are distributions.
    assert all(np.allclose(a.sum(axis=-1), 1.0, atol=1e-6) for a in out.attentions)
    plain = mlm.distilbert(IDS, MASK)
    assert plain.hidden_states is None and plain.attentions is None
    assert mlm(IDS, MASK).logits.shape == (2, 6, CONFIG.vocab_size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_everything_in_the_requested_dtype(tmp_path, dtype):
    model = DistilBertForMaskedLM.from_pretrained(write_random_checkpoint(tmp_path, CONFIG), dtype=dtype)
    out = model.distilbert(IDS, MASK, output_hidden_states=True, output_attentions=True)
    assert {a.dtype for a in (*out.hidden_states, *out.attentions)} == {np.dtype(dtype)}
    assert model(IDS, MASK).logits.dtype == dtype
    assert model(IDS, MASK, positions=np.nonzero(MASK)).logits.dtype == dtype


def test_lists_and_one_dimensional_inputs(mlm):
    """A 1-D sequence is a batch of one; Python lists work like arrays."""
    row = IDS[1]
    expected = mlm(IDS[1:2]).logits
    np.testing.assert_array_equal(mlm(row).logits, expected)
    np.testing.assert_array_equal(mlm(row.tolist()).logits, expected)
    np.testing.assert_array_equal(mlm(IDS.tolist(), MASK.tolist()).logits, mlm(IDS, MASK).logits)
    np.testing.assert_array_equal(mlm(IDS[0], MASK[0]).logits, mlm(IDS[:1], MASK[:1]).logits)
    assert mlm(row).logits.shape == (1, 6, CONFIG.vocab_size)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.uint32, np.int64])
def test_any_integer_dtype(mlm, dtype):
    np.testing.assert_array_equal(mlm(IDS.astype(dtype), MASK).logits, mlm(IDS, MASK).logits)


def test_mask_may_be_bool(mlm):
    np.testing.assert_array_equal(mlm(IDS, MASK.astype(bool)).logits, mlm(IDS, MASK).logits)


def test_token_type_ids_are_ignored(mlm):
    """DistilBERT has no segment embeddings; tokenizers may still hand them over."""
    with_types = mlm(IDS, MASK, token_type_ids=np.ones_like(IDS)).logits
    np.testing.assert_array_equal(with_types, mlm(IDS, MASK).logits)


def test_maximum_length_is_accepted(mlm):
    ids = np.arange(CONFIG.max_position_embeddings) % CONFIG.vocab_size
    assert mlm(ids).logits.shape == (1, CONFIG.max_position_embeddings, CONFIG.vocab_size)


def test_positions_forms_agree(mlm):
    full = mlm(IDS, MASK).logits
    rows, cols = np.nonzero(MASK)
    np.testing.assert_allclose(mlm(IDS, MASK, positions=(rows, cols)).logits, full[rows, cols], atol=1e-6)
    np.testing.assert_allclose(
        mlm(IDS, MASK, positions=MASK.astype(bool)).logits, full[MASK.astype(bool)], atol=1e-6
    )
    selected = mlm(IDS, MASK, positions=([1, 0], [5, 2])).logits
    np.testing.assert_allclose(selected, full[[1, 0], [5, 2]], atol=1e-6)
    assert mlm(IDS, MASK, positions=([], [])).logits.shape == (0, CONFIG.vocab_size)


def test_mlm_logits_is_the_head_alone(mlm):
    hidden = mlm.distilbert(IDS, MASK).last_hidden_state
    np.testing.assert_array_equal(mlm.mlm_logits(hidden), mlm(IDS, MASK).logits)


# ------------------------------------------------------------------ bad input_ids
@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        ([[1, 2, 40]], ValueError, r"token id 40 at position \(0, 2\) is outside the vocabulary \[0, 40\)"),
        ([[1, -1, 3]], ValueError, r"token id -1 at position \(0, 1\) is outside the vocabulary"),
        ([[1, 2], [3, 10**6]], ValueError, r"token id 1000000 at position \(1, 1\)"),
        (list(range(13)), ValueError, r"sequence length 13 exceeds max_position_embeddings \(12\)"),
        ([], ValueError, r"input_ids is empty"),
        ([[]], ValueError, r"input_ids is empty"),
        (np.zeros((0, 4), dtype=np.int64), ValueError, r"input_ids is empty"),
        ([[1, 2, 3], [4, 5]], ValueError, r"rectangular.*pad ragged sequences"),
        ([1.0, 2.0], TypeError, r"input_ids must be integers, got dtype float64"),
        (np.array([[1.5, 2.0]], dtype=np.float32), TypeError, r"input_ids must be integers"),
        ([True, False], TypeError, r"input_ids must be integers, got dtype bool"),
        (["a", "b"], TypeError, r"input_ids must be integers"),
        (7, ValueError, r"shape \[batch, length\]"),
        (np.ones((1, 2, 3), dtype=np.int64), ValueError, r"shape \[batch, length\], got shape \(1, 2, 3\)"),
        ([[1, None]], ValueError, r"rectangular \[batch, length\] array of integers"),
    ],
)
def test_bad_input_ids(mlm, ids, error, message):
    with pytest.raises(error, match=message):
        mlm(ids)
    with pytest.raises(error, match=message):
        mlm.distilbert(ids)


# ------------------------------------------------------------------ bad masks
@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.ones((2, 5)), r"attention_mask has shape \(2, 5\), input_ids \(2, 6\)"),
        (np.ones((1, 6)), r"attention_mask has shape \(1, 6\), input_ids \(2, 6\)"),
        (np.ones(6), r"attention_mask has shape \(1, 6\), input_ids \(2, 6\)"),
        (np.full((2, 6), 2), r"only 0 \(padding\) and 1 \(token\)"),
        (np.full((2, 6), -1), r"only 0 \(padding\) and 1 \(token\)"),
        (np.full((2, 6), 0.5), r"only 0 \(padding\) and 1 \(token\)"),
    ],
)
def test_bad_attention_mask(mlm, mask, message):
    with pytest.raises(ValueError, match=message):
        mlm(IDS, mask)


# ------------------------------------------------------------------ bad positions
@pytest.mark.parametrize(
    ("positions", "message"),
    [
        (([0, 2], [1, 1]), r"positions out of range for a batch of shape \(2, 6\)"),
        (([0], [6]), r"positions out of range"),
        (([0], [-1]), r"positions out of range"),
        (([0, 1], [1]), r"index arrays differ in shape"),
        (np.ones((2, 5), dtype=bool), r"boolean positions must have shape \(2, 6\)"),
        ((1, 2, 3), r"positions must be \(batch_indices, seq_indices\)"),
        ("nonsense", r"positions must be \(batch_indices, seq_indices\)"),
    ],
)
def test_bad_positions(mlm, positions, message):
    with pytest.raises(ValueError, match=message):
        mlm(IDS, MASK, positions=positions)


# ------------------------------------------------------------------ dtype argument
@pytest.mark.parametrize("dtype", [np.float16, np.int64, "bfloat16", np.complex64])
def test_unsupported_model_dtype(tmp_path, dtype):
    directory = write_random_checkpoint(tmp_path, CONFIG)
    with pytest.raises((ValueError, TypeError), match=r"float32 or float64|bfloat16"):
        DistilBertModel.from_pretrained(directory, dtype=dtype)
