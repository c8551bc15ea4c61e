"""DistilBERT's building blocks as small pure NumPy functions.

Every function takes arrays and returns arrays; none keeps state or knows about
checkpoints. `model.py` composes them into the full forward pass.

Shape letters used in the comments:
    B batch size, L sequence length, D model width (`dim`), H attention heads,
    Dh = D / H width of one head, F feed-forward width (`hidden_dim`), V vocabulary size.

Weights are kept in PyTorch's `nn.Linear` layout, `w[out, in]`, so that the arrays
memory-mapped from a checkpoint are used as they are: `x @ w.T` hands BLAS a
transposed operand instead of copying it.
"""

from __future__ import annotations

import math

import numpy as np

LAYER_NORM_EPS = 1e-12  # DistilBERT's nn.LayerNorm(eps=1e-12), everywhere


# ----------------------------------------------------------------------------- erf
# NumPy has no erf and SciPy is not a dependency, so erf is approximated here, with one
# coefficient set per dtype. All coefficients are fitted (minimax / Chebyshev, in mpmath) and
# their errors printed by scripts/fit_erf.py; rerun it to regenerate these tuples.
#
# float32: erf(x) = x·P(x²)/Q(x²) on |x| <= 4, one rational for the whole range (no branch),
# evaluated in float64 in cache-sized blocks and rounded once to float32. The fit's relative
# error is 0.41 float32 ulp, so the result is within 1 ulp of the correctly rounded erf.
# (In float32 arithmetic the same rational runs ~2x faster but its roundings add up to 7 ulp.)
# Beyond |x| = 4, erf rounds to ±1 in float32, so x is clamped there.
_ERF32_CLAMP = 4.0
_ERF32_P = (30154.45661442814, 5172.264437465926, 1419.0776204749322, 103.778235209102,
            7.604648662679849, 0.0530936773741131)  # low to high degree, in s = x²
_ERF32_Q = (26723.692032255472, 13491.676567542801, 3082.588095646329, 406.3958375254685,
            31.683020144152362, 1.0)  # monic: the last multiply-by-coefficient is skipped
# float64 (the oracle mode): erf(x) = x·S(x²) for |x| < 1 (relative error 4e-17), and
# erf(x) = 1 - exp(-x²)·T((|x|-3)/(|x|+3)) beyond, where T ≈ exp(x²)·erfc(x) (relative
# error 8e-17). erf rounds to ±1 in float64 for |x| > 5.93, so |x| is clamped at 6.
_ERF64_SMALL = (1.1283791670955126, -0.37612638903183543, 0.11283791670945006, -0.02686617064323777,
                0.0052239776071164225, -0.0008548325975389692, 0.00012055294904839707,
                -1.492473690741966e-05, 1.6447424703317362e-06, -1.6208483801871705e-07,
                1.3720064546777686e-08, -7.795898827002142e-10)
_ERF64_TAIL = (0.17900115118138996, -0.3262335600430372, 0.2456038017123309, -0.15011593650077742,
               0.07166583719797347, -0.024392499318655416, 0.004269136333148302, 0.0007077464385177353,
               -0.0005970619586158305, 4.5255298034073955e-05, 6.405673342206844e-05,
               -1.2860318447907675e-05, -7.979817704348727e-06, 2.1169509641489688e-06,
               1.2598817267482604e-06, -2.7269500546476834e-07, -2.389387463474792e-07,
               -2.592589458123332e-08)
# Elements per block: big enough to amortise NumPy's ~1 µs per call, small enough that a block's
# scratch rows stay in cache between the ~25 passes over them (32768 measured fastest here:
# 8192 was 1.6x and 16384 1.2x slower on 12.6 M float32 GELU inputs). One thread does it
# all: blocks this small spend so little time outside the GIL that worker threads mostly wait
# for each other (measured: two threads were 1.9x *slower* than one on 12.6 M elements).
_BLOCK = 32768


