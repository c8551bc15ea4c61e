"""Checkpoint variants that transformers writes or reads, each loaded by both and compared.

Prefix-less base models, legacy LayerNorm `gamma`/`beta` names, the tied output matrix
stored or omitted, untied heads, F16 and BF16 files, sharded checkpoints, and a sinusoidal
checkpoint whose file leaves the fixed table out. Every case runs numpy-distilbert and
transformers on the same files and compares hidden states (<= 1e-5) and logits (<= 1e-4).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from numpy_distilbert import tolerances
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel
from numpy_distilbert.weights import load_checkpoint, read_safetensors

TINY = dict(vocab_size=50, max_position_embeddings=16, n_layers=2, n_heads=4, dim=24, hidden_dim=40)
IDS = np.array([[1, 7, 9, 30, 2, 0, 0], [1, 44, 3, 2, 11, 12, 49], [0, 0, 0, 0, 0, 0, 0]])
MASK = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0]])
HIDDEN_TOL, LOGITS_TOL = tolerances.FP32_HIDDEN, tolerances.FP32_LOGITS


@pytest.fixture(scope="module")
def ref(torch_module, transformers_module):
    import checkpoints

    return checkpoints


def reference_outputs(torch, model, ids=IDS, mask=MASK):
    """transformers' eager forward (our semantics for fully padded rows) as NumPy."""
    model.set_attn_implementation("eager")
    with torch.no_grad():
        out = model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_hidden_states=True)
    return [h.float().numpy() for h in out.hidden_states], getattr(out, "logits", None)


def assert_same_as(torch, model, directory: Path, label: str) -> None:
    """numpy-distilbert loaded from `directory` equals the transformers `model`."""
    hidden_ref, logits_ref = reference_outputs(torch, model)
    if logits_ref is None:
        ours = DistilBertModel.from_pretrained(directory)
        hidden = ours(IDS, MASK, output_hidden_states=True).hidden_states
    else:
        ours = DistilBertForMaskedLM.from_pretrained(directory)
        hidden = ours.distilbert(IDS, MASK, output_hidden_states=True).hidden_states
    diffs = [float(np.abs(a - b).max()) for a, b in zip(hidden, hidden_ref, strict=True)]
    print(f"{label}: hidden states max abs diff {max(diffs):.2e}", end="")
    assert max(diffs) <= HIDDEN_TOL, diffs
    if logits_ref is not None:
        logits_diff = float(np.abs(ours(IDS, MASK).logits - logits_ref.float().numpy()).max())
        print(f", logits {logits_diff:.2e}", end="")
        assert logits_diff <= LOGITS_TOL
    print()


def rewrite(directory: Path, transform) -> None:
    """Rewrite model.safetensors through `transform(dict) -> dict` (numpy arrays)."""
    path = directory / "model.safetensors"
    tensors = transform(dict(load_file(str(path))))
    save_file(tensors, str(path), metadata={"format": "pt"})


