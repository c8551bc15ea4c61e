"""Property tests on tiny models: any small DistilBERT config, any ids, any padding.

Each example builds a tiny transformers checkpoint (1-3 layers, odd widths, gelu or relu,
learned or sinusoidal positions, a small vocabulary) in a temporary directory and checks
numpy-distilbert against it: every hidden state and attention map against transformers'
eager attention, the logits against eager and (on rows that hold a token) against the
default sdpa attention, float64 against torch float64, and padding invariance.
"""

from __future__ import annotations

import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numpy_distilbert import tolerances
from numpy_distilbert.model import DistilBertForMaskedLM

# Each example builds a checkpoint, which is slow by hypothesis' standards; that is expected.
SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def reference(torch_module, transformers_module):
    """torch, and the seeded checkpoint builder of tests/checkpoints.py."""
    import checkpoints

    return SimpleNamespace(torch=torch_module, build=checkpoints.build_checkpoint)


# -------------------------------------------------------------------- strategies
@st.composite
def tiny_configs(draw) -> dict:
    n_heads = draw(st.integers(1, 4))
    return dict(
        n_layers=draw(st.integers(1, 3)),
        n_heads=n_heads,
        dim=n_heads * draw(st.integers(1, 8)),
        hidden_dim=draw(st.integers(1, 40)),
        activation=draw(st.sampled_from(["gelu", "relu"])),
        sinusoidal_pos_embds=draw(st.booleans()),
        max_position_embeddings=draw(st.integers(1, 24)),
        vocab_size=draw(st.integers(2, 60)),
    )


