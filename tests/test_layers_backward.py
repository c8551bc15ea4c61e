"""Every backward in layers.py (and losses.py) against central finite differences, in float64.

No torch: this is the proof of the hand-written gradients that holds in the no-torch tier.
For a layer y = f(inputs), a random upstream gradient d_y defines the scalar s = Σ y·d_y; its
numerical derivative with respect to each input element, (s(x + h) - s(x - h)) / 2h, must equal
what the layer's backward returns for that element. Hypothesis draws the shapes and the seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from finite_differences import central_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_distilbert import layers, losses
from numpy_distilbert.tolerances import FD_ABS, FD_REL, FD_STEP


def numerical_gradient(scalar: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """d scalar / d array by central differences, perturbing `array` in place element by element."""
    grad = np.zeros_like(array)
    flat, out = array.reshape(-1), grad.reshape(-1)  # views: perturbing flat perturbs array
    for i in range(flat.size):
        out[i] = central_difference(scalar, flat, i)
    return grad


def assert_matches_fd(
    analytic: np.ndarray, numeric: np.ndarray, what: str, magnitude: float = 1.0
) -> None:
    """|analytic - numeric| <= FD_ABS·max(1, |s|) + FD_REL·|numeric| element-wise, where |s| is the
    scalar's magnitude: a difference quotient's rounding error grows with |s| (~1e-16·|s|/step),
    and it is all there is where the exact gradient is 0 (the key bias: softmax ignores it)."""
    assert analytic.shape == numeric.shape, what
    error = np.abs(analytic - numeric)
    bound = FD_ABS * max(1.0, magnitude) + FD_REL * np.abs(numeric)
    assert (error <= bound).all(), f"{what}: max |analytic - numeric| = {error.max():.3g}"


def away_from_zero(x: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Moves values out of (-margin, margin): ReLU's kink must not sit inside a difference step."""
    return np.where(np.abs(x) < margin, np.where(x < 0, -margin, margin) * 2, x)


seeds = st.integers(0, 2**32 - 1)
small = st.integers(1, 4)


@settings(max_examples=20)
@given(seed=seeds, rows=small, n_in=small, n_out=small)
def test_linear_backward(seed: int, rows: int, n_in: int, n_out: int) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(2, rows, n_in)), rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    d_y = rng.normal(size=(2, rows, n_out))

    def scalar() -> float:
        return float(np.sum(layers.linear(x, w, b) * d_y))

    d_x, d_w, d_b = layers.linear_backward(d_y, x, w)
    assert d_x is not None
    for analytic, array, name in ((d_x, x, "x"), (d_w, w, "w"), (d_b, b, "b")):
        assert_matches_fd(analytic, numerical_gradient(scalar, array), name, abs(scalar()))


@settings(max_examples=20)
@given(seed=seeds, rows=small, dim=st.integers(2, 6), spread=st.sampled_from([0.1, 1.0, 30.0]))
def test_layer_norm_backward(seed: int, rows: int, dim: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dim)) * spread + rng.normal()
    gamma, beta = 1 + 0.3 * rng.normal(size=dim), rng.normal(size=dim)
    d_y = rng.normal(size=(rows, dim))

    def scalar() -> float:
        return float(np.sum(layers.layer_norm(x, gamma, beta) * d_y))

    d_x, d_gamma, d_beta = layers.layer_norm_backward(d_y, x, gamma)
    # x ± step loses digits when |x| is large (rounding ~1e-16·|x|/step), and the difference
    # quotient's truncation error, step²/6 times the third derivative, grows like 1/σ³ for a
    # row of spread σ: both widen the floor (for dim = 2 the exact d_x is ~0, only they remain).
    sigma = float(x.std(axis=-1).min())
    truncation = FD_STEP**2 / sigma**3 * float(np.abs(d_y).max() * np.abs(gamma).max()) * dim
    magnitude = abs(scalar()) * max(1.0, float(np.abs(x).max())) + truncation / FD_ABS
    assert_matches_fd(d_x, numerical_gradient(scalar, x), "x", magnitude)
    assert_matches_fd(d_gamma, numerical_gradient(scalar, gamma), "gamma", abs(scalar()))
    assert_matches_fd(d_beta, numerical_gradient(scalar, beta), "beta", abs(scalar()))


