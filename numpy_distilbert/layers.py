"""DistilBERT's building blocks as small pure NumPy functions.

Every function takes arrays and returns arrays; none keeps state or knows about
checkpoints. `model.py` composes them into the full forward pass.

Shape letters used in the comments:
    B batch size, L sequence length, D model width (`dim`), H attention heads,
    Dh = D / H width of one head, F feed-forward width (`hidden_dim`), V vocabulary size.

Each backward sits beside its forward (`linear_backward` after `linear`, ...): a pure function
that takes the gradient of a scalar loss with respect to the forward's output (`d_y`, named
`d_<what>` throughout) and the values the forward saw, and returns the gradients with respect
to the forward's inputs and parameters, in the same shapes. None of them is needed at
inference; `model.py` calls them only when `forward_train` asked for gradients.

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
    "ACTIVATIONS", "ACTIVATION_BACKWARDS", "attention", "attention_backward", "attention_bias",
    "attention_weights",
    "embed", "embed_backward", "erf", "feed_forward", "feed_forward_backward",
    "gelu", "gelu_backward", "gelu_new", "gelu_new_backward", "layer_norm", "layer_norm_backward",
    "linear", "linear_backward", "merge_heads", "merge_heads_backward", "multi_head_attention",
    "multi_head_attention_backward", "relu", "relu_backward", "sinusoidal_positions", "softmax",
    "softmax_backward", "split_heads",
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


def gelu_backward(d_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d_x for y = x·Φ(x), elementwise; d_y, x: [...] (x: what `gelu` was given).

    Math: d/dx [x·Φ(x)] = Φ(x) + x·φ(x), with φ(x) = exp(-x²/2)/√(2π) the normal density:
    the product rule on x·Φ(x), since Φ' = φ. (Not the tanh form's derivative: see below.)
    """
    x = np.asarray(x)
    half = np.asarray(0.5, dtype=x.dtype)
    # In place on two fresh [..] arrays: the FFN's activations are the largest tensors here.
    cdf = erf(x * np.asarray(1.0 / math.sqrt(2.0), dtype=x.dtype))
    cdf += 1.0
    cdf *= half  # Φ(x)
    slope = np.square(x)
    slope *= -half
    np.exp(slope, out=slope)
    slope *= np.asarray(1.0 / math.sqrt(2.0 * math.pi), dtype=x.dtype)  # φ(x)
    slope *= x
    slope += cdf  # Φ(x) + x·φ(x)
    slope *= d_y
    return slope


