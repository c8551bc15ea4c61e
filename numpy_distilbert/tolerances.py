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

# float32 vs transformers float32, same weights.
FP32_HIDDEN = 1e-5
FP32_ATTENTION = 1e-5
FP32_LOGITS = 1e-4
# float64 mode vs torch float64.
FP64 = 1e-10

# A derived bound is this many times the reference's own float32 error against float64.
REFERENCE_ERROR_FACTOR = 2.0


def derived_bound(fixed: float, reference_fp32_error: float) -> float:
    """The larger of a fixed limit and `REFERENCE_ERROR_FACTOR` x the reference's own error.

    ``reference_fp32_error`` is max |transformers fp32 - oracle fp64| measured on the same
    input: if the reference itself is that far from exact, no float32 implementation can be
    asked to be closer to it than about twice that.
    """
    return max(fixed, REFERENCE_ERROR_FACTOR * reference_fp32_error)

# The same float32 model run with another BLAS thread count (OpenBLAS may split a product's sums
# differently): scores and embedding values of the tiny test checkpoints, measured up to ~2e-7.
BLAS_THREADS_FP32 = 1e-6
# A float32 cosine (shards.top_k_cosine) against the float64 one, for short test vectors.
COSINE_FP32 = 1e-6
