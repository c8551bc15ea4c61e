"""How DistilBERT was made: distillation from a BERT teacher (Sanh et al., 2019), in NumPy.

The recipe has four parts, and this module holds three of them (the fourth, dynamic masking,
is `masking.py`):

    student     BERT without token-type embeddings and pooler, half the layers (a DistilBERT)
    init        `init_student`: the teacher's embeddings, every other layer, its MLM head
    loss        `distillation_loss`: a weighted sum of
                  L_ce   KL(teacher ‖ student) of the distributions softened at temperature T, × T²
                  L_mlm  the student's own masked-LM cross-entropy
                  L_cos  1 − cos(student, teacher) of the last hidden states, token by token
                  L_mse  (an addition for sentence-embedding teachers) the squared distance of
                         the mean-pooled sentence embeddings
    training    `distill_step`: teacher forward, student forward, loss, backward, AdamW

Positions and reductions are those of transformers' research script
`examples/research_projects/distillation/distiller.py`, the code DistilBERT was trained
with; its weights (α_ce = 5, α_mlm = 2, α_cos = 1, T = 2) are the defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

IGNORE_INDEX = -100  # a label that asks for no prediction (torch's CrossEntropyLoss default)
# torch's cosine_embedding_loss adds this to both squared norms, so that a zero vector
# gives cos = 0 rather than 0/0.
COSINE_EPS = 1e-12
# sentence-transformers' floor on the token count of mean pooling (a row without tokens).
POOLING_COUNT_EPS = 1e-9


# ------------------------------------------------------------------------ the loss
@dataclass(frozen=True)
class DistillationLoss:
    """The triple loss (plus L_mse) of one batch and its gradients.

    `loss` = α_ce·loss_ce + α_mlm·loss_mlm + α_cos·loss_cos + α_mse·loss_mse. A part whose
    weight is 0 is not computed and is None. The gradients are those of `loss` with respect
    to the student's outputs, in their shapes and dtype, ready for the model's backward:
    `d_student_logits` (None when no logits were given) and `d_student_hidden` [B, L, D].
    """

    loss: float
    loss_ce: float | None
    loss_mlm: float | None
    loss_cos: float | None
    loss_mse: float | None
    d_student_logits: np.ndarray | None
    d_student_hidden: np.ndarray


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log(softmax(x)) along the last axis, computed as x − max − log Σ exp(x − max)."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def soft_target_kl(
    student_logits: np.ndarray, teacher_logits: np.ndarray, temperature: float
) -> tuple[float, np.ndarray]:
    """L_ce = T² · Σ_rows KL(p_t ‖ p_s) / N, and its gradient with respect to the student's logits.

    student_logits, teacher_logits: [N, V], one row per real token. p = softmax(logits / T).
    torch's KLDivLoss(reduction="batchmean") divides the sum over all N·V terms by N; the
    factor T² keeps the gradient's size independent of T (Hinton et al., 2015).

    Gradient: ∂/∂s of T²/N · Σ p_t (log p_t − log p_s) = T²/N · (p_s − p_t) / T = T/N · (p_s − p_t).
    """
    n_rows = student_logits.shape[0]
    log_p_student = log_softmax(student_logits / temperature)  # [N, V]
    log_p_teacher = log_softmax(teacher_logits / temperature)  # [N, V]
    p_teacher = np.exp(log_p_teacher)
    # p_t · log p_t is 0 where p_t underflows to 0 (torch's xlogy convention)
    kl = np.sum(p_teacher * (log_p_teacher - log_p_student), where=p_teacher > 0)
    loss = float(kl) * temperature**2 / n_rows
    d_logits = (np.exp(log_p_student) - p_teacher) * (temperature / n_rows)  # [N, V]
    return loss, d_logits


def masked_lm_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """L_mlm: the mean cross-entropy over the rows whose label is not -100, and its gradient.

    logits: [N, V]; labels: [N] (−100: no prediction at that row). With M predicted rows,
    L = −1/M Σ log softmax(logits)[label], and ∂L/∂logits = (softmax − onehot) / M on those
    rows, 0 elsewhere.
    """
    rows = np.flatnonzero(labels != IGNORE_INDEX)
    targets = labels[rows]
    log_probs = log_softmax(logits[rows])  # [M, V]
    loss = -float(log_probs[np.arange(rows.size), targets].sum()) / rows.size
    d_selected = np.exp(log_probs)
    d_selected[np.arange(rows.size), targets] -= 1.0
    d_logits = np.zeros_like(logits)
    d_logits[rows] = d_selected / rows.size
    return loss, d_logits


def cosine_embedding_loss(student: np.ndarray, teacher: np.ndarray) -> tuple[float, np.ndarray]:
    """L_cos = mean over rows of 1 − cos(s, t), torch's CosineEmbeddingLoss with target 1.

    student, teacher: [N, D]. cos = s·t / sqrt((|s|² + ε)(|t|² + ε)), ε = 1e-12 as torch.
    Gradient of one row's cos: with a = |s|² + ε, b = |t|² + ε,
        ∂cos/∂s = t / sqrt(ab) − cos · s / a,
    so ∂L/∂s = −(t / sqrt(ab) − cos · s / a) / N.
    """
    n_rows = student.shape[0]
    dot = np.einsum("nd,nd->n", student, teacher)  # [N]
    a = np.einsum("nd,nd->n", student, student) + COSINE_EPS  # [N]
    b = np.einsum("nd,nd->n", teacher, teacher) + COSINE_EPS  # [N]
    root = np.sqrt(a * b)
    cos = dot / root
    loss = float(np.sum(1.0 - cos)) / n_rows
    d_student = -(teacher / root[:, None] - (cos / a)[:, None] * student) / n_rows
    return loss, d_student


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """hidden [B, L, D], mask [B, L] (1 = token) -> [B, D]: the mean over each row's tokens,
    as sentence-transformers' mean pooling (its count floored at 1e-9)."""
    weights = mask[..., None].astype(hidden.dtype)  # [B, L, 1]
    count = np.maximum(weights.sum(axis=1), POOLING_COUNT_EPS)  # [B, 1]
    return (hidden * weights).sum(axis=1) / count


