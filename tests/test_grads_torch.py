"""Every parameter's gradient and the loss against torch autograd, same weights and batch,
eval mode (no dropout), in float32 and float64 (issue 12's proof, llm.c-style).

Per tensor: |ours - torch| <= max(absolute, relative x max|torch gradient|), the bounds in
`tolerances.gradient_bound`. Each architecture's worst difference (and its ratio to the bound)
is printed as measured and tabled at the end (`pytest -s` shows them).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pytest
from max_diffs import MaxDiffs

from numpy_distilbert import tolerances
from numpy_distilbert.model import DistilBertForMaskedLM, DistilBertModel

MEASURED = MaxDiffs("gradients, numpy-distilbert vs torch autograd")
DTYPES = {"fp32": np.float32, "fp64": np.float64}


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    MEASURED.print_summary()


def torch_reference(model: Any, dtype: type) -> Any:
    """The transformers model in eval mode, in float64 when asked (a copy)."""
    return copy.deepcopy(model).double().eval() if dtype == np.float64 else model.eval()


def tensors(torch: Any, batch: dict[str, np.ndarray]) -> dict[str, Any]:
    return {key: torch.tensor(value) for key, value in batch.items()}


def compare_gradients(
    label: str, ours: dict[str, np.ndarray], reference: Any, dtype: type, ours_loss: float | None = None,
    torch_loss: float | None = None,
) -> None:  # fmt: skip
    """Assert every gradient (keys equal to torch's named_parameters) within its bound; record the worst."""
    named = dict(reference.named_parameters())
    assert list(ours) == list(named) or set(ours) == set(named), (
        f"{label}: names differ: only ours {sorted(set(ours) - set(named))}, "
        f"only torch {sorted(set(named) - set(ours))}"
    )
    worst, worst_ratio, failures = 0.0, 0.0, []
    for name, param in named.items():
        assert param.grad is not None, f"{label}: torch gave {name} no gradient"
        expected = param.grad.detach().numpy()
        assert ours[name].shape == expected.shape and ours[name].dtype == np.dtype(dtype), name
        diff = float(np.max(np.abs(ours[name].astype(np.float64) - expected)))
        bound = tolerances.gradient_bound(dtype, float(np.max(np.abs(expected))))
        worst, worst_ratio = max(worst, diff), max(worst_ratio, diff / bound)
        if diff > bound:
            failures.append(f"{name}: {diff:.3g} > {bound:.3g}")
    key = f"{label} {'fp64' if dtype == np.float64 else 'fp32'}"
    MEASURED[f"{key} grads (max abs)"] = worst
    MEASURED[f"{key} grads (max diff / bound)"] = worst_ratio
    print(f"{key}: max gradient diff {worst:.2e}, worst diff/bound {worst_ratio:.3f}")
    assert not failures, f"{label}: " + "; ".join(failures)
    if ours_loss is not None and torch_loss is not None:
        MEASURED[f"{key} loss (abs)"] = abs(ours_loss - torch_loss)
        rel = tolerances.LOSS_FP64_REL if dtype == np.float64 else tolerances.LOSS_FP32_REL
        assert ours_loss == pytest.approx(torch_loss, rel=rel), label


def padded_batch(rng: np.random.Generator, batch: int, seq_len: int, vocab: int) -> dict[str, np.ndarray]:
    """Random ids (pad id 0 at padded positions, as a tokenizer would put it), trailing padding."""
    ids = rng.integers(1, vocab, size=(batch, seq_len))
    mask = np.ones_like(ids)
    for row in range(1, batch):
        mask[row, rng.integers(1, seq_len) :] = 0
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}


def mlm_labels(rng: np.random.Generator, ids: np.ndarray, mask: np.ndarray, vocab: int) -> np.ndarray:
    """15% of the real tokens labelled (at least one per row), the rest -100."""
    chosen = (rng.random(ids.shape) < 0.15) & (mask == 1)
    chosen[:, 0] = True
    return np.where(chosen, rng.integers(0, vocab, size=ids.shape), -100)


# ------------------------------------------------------------------------ tiny
TINY = dict(vocab_size=40, max_position_embeddings=16, n_layers=2, n_heads=2, dim=8, hidden_dim=12)


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory, torch_module, transformers_module):
    from checkpoints import build_checkpoint

    directory = tmp_path_factory.mktemp("tiny_mlm")
    model = build_checkpoint(
        directory, "DistilBertForMaskedLM", seed=3, scale=0.3, attn_implementation="eager", **TINY
    )
    return directory, model


