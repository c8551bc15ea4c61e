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
def real_size_mlm(torch_module, transformers_module, tmp_path_factory, shared_model_path):
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


# ----------------------------------------------------------------- every head
BERT_TINY = dict(vocab_size=40, max_position_embeddings=16, num_hidden_layers=2, num_attention_heads=2,
                 hidden_size=8, intermediate_size=12, type_vocab_size=2)  # fmt: skip
B, L, K = 3, 9, 2  # batch, length, choices


def head_targets(kind: str, rng: np.random.Generator, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The labels transformers' forward takes for each kind of head (the same go to ours)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if kind == "mlm":
        return {"labels": mlm_labels(rng, ids, mask, TINY["vocab_size"])}
    if kind == "pretraining":
        labels = mlm_labels(rng, ids, mask, TINY["vocab_size"])
        return {"labels": labels, "next_sentence_label": rng.integers(0, 2, B)}
    if kind == "single_label":
        return {"labels": rng.integers(0, 3, B)}
    if kind == "regression":
        return {"labels": rng.normal(size=B)}
    if kind == "multi_label":
        return {"labels": (rng.random((B, 3)) < 0.5).astype(np.float64)}
    if kind == "tokens":
        return {"labels": np.where(mask == 1, rng.integers(0, 3, ids.shape), -100)}
    if kind == "span":  # one start past the input: clamped to L and ignored, as transformers
        return {"start_positions": np.array([1, L + 3, 2]), "end_positions": np.array([4, 3, -2])}
    if kind == "choice":
        return {"labels": rng.integers(0, K, B)}
    raise AssertionError(kind)


# (transformers class, family, kind of labels, config overrides)
HEADS = [
    ("DistilBertForMaskedLM", "distilbert", "mlm", {"activation": "relu"}),
    ("DistilBertForSequenceClassification", "distilbert", "single_label", {"num_labels": 3}),
    ("DistilBertForSequenceClassification", "distilbert", "regression", {"num_labels": 1}),
    ("DistilBertForSequenceClassification", "distilbert", "multi_label", {"num_labels": 3}),
    ("DistilBertForTokenClassification", "distilbert", "tokens", {"num_labels": 3}),
    ("DistilBertForQuestionAnswering", "distilbert", "span", {}),
    ("DistilBertForMultipleChoice", "distilbert", "choice", {}),
    ("BertForMaskedLM", "bert", "mlm", {"hidden_act": "gelu_new"}),
    ("BertForPreTraining", "bert", "pretraining", {}),
    ("BertForSequenceClassification", "bert", "single_label", {"num_labels": 3}),
    ("BertForSequenceClassification", "bert", "regression", {"num_labels": 1}),
    ("BertForSequenceClassification", "bert", "multi_label", {"num_labels": 3, "layer_norm_eps": 1e-5}),
    ("BertForTokenClassification", "bert", "tokens", {"num_labels": 3, "hidden_act": "relu"}),
    ("BertForQuestionAnswering", "bert", "span", {}),
]


@pytest.fixture(scope="module")
def head_checkpoints(tmp_path_factory, torch_module, transformers_module):
    """Each head's tiny transformers checkpoint, built once: {index in HEADS: (directory, model)}."""
    from checkpoints import build_bert_checkpoint, build_checkpoint

    built = {}
    for index, (architecture, family, _, overrides) in enumerate(HEADS):
        directory = tmp_path_factory.mktemp(f"head{index}")
        if family == "bert":
            build, sizes = build_bert_checkpoint, BERT_TINY
        else:
            build, sizes = build_checkpoint, TINY
        config = {**sizes, **overrides}
        model = build(directory, architecture, seed=index, scale=0.3, attn_implementation="eager", **config)
        built[index] = (directory, model)
    return built


@pytest.mark.parametrize("precision", sorted(DTYPES))
@pytest.mark.parametrize("index", range(len(HEADS)), ids=[f"{h[0]}-{h[2]}" for h in HEADS])
def test_every_head(head_checkpoints, torch_module, index: int, precision: str) -> None:
    import numpy_distilbert

    architecture, family, kind, _ = HEADS[index]
    directory, model = head_checkpoints[index]
    dtype = DTYPES[precision]
    reference = torch_reference(model, dtype)
    reference.zero_grad()
    rng = np.random.default_rng(100 + index)
    batch = padded_batch(rng, B, L, TINY["vocab_size"])
    if family == "bert":
        batch["token_type_ids"] = np.where(np.arange(L) < L // 2, 0, 1)[None, :].repeat(B, axis=0)
    targets = head_targets(kind, rng, batch)
    if kind == "choice":  # [B, L] -> [B, K, L]: K variants of each row
        batch = {key: np.stack([value, np.roll(value, 1, axis=1) if key == "input_ids" else value], axis=1)
                 for key, value in batch.items()}  # fmt: skip
    torch_targets = {key: torch_module.tensor(value) for key, value in targets.items()}
    if kind in ("regression", "multi_label"):
        float_type = next(reference.parameters()).dtype
        torch_targets = {key: value.to(float_type) for key, value in torch_targets.items()}
    out = reference(**tensors(torch_module, batch), **torch_targets)
    out.loss.backward()
    ours = getattr(numpy_distilbert, architecture).from_pretrained(directory, dtype=dtype)
    loss, grads = ours.loss_and_grads(**batch, **targets)
    compare_gradients(f"{architecture} ({kind})", grads, reference, dtype, loss, out.loss.item())


@pytest.mark.parametrize("precision", sorted(DTYPES))
def test_bert_model_backward(tmp_path, torch_module, transformers_module, precision: str) -> None:
    """BertModel.backward from gradients of both outputs (last_hidden_state and pooler_output)."""
    from checkpoints import build_bert_checkpoint

    from numpy_distilbert.bert import BertModel

    dtype = DTYPES[precision]
    model = build_bert_checkpoint(tmp_path, "BertModel", seed=21, scale=0.3, attn_implementation="eager",
                                  **BERT_TINY)  # fmt: skip
    reference = torch_reference(model, dtype)
    reference.zero_grad()
    rng = np.random.default_rng(22)
    batch = padded_batch(rng, B, L, BERT_TINY["vocab_size"])
    batch["token_type_ids"] = rng.integers(0, 2, size=(B, L))
    d_hidden, d_pooled = rng.normal(size=(B, L, 8)), rng.normal(size=(B, 8))
    out = reference(**tensors(torch_module, batch))
    torch_dtype = out.last_hidden_state.dtype
    scalar = (out.last_hidden_state * torch_module.tensor(d_hidden, dtype=torch_dtype)).sum() + (
        out.pooler_output * torch_module.tensor(d_pooled, dtype=torch_dtype)
    ).sum()
    scalar.backward()
    ours = BertModel.from_pretrained(tmp_path, dtype=dtype)
    _, tape = ours.forward_train(**batch)
    grads = ours.backward(
        tape, last_hidden_state=d_hidden.astype(dtype), pooler_output=d_pooled.astype(dtype)
    )
    compare_gradients("BertModel", grads, reference, dtype)


# ------------------------------------------------------- real trained weights
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Gradients flow backwards through every layer.",
    "NumPy is enough.",
]


@pytest.mark.slow
@pytest.mark.parametrize("precision", sorted(DTYPES))
def test_minilm_sequence_classification(
    torch_module, transformers_module, minilm_path, tmp_path, precision: str
) -> None:  # torch first: without it the test skips before looking for the weights
    """all-MiniLM-L6-v2's real weights under a seeded random 3-way classifier, on real sentences."""
    from numpy_distilbert.bert import BertForSequenceClassification

    dtype = DTYPES[precision]
    torch_module.manual_seed(0)
    model = transformers_module.BertForSequenceClassification.from_pretrained(
        minilm_path, num_labels=3, attn_implementation="eager"
    ).eval()
    model.save_pretrained(tmp_path)
    reference = torch_reference(model, dtype)
    reference.zero_grad()
    tokenizer = transformers_module.AutoTokenizer.from_pretrained(minilm_path)
    batch = {key: np.asarray(value) for key, value in tokenizer(SENTENCES, padding=True).items()}
    labels = np.array([2, 0, 1])
    out = reference(**tensors(torch_module, batch), labels=torch_module.tensor(labels))
    out.loss.backward()
    ours = BertForSequenceClassification.from_pretrained(tmp_path, dtype=dtype)
    loss, grads = ours.loss_and_grads(**batch, labels=labels)
    compare_gradients("all-MiniLM-L6-v2 + classifier", grads, reference, dtype, loss, out.loss.item())
