"""erf, and the float32 GELU kernel built on it: the numerics behind `layers.gelu`.

NumPy has no erf and SciPy is not a dependency, so erf is approximated here, with one
coefficient set per dtype. `layers.py` imports `erf` and `gelu_float32` from this module and
nothing else of the project; this module imports nothing of the project.

The coefficients are fitted (minimax / Chebyshev, in mpmath) and their errors printed by
scripts/fit_erf.py; rerun it to regenerate the tuples below. tests/test_erf.py checks erf on
dense grids against math.erf and GELU against the exact formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# ----------------------------------------------------------------------- coefficients
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


def _horner(coefficients: tuple[float | np.float32, ...], s: np.ndarray, out: np.ndarray) -> np.ndarray:
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


def _blockwise(
    block_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], None], x: np.ndarray, work_dtype: type
) -> np.ndarray:
    """Apply block_fn(x_block, out_block, work) over x in L2-sized blocks; returns out, shaped as x.

    `work` is [4, n] scratch of `work_dtype`, made once per call and reused by every block.
    """
    flat = np.ascontiguousarray(x).reshape(-1)  # [N]
    out = np.empty_like(flat)
    work: np.ndarray = np.empty((4, _BLOCK), dtype=work_dtype)
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


# ------------------------------------------------------------------ float32 GELU
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


def gelu_float32(x: np.ndarray) -> np.ndarray:
    """x·Φ(x) for float32 `x`, in one blocked pass of float32 arithmetic (the FFN's hot path)."""
    return _blockwise(_gelu32_block, x, np.float32)