@settings(max_examples=20)
@given(seed=seeds, name=st.sampled_from(sorted(layers.ACTIVATIONS)), n=st.integers(1, 12),
       scale=st.sampled_from([0.1, 1.0, 4.0]))  # fmt: skip
def test_activation_backward(seed: int, name: str, n: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng.normal(size=n) * scale)
    d_y = rng.normal(size=n)
    forward, backward = layers.ACTIVATIONS[name], layers.ACTIVATION_BACKWARDS[name]

    def scalar() -> float:
        return float(np.sum(forward(x) * d_y))

    assert_matches_fd(backward(d_y, x), numerical_gradient(scalar, x), name, abs(scalar()))


def test_gelu_backward_is_exact_gelu_derivative() -> None:
    """At chosen points, Φ(x) + x·φ(x) from math.erf, not the tanh form's derivative."""
    import math

    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.5])
    expected = [0.5 * (1 + math.erf(v / math.sqrt(2))) + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
                for v in x]  # fmt: skip
    np.testing.assert_allclose(layers.gelu_backward(np.ones_like(x), x), expected, rtol=1e-14, atol=1e-15)
    tanh_form = layers.gelu_new_backward(np.ones_like(x), x)
    assert np.abs(tanh_form - expected).max() > 1e-5  # the two derivatives do differ


@settings(max_examples=20)
@given(seed=seeds, rows=small, n=st.integers(1, 6))
def test_softmax_backward(seed: int, rows: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    x, d_y = rng.normal(size=(rows, n)) * 3, rng.normal(size=(rows, n))

    def scalar() -> float:
        return float(np.sum(layers.softmax(x) * d_y))

    analytic = layers.softmax_backward(d_y, layers.softmax(x))
    assert_matches_fd(analytic, numerical_gradient(scalar, x), "x", abs(scalar()))


def padding_mask(rng: np.random.Generator, batch: int, seq_len: int) -> np.ndarray:
    """A [B, L] 0/1 mask with trailing padding; the first row is never padded, others may be."""
    lengths = rng.integers(1, seq_len + 1, size=batch)
    lengths[0] = seq_len
    return (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)


@settings(max_examples=15)
@given(seed=seeds, batch=st.integers(1, 2), seq_len=st.integers(1, 4), heads=st.integers(1, 2),
       head_dim=st.integers(1, 3), masked=st.booleans(), dropped=st.booleans())  # fmt: skip
def test_multi_head_attention_backward(
    seed: int, batch: int, seq_len: int, heads: int, head_dim: int, masked: bool, dropped: bool
) -> None:
    """Through the fused projection, the per-head softmax with a padding mask, dropout on the
    weights (a fixed mask of factors) and the output projection."""
    rng = np.random.default_rng(seed)
    dim = heads * head_dim
    x = rng.normal(size=(batch, seq_len, dim))
    w_qkv, b_qkv = rng.normal(size=(3 * dim, dim)), rng.normal(size=3 * dim)
    w_out, b_out = rng.normal(size=(dim, dim)), rng.normal(size=dim)
    bias = layers.attention_bias(padding_mask(rng, batch, seq_len), x.dtype) if masked else None
    keep = None
    if dropped:
        keep = (rng.random((batch, heads, seq_len, seq_len)) > 0.3) / 0.7
    d_y = rng.normal(size=(batch, seq_len, dim))

    def forward() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        qkv = layers.linear(x, w_qkv, b_qkv)
        q, k, v = layers.split_heads(qkv, heads)
        _, weights = layers.attention(q, k, v, bias)
        used = weights if keep is None else weights * keep
        context = layers.merge_heads(used @ v)
        return layers.linear(context, w_out, b_out), qkv, weights, context

    def scalar() -> float:
        return float(np.sum(forward()[0] * d_y))

    if keep is None:  # the training composition equals the inference function
        np.testing.assert_array_equal(
            forward()[0], layers.multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, heads, bias)[0]
        )
    _, qkv, weights, context = forward()
    d_x, grads = layers.multi_head_attention_backward(
        d_y, x, qkv, weights, context, w_qkv, w_out, heads, keep
    )
    assert_matches_fd(d_x, numerical_gradient(scalar, x), "x", abs(scalar()))
    for name, array in (("w_qkv", w_qkv), ("b_qkv", b_qkv), ("w_out", w_out), ("b_out", b_out)):
        assert_matches_fd(grads[name], numerical_gradient(scalar, array), name, abs(scalar()))


