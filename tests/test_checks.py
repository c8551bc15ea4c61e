"""The shared argument rules (`numpy_distilbert._checks`): integers and comma lists."""

from __future__ import annotations

import numpy as np
import pytest

from numpy_distilbert._checks import as_int, comma_list


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_integers_and_numpy_integers_are_accepted_as_python_ints(value):
    result = as_int(value, "top_k", minimum=1)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [True, False, np.True_, 3.0, np.float64(3), "3", None, [3]])
def test_bools_floats_and_strings_are_refused_naming_the_option(value):
    with pytest.raises(ValueError, match=r"^top_k must be a positive integer, got "):
        as_int(value, "top_k", minimum=1)


@pytest.mark.parametrize(("minimum", "value", "wanted"), [
    (1, 0, "a positive integer"), (0, -1, "a non-negative integer"), (4, 3, "an integer >= 4"),
])
def test_the_minimum_is_enforced_and_named(minimum, value, wanted):
    with pytest.raises(ValueError, match=f"stride must be {wanted}, got {value}"):
        as_int(np.int64(value), "stride", minimum=minimum)
    assert as_int(minimum, "stride", minimum=minimum) == minimum


def test_the_error_class_can_be_chosen():
    with pytest.raises(TypeError, match="seed"):
        as_int("1", "seed", error=TypeError)


@pytest.mark.parametrize(("text", "items"), [
    ("a, b,,c ", ["a", "b", "c"]), ("", []), (" , ", []), ("politics", ["politics"]),
])
def test_comma_list(text, items):
    assert comma_list(text) == items


def test_random_checkpoints_take_numpy_integer_seeds_and_refuse_bools(tmp_path):
    from safetensors.numpy import load_file

    from numpy_distilbert.config import DistilBertConfig
    from numpy_distilbert.random_weights import write_random_checkpoint

    config = DistilBertConfig(vocab_size=50, dim=8, n_layers=1, n_heads=2, hidden_dim=16)
    plain = load_file(write_random_checkpoint(tmp_path / "a", config, seed=7) / "model.safetensors")
    numpy_dir = write_random_checkpoint(tmp_path / "b", config, seed=np.int64(7))
    numpy_seed = load_file(numpy_dir / "model.safetensors")
    assert plain.keys() == numpy_seed.keys()
    assert all(np.array_equal(plain[k], numpy_seed[k]) for k in plain)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got True"):
        write_random_checkpoint(tmp_path / "c", config, seed=True)
    with pytest.raises(ValueError, match="num_labels must be a positive integer, got True"):
        write_random_checkpoint(tmp_path / "d", config, architecture="DistilBertForSequenceClassification",
                                num_labels=True)
