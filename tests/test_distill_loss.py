"""distillation_loss against torch autograd on distiller.py's formulas, and finite differences.

The torch side is written the way transformers' research script `distiller.py` computes the
triple loss (masked_select over the attention mask, KLDivLoss "batchmean" on log_softmax /
softmax at temperature T times T², CrossEntropyLoss with ignore_index -100 over all positions,
CosineEmbeddingLoss with target 1 over the real tokens), plus sentence-transformers' MSELoss on
mean-pooled embeddings for alpha_mse. Its gradients come from autograd.

Inputs are random, with padding and -100 labels; hypothesis draws the sizes, the padding,
the temperature, the weights and whether logits come as [B, L, V] or as [N, V] rows.
The finite-difference tests need only numpy (they run in the no-torch tier too).
"""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import central_difference
from hypothesis import given
from hypothesis import strategies as st

from numpy_distilbert import tolerances
from numpy_distilbert.distill import IGNORE_INDEX, distillation_loss


def make_batch(seed: int, batch: int, length: int, vocab: int, dim: int, dtype=np.float64,
               logit_scale: float = 3.0) -> dict:  # fmt: skip
    """Random logits/hidden states, right padding (every row keeps >= 1 token, one row full),
    ~30% of the real tokens labelled (at least one), -100 elsewhere."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, length + 1, size=batch)
    lengths[0] = length
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    chosen = rng.random((batch, length)) < 0.3
    labels = np.where(chosen, rng.integers(0, vocab, (batch, length)), IGNORE_INDEX)
    labels[mask == 0] = IGNORE_INDEX
    labels[0, 0] = rng.integers(0, vocab)
    return dict(
        student_logits=(rng.standard_normal((batch, length, vocab)) * logit_scale).astype(dtype),
        teacher_logits=(rng.standard_normal((batch, length, vocab)) * logit_scale).astype(dtype),
        student_hidden=rng.standard_normal((batch, length, dim)).astype(dtype),
        teacher_hidden=rng.standard_normal((batch, length, dim)).astype(dtype),
        attention_mask=mask,
        labels=labels,
    )


def reference_loss_parts(
    torch, s_logits, t_logits, s_hidden, t_hidden, attention_mask, lm_labels, temperature
):
    """distiller.py's loss terms on torch tensors (its `step`, written out), plus
    sentence-transformers' MSELoss on mean-pooled embeddings: {"loss_ce": ..., ...}."""
    nn = torch.nn
    attention_mask = attention_mask.bool()
    parts = {}
    if s_logits is not None:
        vocab = s_logits.size(-1)
        mask = attention_mask.unsqueeze(-1).expand_as(s_logits)
        s_slct = torch.masked_select(s_logits, mask).view(-1, vocab)
        t_slct = torch.masked_select(t_logits, mask).view(-1, vocab)
        parts["loss_ce"] = nn.KLDivLoss(reduction="batchmean")(
            nn.functional.log_softmax(s_slct / temperature, dim=-1),
            nn.functional.softmax(t_slct / temperature, dim=-1),
        ) * temperature**2
        lm_loss_fct = nn.CrossEntropyLoss(ignore_index=-100)
        parts["loss_mlm"] = lm_loss_fct(s_logits.view(-1, vocab), lm_labels.view(-1))

    dim = s_hidden.size(-1)
    hmask = attention_mask.unsqueeze(-1).expand_as(s_hidden)
    s_h = torch.masked_select(s_hidden, hmask).view(-1, dim)
    t_h = torch.masked_select(t_hidden, hmask).view(-1, dim)
    target = s_h.new(s_h.size(0)).fill_(1)
    parts["loss_cos"] = nn.CosineEmbeddingLoss(reduction="mean")(s_h, t_h, target)

    weights = attention_mask.unsqueeze(-1).to(s_hidden.dtype)

    def pool(h):  # sentence-transformers' mean pooling
        return (h * weights).sum(1) / torch.clamp(weights.sum(1), min=1e-9)

    parts["loss_mse"] = nn.MSELoss()(pool(s_hidden), pool(t_hidden))
    return parts