@st.composite
def batches(draw, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """Random ids and a 0/1 mask: per row full, a padded prefix, scattered, or all padding."""
    batch = draw(st.integers(1, 4))
    length = draw(st.integers(1, config["max_position_embeddings"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = rng.integers(0, config["vocab_size"], size=(batch, length))
    mask = np.ones((batch, length), dtype=np.int64)
    for row in range(batch):
        kind = draw(st.sampled_from(["full", "prefix", "scattered", "empty"]))
        if kind == "prefix":
            mask[row, draw(st.integers(1, length)) :] = 0
        elif kind == "scattered":
            mask[row] = rng.integers(0, 2, size=length)
        elif kind == "empty":
            mask[row] = 0
    return ids, mask


def build(reference, directory: str, config: dict, seed: int):
    """Checkpoint on disk + the transformers model that wrote it (eval mode)."""
    return reference.build(directory, seed=seed, **config)


def run_reference(reference, model, ids, mask, attn_implementation: str):
    torch = reference.torch
    model.set_attn_implementation(attn_implementation)
    try:
        with torch.no_grad():
            out = model(
                torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                output_hidden_states=True,
                output_attentions=attn_implementation == "eager",
            )
    finally:
        model.set_attn_implementation("sdpa")
    return out


def max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


MEASURED = {"hidden": 0.0, "attention": 0.0, "logits": 0.0, "sdpa logits": 0.0, "fp64": 0.0}


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    print("\n--- tiny configs (hypothesis), largest max abs difference over all examples ---")
    for name, diff in MEASURED.items():
        print(f"  {name:<12} {diff:.2e}")


# ------------------------------------------------------------------------ tests
@settings(max_examples=60, deadline=None, suppress_health_check=SUPPRESSED)
@given(data=st.data(), config=tiny_configs(), seed=st.integers(0, 1000))
def test_equals_transformers_eager(reference, data, config, seed):
    ids, mask = data.draw(batches(config))
    with tempfile.TemporaryDirectory() as directory:
        model = build(reference, directory, config, seed)
        ours = DistilBertForMaskedLM.from_pretrained(directory)
        oracle = DistilBertForMaskedLM.from_pretrained(directory, dtype=np.float64)
    eager = run_reference(reference, model, ids, mask, "eager")
    encoded = ours.distilbert(ids, mask, output_hidden_states=True, output_attentions=True)
    logits = ours(ids, mask).logits

    assert len(encoded.hidden_states) == config["n_layers"] + 1
    assert len(encoded.attentions) == config["n_layers"]
    hidden = max(
        max_diff(a, b.numpy()) for a, b in zip(encoded.hidden_states, eager.hidden_states, strict=True)
    )
    attention = max(max_diff(a, b.numpy()) for a, b in zip(encoded.attentions, eager.attentions, strict=True))
    logit = max_diff(logits, eager.logits.numpy())
    for name, diff in (("hidden", hidden), ("attention", attention), ("logits", logit)):
        MEASURED[name] = max(MEASURED[name], diff)
    assert np.isfinite(logits).all(), "NaN/inf in logits (a fully padded row?)"
    # A tiny random config can be ill-conditioned: a LayerNorm over dim=2 amplifies rounding
    # a thousandfold, and there float32 itself is not good to 1e-5 (seen: transformers 3e-5
    # from exact, ours 1e-5 from transformers). The float64 oracle measures transformers' own
    # float32 error; ours may differ from transformers by the tolerance, or by twice that
    # (tolerances.derived_bound).
    exact = oracle.distilbert(ids, mask, output_hidden_states=True, output_attentions=True)
    pairs = zip(eager.hidden_states, exact.hidden_states, strict=True)
    torch_hidden = max(max_diff(b.numpy(), e) for b, e in pairs)
    pairs = zip(eager.attentions, exact.attentions, strict=True)
    torch_attention = max(max_diff(b.numpy(), e) for b, e in pairs)
    exact_logits = oracle(ids, mask).logits
    torch_logits = max_diff(eager.logits.numpy(), exact_logits)
    assert hidden <= tolerances.derived_bound(tolerances.FP32_HIDDEN, torch_hidden)
    assert attention <= tolerances.derived_bound(tolerances.FP32_ATTENTION, torch_attention)
    assert logit <= tolerances.derived_bound(tolerances.FP32_LOGITS, torch_logits)

    # Default sdpa attention agrees on every row that holds at least one token.
    rows = mask.any(axis=1)
    sdpa = run_reference(reference, model, ids, mask, "sdpa")
    sdpa_diff = max_diff(logits[rows], sdpa.logits.numpy()[rows])
    MEASURED["sdpa logits"] = max(MEASURED["sdpa logits"], sdpa_diff)
    sdpa_error = max_diff(sdpa.logits.numpy()[rows], exact_logits[rows])
    assert sdpa_diff <= tolerances.derived_bound(tolerances.FP32_LOGITS, sdpa_error)


@settings(max_examples=25, deadline=None, suppress_health_check=SUPPRESSED)
@given(data=st.data(), config=tiny_configs(), seed=st.integers(0, 1000))
def test_float64_equals_torch_float64(reference, data, config, seed):
    ids, mask = data.draw(batches(config))
    with tempfile.TemporaryDirectory() as directory:
        model = build(reference, directory, config, seed).double()
        ours = DistilBertForMaskedLM.from_pretrained(directory, dtype=np.float64)
    theirs = run_reference(reference, model, ids, mask, "eager")
    encoded = ours.distilbert(ids, mask, output_hidden_states=True)
    logits = ours(ids, mask).logits
    assert logits.dtype == np.float64
    diffs = [max_diff(a, b.numpy()) for a, b in zip(encoded.hidden_states, theirs.hidden_states, strict=True)]
    diffs.append(max_diff(logits, theirs.logits.numpy()))
    MEASURED["fp64"] = max(MEASURED["fp64"], *diffs)
    assert max(diffs) <= tolerances.FP64


@settings(max_examples=30, deadline=None, suppress_health_check=SUPPRESSED)
@given(data=st.data(), config=tiny_configs(), seed=st.integers(0, 1000))
def test_padding_invariance(reference, data, config, seed):
    """A sentence alone equals the same sentence padded inside a batch, at its valid positions.

    The pad ids are random (not 0), so anything leaking from padded keys would show.
    """
    max_len = config["max_position_embeddings"]
    n = data.draw(st.integers(1, max_len), label="sentence length")
    padded_len = data.draw(st.integers(n, max_len), label="padded length")
    batch = data.draw(st.integers(1, 4), label="batch")
    row = data.draw(st.integers(0, batch - 1), label="row")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="rng seed"))
    vocab = config["vocab_size"]
    sentence = rng.integers(0, vocab, size=n)
    ids = rng.integers(0, vocab, size=(batch, padded_len))
    mask = rng.integers(0, 2, size=(batch, padded_len))
    ids[row, :n], mask[row] = sentence, 0
    mask[row, :n] = 1
    with tempfile.TemporaryDirectory() as directory:
        build(reference, directory, config, seed)
        ours = DistilBertForMaskedLM.from_pretrained(directory)

    alone = ours.distilbert(sentence, output_hidden_states=True)  # 1-D: a batch of one, no mask
    inside = ours.distilbert(ids, mask, output_hidden_states=True)
    for a, b in zip(alone.hidden_states, inside.hidden_states, strict=True):
        assert max_diff(a[0], b[row, :n]) <= tolerances.FP32_HIDDEN
    assert max_diff(ours(sentence).logits[0], ours(ids, mask).logits[row, :n]) <= tolerances.FP32_LOGITS
    # An all-ones mask is the same as no mask.
    all_ones = ours(sentence, np.ones(n, dtype=np.int64)).logits
    assert max_diff(all_ones, ours(sentence).logits) <= tolerances.FP32_LOGITS


# ------------------------------------------------- what sdpa does on all-padding rows
def test_sdpa_zeroes_the_context_of_a_fully_padded_row(reference, tmp_path):
    """Why fully padded rows are compared against eager: the two kernels disagree there.

    eager adds finfo.min to every score, so softmax spreads the row evenly and the context
    is the mean of the values (numpy-distilbert does the same). sdpa, given transformers'
    boolean mask, returns a zero context vector for a query that may attend to nothing,
    so the attention block outputs just out_lin's bias. If this test fails, transformers
    or torch changed that behaviour and the docs' statement about it needs updating.
    """
    torch = reference.torch
    config = dict(n_layers=1, n_heads=2, dim=8, hidden_dim=12, vocab_size=20, max_position_embeddings=6)
    model = build(reference, tmp_path, config, seed=3)
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0]])
    contexts = {}
    hook = model.distilbert.transformer.layer[0].attention.out_lin.register_forward_hook(
        lambda module, inputs, output: contexts.__setitem__(impl, inputs[0].detach().clone())
    )
    for impl in ("eager", "sdpa"):
        run_reference(reference, model, ids.numpy(), mask.numpy(), impl)
    hook.remove()
    assert torch.count_nonzero(contexts["sdpa"][1]) == 0
    assert torch.count_nonzero(contexts["eager"][1]) > 0
    assert torch.allclose(contexts["sdpa"][0], contexts["eager"][0], atol=1e-6)
    # numpy-distilbert's context for the fully padded row: the mean of the values, as eager.
    ours = DistilBertForMaskedLM.from_pretrained(tmp_path)
    attention = ours.distilbert(ids.numpy(), mask.numpy(), output_attentions=True).attentions[0]
    assert np.allclose(attention[1], 1 / 4)