def test_padded_keys_get_no_gradient() -> None:
    """A padded key's row of x receives nothing through k or v (its weight is exactly 0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 4))
    w_qkv, b_qkv, w_out = rng.normal(size=(12, 4)), rng.normal(size=12), rng.normal(size=(4, 4))
    bias = layers.attention_bias(np.array([[1, 1, 0, 0]]), x.dtype)
    qkv = layers.linear(x, w_qkv, b_qkv)
    q, k, v = layers.split_heads(qkv, 2)
    _, weights = layers.attention(q, k, v, bias)
    context = layers.merge_heads(weights @ v)
    d_y = np.zeros((1, 4, 4))
    d_y[0, :2] = rng.normal(size=(2, 4))  # only the real tokens' outputs matter to the loss
    d_x, _ = layers.multi_head_attention_backward(d_y, x, qkv, weights, context, w_qkv, w_out, 2)
    assert np.all(d_x[0, 2:] == 0.0)
    assert np.all(d_x[0, :2] != 0.0)


@settings(max_examples=15)
@given(seed=seeds, rows=small, dim=st.integers(1, 4), hidden=st.integers(1, 5),
       name=st.sampled_from(sorted(layers.ACTIVATIONS)))  # fmt: skip
def test_feed_forward_backward(seed: int, rows: int, dim: int, hidden: int, name: str) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, rows, dim))
    w1, b1 = rng.normal(size=(hidden, dim)), away_from_zero(rng.normal(size=hidden), 0.3)
    w2, b2 = rng.normal(size=(dim, hidden)), rng.normal(size=dim)
    activation, backward = layers.ACTIVATIONS[name], layers.ACTIVATION_BACKWARDS[name]
    d_y = rng.normal(size=(1, rows, dim))

    def scalar() -> float:
        return float(np.sum(layers.feed_forward(x, w1, b1, w2, b2, activation) * d_y))

    pre = layers.linear(x, w1, b1)
    if name == "relu" and np.abs(pre).min() < 10 * FD_STEP:
        return  # a kink inside the difference step: nothing to compare there
    d_x, grads = layers.feed_forward_backward(d_y, x, pre, activation(pre), w1, w2, backward)
    assert_matches_fd(d_x, numerical_gradient(scalar, x), "x", abs(scalar()))
    for key, array in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
        assert_matches_fd(grads[key], numerical_gradient(scalar, array), key, abs(scalar()))


@settings(max_examples=15)
@given(seed=seeds, batch=st.integers(1, 3), seq_len=st.integers(1, 4), vocab=st.integers(1, 5),
       types=st.booleans())  # fmt: skip
def test_embed_backward(seed: int, batch: int, seq_len: int, vocab: int, types: bool) -> None:
    """Repeated tokens accumulate (scatter-add), unused rows get 0."""
    rng = np.random.default_rng(seed)
    dim = 3
    ids = rng.integers(0, vocab, size=(batch, seq_len))
    word, position = rng.normal(size=(vocab, dim)), rng.normal(size=(seq_len + 2, dim))
    gamma, beta = 1 + 0.2 * rng.normal(size=dim), rng.normal(size=dim)
    type_ids = rng.integers(0, 2, size=(batch, seq_len)) if types else None
    type_table = rng.normal(size=(2, dim)) if types else None
    d_y = rng.normal(size=(batch, seq_len, dim))

    def scalar() -> float:
        out = layers.embed(ids, word, position, gamma, beta, type_ids, type_table)
        return float(np.sum(out * d_y))

    summed = word[ids] + position[:seq_len] + (type_table[type_ids] if types else 0)  # type: ignore[index]
    d_sum, d_gamma, _ = layers.layer_norm_backward(d_y, summed, gamma)
    d_word, d_position, d_type = layers.embed_backward(
        d_sum, ids, vocab, seq_len + 2, type_ids, 2 if types else None
    )
    assert_matches_fd(d_word, numerical_gradient(scalar, word), "word", abs(scalar()))
    assert_matches_fd(d_position, numerical_gradient(scalar, position), "position", abs(scalar()))
    assert_matches_fd(d_gamma, numerical_gradient(scalar, gamma), "gamma", abs(scalar()))
    if types:
        assert d_type is not None and type_table is not None
        assert_matches_fd(d_type, numerical_gradient(scalar, type_table), "token type", abs(scalar()))
    unused = np.setdiff1d(np.arange(vocab), ids)
    assert np.all(d_word[unused] == 0.0)


def test_embed_backward_padding_row() -> None:
    """The padding row gets no gradient, as torch's nn.Embedding(padding_idx=0)."""
    ids = np.array([[0, 1, 1]])
    d_word, _, _ = layers.embed_backward(np.ones((1, 3, 2)), ids, 3, 3, padding_idx=0)
    np.testing.assert_array_equal(d_word, [[0, 0], [2, 2], [0, 0]])