def torch_reference(torch, inputs: dict, temperature, alpha_ce, alpha_mlm, alpha_cos, alpha_mse):
    """The loss and its autograd gradients on the numpy inputs."""
    s_logits = torch.tensor(inputs["student_logits"], requires_grad=True)
    s_hidden = torch.tensor(inputs["student_hidden"], requires_grad=True)
    parts = reference_loss_parts(
        torch, s_logits, torch.tensor(inputs["teacher_logits"]), s_hidden,
        torch.tensor(inputs["teacher_hidden"]), torch.tensor(inputs["attention_mask"]),
        torch.tensor(inputs["labels"]), temperature,
    )  # fmt: skip
    loss = (alpha_ce * parts["loss_ce"] + alpha_mlm * parts["loss_mlm"] + alpha_cos * parts["loss_cos"]
            + alpha_mse * parts["loss_mse"])  # fmt: skip
    loss.backward()
    return dict(
        loss=loss.item(), **{name: value.item() for name, value in parts.items()},
        d_logits=s_logits.grad.numpy(), d_hidden=s_hidden.grad.numpy(),
    )  # fmt: skip


def ce_term_scale(inputs: dict, temperature: float) -> float:
    mask = inputs["attention_mask"].astype(bool)
    s = inputs["student_logits"][mask].astype(np.float64) / temperature
    t = inputs["teacher_logits"][mask].astype(np.float64) / temperature
    log_p_s = s - s.max(-1, keepdims=True)
    log_p_s -= np.log(np.exp(log_p_s).sum(-1, keepdims=True))
    log_p_t = t - t.max(-1, keepdims=True)
    log_p_t -= np.log(np.exp(log_p_t).sum(-1, keepdims=True))
    terms = np.exp(log_p_t) * (np.abs(log_p_t) + np.abs(log_p_s))
    return float(terms.sum() * temperature**2 / mask.sum())