def _horner(coefficients: tuple[float, ...], s: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = c0 + c1·s + c2·s² + …, in place. A monic polynomial skips its first multiply."""
    if coefficients[-1] == 1.0:
        np.add(s, coefficients[-2], out=out)
    else:
        np.multiply(s, coefficients[-1], out=out)
        np.add(out, coefficients[-2], out=out)
    for c in coefficients[-3::-1]:
        np.multiply(out, s, out=out)
        np.add(out, c, out=out)
    return out


def _erf32_ratio(xc: np.ndarray, work: np.ndarray) -> np.ndarray:
    """P(x²)/Q(x²) = erf(x)/x for a float64 block xc [n], clamped in place; returns a view of work."""
    s, p, q = work[:3]  # each [n] float64
    np.clip(xc, -_ERF32_CLAMP, _ERF32_CLAMP, out=xc)  # keeps NaN; ±inf -> ±4 -> ±1
    np.multiply(xc, xc, out=s)
    _horner(_ERF32_P, s, p)
    _horner(_ERF32_Q, s, q)
    return np.divide(p, q, out=p)


def _erf32_block(x: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """out = erf(x) for one float32 block [n]: evaluated in float64, rounded to float32 once."""
    xc = work[3]  # [n] float64
    xc[...] = x
    # x·(P/Q) is odd exactly, and -0.0 stays -0.0.
    np.multiply(xc, _erf32_ratio(xc, work), out=out, casting="same_kind")


def _blockwise(block_fn, x: np.ndarray, work_dtype: type) -> np.ndarray:
    """Apply block_fn(x_block, out_block, work) over x in L2-sized blocks; returns out, shaped as x.

    `work` is [4, n] scratch of `work_dtype`, made once per call and reused by every block.
    """
    flat = np.ascontiguousarray(x).reshape(-1)  # [N]
    out = np.empty_like(flat)
    work = np.empty((4, _BLOCK), dtype=work_dtype)
    for i in range(0, flat.size, _BLOCK):
        block = flat[i : i + _BLOCK]
        block_fn(block, out[i : i + _BLOCK], work[:, : block.size])
    return out.reshape(x.shape)


def _erf64_block(x: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """out = erf(x) for one float64 block [n], to ~2e-16 absolute: the oracle mode, accuracy first.

    Both pieces are computed for the whole block and the right one is picked per element:
    in cache that is cheaper than gathering and scattering the elements of each piece.
    """
    ax, s, small, tail = work  # each [n] float64
    np.abs(x, out=ax)
    np.minimum(ax, 6.0, out=ax)  # erf(6) == 1.0 in float64; ±inf -> 6; NaN stays NaN
    np.multiply(ax, ax, out=s)
    _horner(_ERF64_SMALL, s, small)
    np.multiply(small, ax, out=small)  # |x|·S(x²), used where |x| < 1
    np.subtract(ax, 3.0, out=out)  # out serves as scratch for t = (|x| - 3)/(|x| + 3)
    np.add(ax, 3.0, out=tail)
    np.divide(out, tail, out=out)
    _horner(_ERF64_TAIL, out, tail)  # ≈ exp(x²)·erfc(|x|)
    # x² is rounded before exp; over [1, 6] that costs at most 2e-17 absolute (fit_erf.py).
    np.negative(s, out=s)
    np.multiply(tail, np.exp(s, out=s), out=tail)  # erfc(|x|)
    np.subtract(1.0, tail, out=tail)  # used where |x| >= 1 (and for NaN, which stays NaN)
    np.copyto(tail, small, where=ax < 1.0)
    np.copysign(tail, x, out=out)  # odd exactly; erf(-0.0) = -0.0


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in the dtype of `x` (integers and Python floats -> float64).

    float32: within 1 ulp of the correctly rounded erf; float64: within 2.3e-16 absolute.
    erf(±inf) = ±1, erf(NaN) = NaN, erf(-0.0) = -0.0, and erf(-x) == -erf(x) exactly.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if x.dtype == np.float32:
        return _blockwise(_erf32_block, x, np.float64)
    if x.dtype == np.float64:
        return _blockwise(_erf64_block, x, np.float64)
    # float16 / longdouble: through float64, returned in the input dtype.
    return _blockwise(_erf64_block, x.astype(np.float64), np.float64).astype(x.dtype)


# --------------------------------------------------------------------- activations
def _gelu32_coefficients() -> tuple[tuple[np.float32, ...], tuple[np.float32, ...]]:
    """erf's float32 rational with GELU's constants folded in: 0.5·erf(x/√2) = x·A(x²)/B(x²).

    With r = 1/√2, erf(x·r) = x·r·P(r²x²)/Q(r²x²); so A_k = 0.5·r·P_k·r^(2k) and B_k = Q_k·r^(2k),
    both divided by B's leading coefficient to keep B monic. Computed in float64, stored float32.
    """
    r2 = 0.5  # r² = 1/2
    a = [0.5 * math.sqrt(r2) * p * r2**k for k, p in enumerate(_ERF32_P)]
    b = [q * r2**k for k, q in enumerate(_ERF32_Q)]
    lead = b[-1]
    return tuple(np.float32(c / lead) for c in a), tuple(np.float32(c / lead) for c in b)


_GELU32_A, _GELU32_B = _gelu32_coefficients()
_GELU32_CLAMP = np.float32(_ERF32_CLAMP * math.sqrt(2.0))  # erf(x/√2) is ±1 in float32 beyond


def _gelu32_block(x: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """out = x·Φ(x) = x·(0.5 + x·A(x²)/B(x²)) for one float32 block [n], in float32 arithmetic.

    The FFN's hot path. Float32 arithmetic is twice as fast as float64 here, and the folded
    constants save three passes; the price is ~7 ulp in Φ instead of 1, which leaves GELU as
    accurate as PyTorch's own float32 kernel (tests/test_erf.py measures both).
    """
    xc, s, p, q = work  # each [n] float32
    np.clip(x, -_GELU32_CLAMP, _GELU32_CLAMP, out=xc)  # keeps NaN
    np.multiply(xc, xc, out=s)
    _horner(_GELU32_A, s, p)
    _horner(_GELU32_B, s, q)
    np.divide(p, q, out=p)
    np.multiply(p, xc, out=p)  # 0.5·erf(x/√2)
    np.add(p, 0.5, out=p)  # Φ(x)
    # Φ must be exactly 0 where erf = -1, or gelu(-1e30) would be huge instead of 0.
    np.clip(p, 0.0, 1.0, out=p)
    np.multiply(p, x, out=out)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)), as transformers' "gelu" (not the tanh form)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)  # integers: 1/√2 must not be cast to an integer
    if x.dtype == np.float32:  # the FFN's hot path: one blocked pass over x
        return _blockwise(_gelu32_block, x, np.float32)
    return 0.5 * x * (1.0 + erf(x * np.asarray(1.0 / math.sqrt(2.0), dtype=x.dtype)))


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0): DistilBERT configs may choose "relu" instead of "gelu"."""
    return np.maximum(x, 0)


ACTIVATIONS = {"gelu": gelu, "relu": relu}


# -------------------------------------------------------------------------- basics
def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An affine map: [..., in] @ [out, in].T + [out] -> [..., out].

    The leading axes are flattened first, so BLAS makes one tall matrix product
    [B·L, in] @ [in, out] instead of B short ones; the bias is added in place.
    """
    y = x.reshape(-1, x.shape[-1]) @ w.T  # [B·L, out]
    y += b
    return y.reshape(*x.shape[:-1], w.shape[0])


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Normalise the last axis to zero mean and unit (biased) variance, then scale and shift.

    x: [..., D]; gamma, beta: [D]. eps = 1e-12 as in DistilBERT.
    """
    y = x - x.mean(axis=-1, keepdims=True)  # [..., D] centred; a fresh array, updated in place below
    variance = np.mean(np.square(y), axis=-1, keepdims=True)  # [..., 1]
    y *= 1.0 / np.sqrt(variance + LAYER_NORM_EPS)
    y *= gamma
    y += beta
    return y


def softmax(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis`; the max is subtracted first so exp cannot overflow.

    With `out=x` the work happens in x's own memory (attention scores are large and
    used once); by default x is left untouched.
    """
    out = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out


# ---------------------------------------------------------------------- embeddings
def sinusoidal_positions(n_positions: int, dim: int) -> np.ndarray:
    """The fixed position table of "Attention is all you need": [n_positions, dim] float64.

    Even columns hold sin(pos / 10000^(2i/dim)), odd columns cos of the same angle,
    as transformers' `create_sinusoidal_embeddings` (used when `sinusoidal_pos_embds`).
    """
    pos = np.arange(n_positions, dtype=np.float64)[:, None]  # [P, 1]
    pair = (np.arange(dim) // 2).astype(np.float64)  # [D]: 0, 0, 1, 1, 2, 2, ...
    angles = pos / np.power(10000.0, 2.0 * pair / dim)  # [P, D]
    table = np.empty((n_positions, dim), dtype=np.float64)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table


def embed(
    input_ids: np.ndarray,
    word_embeddings: np.ndarray,
    position_embeddings: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
) -> np.ndarray:
    """Token + learned position embeddings, then LayerNorm. DistilBERT has no token types.

    input_ids: [B, L] int; word_embeddings: [V, D]; position_embeddings: [P, D] with P >= L.
    Returns [B, L, D].
    """
    seq_len = input_ids.shape[1]
    x = word_embeddings[input_ids] + position_embeddings[:seq_len]  # [B, L, D]
    return layer_norm(x, gamma, beta)


# ----------------------------------------------------------------------- attention
def attention_bias(attention_mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Turn a [B, L] 0/1 padding mask into an additive bias [B, 1, 1, L].

    Kept keys get 0, padded keys the most negative finite number of `dtype`, as
    transformers does. A finite value (not -inf) matters: when a whole row is padding,
    every score becomes that same number and softmax spreads the row evenly instead of
    producing 0/0 = NaN.
    """
    keep = np.asarray(attention_mask).astype(bool)  # [B, L]
    bias = np.where(keep, 0.0, np.finfo(dtype).min).astype(dtype)
    return bias[:, None, None, :]  # [B, 1, 1, L]: broadcast over heads and queries


def merge_heads(x: np.ndarray) -> np.ndarray:
    """[B, H, L, Dh] -> [B, L, D]."""
    batch, n_heads, seq_len, head_dim = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, seq_len, n_heads * head_dim)


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention over the last two axes: softmax(q·kᵀ/√Dh + bias)·v.

    q, k, v: [B, H, L, Dh]; bias: [B, 1, 1, L] additive, or None.
    Returns (context [B, H, L, Dh], weights [B, H, L, L]).
    """
    # Scaling q (B·L·D numbers) is cheaper than scaling the scores (B·H·L² numbers) once
    # L > Dh, and for Dh = 64 the factor 1/8 is a power of two, so both orders round alike.
    q = q * np.asarray(1.0 / math.sqrt(q.shape[-1]), dtype=q.dtype)
    scores = q @ k.swapaxes(-1, -2)  # [B, H, L, L]
    if bias is not None:
        scores += bias
    weights = softmax(scores, axis=-1, out=scores)  # [B, H, L, L]
    return weights @ v, weights  # [B, H, L, Dh]


def multi_head_attention(
    x: np.ndarray,
    w_qkv: np.ndarray,
    b_qkv: np.ndarray,
    w_out: np.ndarray,
    b_out: np.ndarray,
    n_heads: int,
    bias: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Project to queries, keys and values, attend per head, merge heads and project back.

    x: [B, L, D]; w_qkv: [3D, D], the q, k and v projections stacked so that one matrix
    product makes all three; b_qkv: [3D]; w_out: [D, D]; b_out: [D].
    Returns (output [B, L, D], attention weights [B, H, L, L]).
    """
    batch, seq_len, dim = x.shape
    qkv = linear(x, w_qkv, b_qkv)  # [B, L, 3D]
    qkv = qkv.reshape(batch, seq_len, 3, n_heads, dim // n_heads)  # [B, L, 3, H, Dh]
    q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # each [B, H, L, Dh]
    context, weights = attention(q, k, v, bias)  # [B, H, L, Dh], [B, H, L, L]
    return linear(merge_heads(context), w_out, b_out), weights  # [B, L, D]


def feed_forward(
    x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray, activation
) -> np.ndarray:
    """Position-wise FFN: [B, L, D] -> [B, L, F] -> activation -> [B, L, D]."""
    return linear(activation(linear(x, w1, b1)), w2, b2)