def copy_checkpoint(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# ------------------------------------------------------------------------ names
def test_prefixless_base_model(ref, torch_module, tmp_path):
    """transformers' DistilBertModel saves names without the `distilbert.` prefix."""
    model = ref.build_checkpoint(tmp_path, model_class="DistilBertModel", seed=1, **TINY)
    names = load_file(str(tmp_path / "model.safetensors"))
    assert not any(name.startswith("distilbert.") for name in names)
    assert_same_as(torch_module, model, tmp_path, "prefix-less DistilBertModel")


def test_encoder_of_an_mlm_checkpoint(ref, torch_module, tmp_path):
    """DistilBertModel on a DistilBertForMaskedLM file: the prefix is dropped, the head ignored."""
    model = ref.build_checkpoint(tmp_path, seed=2, **TINY)
    assert_same_as(torch_module, model.distilbert, tmp_path, "encoder of an MLM checkpoint")


def test_legacy_gamma_beta_names(ref, torch_module, tmp_path):
    model = ref.build_checkpoint(tmp_path, seed=3, **TINY)

    def to_legacy(tensors):
        renamed = {}
        for name, array in tensors.items():
            stem, _, leaf = name.rpartition(".")
            if "norm" in stem.lower():
                leaf = {"weight": "gamma", "bias": "beta"}[leaf]
            renamed[f"{stem}.{leaf}"] = array
        return renamed

    rewrite(tmp_path, to_legacy)
    names = load_file(str(tmp_path / "model.safetensors"))
    assert "distilbert.embeddings.LayerNorm.gamma" in names and "vocab_layer_norm.beta" in names
    assert sum(name.endswith((".gamma", ".beta")) for name in names) == 2 * (2 * TINY["n_layers"] + 2)
    assert_same_as(torch_module, model, tmp_path, "legacy gamma/beta")


# ------------------------------------------------------------------ tied output
def test_tied_projector_absent(ref, torch_module, tmp_path):
    """transformers omits the tied vocab_projector.weight; the embeddings serve as output matrix."""
    model = ref.build_checkpoint(tmp_path, seed=4, **TINY)
    assert "vocab_projector.weight" not in load_file(str(tmp_path / "model.safetensors"))
    assert_same_as(torch_module, model, tmp_path, "tied, projector absent")


def test_tied_projector_stored_explicitly(ref, torch_module, tmp_path):
    model = ref.build_checkpoint(tmp_path, seed=5, **TINY)
    rewrite(
        tmp_path, lambda t: {**t, "vocab_projector.weight": t["distilbert.embeddings.word_embeddings.weight"]}
    )
    reloaded = ref.load_reference(tmp_path)
    assert_same_as(torch_module, reloaded, tmp_path, "tied, projector stored")
    assert_same_as(torch_module, model, tmp_path, "tied, projector stored (original model)")


def test_untied_projector(ref, torch_module, tmp_path):
    model = ref.build_checkpoint(tmp_path, seed=6, tie_word_embeddings=False, **TINY)
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert not np.array_equal(
        stored["vocab_projector.weight"], stored["distilbert.embeddings.word_embeddings.weight"]
    )
    assert_same_as(torch_module, model, tmp_path, "untied projector")


def test_tied_flag_with_a_different_stored_projector(ref, torch_module, tmp_path):
    ref.build_checkpoint(tmp_path, seed=7, **TINY)
    rewrite(
        tmp_path,
        lambda t: {**t, "vocab_projector.weight": t["distilbert.embeddings.word_embeddings.weight"] + 1},
    )
    reloaded = ref.load_reference(tmp_path)
    assert_same_as(torch_module, reloaded, tmp_path, "tied flag, different stored projector")


# ------------------------------------------------------------- half precision
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_files(ref, torch_module, tmp_path, half):
    """An F16/BF16 file: read exactly, widened to float32, equal to transformers reading the same file."""
    from safetensors.torch import save_file as torch_save_file

    torch = torch_module
    half_dtype = getattr(torch, half)
    model = ref.build_checkpoint(tmp_path / "f32", seed=8, **TINY)
    directory = tmp_path / half
    directory.mkdir()
    shutil.copy(tmp_path / "f32" / "config.json", directory / "config.json")
    state = {name: t.detach().to(half_dtype).contiguous() for name, t in model.state_dict().items()
             if name != "vocab_projector.weight"}  # fmt: skip
    torch_save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})

    # The reader: F16 stays float16, BF16 is widened; the values are exactly the rounded ones.
    raw = read_safetensors(directory / "model.safetensors")
    for name, tensor in state.items():
        expected = tensor.float().numpy()
        assert raw[name].dtype == (np.float16 if half == "float16" else np.float32), name
        np.testing.assert_array_equal(raw[name].astype(np.float32), expected, err_msg=name)

    # The model: transformers reading the same half-precision file, upcast to float32 on load.
    reloaded = ref.load_reference(directory, dtype=torch.float32)
    assert reloaded.distilbert.embeddings.word_embeddings.weight.dtype == torch.float32
    assert_same_as(torch, reloaded, directory, f"{half} file")
    # ...which is the float32 model with its weights rounded to `half`.
    rounded = ref.load_reference(tmp_path / "f32")
    with torch.no_grad():
        for param in rounded.parameters():
            param.copy_(param.to(half_dtype).float())
    assert_same_as(torch, rounded, directory, f"{half}-rounded float32 model")


# ---------------------------------------------------------------------- shards
def test_sharded_save_pretrained(ref, torch_module, tmp_path):
    model = ref.build_checkpoint(tmp_path / "single", seed=9, **TINY)
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert not (tmp_path / "sharded" / "model.safetensors").exists()
    ckpt = load_checkpoint(tmp_path / "sharded")
    assert len(set(ckpt.sources.values())) == len(set(index["weight_map"].values()))
    assert_same_as(torch_module, model, tmp_path / "sharded", "sharded")


# ------------------------------------------------------------------ positions
def test_sinusoidal_checkpoint(ref, torch_module, tmp_path):
    """The stored (here perturbed) table is what both use."""
    model = ref.build_checkpoint(tmp_path, seed=10, sinusoidal_pos_embds=True, **TINY)
    assert_same_as(torch_module, model, tmp_path, "sinusoidal, table stored")


def test_sinusoidal_table_left_out_of_the_file(ref, torch_module, tmp_path):
    """Without the table in the file, both compute the fixed sin/cos table."""
    ref.build_checkpoint(tmp_path, seed=11, sinusoidal_pos_embds=True, **TINY)
    rewrite(tmp_path, lambda t: {k: v for k, v in t.items() if "position_embeddings" not in k})
    reloaded = ref.load_reference(tmp_path)
    assert_same_as(torch_module, reloaded, tmp_path, "sinusoidal, table computed")
