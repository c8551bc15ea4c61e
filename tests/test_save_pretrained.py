"""save_pretrained: our from_pretrained loads the result back bit-exact (no torch), transformers
loads it with no missing or unexpected keys and the same logits, tokenizer files come along."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from numpy_distilbert import tolerances
from numpy_distilbert.auto import load_model
from numpy_distilbert.config import BertConfig, DistilBertConfig
from numpy_distilbert.random_weights import ARCHITECTURES, BERT_ARCHITECTURES, write_random_checkpoint

DISTILBERT = DistilBertConfig(
    vocab_size=24, max_position_embeddings=10, n_layers=2, n_heads=2, dim=8, hidden_dim=10
)
BERT = BertConfig(vocab_size=24, max_position_embeddings=10, num_hidden_layers=2, num_attention_heads=2,
                  hidden_size=8, intermediate_size=10)  # fmt: skip
ALL = sorted(ARCHITECTURES) + sorted(BERT_ARCHITECTURES)
LABELS = {0: "negative", 1: "neutral", 2: "positive"}
IDS = np.array([[2, 5, 7, 9, 3], [4, 6, 8, 0, 0]])
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def trained_model(directory: Path, architecture: str, vocab_dir: Path | None = None) -> Any:
    """A random checkpoint whose parameters were then changed in place (as training would)."""
    config = BERT if architecture in BERT_ARCHITECTURES else DISTILBERT
    labelled = "Classification" in architecture
    path = write_random_checkpoint(
        directory, config, seed=1, architecture=architecture, vocab_dir=vocab_dir,
        id2label=LABELS if labelled else None,
    )  # fmt: skip
    model = load_model(path)
    rng = np.random.default_rng(2)
    for param in model.named_parameters().values():
        param += rng.normal(size=param.shape).astype(param.dtype) * 0.1
    return model


def inputs(architecture: str) -> dict[str, np.ndarray]:
    if "MultipleChoice" in architecture:
        return {"input_ids": np.stack([IDS, IDS[:, ::-1]], axis=1),
                "attention_mask": np.stack([MASK, MASK], axis=1)}  # fmt: skip
    return {"input_ids": IDS, "attention_mask": MASK}


def outputs(model: Any, architecture: str) -> list[np.ndarray]:
    result = model(**inputs(architecture))
    return [np.asarray(value) for value in result.values()]


@pytest.mark.parametrize("architecture", ALL)
def test_round_trip_is_bit_exact(tmp_path, architecture: str) -> None:
    model = trained_model(tmp_path / "source", architecture)
    saved = model.save_pretrained(tmp_path / "saved")
    loaded = load_model(saved)
    assert type(loaded) is type(model)
    ours, theirs = model.named_parameters(), loaded.named_parameters()
    assert list(ours) == list(theirs)
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype and np.array_equal(ours[name], theirs[name]), name
    for a, b in zip(outputs(model, architecture), outputs(loaded, architecture), strict=True):
        np.testing.assert_array_equal(a, b)
    config = json.loads((saved / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == [architecture]
    if "Classification" in architecture:
        assert loaded.config.id2label == LABELS
        assert config["label2id"] == {label: i for i, label in LABELS.items()}


def test_float64_round_trip(tmp_path) -> None:
    path = write_random_checkpoint(tmp_path / "source", DISTILBERT, seed=3)
    model = load_model(path, dtype=np.float64)
    model.named_parameters()["vocab_projector.bias"][:] += 1e-9  # below float32's resolution near 0.02
    loaded = load_model(model.save_pretrained(tmp_path / "saved"), dtype=np.float64)
    for name, value in model.named_parameters().items():
        assert np.array_equal(value, loaded.named_parameters()[name]), name


def test_tokenizer_files_are_copied_and_source_survives(tmp_path) -> None:
    vocab_dir = tmp_path / "vocab"
    vocab_dir.mkdir()
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    (vocab_dir / "vocab.txt").write_text("\n".join(tokens) + "\n")
    (vocab_dir / "tokenizer_config.json").write_text('{"do_lower_case": false}\n')
    model = trained_model(tmp_path / "source", "DistilBertForMaskedLM", vocab_dir=vocab_dir)
    saved = model.save_pretrained(tmp_path / "saved")
    for name in ("vocab.txt", "tokenizer_config.json"):
        assert (saved / name).read_bytes() == (vocab_dir / name).read_bytes()
    # saving over the directory it was loaded (memory-mapped) from is safe
    before = outputs(model, "DistilBertForMaskedLM")
    model.save_pretrained(tmp_path / "source")
    reloaded = load_model(tmp_path / "source")
    np.testing.assert_array_equal(outputs(reloaded, "DistilBertForMaskedLM")[0], before[0])
    assert not (tmp_path / "source" / "model.safetensors.partial").exists()


def test_refuses_a_file_as_directory(tmp_path) -> None:
    model = trained_model(tmp_path / "source", "DistilBertModel")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        model.save_pretrained(tmp_path / "file")


@pytest.mark.parametrize("architecture", ALL)
def test_transformers_loads_it(tmp_path, architecture: str, torch_module, transformers_module) -> None:
    """No missing or unexpected keys, the same labels, and logits within the inference tolerance."""
    model = trained_model(tmp_path / "source", architecture)
    saved = model.save_pretrained(tmp_path / "saved")
    reference_class = getattr(transformers_module, architecture)
    reference, info = reference_class.from_pretrained(saved, output_loading_info=True)
    assert not info["missing_keys"], info
    assert not info["unexpected_keys"], info
    assert not info.get("mismatched_keys"), info
    reference.eval()
    if "Classification" in architecture:
        assert reference.config.id2label == LABELS
    with torch_module.no_grad():
        theirs = reference(**{k: torch_module.tensor(v) for k, v in inputs(architecture).items()})
    ours = model(**inputs(architecture))
    for name in ours.keys():
        expected = theirs[name].numpy()
        assert np.abs(np.asarray(ours[name]) - expected).max() <= tolerances.FP32_LOGITS, name
    # transformers' named_parameters are ours, once each (tied weights listed once)
    assert set(dict(reference.named_parameters())) == set(model.named_parameters())


@pytest.mark.parametrize(
    "architecture", ["BertForMaskedLM", "BertForTokenClassification", "BertForQuestionAnswering"]
)
def test_a_pooler_these_heads_lack_is_left_out(tmp_path, architecture: str) -> None:
    """transformers builds these heads without a pooler (add_pooling_layer=False) and ignores one in
    the file (a checkpoint fine-tuned from all-MiniLM-L6-v2, which has one): so do we, so that the
    parameters to train and save are exactly transformers', with no pooler decayed by AdamW."""
    from safetensors.numpy import load_file, save_file

    labels = LABELS if "Classification" in architecture else None
    plain = write_random_checkpoint(tmp_path / "plain", BERT, 3, architecture, id2label=labels)
    pooled = tmp_path / "pooled"
    pooled.mkdir()
    (pooled / "config.json").write_bytes((plain / "config.json").read_bytes())
    tensors = load_file(str(plain / "model.safetensors"))
    rng = np.random.default_rng(4)
    tensors["bert.pooler.dense.weight"] = rng.normal(size=(8, 8)).astype(np.float32)
    tensors["bert.pooler.dense.bias"] = rng.normal(size=8).astype(np.float32)
    save_file(tensors, str(pooled / "model.safetensors"), metadata={"format": "pt"})

    with_pooler, without = load_model(pooled), load_model(plain)
    assert set(with_pooler.named_parameters()) == set(without.named_parameters())
    assert not any("pooler" in name for name in with_pooler.named_parameters())
    expected = outputs(without, architecture)
    for ours, reference in zip(outputs(with_pooler, architecture), expected, strict=True):
        np.testing.assert_array_equal(ours, reference)
    saved = with_pooler.save_pretrained(tmp_path / "saved")
    assert "bert.pooler.dense.weight" not in load_file(str(saved / "model.safetensors"))