def mean_pool_backward(d_pooled: np.ndarray, mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The gradient of `mean_pool`: d_pooled [B, D] -> d_hidden [B, L, D], spread evenly
    over each row's tokens (m[b, l] / count[b]), 0 at padding."""
    weights = mask[..., None].astype(dtype)  # [B, L, 1]
    count = np.maximum(weights.sum(axis=1), POOLING_COUNT_EPS)  # [B, 1]
    return weights * (d_pooled / count)[:, None, :]


def sentence_mse(
    student_hidden: np.ndarray, teacher_hidden: np.ndarray, mask: np.ndarray
) -> tuple[float, np.ndarray]:
    """L_mse = mean over B·D of (pool(s) − pool(t))², on mean-pooled sentence embeddings.

    This is sentence-transformers' MSELoss, the usual objective for distilling a sentence
    embedding model (Reimers & Gurevych, 2020). Gradient: 2 (pool(s) − pool(t)) / (B·D),
    carried back through the mean pooling. (distiller.py's own `alpha_mse` is an MSE on
    the logits; a teacher without MLM head has none, hence this sentence-level one.)
    """
    difference = mean_pool(student_hidden, mask) - mean_pool(teacher_hidden, mask)  # [B, D]
    loss = float(np.mean(np.square(difference)))
    d_pooled = 2.0 * difference / difference.size
    return loss, mean_pool_backward(d_pooled, mask, student_hidden.dtype)


def _check_weight(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _as_mask(attention_mask: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(attention_mask)
    if mask.shape != shape:
        raise ValueError(f"attention_mask has shape {mask.shape}, the hidden states {shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    mask = mask.astype(bool)
    if not mask.any():
        raise ValueError("attention_mask has no real token: there is nothing to distil")
    return mask


def _as_labels(labels: ArrayLike | None, mask: np.ndarray, vocab_size: int) -> np.ndarray:
    if labels is None:
        raise ValueError("alpha_mlm > 0 needs labels ([B, L], -100 where nothing is predicted)")
    array = np.asarray(labels)
    if array.shape != mask.shape:
        raise ValueError(f"labels have shape {array.shape}, the attention mask {mask.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {array.dtype}")
    bad = (array != IGNORE_INDEX) & ((array < 0) | (array >= vocab_size))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"label {int(array[row, col])} at position ({row}, {col}) is neither -100 nor a token "
            f"id in [0, {vocab_size})"
        )
    padded = (array != IGNORE_INDEX) & ~mask
    if padded.any():
        row, col = np.argwhere(padded)[0]
        raise ValueError(
            f"label {int(array[row, col])} at padding position ({row}, {col}): padding is never "
            f"predicted, its label must be -100"
        )
    if not (array != IGNORE_INDEX).any():
        raise ValueError(
            "labels are all -100: with alpha_mlm > 0 the MLM loss needs at least one masked token"
        )
    return array.astype(np.int64, copy=False)


def _logit_rows(logits: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """Student or teacher logits as [N, V] rows at the real tokens (row-major order)."""
    n_real = int(mask.sum())
    if logits.ndim == 3:
        if logits.shape[:2] != mask.shape:
            raise ValueError(f"{name} has shape {logits.shape}; the attention mask is {mask.shape}")
        return logits[mask]
    if logits.ndim == 2 and logits.shape[0] == n_real:
        return logits
    raise ValueError(
        f"{name} must be [B, L, V] or [N, V] with one row per real token (N = {n_real}, the "
        f"attention mask's 1s in row-major order), got shape {logits.shape}"
    )


def distillation_loss(
    student_logits: ArrayLike | None,
    teacher_logits: ArrayLike | None,
    student_hidden: ArrayLike,
    teacher_hidden: ArrayLike,
    attention_mask: ArrayLike,
    labels: ArrayLike | None,
    temperature: float = 2.0,
    alpha_ce: float = 5.0,
    alpha_mlm: float = 2.0,
    alpha_cos: float = 1.0,
    alpha_mse: float = 0.0,
) -> DistillationLoss:
    """DistilBERT's triple loss (and a sentence-level MSE) with its gradients, as distiller.py.

    student_hidden, teacher_hidden: [B, L, D], the encoders' last hidden states.
    attention_mask: [B, L], 1 for a real token, 0 for padding. N = its number of 1s.
    labels: [B, L] token ids at the masked positions, -100 elsewhere (padding included).
    student_logits, teacher_logits: the MLM heads' logits, either [B, L, V] or only the rows
        at the real tokens, [N, V] in row-major order (what `model(..., positions=mask)`
        returns); None when the teacher has no MLM head (then α_ce = α_mlm = 0).

    Positions and reductions, as distiller.py computes them:
      * loss_ce: KL divergence between softmax(teacher/T) and softmax(student/T) at every real
        token (the attention mask), summed and divided by N (KLDivLoss "batchmean"), × T².
      * loss_mlm: the student's cross-entropy at the positions whose label is not -100, mean.
      * loss_cos: 1 − cos(student_hidden, teacher_hidden) at every real token, mean over N
        (CosineEmbeddingLoss with target 1, reduction "mean").
      * loss_mse: our addition for a teacher without MLM head: mean squared difference of the
        mean-pooled sentence embeddings, mean over B·D (sentence-transformers' MSELoss).
        distiller.py's `alpha_mse` weights an MSE on the logits instead; this is not that.

    The cost of the logits: L_ce needs the vocabulary projection at *every* real token (N rows
    of D × V), not only at the ~15% masked ones that plain MLM training projects. For
    DistilmBERT (V = 119,547) that is most of a step's time, in the teacher's forward and the
    student's forward and backward. Passing [N, V] rows skips the padding rows; [B, L, V]
    is accepted too (padding rows then get zero gradient).

    Returns a `DistillationLoss`: `.loss` and its parts (None where a weight is 0), and the
    gradients `.d_student_logits` (shape as given) and `.d_student_hidden` [B, L, D], in the
    inputs' dtype. A non-finite loss raises FloatingPointError naming the part.
    """
    temperature = float(temperature)
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    weights = {
        name: _check_weight(name, value)
        for name, value in (("alpha_ce", alpha_ce), ("alpha_mlm", alpha_mlm),
                            ("alpha_cos", alpha_cos), ("alpha_mse", alpha_mse))
    }  # fmt: skip
    if not any(weights.values()):
        raise ValueError("every loss weight is 0: nothing to optimise")

    s_hidden = np.asarray(student_hidden)
    t_hidden = np.asarray(teacher_hidden)
    if s_hidden.ndim != 3 or s_hidden.shape != t_hidden.shape:
        raise ValueError(
            f"student_hidden and teacher_hidden must both be [B, L, D], got {s_hidden.shape} "
            f"and {t_hidden.shape}"
        )
    dtype = np.result_type(s_hidden.dtype, np.float32)
    mask = _as_mask(attention_mask, s_hidden.shape[:2])
    d_hidden = np.zeros(s_hidden.shape, dtype=dtype)
    parts: dict[str, float | None] = dict.fromkeys(("ce", "mlm", "cos", "mse"))

    d_logits = None
    needs_logits = weights["alpha_ce"] > 0 or weights["alpha_mlm"] > 0
    if needs_logits and (student_logits is None or (weights["alpha_ce"] > 0 and teacher_logits is None)):
        raise ValueError(
            "alpha_ce > 0 needs student and teacher logits, alpha_mlm > 0 the student's; a teacher "
            "without MLM head distils with alpha_ce = alpha_mlm = 0 (alpha_cos, alpha_mse)"
        )
    if needs_logits:
        assert student_logits is not None
        s_logits = np.asarray(student_logits)
        s_rows = _logit_rows(s_logits, mask, "student_logits")
        d_rows = np.zeros(s_rows.shape, dtype=dtype)
        if weights["alpha_ce"] > 0:
            t_rows = _logit_rows(np.asarray(teacher_logits), mask, "teacher_logits")
            if t_rows.shape != s_rows.shape:
                raise ValueError(
                    f"teacher_logits rows {t_rows.shape} differ from the student's {s_rows.shape}"
                )
            parts["ce"], d_ce = soft_target_kl(s_rows, t_rows, temperature)
            d_rows += weights["alpha_ce"] * d_ce
        if weights["alpha_mlm"] > 0:
            label_rows = _as_labels(labels, mask, s_rows.shape[-1])[mask]  # [N]
            parts["mlm"], d_mlm = masked_lm_cross_entropy(s_rows, label_rows)
            d_rows += weights["alpha_mlm"] * d_mlm
        if s_logits.ndim == 3:
            d_logits = np.zeros(s_logits.shape, dtype=dtype)
            d_logits[mask] = d_rows
        else:
            d_logits = d_rows

    if weights["alpha_cos"] > 0:
        parts["cos"], d_cos = cosine_embedding_loss(s_hidden[mask], t_hidden[mask])
        d_hidden[mask] += weights["alpha_cos"] * d_cos
    if weights["alpha_mse"] > 0:
        parts["mse"], d_mse = sentence_mse(s_hidden, t_hidden, mask)
        d_hidden += weights["alpha_mse"] * d_mse

    total = 0.0
    for key, value in parts.items():
        if value is None:
            continue
        if not np.isfinite(value):
            raise FloatingPointError(f"loss_{key} is {value}: non-finite logits or hidden states")
        total += weights[f"alpha_{key}"] * value
    return DistillationLoss(
        loss=total, loss_ce=parts["ce"], loss_mlm=parts["mlm"], loss_cos=parts["cos"],
        loss_mse=parts["mse"], d_student_logits=d_logits, d_student_hidden=d_hidden,
    )  # fmt: skip
