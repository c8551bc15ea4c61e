"""AdamW, the linear warmup schedule and gradient clipping (numpy_distilbert/optim.py).

* against torch.optim.AdamW + transformers.get_linear_schedule_with_warmup +
  torch.nn.utils.clip_grad_norm_, step for step, in float64 (hypothesis over every
  hyper-parameter, parameter groups without decay, gradients that are and are not clipped):
  parameters within OPTIMIZER_FP64, the learning rate equal, the norm within OPTIMIZER_FP64;
  and once in float32;
* without torch: the update against the paper's form of AdamW (Loshchilov & Hutter,
  algorithm 2, with bias-corrected moments), blocked against unblocked bit for bit, the schedule
  against its definition, clipping against the norm of the concatenated gradients, and what
  is refused (without changing anything).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_distilbert import optim, tolerances, training

SHAPES = {
    "encoder.dense.weight": (9, 4),
    "encoder.dense.bias": (9,),
    "encoder.LayerNorm.weight": (4,),
    "embeddings.word_embeddings.weight": (40, 3),  # more rows than one block below
}
MEASURED = {"float64": 0.0, "float32": 0.0, "norm": 0.0}


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    print("\n--- optimizer vs torch, largest relative difference ---")
    for name, diff in MEASURED.items():
        print(f"  {name:<8} {diff:.2e}")


def random_params(rng: np.random.Generator, dtype=np.float64) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()}


def random_grads(rng: np.random.Generator, params: dict, scale: float) -> dict[str, np.ndarray]:
    return {name: (scale * rng.standard_normal(p.shape)).astype(p.dtype) for name, p in params.items()}


def relative_difference(ours: dict, theirs: dict) -> float:
    return max(
        float(np.max(np.abs(ours[k] - theirs[k]))) / max(1.0, float(np.max(np.abs(theirs[k])))) for k in ours
    )


hyper_parameters = st.fixed_dictionaries(
    {
        "lr": st.floats(0.0, 0.1),
        "betas": st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.9999)),  # both of lerp's branches
        "eps": st.floats(1e-12, 1e-3),
        "weight_decay": st.floats(0.0, 0.5),
    }
)


# ------------------------------------------------------------------------------ torch
def run_both(torch, transformers, dtype, hyper, steps, warmup, total, max_norm, scales, no_decay, seed):
    """`steps` steps of ours and of torch's on the same gradients; returns the worst differences."""
    rng = np.random.default_rng(seed)
    ours = random_params(rng, dtype)
    theirs = {name: torch.nn.Parameter(torch.tensor(p.copy())) for name, p in ours.items()}
    exempt = optim.is_bias_or_norm if no_decay else None
    optimizer = optim.AdamW(ours, no_decay=exempt, **hyper)
    decayed = [p for name, p in theirs.items() if not (no_decay and optim.is_bias_or_norm(name))]
    exempted = [p for name, p in theirs.items() if no_decay and optim.is_bias_or_norm(name)]
    groups = [{"params": decayed}] + ([{"params": exempted, "weight_decay": 0.0}] if exempted else [])
    reference = torch.optim.AdamW(groups, **hyper)
    schedule = optim.get_linear_schedule_with_warmup(optimizer, warmup, total)
    reference_schedule = transformers.get_linear_schedule_with_warmup(reference, warmup, total)
    assert optimizer.lr == reference.param_groups[0]["lr"]
    worst_param, worst_norm = 0.0, 0.0
    for step in range(steps):
        grads = random_grads(rng, ours, scales[step % len(scales)])
        for name, param in theirs.items():
            param.grad = torch.tensor(grads[name].copy())
        if max_norm is not None:
            norm = optim.clip_grad_norm(grads, max_norm)
            reference_norm = float(torch.nn.utils.clip_grad_norm_(list(theirs.values()), max_norm))
            worst_norm = max(worst_norm, abs(norm - reference_norm) / max(1.0, reference_norm))
        optimizer.step(grads)
        reference.step()
        schedule.step()
        reference_schedule.step()
        for group in reference.param_groups:  # the schedule sets every group's lr alike
            assert optimizer.lr == group["lr"], step
        worst_param = max(
            worst_param, relative_difference(ours, {k: p.detach().numpy() for k, p in theirs.items()})
        )
    return worst_param, worst_norm


