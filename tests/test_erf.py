"""erf and gelu of layers.py against math.erf and torch, on dense grids and with properties.

Accuracy targets (numpy_distilbert/layers.py, scripts/fit_erf.py):
* float32: within 1 ulp of the correctly rounded float32 of math.erf(float64(x));
* float64: within 1e-15 absolute of math.erf.
Errors are measured, printed (`pytest -s`) and asserted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numpy_distilbert.layers import erf, gelu
from tests.conftest import require_module

math_erf = np.vectorize(math.erf, otypes=[np.float64])


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float32 values lie between a and b (0 when equal; -0.0 and 0.0 count as equal)."""

    def ordered(v: np.ndarray) -> np.ndarray:
        bits = np.asarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)  # monotone in the float's value

    return np.abs(ordered(a) - ordered(b))


def float32_grid() -> np.ndarray:
    """2M points over [-7, 7], tails out to ±30, tiny and denormal values, and ±0."""
    dense = np.linspace(-7.0, 7.0, 2_000_001, dtype=np.float32)
    tails = np.linspace(7.0, 30.0, 20_001, dtype=np.float32)
    tiny = np.float32(2.0) ** -np.arange(1, 150, dtype=np.float32)  # down to the smallest denormal
    denormals = np.array([1e-45, 3e-44, 1e-40, 1.1754942e-38], dtype=np.float32)
    positive = np.concatenate([tails, tiny, tiny * np.float32(1.37), denormals, [np.float32(0.0)]])
    return np.concatenate([dense, positive, -positive])


def float64_grid() -> np.ndarray:
    dense = np.linspace(-7.0, 7.0, 2_000_001)
    tails = np.linspace(7.0, 30.0, 20_001)
    tiny = 2.0 ** -np.arange(1, 1075, dtype=np.float64)
    positive = np.concatenate([tails, tiny, tiny * 1.37, [5e-324, 2.2250738585072014e-308, 0.0]])
    return np.concatenate([dense, positive, -positive])


def test_erf_float32_within_one_ulp_of_correctly_rounded():
    x = float32_grid()
    got = erf(x)
    assert got.dtype == np.float32
    want = math_erf(x.astype(np.float64)).astype(np.float32)  # correctly rounded float32 of math.erf
    ulps = ulp_distance(got, want)
    worst = int(ulps.argmax())
    print(f"\nfloat32 erf: max {ulps.max()} ulp at x={x[worst]!r}; "
          f"{(ulps == 0).mean():.4%} of {x.size} points correctly rounded")
    assert ulps.max() <= 1


def test_erf_float64_within_1e_15_absolute():
    x = float64_grid()
    got = erf(x)
    assert got.dtype == np.float64
    want = math_erf(x)
    abs_err = np.abs(got - want)
    normal = np.abs(want) >= np.finfo(np.float64).tiny  # relative error means nothing in denormals
    rel_err = abs_err[normal] / np.abs(want[normal])
    print(f"\nfloat64 erf: max abs error {abs_err.max():.3g} at x={x[abs_err.argmax()]!r}, "
          f"max relative error {rel_err.max():.3g}")
    assert abs_err.max() <= 1e-15
    assert rel_err.max() <= 1e-15
    # Denormal results: ours is x·(2/√π) rounded once; glibc's can be one denormal step away.
    assert np.all(abs_err[~normal] <= 2 * 5e-324)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30], dtype=dtype)
    got = erf(x)
    assert got.dtype == dtype
    assert np.isnan(got[0])
    np.testing.assert_array_equal(got[1:], np.array([1.0, -1.0, 0.0, -0.0, 1.0, -1.0], dtype=dtype))
    assert not np.signbit(got[3]) and np.signbit(got[4])  # erf(-0.0) is -0.0


def test_erf_input_kinds_and_shapes():
    assert erf(0.5).dtype == np.float64 and erf(0.5) == math.erf(0.5)
    assert erf(np.array(-0.0, np.float32)).shape == ()
    np.testing.assert_allclose(erf([1, 2, 3]), [math.erf(v) for v in (1, 2, 3)], rtol=0, atol=1e-16)
    assert erf(np.arange(3)).dtype == np.float64  # integers -> float64
    assert erf(np.zeros((0, 3), np.float32)).shape == (0, 3)
    x = np.random.default_rng(0).standard_normal((4, 300, 70)).astype(np.float32)
    np.testing.assert_array_equal(erf(x.transpose(2, 0, 1)), erf(x).transpose(2, 0, 1))  # non-contiguous
    np.testing.assert_array_equal(erf(x)[1, 2], erf(x[1, 2]))  # blocking does not change values


def test_erf_float32_monotone_on_every_float_in_2_to_4():
    """Where erf is flattest before it rounds to 1, the fit's wiggles must not break monotonicity."""
    lo, hi = np.array([2.0, 4.1], dtype=np.float32).view(np.int32)
    x = np.arange(lo, hi, dtype=np.int32).view(np.float32)  # every float32 in [2, 4.1)
    assert np.all(np.diff(erf(x)) >= 0)


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=True)
finite64 = st.floats(allow_nan=False, allow_infinity=True)


