"""`write_random_checkpoint` writes files that both loaders accept, and that mean the same to both.

The checks against transformers are the point: transformers must load the file with no
missing, unexpected or mismatched keys (so the names and shapes are exactly its own) and
compute the same numbers as our model from it (so nothing was silently re-initialised).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import require_module
from safetensors.numpy import load_file

from numpy_distilbert import DistilBertConfig, DistilBertForMaskedLM, DistilBertModel, tolerances
from numpy_distilbert.random_weights import ARCHITECTURES, write_random_checkpoint

TINY = DistilBertConfig(
    vocab_size=99, max_position_embeddings=40, n_layers=2, n_heads=4, dim=32, hidden_dim=64
)
IDS = np.array([[2, 17, 45, 3, 88, 9, 1], [2, 60, 5, 3, 0, 0, 0]])
MASK = np.array([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])


def _load_with_transformers(directory, architecture: str):
    """transformers' model (eval) and its loading report; fails on any key problem."""
    require_module("torch")
    transformers = require_module("transformers")
    model, info = getattr(transformers, architecture).from_pretrained(directory, output_loading_info=True)
    problems = {key: value for key, value in info.items() if value}
    assert not problems, f"transformers reports {problems}"
    return model.eval()


def _torch_run(model, ids=IDS, mask=MASK, **kwargs):
    import torch

    with torch.no_grad():
        return model(torch.tensor(ids), attention_mask=torch.tensor(mask), **kwargs)


# ------------------------------------------------------------------- our loader
def test_loads_with_our_model(tmp_path):
    path = write_random_checkpoint(tmp_path, TINY, seed=3)
    assert path == tmp_path
    model = DistilBertForMaskedLM.from_pretrained(path)
    logits = model(IDS, MASK).logits
    assert logits.shape == (2, 7, TINY.vocab_size)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()


def test_config_round_trips(tmp_path):
    write_random_checkpoint(tmp_path, TINY)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "distilbert"
    assert data["architectures"] == ["DistilBertForMaskedLM"]
    loaded = DistilBertConfig.from_pretrained(tmp_path)
    for name in ("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim",
                 "activation", "sinusoidal_pos_embds", "pad_token_id"):  # fmt: skip
        assert getattr(loaded, name) == getattr(TINY, name), name