@given(
    hyper=hyper_parameters,
    steps=st.integers(1, 8),
    warmup=st.integers(0, 4),
    total=st.integers(1, 10),
    max_norm=st.none() | st.floats(0.01, 10.0),
    scales=st.lists(st.sampled_from([1e-6, 0.1, 1.0, 30.0]), min_size=1, max_size=3),
    no_decay=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_steps_equal_torch_in_float64(
    torch_module, transformers_module, hyper, steps, warmup, total, max_norm, scales, no_decay, seed
):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(optim, "UPDATE_BLOCK_ELEMENTS", 16)  # the embedding updates in several blocks
        worst_param, worst_norm = run_both(
            torch_module,
            transformers_module,
            np.float64,
            hyper,
            steps,
            warmup,
            total,
            max_norm,
            scales,
            no_decay,
            seed,
        )
    MEASURED["float64"] = max(MEASURED["float64"], worst_param)
    MEASURED["norm"] = max(MEASURED["norm"], worst_norm)
    assert worst_param <= tolerances.OPTIMIZER_FP64
    assert worst_norm <= tolerances.OPTIMIZER_FP64


def test_twenty_steps_equal_torch_in_float32(torch_module, transformers_module):
    hyper = {"lr": 3e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}
    worst_param, _ = run_both(
        torch_module, transformers_module, np.float32, hyper, 20, 3, 20, 1.0, [10.0, 0.1, 0.1], True, 0
    )
    MEASURED["float32"] = worst_param
    assert worst_param <= tolerances.OPTIMIZER_FP32


# --------------------------------------------------------------------------- no torch
def paper_adamw(theta, grads, lr_per_step, beta1, beta2, eps, weight_decay):
    """Algorithm 2 of 'Decoupled Weight Decay Regularization', with torch's placement of the
    decay (multiplicative, before the moment update) and the eps outside the corrected root."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, (g, lr) in enumerate(zip(grads, lr_per_step, strict=True), start=1):
        theta = theta * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


@given(hyper=hyper_parameters, steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_update_is_the_papers_adamw(hyper, steps, seed):
    rng = np.random.default_rng(seed)
    params = random_params(rng)
    start = {k: p.copy() for k, p in params.items()}
    optimizer = optim.AdamW(params, **hyper)
    history = [random_grads(rng, params, 1.0) for _ in range(steps)]
    for grads in history:
        optimizer.step(grads)
    beta1, beta2 = hyper["betas"]
    for name in params:
        expected = paper_adamw(
            start[name],
            [g[name] for g in history],
            [hyper["lr"]] * steps,
            beta1,
            beta2,
            hyper["eps"],
            hyper["weight_decay"],
        )
        # the same algebra in another order: a few roundings per step, relative to the step size
        np.testing.assert_allclose(params[name], expected, rtol=1e-12, atol=1e-12)


def test_blocks_change_nothing(monkeypatch):
    """The row blocks are views: updating block by block equals one whole-tensor update, bit for bit."""
    results = []
    for block in (1 << 16, 1, 7):
        monkeypatch.setattr(optim, "UPDATE_BLOCK_ELEMENTS", block)
        rng = np.random.default_rng(3)
        params = random_params(rng)
        params["scalar"] = np.array(0.5)
        optimizer = optim.AdamW(params, lr=0.01)
        for _ in range(3):
            grads = random_grads(rng, params, 1.0)
            optimizer.step(grads)
        results.append(params)
    for other in results[1:]:
        for name in results[0]:
            assert np.array_equal(results[0][name], other[name]), name


def test_no_decay_groups():
    rng = np.random.default_rng(0)
    params = random_params(rng)
    for no_decay in (optim.is_bias_or_norm, ["encoder.dense.bias", "encoder.LayerNorm.weight"]):
        optimizer = optim.AdamW(params, no_decay=no_decay)
        assert [name for name, decays in optimizer.decays.items() if not decays] == [
            "encoder.dense.bias",
            "encoder.LayerNorm.weight",
        ]
    # with a zero gradient and lr only the decay moves a parameter
    params = {"w": np.ones(3), "bias": np.ones(3)}
    optim.AdamW(params, lr=0.5, weight_decay=0.1, no_decay=optim.is_bias_or_norm).step(
        {"w": np.zeros(3), "bias": np.zeros(3)}
    )
    assert np.array_equal(params["w"], np.full(3, 1 - 0.5 * 0.1))
    assert np.array_equal(params["bias"], np.ones(3))


@pytest.mark.parametrize(
    "name",
    [
        "bert.embeddings.LayerNorm.weight",
        "distilbert.transformer.layer.0.sa_layer_norm.weight",
        "vocab_layer_norm.bias",
        "cls.predictions.bias",
        "classifier.bias",
    ],
)
def test_bias_and_norm_names(name):
    assert optim.is_bias_or_norm(name)


@pytest.mark.parametrize(
    "name",
    [
        "bert.embeddings.word_embeddings.weight",
        "classifier.weight",
        "distilbert.transformer.layer.0.ffn.lin1.weight",
    ],
)
def test_other_names_decay(name):
    assert not optim.is_bias_or_norm(name)


def test_skipped_parameters_keep_their_state():
    params = {"a": np.ones(2), "b": np.ones(2)}
    optimizer = optim.AdamW(params, lr=0.1)
    optimizer.step({"a": np.ones(2)})
    assert np.array_equal(params["b"], np.ones(2)) and "b" not in optimizer.steps
    optimizer.step({"a": np.ones(2), "b": np.ones(2)})
    assert optimizer.steps == {"a": 2, "b": 1}


def test_schedule_follows_its_definition():
    params = {"w": np.zeros(1)}
    optimizer = optim.AdamW(params, lr=2.0)
    schedule = optim.get_linear_schedule_with_warmup(optimizer, num_warmup_steps=4, num_training_steps=10)
    seen = [optimizer.lr]
    for _ in range(12):
        schedule.step()
        seen.append(optimizer.lr)
    # up by 2/4 for four steps, then down by 2/6 to zero at step 10, and zero after
    expected = [2.0 * t / 4 for t in range(4)] + [2.0 * (10 - t) / 6 for t in range(4, 10)] + [0.0] * 3
    np.testing.assert_allclose(seen, expected, rtol=0, atol=1e-15)
    assert schedule.get_last_lr() == [0.0]


def test_clip_scales_to_max_norm():
    rng = np.random.default_rng(1)
    grads = random_grads(rng, random_params(rng), 5.0)
    flat = np.concatenate([g.ravel() for g in grads.values()])
    norm = optim.clip_grad_norm(grads, max_norm=1.0)
    assert math.isclose(norm, float(np.linalg.norm(flat)), rel_tol=1e-14)
    clipped = np.concatenate([g.ravel() for g in grads.values()])
    np.testing.assert_allclose(clipped, flat * (1.0 / (norm + 1e-6)), rtol=1e-15)
    # below the limit nothing changes; the inf norm is the largest magnitude
    before = {k: g.copy() for k, g in grads.items()}
    assert optim.clip_grad_norm(grads, max_norm=10.0) <= 1.0
    assert all(np.array_equal(grads[k], before[k]) for k in grads)
    assert optim.clip_grad_norm(grads, 10.0, norm_type=math.inf) == float(np.max(np.abs(clipped)))
    assert optim.clip_grad_norm({}, 1.0) == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradients_are_refused_and_change_nothing(bad):
    params = {"a": np.ones(3), "b": np.ones(2)}
    grads = {"a": np.ones(3), "b": np.array([1.0, bad])}
    optimizer = optim.AdamW(params, lr=0.1)
    with pytest.raises(FloatingPointError, match="'b'"):
        optim.clip_grad_norm(grads, 1.0)
    with pytest.raises(FloatingPointError, match="'b'"):
        optimizer.step(grads)
    assert np.array_equal(grads["a"], np.ones(3)) and np.array_equal(params["a"], np.ones(3))
    assert optimizer.steps == {}


def test_overflowing_norm_is_refused():
    grads = {"a": np.full(4, 3e38, dtype=np.float32)}
    with pytest.raises(FloatingPointError, match="overflows"):
        optim.clip_grad_norm(grads, 1.0)


def test_bad_arguments_are_refused():
    params = {"a": np.ones(3)}
    with pytest.raises(ValueError, match="lr"):
        optim.AdamW(params, lr=-1.0)
    with pytest.raises(ValueError, match="lr"):
        optim.AdamW(params, lr=math.nan)
    with pytest.raises(ValueError, match="beta2"):
        optim.AdamW(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="weight_decay"):
        optim.AdamW(params, weight_decay=-0.1)
    with pytest.raises(KeyError, match="nope"):
        optim.AdamW(params, no_decay=["nope"])
    with pytest.raises(TypeError, match="'i'"):
        optim.AdamW({"i": np.ones(3, dtype=np.int64)})
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.AdamW({"a": frozen})
    optimizer = optim.AdamW(params)
    with pytest.raises(KeyError, match="'b'"):
        optimizer.step({"b": np.ones(3)})
    with pytest.raises(ValueError, match="shape"):
        optimizer.step({"a": np.ones(4)})
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm({"a": np.ones(3)}, 1.0, norm_type=1)
    with pytest.raises(ValueError, match="num_warmup_steps"):
        optim.get_linear_schedule_with_warmup(optimizer, -1, 10)


def test_exported_at_top_level():
    import numpy_distilbert

    assert numpy_distilbert.AdamW is optim.AdamW
    assert numpy_distilbert.train is training.train