# ------------------------------------------------------------------------ losses
@settings(max_examples=20)
@given(seed=seeds, rows=small, classes=st.integers(2, 5), ignore_some=st.booleans())
def test_cross_entropy_backward(seed: int, rows: int, classes: int, ignore_some: bool) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, classes)) * 3
    targets = rng.integers(0, classes, size=rows)
    if ignore_some and rows > 1:
        targets[rng.random(rows) < 0.5] = losses.IGNORE_INDEX
        targets[0] = 0
    loss, d_logits = losses.cross_entropy(logits, targets)
    counted = targets != losses.IGNORE_INDEX
    # the definition, directly: mean of -log p[target] over counted rows
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(probs[counted, targets[counted]]))
    assert loss == pytest.approx(expected, rel=1e-12)
    numeric = numerical_gradient(lambda: losses.cross_entropy(logits, targets)[0], logits)
    assert_matches_fd(d_logits, numeric, "logits")


@settings(max_examples=15)
@given(seed=seeds, rows=small, outputs=st.integers(1, 3))
def test_mse_and_bce_backward(seed: int, rows: int, outputs: int) -> None:
    rng = np.random.default_rng(seed)
    logits, targets = rng.normal(size=(rows, outputs)) * 4, rng.random((rows, outputs))
    for fn in (losses.mse, losses.bce_with_logits):
        numeric = numerical_gradient(lambda fn=fn: fn(logits, targets)[0], logits)
        assert_matches_fd(fn(logits, targets)[1], numeric, fn.__name__)
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    assert losses.bce_with_logits(logits, targets)[0] == pytest.approx(expected, rel=1e-12)
    assert losses.mse(logits, targets)[0] == pytest.approx(np.mean((logits - targets) ** 2), rel=1e-12)


def test_question_answering_loss_clamps_and_ignores() -> None:
    """Positions past the input clamp to L and are ignored; the others average as two CEs."""
    rng = np.random.default_rng(1)
    start, end = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    starts, ends = np.array([1, 9, -4]), np.array([2, 3, 4])
    loss, d_start, d_end = losses.question_answering_loss(start, end, starts, ends)
    # start: 9 -> 5 (ignored), -4 -> 0; end: all counted
    start_ce, _ = losses.cross_entropy(start[[0, 2]], np.array([1, 0]))
    end_ce, _ = losses.cross_entropy(end, np.array([2, 3, 4]))
    assert loss == pytest.approx((start_ce + end_ce) / 2, rel=1e-14)
    assert np.all(d_start[1] == 0.0)
    numeric = numerical_gradient(
        lambda: losses.question_answering_loss(start, end, starts, ends)[0], end
    )
    assert_matches_fd(d_end, numeric, "end")


def test_losses_refuse_undefined_input() -> None:
    with pytest.raises(ValueError, match="every label is the ignored value"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]))
    with pytest.raises(ValueError, match="label 3 is outside"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