@pytest.mark.parametrize("precision", sorted(DTYPES))
def test_tiny_masked_lm(tiny_mlm, torch_module, precision: str) -> None:
    directory, model = tiny_mlm
    dtype = DTYPES[precision]
    reference = torch_reference(model, dtype)
    reference.zero_grad()
    rng = np.random.default_rng(5)
    batch = padded_batch(rng, 3, 9, TINY["vocab_size"])
    labels = mlm_labels(rng, batch["input_ids"], batch["attention_mask"], TINY["vocab_size"])
    out = reference(**tensors(torch_module, {**batch, "labels": labels}))
    out.loss.backward()
    ours = DistilBertForMaskedLM.from_pretrained(directory, dtype=dtype)
    loss, grads = ours.loss_and_grads(**batch, labels=labels)
    compare_gradients("DistilBertForMaskedLM tiny", grads, reference, dtype, loss, out.loss.item())
    # the full-logits path (positions=None) gives the same gradients as the selected rows
    outputs, tape = ours.forward_train(**batch)
    d_logits = np.zeros_like(outputs.logits)
    rows = labels != -100
    from numpy_distilbert.losses import cross_entropy

    _, d_logits[rows] = cross_entropy(outputs.logits[rows], labels[rows])
    full = ours.backward(tape, logits=d_logits)
    compare_gradients("DistilBertForMaskedLM tiny, all rows projected", full, reference, dtype)


@pytest.mark.parametrize("precision", sorted(DTYPES))
@pytest.mark.parametrize("sinusoidal", [False, True])
def test_tiny_encoder_backward(
    tmp_path, torch_module, transformers_module, precision: str, sinusoidal: bool
) -> None:
    """DistilBertModel.backward from an upstream gradient of last_hidden_state (what distillation
    feeds it). transformers 5 trains even the sinusoidal table (requires_grad stays True)."""
    from checkpoints import build_checkpoint

    dtype = DTYPES[precision]
    model = build_checkpoint(tmp_path, "DistilBertModel", seed=4, scale=0.3, attn_implementation="eager",
                             sinusoidal_pos_embds=sinusoidal, activation="relu" if sinusoidal else "gelu",
                             **TINY)  # fmt: skip
    reference = torch_reference(model, dtype)
    reference.zero_grad()
    rng = np.random.default_rng(6)
    batch = padded_batch(rng, 2, 7, TINY["vocab_size"])
    upstream = rng.normal(size=(2, 7, TINY["dim"]))
    hidden = reference(**tensors(torch_module, batch)).last_hidden_state
    (hidden * torch_module.tensor(upstream, dtype=hidden.dtype)).sum().backward()
    ours = DistilBertModel.from_pretrained(tmp_path, dtype=dtype)
    outputs, tape = ours.forward_train(**batch)
    np.testing.assert_allclose(outputs.last_hidden_state, hidden.detach().numpy(), rtol=0, atol=1e-4)
    grads = ours.backward(tape, last_hidden_state=upstream.astype(dtype))
    label = f"DistilBertModel tiny{' sinusoidal' if sinusoidal else ''}"
    compare_gradients(label, grads, reference, dtype)


# ------------------------------------------------------------------- real size
@pytest.fixture(scope="session")
def real_size_mlm(tmp_path_factory, shared_model_path, torch_module, transformers_module):
    """transformers' DistilBertForMaskedLM at distilbert-base-multilingual-cased's sizes, perturbed
    and saved once per session."""
    import json

    from checkpoints import REAL_SIZE, build_checkpoint

    raw = json.loads((shared_model_path / "config.json").read_text(encoding="utf-8"))
    directory = tmp_path_factory.mktemp("grads_real_size")
    model = build_checkpoint(directory, "DistilBertForMaskedLM", seed=11, attn_implementation="eager",
                             activation=raw["activation"], sinusoidal_pos_embds=raw["sinusoidal_pos_embds"],
                             **REAL_SIZE)  # fmt: skip
    return directory, model


@pytest.mark.slow
@pytest.mark.parametrize("precision", sorted(DTYPES))
def test_real_size_masked_lm(real_size_mlm, torch_module, precision: str) -> None:
    """MLM loss and all 100+ gradients at the real size, on a padded batch with 15% labelled."""
    directory, model = real_size_mlm
    dtype = DTYPES[precision]
    reference = torch_reference(model, dtype)
    reference.zero_grad()
    vocab = model.config.vocab_size
    rng = np.random.default_rng(12)
    batch = padded_batch(rng, 3, 24, vocab)
    labels = mlm_labels(rng, batch["input_ids"], batch["attention_mask"], vocab)
    out = reference(**tensors(torch_module, {**batch, "labels": labels}))
    out.loss.backward()
    torch_loss = out.loss.item()
    del out
    ours = DistilBertForMaskedLM.from_pretrained(directory, dtype=dtype)
    start = time.perf_counter()
    loss, grads = ours.loss_and_grads(**batch, labels=labels)
    print(f"real-size MLM loss_and_grads {precision}, batch 3x24: {time.perf_counter() - start:.2f} s")
    compare_gradients("DistilBertForMaskedLM real size", grads, reference, dtype, loss, torch_loss)
    reference.zero_grad(set_to_none=True)