def relu_backward(d_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d_x for y = max(x, 0): d_y where x > 0, else 0 (torch's choice at x = 0 too)."""
    return np.where(x > 0, d_y, np.zeros((), dtype=d_y.dtype))


def gelu_new_backward(d_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d_x for y = 0.5·x·(1 + tanh(u)), u = s·(x + c·x³), s = √(2/π), c = 0.044715.

    dy/dx = 0.5·(1 + tanh u) + 0.5·x·(1 - tanh² u)·s·(1 + 3c·x²).
    """
    x = np.asarray(x)
    scale = np.asarray(math.sqrt(2.0 / math.pi), dtype=x.dtype)
    cubic = np.asarray(0.044715, dtype=x.dtype)
    t = np.tanh(scale * (x + cubic * x * x * x))
    half = np.asarray(0.5, dtype=x.dtype)
    return d_y * (half * (1.0 + t) + half * x * (1.0 - t * t) * scale * (1.0 + 3.0 * cubic * x * x))


ACTIVATIONS = {"gelu": gelu, "relu": relu, "gelu_new": gelu_new}
ACTIVATION_BACKWARDS = {"gelu": gelu_backward, "relu": relu_backward, "gelu_new": gelu_new_backward}


# -------------------------------------------------------------------------- basics
def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An affine map: [..., in] @ [out, in].T + [out] -> [..., out].

    The leading axes are flattened first, so BLAS makes one tall matrix product
    [B·L, in] @ [in, out] instead of B short ones; the bias is added in place.
    """
    y = x.reshape(-1, x.shape[-1]) @ w.T  # [B·L, out]
    y += b
    return y.reshape(*x.shape[:-1], w.shape[0])


def linear_backward(
    d_y: np.ndarray, x: np.ndarray, w: np.ndarray, need_d_x: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of y = x @ w.T + b: d_y [..., out], x [..., in], w [out, in].

    Returns (d_x [..., in] (None when `need_d_x` is False), d_w [out, in], d_b [out]): every
    row of x met every row of w, so d_w sums the outer products d_yᵢ ⊗ xᵢ over the rows i.
    """
    d_y2 = d_y.reshape(-1, d_y.shape[-1])  # [N, out]
    d_w = d_y2.T @ x.reshape(-1, x.shape[-1])  # [out, in]
    d_b = d_y2.sum(axis=0)  # [out]
    d_x = (d_y2 @ w).reshape(x.shape) if need_d_x else None  # [..., in]
    return d_x, d_w, d_b


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


def layer_norm_backward(
    d_y: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float = LAYER_NORM_EPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of y = γ·x̂ + β, x̂ = (x - μ)·r, r = 1/√(σ² + eps), over the last axis.

    d_y, x: [..., D] (x: what `layer_norm` was given); gamma: [D].
    Returns (d_x [..., D], d_gamma [D], d_beta [D]); the statistics are recomputed from x.

    Math: with g = γ·d_y, μ and σ² both depend on every xⱼ, and the chain rule through them gives
        d_x = r·(g - mean(g) - x̂·mean(g·x̂))
    (the two means remove the components along 1 and along x̂, the directions in which
    LayerNorm's output cannot move). d_γ = Σ d_y·x̂, d_β = Σ d_y over every row.
    """
    centred = x - x.mean(axis=-1, keepdims=True)  # [..., D]
    rstd = 1.0 / np.sqrt(np.mean(np.square(centred), axis=-1, keepdims=True) + eps)  # [..., 1]
    x_hat = centred * rstd  # [..., D]
    rows = d_y.reshape(-1, d_y.shape[-1])
    d_gamma = np.einsum("nd,nd->d", rows, x_hat.reshape(rows.shape))  # [D]
    d_beta = rows.sum(axis=0)  # [D]
    g = d_y * gamma  # [..., D]
    d_x = g - g.mean(axis=-1, keepdims=True)
    d_x -= x_hat * np.mean(g * x_hat, axis=-1, keepdims=True)
    d_x *= rstd
    return d_x, d_gamma, d_beta


def softmax(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis`; the max is subtracted first so exp cannot overflow.

    With `out=x` the work happens in x's own memory (attention scores are large and
    used once); by default x is left untouched.
    """
    out = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out


def softmax_backward(d_y: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """d_x for y = softmax(x) along `axis`, from the output y alone: y·(d_y - Σⱼ d_yⱼ·yⱼ).

    (The Jacobian is diag(y) - y·yᵀ; applying it to d_y gives the line above.)
    """
    return y * (d_y - np.sum(d_y * y, axis=axis, keepdims=True))


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


def embed_backward(
    d_sum: np.ndarray,
    input_ids: np.ndarray,
    vocab_size: int,
    n_positions: int,
    token_type_ids: np.ndarray | None = None,
    n_types: int | None = None,
    padding_idx: int | None = None,
    d_word: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of the three lookup tables, given d_sum [B, L, D]: the gradient of the sum
    word[ids] + type[types] + position[:L] (what `embed` normalises; `layer_norm_backward`
    turns the gradient of embed's output into d_sum).

    Returns (d_word [V, D], d_position [P, D], d_type [T, D] or None). `padding_idx`: the
    word row that gets no gradient from the lookup, as torch's nn.Embedding(padding_idx=...)
    (BERT and DistilBERT build theirs with the config's pad_token_id). `d_word`: a [V, D]
    gradient to add into (the tied output projection's), instead of a fresh zero table.

    Math: a lookup E[ids] copies row E[i] to every position holding token i, so its gradient
    is the scatter-add d_E[i] = Σ over positions (b, l) with ids[b, l] = i of d_sum[b, l]:
    a token seen twice gets both contributions, a token never seen gets 0. Plain fancy-index
    assignment (d_E[ids] += ...) would keep only one of the repeats, hence `np.add.at`.
    """
    dim = d_sum.shape[-1]
    rows = d_sum.reshape(-1, dim)  # [B·L, D]
    if d_word is None:
        d_word = np.zeros((vocab_size, dim), dtype=d_sum.dtype)
    ids = input_ids.reshape(-1)
    looked_up = ids != padding_idx if padding_idx is not None else slice(None)
    np.add.at(d_word, ids[looked_up], rows[looked_up])
    d_position = np.zeros((n_positions, dim), dtype=d_sum.dtype)
    d_position[: d_sum.shape[1]] = d_sum.sum(axis=0)  # position l is used once per sequence
    d_type = None
    if token_type_ids is not None and n_types is not None:
        d_type = np.zeros((n_types, dim), dtype=d_sum.dtype)
        np.add.at(d_type, token_type_ids.reshape(-1), rows)
    return d_word, d_position, d_type


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


def merge_heads_backward(d_y: np.ndarray, n_heads: int) -> np.ndarray:
    """[B, L, D] -> [B, H, L, Dh]: a reshape's gradient is the inverse reshape."""
    batch, seq_len, dim = d_y.shape
    return d_y.reshape(batch, seq_len, n_heads, dim // n_heads).transpose(0, 2, 1, 3)


def split_heads(qkv: np.ndarray, n_heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fused projection [B, L, 3D] -> q, k, v, each [B, H, L, Dh] (views, no copy)."""
    batch, seq_len, three_dim = qkv.shape
    dim = three_dim // 3
    q, k, v = qkv.reshape(batch, seq_len, 3, n_heads, dim // n_heads).transpose(2, 0, 3, 1, 4)
    return q, k, v


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention over the last two axes: softmax(q·kᵀ/√Dh + bias)·v.

    q, k, v: [B, H, L, Dh]; bias: [B, 1, 1, L] additive, or None.
    Returns (context [B, H, L, Dh], weights [B, H, L, L]).
    """
    # Scaling q (B·L·D numbers) is cheaper than scaling the scores (B·H·L² numbers) once
    # L > Dh, and for Dh = 64 the factor 1/8 is a power of two, so both orders round alike.
    weights = attention_weights(q, k, bias)  # [B, H, L, L]
    return weights @ v, weights  # [B, H, L, Dh]


def attention_weights(q: np.ndarray, k: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """softmax(q·kᵀ/√Dh + bias) over the keys: q, k [B, H, L, Dh] -> [B, H, L, L]."""
    q = q * np.asarray(1.0 / math.sqrt(q.shape[-1]), dtype=q.dtype)
    scores = q @ k.swapaxes(-1, -2)  # [B, H, L, L]
    if bias is not None:
        scores += bias
    return softmax(scores, axis=-1, out=scores)


def attention_backward(
    d_context: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    weights: np.ndarray,
    dropout_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of context = drop(softmax(q·kᵀ/√Dh + bias))·v with respect to q, k and v.

    d_context, q, k, v: [B, H, L, Dh]; weights: [B, H, L, L], the softmax that `attention`
    returned; dropout_mask: None, or the [B, H, L, L] factors (0 or 1/(1-p)) that multiplied
    the weights in training. Returns (d_q, d_k, d_v), each [B, H, L, Dh].

    Math (softmax through the attention mask): the additive bias is a constant, so the
    scores' gradient is softmax's, d_s = w·(d_w - Σⱼ d_wⱼ·wⱼ), with no term for the bias.
    A padded key has bias = the dtype's minimum, so its weight w is exactly 0 after exp
    underflows, and the factor w makes its d_s exactly 0 too: no gradient reaches a padded
    key through the scores (it still gets none through v either, as w = 0 multiplies it).
    """
    scale = np.asarray(1.0 / math.sqrt(q.shape[-1]), dtype=q.dtype)
    used = weights if dropout_mask is None else weights * dropout_mask  # what multiplied v
    d_v = used.swapaxes(-1, -2) @ d_context  # [B, H, L, Dh]
    d_weights = d_context @ v.swapaxes(-1, -2)  # [B, H, L, L]
    if dropout_mask is not None:
        d_weights *= dropout_mask
    d_scores = softmax_backward(d_weights, weights)  # [B, H, L, L]
    d_q = (d_scores @ k) * scale  # scores = (q·scale)·kᵀ
    d_k = d_scores.swapaxes(-1, -2) @ (q * scale)
    return d_q, d_k, d_v


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


def multi_head_attention_backward(
    d_out: np.ndarray,
    x: np.ndarray,
    qkv: np.ndarray,
    weights: np.ndarray,
    context: np.ndarray,
    w_qkv: np.ndarray,
    w_out: np.ndarray,
    n_heads: int,
    dropout_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradients of `multi_head_attention` given d_out [B, L, D] and the forward's values:
    x [B, L, D] its input, qkv [B, L, 3D] the fused projection, weights [B, H, L, L] the
    softmax, context [B, L, D] the merged heads before w_out, dropout_mask as in
    `attention_backward`.

    Returns (d_x [B, L, D], {"w_qkv": [3D, D], "b_qkv": [3D], "w_out": [D, D], "b_out": [D]}).
    """
    d_context, d_w_out, d_b_out = linear_backward(d_out, context, w_out)
    assert d_context is not None
    q, k, v = split_heads(qkv, n_heads)
    d_heads = merge_heads_backward(d_context, n_heads)  # [B, H, L, Dh]
    d_q, d_k, d_v = attention_backward(d_heads, q, k, v, weights, dropout_mask)
    # Stack the three back in the fused layout [B, L, 3, H, Dh] -> [B, L, 3D].
    d_qkv = np.stack([d_q, d_k, d_v]).transpose(1, 3, 0, 2, 4).reshape(qkv.shape)
    d_x, d_w_qkv, d_b_qkv = linear_backward(d_qkv, x, w_qkv)
    assert d_x is not None
    return d_x, {"w_qkv": d_w_qkv, "b_qkv": d_b_qkv, "w_out": d_w_out, "b_out": d_b_out}


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


def feed_forward_backward(
    d_y: np.ndarray,
    x: np.ndarray,
    pre_activation: np.ndarray,
    activated: np.ndarray,
    w1: np.ndarray,
    w2: np.ndarray,
    activation_backward: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradients of `feed_forward`: d_y [B, L, D]; x [B, L, D] its input, pre_activation
    [B, L, F] = linear(x, w1, b1), activated [B, L, F] = activation(pre_activation).

    Returns (d_x [B, L, D], {"w1": [F, D], "b1": [F], "w2": [D, F], "b2": [D]}).
    """
    d_activated, d_w2, d_b2 = linear_backward(d_y, activated, w2)
    assert d_activated is not None
    d_pre = activation_backward(d_activated, pre_activation)  # [B, L, F]
    d_x, d_w1, d_b1 = linear_backward(d_pre, x, w1)
    assert d_x is not None
    return d_x, {"w1": d_w1, "b1": d_b1, "w2": d_w2, "b2": d_b2}