@given(st.one_of(hnp.arrays(np.float32, st.integers(1, 200), elements=finite32),
                 hnp.arrays(np.float64, st.integers(1, 200), elements=finite64)))
def test_erf_properties(x):
    y = erf(x)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(erf(-x), -y)  # odd, bit for bit
    assert np.all((y >= -1) & (y <= 1))
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(y[order]) >= 0)  # monotone
    assert np.all(np.sign(y) == np.sign(x))


def gelu_reference(x: np.ndarray) -> np.ndarray:
    """0.5·x·(1 + erf(x/√2)) with math.erf in float64."""
    return 0.5 * x * (1.0 + math_erf(x / math.sqrt(2.0)))


def test_gelu_float64_within_1e_15_of_exact_and_of_torch():
    x = np.concatenate([np.linspace(-12.0, 12.0, 400_001), [0.0, -0.0, 1e-300, -1e-300, 40.0, -40.0]])
    got = gelu(x)
    assert got.dtype == np.float64
    exact = gelu_reference(x)
    scale = np.maximum(np.abs(x), 1.0)
    ours = (np.abs(got - exact) / scale).max()
    print(f"\nfloat64 gelu: max |ours - exact|/max(|x|,1) = {ours:.3g}")
    assert ours <= 1e-15
    torch = require_module("torch")
    want = torch.nn.functional.gelu(torch.from_numpy(x), approximate="none").numpy()
    # torch's kernel differs by CPU (vector width, FMA): measure it, never assume it.
    theirs = (np.abs(want - exact) / scale).max()
    vs_torch = (np.abs(got - want) / scale).max()
    print(f"float64 gelu: torch vs exact {theirs:.3g}, ours vs torch {vs_torch:.3g}")
    assert vs_torch <= ours + theirs + 1e-16  # 1e-16: the exact reference's own rounding


def gelu_float32_units(x: np.ndarray) -> np.ndarray:
    """The unit of float32 GELU error: |x|·2^-23 + 2 ulp of the result.

    Any implementation evaluates 0.5·x·(1 + erf): erf's rounding near ±1 is worth ~|x|·2^-25
    absolute there, plus the final rounding of the result.
    """
    exact = gelu_reference(x.astype(np.float64))
    return np.abs(x.astype(np.float64)) * 2.0**-23 + 2 * np.spacing(np.abs(exact).astype(np.float32))


def test_gelu_float32_within_two_units_of_exact_and_of_torch():
    x = np.concatenate([np.linspace(-12.0, 12.0, 1_000_001, dtype=np.float32),
                        np.array([0.0, -0.0, 1e-40, -1e-40, 1e30, -1e30, np.inf], np.float32)])
    got = gelu(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    exact = gelu_reference(x.astype(np.float64))
    finite = np.isfinite(exact)
    unit = gelu_float32_units(x)[finite]
    ours = (np.abs(got[finite] - exact[finite]) / unit).max()
    print(f"\nfloat32 gelu, errors in units of (|x|·2^-23 + 2 ulp): ours vs exact {ours:.3f}")
    # The FFN's float32 GELU runs erf's rational in float32 arithmetic (2x faster than the
    # float64-evaluated erf()): about PyTorch's own accuracy, not erf()'s 1 ulp.
    assert ours <= 2
    assert got[-1] == np.inf and got[-3] == 1e30 and got[-2] == 0.0
    np.testing.assert_allclose(gelu([-1, 0, 2]), gelu_reference(np.array([-1.0, 0.0, 2.0])), rtol=1e-15)
    assert gelu(np.arange(3)).dtype == np.float64  # integers -> float64, as erf
    assert got[-7] == 0 and got[-6] == 0  # (torch returns +0.0 for -0.0; the formula gives -0.0)
    assert got[-5] > 0 and got[-4] < 0  # denormal inputs do not flush to zero

    torch = require_module("torch")
    want = torch.nn.functional.gelu(torch.from_numpy(x), approximate="none").numpy()
    # torch's float32 kernel depends on the CPU: 1.32 units from exact on AVX2, 2.64 on
    # AVX-512 (both measured). Bound ours-vs-torch by what is measured here, never by a
    # constant about torch.
    theirs = (np.abs(want[finite] - exact[finite]) / unit).max()
    vs_torch = (np.abs(got[finite].astype(np.float64) - want[finite]) / unit).max()
    print(f"float32 gelu: torch vs exact {theirs:.3f}, ours vs torch {vs_torch:.3f}")
    assert vs_torch <= ours + theirs + 1e-9


def test_erf_works_in_a_forked_child():
    """The worker threads do not survive fork(): a child must not wait on them forever."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    x = np.linspace(-5, 5, 300_000, dtype=np.float32)  # big enough to use the thread pool
    expected = erf(x)  # starts the pool in the parent
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(erf, (x,)).get(timeout=60)
    np.testing.assert_array_equal(got, expected)
