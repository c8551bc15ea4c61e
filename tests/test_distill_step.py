"""An end-to-end distillation step against torch, in float64: teacher forward, student forward,
the triple loss, backward, gradient clipping and AdamW, three steps in a row.

The two sides share only the checkpoints and the batches. The torch side is transformers'
BertForMaskedLM (or BertModel) teacher and DistilBertForMaskedLM (or DistilBertModel) student
loaded from what `init_student` wrote, distiller.py's loss terms (`reference_loss_parts`),
autograd, `torch.nn.utils.clip_grad_norm_` and `torch.optim.AdamW`; ours is `distill_step`.
The masked batches come from `masking.mask_tokens`, seeded, and are fed to both.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_distill_loss import reference_loss_parts

from numpy_distilbert import tolerances
from numpy_distilbert.distill import LossWeights, distill_step, init_student
from numpy_distilbert.masking import mask_tokens

TINY_BERT = dict(vocab_size=67, hidden_size=16, num_hidden_layers=4, num_attention_heads=4,
                 intermediate_size=28, max_position_embeddings=32, type_vocab_size=2)  # fmt: skip
SPECIALS = (0, 1, 2, 3, 4)  # pad, unk, cls, sep, mask in this tiny vocabulary
STEPS = 3
HYPER = dict(lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
MAX_GRAD_NORM = 0.5  # small enough that clipping acts on these random models


def batches(seed: int, masked: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """STEPS padded batches of [CLS] words [SEP], masked 15% / 80-10-10 when asked."""
    rng = np.random.default_rng(seed)
    out = []
    for step in range(STEPS):
        lengths = rng.integers(4, 12, size=4)
        lengths[0] = 12
        ids = np.zeros((4, 12), dtype=np.int64)
        for row, n in enumerate(lengths):
            ids[row, 0], ids[row, n - 1] = 2, 3
            ids[row, 1 : n - 1] = rng.integers(5, TINY_BERT["vocab_size"], size=n - 2)
        mask = (np.arange(12)[None, :] < lengths[:, None]).astype(np.int64)
        labels = None
        if masked:
            batch = mask_tokens(ids, mask, np.random.default_rng([seed, step]), mask_token_id=4,
                                vocab_size=TINY_BERT["vocab_size"], special_ids=SPECIALS)  # fmt: skip
            ids, labels = batch.input_ids, batch.labels
        out.append((ids, mask, labels))
    return out


@pytest.mark.parametrize("with_head", [True, False], ids=["mlm-teacher", "bare-encoder-teacher"])
def test_three_distillation_steps_equal_torch_in_float64(
    tmp_path, torch_module, transformers_module, with_head
):
    import checkpoints

    torch, transformers = torch_module, transformers_module
    teacher_class = "BertForMaskedLM" if with_head else "BertModel"
    checkpoints.build_bert_checkpoint(tmp_path / "teacher", teacher_class, seed=11, **TINY_BERT)
    init_student(tmp_path / "teacher", tmp_path / "student", layers=[0, 2])
    weights = LossWeights(temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0, alpha_mse=0.5)
    if not with_head:
        weights = LossWeights(alpha_ce=0.0, alpha_mlm=0.0, alpha_cos=1.0, alpha_mse=3.0)

    # --- torch
    torch_teacher = getattr(transformers, teacher_class).from_pretrained(tmp_path / "teacher").double().eval()
    student_class = "DistilBertForMaskedLM" if with_head else "DistilBertModel"
    torch_student = getattr(transformers, student_class).from_pretrained(tmp_path / "student").double().eval()
    optimizer = torch.optim.AdamW(torch_student.parameters(), **HYPER)
    torch_losses = []
    for ids, mask, labels in batches(5, with_head):
        ids_t, mask_t = torch.tensor(ids), torch.tensor(mask)
        with torch.no_grad():
            t_out = torch_teacher(input_ids=ids_t, attention_mask=mask_t, output_hidden_states=True)
        s_out = torch_student(input_ids=ids_t, attention_mask=mask_t, output_hidden_states=True)
        parts = reference_loss_parts(
            torch, s_out.logits if with_head else None, t_out.logits if with_head else None,
            s_out.hidden_states[-1], t_out.hidden_states[-1], mask_t,
            torch.tensor(labels) if labels is not None else None, weights.temperature,
        )  # fmt: skip
        loss = sum(getattr(weights, "alpha_" + name[len("loss_"):]) * value for name, value in parts.items())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(torch_student.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        torch_losses.append(loss.item())

    # --- ours
    from numpy_distilbert import AdamW
    from numpy_distilbert.distill import _load_student, _load_teacher

    teacher = _load_teacher(tmp_path / "teacher", np.float64)
    student = _load_student(tmp_path / "student", np.float64)
    ours_optimizer = AdamW(student.named_parameters(), **HYPER)
    losses = [
        distill_step(student, teacher, ids, mask, labels, ours_optimizer, weights,
                     max_grad_norm=MAX_GRAD_NORM).loss
        for ids, mask, labels in batches(5, with_head)
    ]  # fmt: skip

    loss_difference = max(abs(a - b) for a, b in zip(losses, torch_losses, strict=True))
    params = student.named_parameters()
    reference = dict(torch_student.named_parameters())
    assert set(params) == set(reference)
    param_difference = max(
        float(np.max(np.abs(params[name] - tensor.detach().numpy()))) for name, tensor in reference.items()
    )
    initial = getattr(transformers, student_class).from_pretrained(tmp_path / "student").double()
    moved = max(float(np.max(np.abs(params[n] - t.detach().numpy()))) for n, t in initial.named_parameters())
    print(f"\n{teacher_class} -> {student_class}, {STEPS} steps fp64: losses {losses}; "
          f"max |loss ours - torch| {loss_difference:.1e}, max |param ours - torch| {param_difference:.1e} "
          f"(parameters moved {moved:.1e})")  # fmt: skip
    assert loss_difference <= tolerances.DISTILL_STEP_FP64
    assert param_difference <= tolerances.DISTILL_STEP_FP64
    assert moved > 1e-3  # the steps did something: equality is not the untouched initial state
