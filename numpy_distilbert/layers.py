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
from collections.abc import Callable

import numpy as np

from numpy_distilbert.erf import erf, gelu_float32  # the numerics: fitted rationals, blocking

__all__ = [
    "ACTIVATIONS", "attention", "attention_bias", "embed", "erf", "feed_forward", "gelu",
    "gelu_new", "layer_norm", "linear", "merge_heads", "multi_head_attention", "relu", "sinusoidal_positions",
    "softmax",
]

LAYER_NORM_EPS = 1e-12  # DistilBERT's nn.LayerNorm(eps=1e-12), everywhere


# --------------------------------------------------------------------- activations
def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)), as transformers' "gelu" (not the tanh form)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)  # integers: 1/√2 must not be cast to an integer
    if x.dtype == np.float32:  # the FFN's hot path: one blocked pass over x (erf.py)
        return gelu_float32(x)
    return 0.5 * x * (1.0 + erf(x * np.asarray(1.0 / math.sqrt(2.0), dtype=x.dtype)))


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0): DistilBERT configs may choose "relu" instead of "gelu"."""
    return np.maximum(x, 0)


def gelu_new(x: np.ndarray) -> np.ndarray:
    """GELU's tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), transformers' "gelu_new"."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    scale = np.asarray(math.sqrt(2.0 / math.pi), dtype=x.dtype)
    inner = np.tanh(scale * (x + np.asarray(0.044715, dtype=x.dtype) * x * x * x))
    return np.asarray(0.5, dtype=x.dtype) * x * (1.0 + inner)


ACTIVATIONS = {"gelu": gelu, "relu": relu, "gelu_new": gelu_new}


# -------------------------------------------------------------------------- basics
def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An affine map: [..., in] @ [out, in].T + [out] -> [..., out].

    The leading axes are flattened first, so BLAS makes one tall matrix product
    [B·L, in] @ [in, out] instead of B short ones; the bias is added in place.
    """
    y = x.reshape(-1, x.shape[-1]) @ w.T  # [B·L, out]
    y += b
    return y.reshape(*x.shape[:-1], w.shape[0])


def layer_norm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = LAYER_NORM_EPS
) -> np.ndarray:
    """Normalise the last axis to zero mean and unit (biased) variance, then scale and shift.

    x: [..., D]; gamma, beta: [D]. eps = 1e-12 as in DistilBERT; BERT reads its config's.
    """
    y = x - x.mean(axis=-1, keepdims=True)  # [..., D] centred; a fresh array, updated in place below
    variance = np.mean(np.square(y), axis=-1, keepdims=True)  # [..., 1]
    y *= 1.0 / np.sqrt(variance + eps)
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
    token_type_ids: np.ndarray | None = None,
    token_type_embeddings: np.ndarray | None = None,
    eps: float = LAYER_NORM_EPS,
) -> np.ndarray:
    """Token (+ token type) + learned position embeddings, then LayerNorm.

    DistilBERT has no token types; BERT adds token_type_embeddings [T, D] at token_type_ids
    [B, L] (summed in BERT's order: word + type, then position).
    input_ids: [B, L] int; word_embeddings: [V, D]; position_embeddings: [P, D] with P >= L.
    Returns [B, L, D].
    """
    seq_len = input_ids.shape[1]
    x = word_embeddings[input_ids]  # [B, L, D], a fresh array (fancy indexing copies)
    if token_type_embeddings is not None and token_type_ids is not None:
        x += token_type_embeddings[token_type_ids]
    x += position_embeddings[:seq_len]
    return layer_norm(x, gamma, beta, eps)


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
    x: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    activation: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Position-wise FFN: [B, L, D] -> [B, L, F] -> activation -> [B, L, D]."""
    return linear(activation(linear(x, w1, b1)), w2, b2)