def relative(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


WORST: dict[str, float] = {}


def _record(key: str, value: float) -> None:
    WORST[key] = max(WORST.get(key, 0.0), value)


@pytest.fixture(scope="module")
def torch(torch_module):
    yield torch_module
    print("\n--- distillation_loss vs torch autograd (distiller.py formulas), worst relative difference ---")
    for key, value in sorted(WORST.items()):
        print(f"{key:28s} {value:.2e}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    seed=st.integers(0, 2**31), batch=st.integers(1, 4), length=st.integers(1, 9),
    vocab=st.integers(2, 40), dim=st.integers(2, 12),
    temperature=st.sampled_from([0.5, 1.0, 2.0, 4.0]), rows=st.booleans(),
    weights=st.sampled_from([(5.0, 2.0, 1.0, 0.0), (5.0, 2.0, 1.0, 3.0), (0.7, 0.0, 0.0, 0.0),
                             (0.0, 1.5, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 2.0)]),
)  # fmt: skip
def test_loss_and_gradients_equal_torch_autograd(torch, dtype, seed, batch, length, vocab, dim,
                                                  temperature, rows, weights):  # fmt: skip
    inputs = make_batch(seed, batch, length, vocab, dim, dtype)
    alpha_ce, alpha_mlm, alpha_cos, alpha_mse = weights
    ref = torch_reference(torch, inputs, temperature, *weights)
    mask = inputs["attention_mask"].astype(bool)
    ours_inputs = dict(inputs)
    if rows:  # only the rows at the real tokens, as the model's `positions=mask` returns them
        ours_inputs["student_logits"] = inputs["student_logits"][mask]
        ours_inputs["teacher_logits"] = inputs["teacher_logits"][mask]
    out = distillation_loss(**ours_inputs, temperature=temperature, alpha_ce=alpha_ce,
                            alpha_mlm=alpha_mlm, alpha_cos=alpha_cos, alpha_mse=alpha_mse)  # fmt: skip
    fp64 = dtype == np.float64
    bound = tolerances.DISTILL_LOSS_FP64_RELATIVE if fp64 else tolerances.DISTILL_LOSS_FP32_RELATIVE
    tag = np.dtype(dtype).name
    for part, alpha in (("loss_ce", alpha_ce), ("loss_mlm", alpha_mlm), ("loss_cos", alpha_cos),
                        ("loss_mse", alpha_mse)):  # fmt: skip
        if alpha == 0:
            assert getattr(out, part) is None
            continue
        # L_ce is a difference of nearly equal terms when the two distributions are close:
        # measure it against the size of those terms (T²/N Σ p_t (|log p_t| + |log p_s|)).
        scale = ce_term_scale(inputs, temperature) if part == "loss_ce" else abs(ref[part])
        difference = abs(getattr(out, part) - ref[part]) / max(scale, 1e-300)
        _record(f"{tag} {part}", difference)
        assert difference <= bound, (part, getattr(out, part), ref[part])
    parts = ("loss_ce", "loss_mlm", "loss_cos", "loss_mse")
    total_scale = sum(alpha * (ce_term_scale(inputs, temperature) if part == "loss_ce" else abs(ref[part]))
                      for part, alpha in zip(parts, weights, strict=True))  # fmt: skip
    assert abs(out.loss - ref["loss"]) <= bound * total_scale
    assert out.d_student_hidden.dtype == dtype
    assert out.d_student_hidden.shape == inputs["student_hidden"].shape
    if np.any(ref["d_hidden"]):
        difference = relative(out.d_student_hidden, ref["d_hidden"])
        _record(f"{tag} d_student_hidden", difference)
        assert difference <= bound
    else:
        assert not np.any(out.d_student_hidden)
    if alpha_ce or alpha_mlm:
        expected = ref["d_logits"][mask] if rows else ref["d_logits"]
        assert out.d_student_logits.shape == expected.shape and out.d_student_logits.dtype == dtype
        scale = np.max(np.abs(expected))
        if dtype == np.float32:
            # Each entry is a sum of probabilities times α·T/N (L_ce) and α/M (L_mlm). Near a
            # saturated softmax (p = 1 − 1e-7) the sum cancels to far below float32's rounding
            # of p itself, so float32 is measured in that unit, the terms' largest possible size.
            n_real = inputs["attention_mask"].sum()
            n_labels = max((inputs["labels"] != IGNORE_INDEX).sum(), 1)
            scale = max(scale, alpha_ce * temperature / n_real + alpha_mlm / n_labels)
        difference = float(np.max(np.abs(out.d_student_logits - expected)) / scale)
        _record(f"{tag} d_student_logits", difference)
        assert difference <= bound
    else:
        assert out.d_student_logits is None


def test_padding_rows_get_no_gradient_and_do_not_count():
    """Changing anything at a padded position changes neither the loss nor any gradient."""
    inputs = make_batch(3, 3, 7, 11, 5)
    base = distillation_loss(**inputs, alpha_mse=1.0)
    changed = {k: v.copy() for k, v in inputs.items()}
    pad = inputs["attention_mask"] == 0
    assert pad.any()
    for key in ("student_logits", "teacher_logits", "student_hidden", "teacher_hidden"):
        changed[key][pad] = 1e3
    again = distillation_loss(**changed, alpha_mse=1.0)
    assert again.loss == base.loss
    np.testing.assert_array_equal(again.d_student_hidden, base.d_student_hidden)
    np.testing.assert_array_equal(again.d_student_logits, base.d_student_logits)
    assert not np.any(base.d_student_logits[pad]) and not np.any(base.d_student_hidden[pad])


# --------------------------------------------------------------- finite differences (no torch)
@given(seed=st.integers(0, 2**31), temperature=st.sampled_from([0.5, 2.0, 3.0]), rows=st.booleans())
def test_gradients_equal_finite_differences(seed, temperature, rows):
    inputs = make_batch(seed, 3, 6, 13, 7, logit_scale=1.5)
    mask = inputs["attention_mask"].astype(bool)
    if rows:
        inputs["student_logits"] = inputs["student_logits"][mask]
        inputs["teacher_logits"] = inputs["teacher_logits"][mask]
    weights = dict(temperature=temperature, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0, alpha_mse=3.0)
    out = distillation_loss(**inputs, **weights)
    rng = np.random.default_rng(seed)

    def loss() -> float:
        return distillation_loss(**inputs, **weights).loss

    for key, analytic in (("student_logits", out.d_student_logits), ("student_hidden", out.d_student_hidden)):
        array = inputs[key]
        if key == "student_hidden":  # real tokens only: padding has no gradient by construction
            candidates = [(*(int(i) for i in idx), int(rng.integers(array.shape[-1])))
                          for idx in np.argwhere(mask)]  # fmt: skip
        else:
            candidates = [tuple(int(i) for i in idx) for idx in np.ndindex(*array.shape)]
        chosen = rng.choice(len(candidates), size=min(12, len(candidates)), replace=False)
        picked = [candidates[i] for i in chosen]
        numerical = np.array([central_difference(loss, array, index) for index in picked])
        expected = np.array([analytic[index] for index in picked])
        scale = max(np.max(np.abs(analytic)), 1e-12)
        difference = np.max(np.abs(numerical - expected)) / scale
        assert difference <= tolerances.DISTILL_FINITE_DIFFERENCE_RELATIVE, key


def test_temperature_one_ce_is_cross_entropy_minus_teacher_entropy():
    """An identity, not a re-computation: at T = 1, KL(p_t ‖ p_s) = H(p_t, p_s) − H(p_t)."""
    inputs = make_batch(5, 2, 4, 9, 3)
    mask = inputs["attention_mask"].astype(bool)
    s, t = inputs["student_logits"][mask], inputs["teacher_logits"][mask]
    p_t = np.exp(t) / np.exp(t).sum(-1, keepdims=True)
    log_p_s = np.log(np.exp(s) / np.exp(s).sum(-1, keepdims=True))
    cross = -(p_t * log_p_s).sum() / mask.sum()
    entropy = -(p_t * np.log(p_t)).sum() / mask.sum()
    out = distillation_loss(**inputs, temperature=1.0, alpha_ce=1.0, alpha_mlm=0.0, alpha_cos=0.0)
    assert out.loss_ce == pytest.approx(cross - entropy, rel=1e-12)


def test_identical_student_and_teacher_give_zero_ce_and_cos():
    inputs = make_batch(8, 2, 5, 7, 4)
    inputs["student_logits"] = inputs["teacher_logits"].copy()
    inputs["student_hidden"] = inputs["teacher_hidden"] * 3.0  # cosine ignores the length
    out = distillation_loss(**inputs, alpha_mlm=0.0)
    assert abs(out.loss_ce) < 1e-14 and abs(out.loss_cos) < 1e-12  # torch's ε = 1e-12 in the norms
    assert np.max(np.abs(out.d_student_logits)) < 1e-15


# ------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(alpha_ce=-1.0), "alpha_ce"),
        (dict(alpha_ce=0.0, alpha_mlm=0.0, alpha_cos=0.0), "every loss weight is 0"),
        (dict(student_logits=None), "needs student and teacher logits"),
        (dict(teacher_logits=None), "needs student and teacher logits"),
        (dict(labels=None), "needs labels"),
        (dict(attention_mask=np.zeros((2, 5), dtype=int)), "no real token"),
        (dict(attention_mask=np.full((2, 5), 2)), "only 0"),
        (dict(attention_mask=np.ones((2, 4), dtype=int)), "attention_mask has shape"),
        (dict(labels=np.full((2, 5), IGNORE_INDEX)), "all -100"),
        (dict(labels=np.full((2, 5), 7)), "neither -100 nor a token id"),
        (dict(student_logits=np.zeros((3, 7))), "one row per real token"),
        (dict(teacher_hidden=np.zeros((2, 5, 3))), "both be [B, L, D]"),
    ],
)
def test_hostile_input_is_refused_clearly(change, message):
    inputs = make_batch(1, 2, 5, 7, 4)
    inputs.update(change)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        distillation_loss(**inputs)


def test_label_at_padding_is_refused():
    inputs = make_batch(2, 2, 5, 7, 4)
    inputs["attention_mask"][1, -1] = 0
    inputs["labels"][1, -1] = 3
    with pytest.raises(ValueError, match=r"padding position \(1, 4\)"):
        distillation_loss(**inputs)


def test_non_finite_logits_are_reported_not_propagated():
    inputs = make_batch(4, 2, 5, 7, 4)
    inputs["student_logits"][0, 0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="loss_ce"):
        distillation_loss(**inputs)
