"""tinytensor/numerics.py: erf against math.erf over dense grids, to the accuracy its docstring states,
in float64 and float32, and special values."""
import math

import numpy as np
import pytest

from tinytensor import numerics

math_erf = np.vectorize(math.erf, otypes=[float])

# Dense on [-6, 6], where erf is not yet +-1 in float64, plus the ranges' seams and tiny magnitudes.
GRID = np.concatenate([np.linspace(-6, 6, 400001), [-4.0, -0.46875, 0.46875, 4.0],
                       np.geomspace(1e-30, 1e-3, 200), -np.geomspace(1e-30, 1e-3, 200)])


def test_float64_within_1e_15_relative():
    got = numerics.erf(GRID, np)
    assert got.dtype == np.float64
    want = math_erf(GRID)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=5e-16)
    assert np.abs(got - want).max() > 0          # the grid would see an error: it is not vacuous


def test_float32_within_5_ulp():
    x = GRID.astype(np.float32)
    got = numerics.erf(x, np)
    assert got.dtype == np.float32
    want = math_erf(x.astype(np.float64))                         # exact erf of the float32 inputs
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    error = np.abs(got.astype(np.float64) - want)
    assert (error / ulp).max() <= 5
    assert error.max() < 2e-7


def test_tanh_form_fit_is_within_1e_7_relative_in_exact_arithmetic():
    """The stated quality of the fitted polynomial itself, evaluated in float64 (no float32 rounding)."""
    x = np.linspace(1e-6, 4, 200001)
    fitted = np.tanh(x * numerics.horner(numerics._TANH_POLY, x * x))
    assert np.abs(fitted / math_erf(x) - 1).max() < 1e-7


def test_float32_saturates_and_keeps_its_sign_far_out():
    x = np.concatenate([np.linspace(5, 1e4, 100001), [1e20, 3e38, np.inf]]).astype(np.float32)
    assert (numerics.erf(x, np) == 1).all()
    assert (numerics.erf(-x, np) == -1).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_special_values_shapes_and_dtypes(dtype, recwarn):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 30.0, -30.0], dtype=dtype)
    got = numerics.erf(x, np)
    assert got.dtype == dtype and np.isnan(got[0])
    assert got[1:].tolist() == [1.0, -1.0, 0.0, 0.0, 1.0, -1.0]
    assert numerics.erf(np.array(0.5, dtype=dtype), np).shape == ()
    assert numerics.erf(np.zeros((2, 0), dtype=dtype), np).shape == (2, 0)
    np.testing.assert_allclose(numerics.erf(np.array([[0.5], [-1.5]], dtype=dtype), np),
                               [[math.erf(0.5)], [math.erf(-1.5)]], rtol=1e-3 if dtype == np.float16 else 1e-6)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_horner_evaluates_highest_power_first():
    assert numerics.horner((2.0, -3.0, 5.0), 10.0) == 2 * 100 - 3 * 10 + 5
    t = np.array([0.0, 1.0, 2.0])
    assert numerics.horner((1.0, 0.0, 0.0, -1.0), t).tolist() == [-1.0, 0.0, 7.0]
    assert t.tolist() == [0.0, 1.0, 2.0]                         # its argument is left alone
