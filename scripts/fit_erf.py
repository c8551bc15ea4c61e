"""Fit the coefficients of `numpy_distilbert.erf.erf` and print their achieved errors.

Run `python scripts/fit_erf.py` (about a minute); paste the printed tuples into numpy_distilbert/erf.py.
`python scripts/fit_erf.py --exhaustive` then checks erf.erf on every float32 in [0, 4.1).
Every reference value comes from mpmath at 40 significant digits.

Two coefficient sets, one per dtype:

* float32 (`_ERF32_P`, `_ERF32_Q`): one rational for the whole range,
      erf(x) = x · P(x²) / Q(x²),   |x| <= ERF32_CLAMP,   Q monic,
  fitted for minimax *relative* error by Lawson-reweighted linearised least squares
  (Loeb / Sanathanan-Koerner iteration). It is evaluated in float64 and rounded once to
  float32, so a fit error e (in float32 ulps) gives at most 0.5 + e ulps, i.e. <= 1 ulp.
  Beyond the clamp erf rounds to ±1 in float32.
* float64: two pieces, switched at |x| = 1:
      |x| < 1:  erf(x) = x · S(x²)                          (S: Chebyshev fit, degree 11)
      |x| >= 1: erf(x) = 1 - exp(-x²) · T(t),  t = (|x|-3)/(|x|+3)   (T: Chebyshev fit)
  where T approximates exp(x²)·erfc(x), a smooth ~1/(x√π) function; erf(x) rounds to ±1
  in float64 for |x| > 5.93, so the tail is fitted on [1, 6] and |x| is clamped to 6.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 40

ERF32_CLAMP = 4.0  # float32 erf(x) rounds to 1 from x ≈ 3.92; fit a little past it
ERF32_DEGREES = (5, 5)  # degrees of P and Q in s = x²
SMALL_CUT = 1.0  # float64: polynomial below, exp(-x²)·T above
TAIL_CENTER = 3.0  # t = (x - 3) / (x + 3) maps [1, 6] to [-0.5, 1/3]
TAIL_MAX = 6.0
SMALL_TERMS = 12
TAIL_TERMS = 18


def erf_over_x(s: mp.mpf) -> mp.mpf:
    """erf(√s)/√s, the even function the float32 rational and float64 polynomial fit."""
    if s == 0:
        return 2 / mp.sqrt(mp.pi)
    x = mp.sqrt(s)
    return mp.erf(x) / x


def tail_function(t: mp.mpf) -> mp.mpf:
    """exp(x²)·erfc(x) at x = 3(1+t)/(1-t)."""
    x = TAIL_CENTER * (1 + t) / (1 - t)
    return mp.exp(x * x) * mp.erfc(x)


def fit_rational(lo: float, hi: float, m: int, k: int, n_points: int = 3000, iterations: int = 300):
    """Minimax-relative P(s)/Q(s) ≈ erf_over_x(s) on [lo, hi]; returns (P, Q) low-to-high, Q monic.

    Each step solves a weighted linear least-squares problem for P - f·Q (scaled by the previous
    Q so it approximates the relative error); Lawson's rule then multiplies every weight by its
    point's error, which drives the solution towards equioscillation (minimax). The linear
    algebra runs in float64 on s/hi ∈ [0, 1] (the fit only needs ~1e-9); values come from mpmath.
    """
    nodes = 0.5 * (1 - np.cos(np.pi * (np.arange(n_points) + 0.5) / n_points))  # Chebyshev, [0, 1]
    s = lo + (hi - lo) * nodes
    f = np.array([float(erf_over_x(mp.mpf(float(v)))) for v in s])
    u = s / hi
    vp = np.vander(u, m + 1, increasing=True)
    vq = np.vander(u, k + 1, increasing=True)
    weights = np.full(n_points, 1.0 / n_points)
    q_prev = np.ones(n_points)
    best = (np.inf, None, None)
    for _ in range(iterations):
        w = np.sqrt(weights) / (q_prev * f)
        a = np.hstack([-vp * w[:, None], vq[:, :-1] * (f * w)[:, None]])
        b = -w * f * vq[:, -1]
        sol = np.linalg.lstsq(a, b, rcond=None)[0]
        p, q = sol[: m + 1], np.append(sol[m + 1 :], 1.0)
        q_prev = vq @ q
        err = (vp @ p) / q_prev / f - 1
        if np.abs(err).max() < best[0]:
            best = (np.abs(err).max(), p, q)
        weights = weights * np.abs(err)
        weights /= weights.sum()
    _, p, q = best
    # Back from u = s/hi to s, then make Q monic (saves one multiply per evaluation).
    p = p / hi ** np.arange(m + 1)
    q = q / hi ** np.arange(k + 1)
    return tuple(float(c) for c in p / q[-1]), tuple(float(c) for c in q / q[-1])


def chebyshev_fit(f, lo: float, hi: float, terms: int) -> tuple[float, ...]:
    """Chebyshev interpolant of f on [lo, hi] in mpmath, as monomial coefficients low-to-high."""
    coefficients, _ = mp.chebyfit(f, [mp.mpf(lo), mp.mpf(hi)], terms, error=True)
    return tuple(float(c) for c in reversed(coefficients))


def horner_mp(coefficients, v):
    acc = mp.mpf(0)
    for c in reversed(coefficients):
        acc = acc * v + mp.mpf(c)
    return acc


def main() -> None:
    m, k = ERF32_DEGREES
    p32, q32 = fit_rational(0.0, ERF32_CLAMP**2, m, k)
    small = chebyshev_fit(erf_over_x, 0.0, SMALL_CUT**2, SMALL_TERMS)
    t_lo = (SMALL_CUT - TAIL_CENTER) / (SMALL_CUT + TAIL_CENTER)
    t_hi = (TAIL_MAX - TAIL_CENTER) / (TAIL_MAX + TAIL_CENTER)
    tail = chebyshev_fit(tail_function, t_lo, t_hi, TAIL_TERMS)

    print("# scripts/fit_erf.py output")
    print(f"_ERF32_CLAMP = {ERF32_CLAMP!r}")
    print(f"_ERF32_P = {p32!r}")
    print(f"_ERF32_Q = {q32!r}")
    print(f"_ERF64_SMALL = {small!r}")
    print(f"_ERF64_TAIL = {tail!r}")

    # Achieved errors of the float64-rounded coefficients, exactly (in mpmath), on dense grids.
    ulp1 = mp.mpf(2) ** -24  # float32 spacing just below 1, the coarsest relative ulp
    worst32 = mp.mpf(0)
    for x in np.linspace(1e-4, ERF32_CLAMP, 4001):
        x = mp.mpf(float(x))
        approx = x * horner_mp(p32, x * x) / horner_mp(q32, x * x)
        worst32 = max(worst32, abs(approx / mp.erf(x) - 1))
    print(f"float32 rational: max relative fit error {mp.nstr(worst32, 3)} = {float(worst32 / ulp1):.3f} "
          "ulp(2^-24); after one rounding to float32: <= 0.5 + that")
    top = float(ERF32_CLAMP * horner_mp(p32, ERF32_CLAMP**2) / horner_mp(q32, ERF32_CLAMP**2))
    print(f"float32 rational at the clamp: {top!r}, rounds to {np.float32(top)!r} in float32")
    print(f"erfc({ERF32_CLAMP}) = {mp.nstr(mp.erfc(ERF32_CLAMP), 3)} (< 2^-25 = {2.0**-25:.3g}, "
          "so erf rounds to 1 in float32 at and beyond the clamp)")
    worst_small = mp.mpf(0)
    for x in np.linspace(0, SMALL_CUT, 2001)[1:]:
        x = mp.mpf(float(x))
        worst_small = max(worst_small, abs(x * horner_mp(small, x * x) - mp.erf(x)) / mp.erf(x))
    worst_tail = mp.mpf(0)
    for x in np.linspace(SMALL_CUT, TAIL_MAX, 2001):
        x = mp.mpf(float(x))
        t = (x - TAIL_CENTER) / (x + TAIL_CENTER)
        worst_tail = max(worst_tail, abs(horner_mp(tail, t) / (mp.exp(x * x) * mp.erfc(x)) - 1))
    print(f"float64 |x|<1 polynomial: max relative error {mp.nstr(worst_small, 3)}")
    print(f"float64 tail exp(x²)erfc(x) fit: max relative error {mp.nstr(worst_tail, 3)} "
          f"(times erfc(x) <= {mp.nstr(mp.erfc(SMALL_CUT), 3)} in erf's absolute error)")
    # Rounding of s = x² in float64 perturbs exp(-x²) by a relative s·2^-53; its absolute effect
    # on erf is at most max s·erfc(x)·2^-53 over the tail, which is why no hi/lo split is needed.
    worst_split = max(float(mp.mpf(float(x)) ** 2 * mp.erfc(float(x))) for x in np.linspace(1, 6, 501))
    print(f"float64 tail: effect of rounding x² on erf <= {worst_split * 2.0**-53:.2g} absolute "
          "(no hi/lo split of x² needed for 1e-15)")


def exhaustive_float32_check() -> None:
    """Every positive float32 below 4.1 (erf is odd): erf32 against float64 erf rounded once.

    The float64 erf (within 2.3e-16 of math.erf, tests/test_erf.py) stands in for math.erf, which
    would take an hour over these ~1.1e9 inputs. Also checks monotonicity and erf <= 1.
    """
    from numpy_distilbert.erf import erf

    lo, hi = np.array([0.0, 4.1], dtype=np.float32).view(np.int32)
    worst, worst_x, previous, step = 0, 0.0, np.float32(0.0), 1 << 22
    for start in range(int(lo), int(hi), step):
        x = np.arange(start, min(start + step, int(hi)), dtype=np.int32).view(np.float32)
        got = erf(x)
        want = erf(x.astype(np.float64)).astype(np.float32)
        ulps = np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32))  # both >= 0 here
        if ulps.max() > worst:
            worst, worst_x = int(ulps.max()), float(x[ulps.argmax()])
        assert got[0] >= previous and np.all(np.diff(got) >= 0), f"not monotone near {x[0]}"
        assert got.max() <= 1.0
        previous = got[-1]
    print(f"exhaustive float32 check on [0, 4.1): max {worst} ulp (at x={worst_x!r}); monotone; <= 1")


if __name__ == "__main__":
    import sys

    if "--exhaustive" in sys.argv:
        exhaustive_float32_check()
    else:
        main()
