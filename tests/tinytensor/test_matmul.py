"""matmul: NumPy's rules (1-D operands, batch broadcasting), gradients of first and second order, the
folded weight-gradient path, dtypes and shape errors."""
import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op

SHAPES = [
    ((3, 4), (4, 2)),            # plain matrices
    ((4,), (4,)),                # dot product -> 0-d
    ((4,), (4, 2)),              # row vector times matrix
    ((3, 4), (4,)),              # matrix times column vector
    ((2, 3, 4), (4,)),           # batch of matrices times a vector
    ((4,), (2, 4, 3)),           # a vector times a batch
    ((2, 3, 4), (4, 2)),         # batch times a shared matrix (a weight)
    ((3, 4), (2, 4, 2)),         # shared matrix times a batch
    ((2, 1, 3, 4), (5, 4, 2)),   # batch axes broadcast against each other
    ((1, 3, 1), (2, 1, 2)),      # size-1 inner dimension
]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_matmul(shapes, device, rng):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    out = check_op(lambda a, b: a @ b, np.matmul, a, b, device=device, second_order=True)
    assert out.shape == np.matmul(a, b).shape


def test_matmul_with_one_side_constant(device, rng):
    w = rng.standard_normal((4, 3))
    check_op(lambda x: x.matmul(tt.tensor(w, dtype=tt.float64, device=device)), lambda x: x @ w,
             rng.standard_normal((2, 4)), device=device, second_order=True)
    check_op(lambda x: w @ x, lambda x: w @ x, rng.standard_normal((3, 2)), device=device)


def test_large_matmul_fast_check(device, rng):
    a, b = rng.standard_normal((8, 32, 64)), rng.standard_normal((64, 48))
    check_op(tt.matmul, np.matmul, a, b, device=device, fast=True, atol=1e-9, rtol=1e-9)


def test_float32_stays_float32(device, rng):
    a = tt.tensor(rng.standard_normal((5, 4)), dtype=tt.float32, device=device, requires_grad=True)
    b = tt.tensor(rng.standard_normal((4, 3)), dtype=tt.float32, device=device, requires_grad=True)
    y = a @ b
    assert y.dtype == tt.float32
    y.sum().backward()
    assert a.grad.dtype == tt.float32 and b.grad.dtype == tt.float32


def test_mixed_float_dtypes_are_an_error_naming_both(device):
    a, b = tt.ones(2, 3, device=device), tt.ones(3, 2, dtype=tt.float64, device=device)
    with pytest.raises(TypeError, match="matmul: the left operand is float32 but the right operand is "
                                        r"float64.*\.to\(dtype\)"):
        a @ b
    with pytest.raises(TypeError, match="left operand is float64 but the right operand is float32"):
        b @ a


@pytest.mark.parametrize("shapes, message", [
    (((32, 784), (256, 10)), r"matmul: shapes \(32, 784\) and \(256, 10\) do not align: 784 != 256 "
                             r"\(inner dimensions must match\)"),
    (((3,), (4,)), r"matmul: shapes \(3,\) and \(4,\) do not align: 3 != 4"),
    (((2, 2, 3), (3, 3, 2)), r"batch shapes \(2,\) and \(3,\) cannot be broadcast together"),
    (((), (3,)), "both operands need at least one dimension"),
])
def test_matmul_errors(shapes, message, device):
    with pytest.raises(ValueError, match=message):
        tt.zeros(*shapes[0], device=device) @ tt.zeros(*shapes[1], device=device)


def test_a_wrong_matmul_backward_is_caught(monkeypatch, rng):
    """A planted bug (grad_a without transposing B) makes the gradient check fail."""
    from tinytensor.ops import linalg

    def wrong(ctx, grad):
        a, b = ctx.saved_tensors
        return grad @ b.swapaxes(-1, -2) * 2, a.swapaxes(-1, -2) @ grad
    monkeypatch.setattr(linalg.MatMul, "backward", staticmethod(wrong))
    with pytest.raises(AssertionError):
        check_op(tt.matmul, np.matmul, rng.standard_normal((3, 3)), rng.standard_normal((3, 3)))
