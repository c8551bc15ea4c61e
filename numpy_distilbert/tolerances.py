"""The project's tolerances: how close ours must be to transformers on the same weights.

One module, so that `verify`, the tests and the docs cannot drift apart.

Fixed limits (DEVELOPERS.md) hold for the real-size model and its heads. Where float32 itself
cannot reach a fixed limit (an ill-conditioned tiny config, another CPU's BLAS summing in
another order), the limit is *derived*: a multiple of transformers' own float32 distance from
the float64 oracle, measured in the same test (`derived_bound`). Two float32 implementations of
the same function, each within e of the exact value, are within 2e of each other; the factor
leaves room for the two rounding paths not being independent.
"""

from __future__ import annotations

import numpy as np

# float32 vs transformers float32, same weights.
FP32_HIDDEN = 1e-5
FP32_ATTENTION = 1e-5
FP32_LOGITS = 1e-4
# float64 mode vs torch float64.
FP64 = 1e-10

# The optimizer (AdamW + schedule + clipping) vs torch, N steps, each parameter element relative
# to max(1, max|parameter|): torch's CPU kernels fuse multiply-adds (lerp, addcmul) where NumPy
# rounds twice, a unit in the last place per operation; measured ~1e-16 in float64 and ~1e-7 in
# float32 after 20 steps.
OPTIMIZER_FP64 = 1e-12
OPTIMIZER_FP32 = 1e-5

# A derived bound is this many times the reference's own float32 error against float64.
REFERENCE_ERROR_FACTOR = 2.0


def derived_bound(fixed: float, reference_fp32_error: float) -> float:
    """The larger of a fixed limit and `REFERENCE_ERROR_FACTOR` x the reference's own error.

    ``reference_fp32_error`` is max |transformers fp32 - oracle fp64| measured on the same
    input: if the reference itself is that far from exact, no float32 implementation can be
    asked to be closer to it than about twice that.
    """
    return max(fixed, REFERENCE_ERROR_FACTOR * reference_fp32_error)

# Gradients (issue 12), per parameter tensor, ours vs torch autograd on the same weights and
# batch in eval mode: |ours - torch| <= max(absolute, relative x max|torch gradient|). The
# relative part scales with the tensor's own gradient; the absolute floor covers tensors whose
# exact gradient is 0 (the key bias: softmax ignores a constant added to every score), where
# both sides hold only rounding noise.
GRAD_FP32_ABS = 1e-6
GRAD_FP32_REL = 1e-4
GRAD_FP64_ABS = 1e-13
GRAD_FP64_REL = 1e-10
# The loss itself, relative: float32 sums thousands of terms in another order than torch.
LOSS_FP32_REL = 1e-5
LOSS_FP64_REL = 1e-12

# Finite differences in float64 (central, step FD_STEP): the truncation error is O(step²) and
# the rounding error O(1e-16 / step), both far below these bounds on |analytic - numeric|.
FD_STEP = 1e-6
FD_ABS = 1e-8
FD_REL = 1e-6


def gradient_bound(dtype: np.typing.DTypeLike, reference_max: float) -> float:
    """The largest |ours - torch| allowed for one gradient tensor whose torch values reach
    `reference_max` in magnitude, in float32 or float64."""
    if np.dtype(dtype) == np.float64:
        return max(GRAD_FP64_ABS, GRAD_FP64_REL * reference_max)
    return max(GRAD_FP32_ABS, GRAD_FP32_REL * reference_max)

# Distillation (numpy_distilbert/distill.py) against torch autograd on the reference script's
# formulas, relative to the largest magnitude of torch's value (loss or gradient tensor).
DISTILL_LOSS_FP64_RELATIVE = 1e-12
DISTILL_LOSS_FP32_RELATIVE = 1e-5
# Central finite differences in float64 (step 1e-6) against the analytic gradient, relative.
DISTILL_FINITE_DIFFERENCE_RELATIVE = 1e-6
# An end-to-end distillation step (teacher, student, loss, backward, AdamW) in float64 vs torch.
DISTILL_STEP_FP64 = 1e-9
# init_student folds the teacher's type-0 row into the float32 position table: one float32
# rounding of (position + type) that the teacher, adding them one by one, does not make.
# Single-segment outputs of student and teacher differ by that rounding, carried through the
# LayerNorm (and, with every layer copied, the encoder); measured on tiny random BERTs and
# all-MiniLM-L6-v2.
INIT_FOLD_FP32 = 1e-6
INIT_FOLD_FP64 = 1e-6

# The same float32 model run with another BLAS thread count (OpenBLAS may split a product's sums
# differently): scores and embedding values of the tiny test checkpoints, measured up to ~2e-7.
BLAS_THREADS_FP32 = 1e-6
# A float32 cosine (shards.top_k_cosine) against the float64 one, for short test vectors.
COSINE_FP32 = 1e-6
