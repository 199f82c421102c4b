"""Special functions the ops need and NumPy lacks: erf, on float arrays (NumPy or CuPy).

erf(x) = 2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt. Two methods, one per precision:

float64: W. J. Cody's rational approximations (Math. Comp. 23, 1969), three ranges of |x|:
    |x| <= 0.46875:     erf(x)  = x R1(x^2)
    0.46875 < |x| <= 4: erfc(|x|) = exp(-x^2) R2(|x|)
    |x| > 4:            erfc(|x|) = exp(-x^2) / |x| (1/sqrt(pi) - R3(1/x^2) / x^2)
    with erf = sign(x) (1 - erfc(|x|)).
    Accuracy, measured against math.erf over a dense grid of [-6, 6] (tests/tinytensor/test_numerics.py):
    within 1e-15 relative and 5e-16 absolute.

float32 (and float16, computed in float32): erf(x) = tanh(x P(x^2)), P of degree 6.
    tanh saturates to +-1 as erf does, so a short polynomial is enough: P was fitted to atanh(erf(x)) / x
    on [0, 4] by weighted least squares, weighted for relative error in erf, with Lawson reweighting
    towards the minimax fit (max relative error 9.5e-8 in exact arithmetic). x P(x^2) keeps rising past 4,
    where tanh rounds to 1 in float32, so no range split is needed. Accuracy in float32, measured against
    math.erf over a dense grid of [-6, 6]: within 5 ulp (absolute error below 2e-7). It costs about
    fifteen passes over memory, against about sixty for Cody's three ranges; benchmarks/gelu.py times it.

On CuPy, cupyx.scipy.special.erf is used.
"""
import math

import numpy as np

from . import backend

# ----------------------------------------------------------------------------------- float64: Cody
# Coefficients from Cody's paper, highest power first; each denominator's leading coefficient is 1.
_SMALL_NUM = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
              3.20937758913846947e03)
_SMALL_DEN = (1.0, 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
              2.84423683343917062e03)
_MIDDLE_NUM = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
               2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03,
               1.23033935479799725e03)
_MIDDLE_DEN = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
               1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03,
               1.23033935480374942e03)
_TAIL_NUM = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
             1.60837851487422766e-2, 6.58749161529837803e-4)
_TAIL_DEN = (1.0, 2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
             6.05183413124413191e-2, 2.33520497626869185e-3)
_SMALL_END, _MIDDLE_END = 0.46875, 4.0

# ----------------------------------------------------------------------------------- float32: tanh form
# P(t), highest power first, erf(x) ~ tanh(x P(x^2)); its constant term is close to 2/sqrt(pi), the slope
# of erf at 0.
_TANH_POLY = (1.4188838735884612e-07, -5.668928816364438e-06, 8.763921952774367e-05, -0.0006197877249358216,
              -0.00019182922533757252, 0.10276905588136825, 1.1283792742162237)


def horner(coefficients, t):
    """coefficients[0] t^n + coefficients[1] t^(n-1) + ... + coefficients[n], by Horner's rule:
    (((c0 t + c1) t + c2) t + ...), in one new buffer updated in place."""
    result = t * coefficients[0]
    for c in coefficients[1:-1]:
        result += c
        result *= t
    result += coefficients[-1]
    return result


def erf(x, xp):
    """erf of a float array, same dtype and shape (see the module docstring for the accuracy)."""
    if xp is not np:
        # CuPy's erf maps float16 to float64 (its type table is e->d, f->f, d->d): cast back.
        return backend.scipy_special().erf(x).astype(x.dtype, copy=False)
    if x.dtype.itemsize >= 8:
        return erf_float64(x, xp)
    flat = x.reshape(-1).astype("float32", copy=False)     # 1-D: NumPy gives scalars, not arrays, for 0-d
    with xp.errstate(over="ignore"):                        # |x| > 1e19: x^2 = inf, and tanh(inf) = 1
        return erf_tanh_form(flat, xp).astype(x.dtype, copy=False).reshape(x.shape)


def erf_float64(x, xp):
    """Cody's three ranges (module docstring). The first two formulas run on every element, with the
    argument clipped into their range, and `where` picks (cheaper than gathering each range's elements);
    the rare |x| > 4 are gathered and done apart."""
    y = xp.abs(x)
    s = xp.clip(x, -_SMALL_END, _SMALL_END)
    s2 = s * s
    erf_small = s * (horner(_SMALL_NUM, s2) / horner(_SMALL_DEN, s2))
    m = xp.clip(y, _SMALL_END, _MIDDLE_END)
    erfc = xp.exp(-m * m) * (horner(_MIDDLE_NUM, m) / horner(_MIDDLE_DEN, m))
    far = y > _MIDDLE_END
    if bool(far.any()):
        b = xp.minimum(y[far], 30.0)                       # erfc(30) < 1e-300: erf is +-1 beyond
        z = 1 / (b * b)
        erfc[far] = xp.exp(-b * b) / b * (1 / math.sqrt(math.pi) - z * horner(_TAIL_NUM, z) / horner(_TAIL_DEN, z))
    return xp.where(y <= _SMALL_END, erf_small, xp.copysign(1 - erfc, x))    # NaN stays NaN


def erf_tanh_form(x, xp):
    """tanh(x P(x^2)) for a 1-D float32 array (the module docstring says why it works)."""
    u = horner(_TANH_POLY, x * x)
    u *= x
    return xp.tanh(u, out=u)