def test_deterministic_from_seed(tmp_path):
    a = load_file(write_random_checkpoint(tmp_path / "a", TINY, seed=7) / "model.safetensors")
    b = load_file(write_random_checkpoint(tmp_path / "b", TINY, seed=7) / "model.safetensors")
    c = load_file(write_random_checkpoint(tmp_path / "c", TINY, seed=8) / "model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert not any(np.array_equal(a[name], c[name]) for name in a)


def test_initialisation_statistics(tmp_path):
    tensors = load_file(write_random_checkpoint(tmp_path, TINY) / "model.safetensors")
    assert "vocab_projector.weight" not in tensors  # tied to the word embeddings
    for name, array in tensors.items():
        assert array.dtype == np.float32, name
        if "norm." in name.lower() and name.endswith(".weight"):
            assert abs(array.mean() - 1.0) < 0.02 and 0.005 < array.std() < 0.05, name
        else:
            assert abs(array.mean()) < 0.02 and 0.005 < array.std() < 0.05, name


def test_sinusoidal_positions_are_the_fixed_table(tmp_path):
    from numpy_distilbert.layers import sinusoidal_positions

    config = DistilBertConfig(**{**_sizes(TINY), "sinusoidal_pos_embds": True})
    tensors = load_file(write_random_checkpoint(tmp_path, config) / "model.safetensors")
    table = tensors["distilbert.embeddings.position_embeddings.weight"]
    np.testing.assert_allclose(table, sinusoidal_positions(config.max_position_embeddings, config.dim),
                               atol=1e-6)  # fmt: skip


def test_copies_vocab(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "vocab.txt").write_text("".join(f"tok{i}\n" for i in range(TINY.vocab_size)), encoding="utf-8")
    (source / "tokenizer_config.json").write_text('{"do_lower_case": false}', encoding="utf-8")
    out = write_random_checkpoint(tmp_path / "out", TINY, vocab_dir=source)
    assert (out / "vocab.txt").read_bytes() == (source / "vocab.txt").read_bytes()
    assert json.loads((out / "tokenizer_config.json").read_text()) == {"do_lower_case": False}


def test_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown architecture"):
        write_random_checkpoint(tmp_path, TINY, architecture="GPT2LMHeadModel")
    with pytest.raises(TypeError, match="BertForMaskedLM needs a BertConfig, got DistilBertConfig"):
        write_random_checkpoint(tmp_path, TINY, architecture="BertForMaskedLM")
    with pytest.raises(ValueError, match="exactly 2 labels"):
        write_random_checkpoint(tmp_path, TINY, architecture="DistilBertForQuestionAnswering", num_labels=3)
    with pytest.raises(ValueError, match="disagrees"):
        write_random_checkpoint(tmp_path, TINY, num_labels=3, id2label={0: "A", 1: "B"})
    with pytest.raises(ValueError, match="seed"):
        write_random_checkpoint(tmp_path, TINY, seed=-1)
    with pytest.raises(TypeError, match="DistilBertConfig"):
        write_random_checkpoint(tmp_path, {"dim": 32})
    with pytest.raises(FileNotFoundError, match=r"vocab\.txt"):
        write_random_checkpoint(tmp_path / "x", TINY, vocab_dir=tmp_path / "nowhere")
    big = tmp_path / "big"
    big.mkdir()
    (big / "vocab.txt").write_text("".join(f"t{i}\n" for i in range(TINY.vocab_size + 1)), encoding="utf-8")
    with pytest.raises(ValueError, match="vocab_size"):
        write_random_checkpoint(tmp_path / "y", TINY, vocab_dir=big)


# ------------------------------------------------------------ against transformers
def _sizes(config: DistilBertConfig) -> dict:
    names = ("vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim")
    return {name: getattr(config, name) for name in names}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_transformers_loads_every_architecture(tmp_path, architecture):
    """Same tensor names as transformers' own save_pretrained, and the same encoder output."""
    require_module("torch")
    transformers = require_module("transformers")
    path = write_random_checkpoint(tmp_path / "ours", TINY, seed=1, architecture=architecture)
    reference = _load_with_transformers(path, architecture)

    # The names transformers itself would write for this architecture.
    fresh = getattr(transformers, architecture)(transformers.DistilBertConfig(**_sizes(TINY)))
    fresh.save_pretrained(tmp_path / "theirs", safe_serialization=True)
    theirs_names = set(load_file(tmp_path / "theirs" / "model.safetensors"))
    assert set(load_file(path / "model.safetensors")) == theirs_names

    ours = DistilBertModel.from_pretrained(path)(IDS, MASK).last_hidden_state
    if architecture == "DistilBertModel":
        theirs = _torch_run(reference).last_hidden_state.numpy()
    elif architecture == "DistilBertForMultipleChoice":  # inputs [batch, choices, length]
        theirs = _torch_run(reference, IDS[None], MASK[None], output_hidden_states=True)
        theirs = theirs.hidden_states[-1].numpy()
    else:
        theirs = _torch_run(reference, output_hidden_states=True).hidden_states[-1].numpy()
    diff = np.abs(ours - theirs)[MASK.astype(bool)].max()
    print(f"{architecture}: max |hidden difference| = {diff:.2e}")
    assert diff <= tolerances.FP32_HIDDEN


def test_transformers_reads_labels(tmp_path):
    labels = {0: "O", 1: "B-PER", 2: "I-PER"}
    path = write_random_checkpoint(
        tmp_path, TINY, architecture="DistilBertForTokenClassification", id2label=labels
    )
    reference = _load_with_transformers(path, "DistilBertForTokenClassification")
    assert reference.config.id2label == labels
    assert reference.config.label2id == {v: k for k, v in labels.items()}
    assert _torch_run(reference).logits.shape == (2, 7, 3)


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_same_logits_as_transformers_tiny(tmp_path, activation):
    config = DistilBertConfig(**_sizes(TINY), activation=activation)
    path = write_random_checkpoint(tmp_path, config, seed=5)
    theirs = _torch_run(_load_with_transformers(path, "DistilBertForMaskedLM")).logits.numpy()
    ours = DistilBertForMaskedLM.from_pretrained(path)(IDS, MASK).logits
    diff = np.abs(ours - theirs)[MASK.astype(bool)].max()
    print(f"tiny {activation}: max |logit difference| = {diff:.2e}")
    assert diff <= tolerances.FP32_LOGITS


@pytest.mark.slow
def test_same_logits_as_transformers_real_size(tmp_path, shared_model_path):
    """The notebooks' checkpoint: the real config and vocab, random weights."""
    config = DistilBertConfig.from_pretrained(shared_model_path)
    path = write_random_checkpoint(tmp_path, config, vocab_dir=shared_model_path)
    assert (path / "vocab.txt").is_file()
    ids = np.array([[101, 10117, 44824, 10124, 103, 119, 102]])
    mask = np.ones_like(ids)
    theirs = _torch_run(_load_with_transformers(path, "DistilBertForMaskedLM"), ids, mask).logits.numpy()
    ours = DistilBertForMaskedLM.from_pretrained(path)(ids, mask).logits
    diff = np.abs(ours - theirs).max()
    print(f"real size: max |logit difference| = {diff:.2e}")
    assert diff <= tolerances.FP32_LOGITS
