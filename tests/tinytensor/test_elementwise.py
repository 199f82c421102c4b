"""Elementwise ops: forward against NumPy, first and second derivatives by finite differences (float64),
broadcasting, dtype rules, ties, extreme inputs and error messages."""
import math

import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op

np_erf = np.vectorize(math.erf, otypes=[float])


def away_from_zero(rng, shape, low=0.2, high=2.0):
    """Random values with |x| in [low, high]: no kinks of relu/abs within a finite-difference step."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


# name: (op on Tensors, NumPy reference, input maker)
UNARY = {
    "neg": (lambda x: -x, np.negative, None),
    "abs": (tt.abs, np.abs, away_from_zero),
    "exp": (tt.exp, np.exp, None),
    "log": (tt.log, np.log, lambda rng, s: rng.uniform(0.5, 3, s)),
    "log1p": (tt.log1p, np.log1p, lambda rng, s: rng.uniform(-0.5, 3, s)),
    "sqrt": (tt.sqrt, np.sqrt, lambda rng, s: rng.uniform(0.5, 3, s)),
    "sin": (tt.sin, np.sin, None),
    "cos": (lambda x: x.cos(), np.cos, None),
    "tanh": (tt.tanh, np.tanh, None),
    "sigmoid": (tt.sigmoid, np_sigmoid, lambda rng, s: rng.uniform(-6, 6, s)),
    "relu": (tt.relu, lambda x: np.maximum(x, 0), away_from_zero),
    "leaky_relu": (lambda x: tt.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x), away_from_zero),
    "erf": (tt.erf, np_erf, lambda rng, s: rng.uniform(-3, 3, s)),
    "gelu": (tt.gelu, lambda x: 0.5 * x * (1 + np_erf(x / math.sqrt(2))), lambda rng, s: rng.uniform(-3, 3, s)),
    "gelu_tanh": (lambda x: x.gelu(approximate="tanh"), np_gelu_tanh, lambda rng, s: rng.uniform(-3, 3, s)),
    "softplus": (tt.softplus, lambda x: np.log1p(np.exp(x)), lambda rng, s: rng.uniform(-4, 4, s)),
    "softplus_beta": (lambda x: tt.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2),
                      lambda rng, s: rng.choice([-1.0, 1.0], s) * rng.uniform(0.2, 1.3, s) + 0.5),
    "clip": (lambda x: tt.clip(x, -0.5, 0.8), lambda x: np.clip(x, -0.5, 0.8),
             lambda rng, s: rng.choice([-1.2, -0.1, 0.3, 1.5], s) + rng.uniform(-0.1, 0.1, s)),
    "clip_low": (lambda x: x.clip(min=0.3), lambda x: np.maximum(x, 0.3), lambda rng, s: away_from_zero(rng, s)),
    "clone": (tt.clone, np.copy, None),
    "pow_scalar": (lambda x: x ** 3, lambda x: x ** 3, None),
    "rpow_scalar": (lambda x: 2 ** x, lambda x: 2 ** x, None),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_forward_and_derivatives(name, device, rng):
    op, reference, make = UNARY[name]
    shape = (2, 3)
    x = make(rng, shape) if make else rng.standard_normal(shape)
    check_op(op, reference, x, device=device, second_order=True)


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "relu", "gelu", "gelu_tanh", "softplus", "abs"])
def test_unary_keeps_float32_and_shape(name, device, rng):
    op, reference, make = UNARY[name]
    x = (make(rng, (4, 1, 3)) if make else rng.standard_normal((4, 1, 3))).astype(np.float32)
    y = op(tt.tensor(x, device=device))
    assert y.dtype == tt.float32 and y.shape == (4, 1, 3)
    np.testing.assert_allclose(y.numpy(), reference(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", UNARY)
def test_unary_on_0d_tensors(name, device, rng):
    op, reference, make = UNARY[name]
    x = np.asarray(make(rng, ()) if make else rng.standard_normal(()))
    check_op(op, reference, x, device=device)


# name: (op, reference, maker of b given a random generator and shape)
BINARY = {
    "add": (lambda a, b: a + b, np.add, None),
    "sub": (lambda a, b: a - b, np.subtract, None),
    "mul": (lambda a, b: a * b, np.multiply, None),
    "div": (lambda a, b: a / b, np.divide, away_from_zero),
    "pow": (lambda a, b: a.abs() ** b, lambda a, b: np.abs(a) ** b, None),
    "maximum": (tt.maximum, np.maximum, None),
    "minimum": (lambda a, b: a.minimum(b), np.minimum, None),
}
SHAPES = [((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), (2, 1, 3)), ((), (2,)), ((2, 3), (2, 3))]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_binary_broadcasting(name, shapes, device, rng):
    op, reference, make_b = BINARY[name]
    a = np.asarray(away_from_zero(rng, shapes[0], 0.5, 2.0))     # a 0-d array, not a NumPy scalar
    b = np.asarray(make_b(rng, shapes[1]) if make_b else rng.standard_normal(shapes[1]))
    out = check_op(op, reference, a, b, device=device, second_order=True)
    assert out.shape == np.broadcast_shapes(*shapes)


def test_where_broadcasting(device, rng):
    cond = rng.standard_normal((2, 3)) > 0
    check_op(lambda a, b: tt.where(tt.tensor(cond, device=device), a, b),
             lambda a, b: np.where(cond, a, b),
             rng.standard_normal((3,)), rng.standard_normal((2, 1)), device=device, second_order=True)


def test_where_with_scalar_branch_keeps_dtype_and_gradient(device):
    x = tt.tensor([-1.0, 2.0, -3.0], device=device, requires_grad=True)
    y = tt.where(x > 0, x, 0.0)
    assert y.dtype == tt.float32
    y.sum().backward()
    assert y.tolist() == [0.0, 2.0, 0.0]
    assert x.grad.tolist() == [0.0, 1.0, 0.0]


def test_python_scalars_keep_float32(device):
    x = tt.tensor([1.0, 2.0], device=device)
    for y in (x + 1.5, 2.5 * x, 1 - x, 3 / x, x ** 2, 2 ** x, x - 1, x / 2):
        assert y.dtype == tt.float32


@pytest.mark.parametrize("op", [tt.add, tt.sub, tt.mul, tt.div, tt.pow, tt.maximum, tt.minimum,
                                lambda a, b: tt.where(a > 0, a, b)])
def test_mixed_float_dtypes_promote_and_grads_keep_each_inputs_dtype(op, device, rng):
    """float32 with float64 computes in float64 (NumPy and PyTorch); each gradient has its input's dtype."""
    a = tt.tensor(rng.uniform(0.5, 2, (2, 3)), dtype=tt.float32, device=device, requires_grad=True)
    b = tt.tensor(rng.uniform(0.5, 2, (3,)), dtype=tt.float64, device=device, requires_grad=True)
    for y in (op(a, b), op(b, a)):
        assert y.dtype == tt.float64
        a.grad = b.grad = None
        y.sum().backward()
        assert a.grad.dtype == tt.float32 and a.grad.shape == (2, 3)
        assert b.grad.dtype == tt.float64 and b.grad.shape == (3,)
    want = op(a.detach().double(), b.detach()).numpy()
    np.testing.assert_allclose(op(a, b).detach().numpy(), want, rtol=1e-15)


def test_integers_and_numpy_scalars_do_not_upcast_a_float32_tensor(device):
    """As in PyTorch: a float tensor with an int tensor keeps its float dtype (NumPy would give float64),
    and NumPy scalars count as Python numbers."""
    x = tt.tensor([1.0, 2.0], device=device, requires_grad=True)
    counts = tt.tensor([3, 4], device=device)
    for y in (x * counts, counts + x, x + np.float64(0.5), np.float64(2) * x, x / np.int64(2)):
        assert y.dtype == tt.float32
    (x * counts).sum().backward()
    assert x.grad.dtype == tt.float32 and x.grad.tolist() == [3.0, 4.0]
    assert (counts + tt.tensor([1, 1], dtype=tt.int32, device=device)).dtype == tt.int64


def test_integer_results_that_are_floats_take_the_default_float_dtype(device):
    # As PyTorch: ints / ints, ints * 2.5 and exp(ints) are float32 (NumPy would give float64, and float16
    # for exp of bool or uint8), so positions / length next to a float32 model stays float32.
    ints = tt.tensor([1, 2, 4], device=device)
    for result in (ints / 2, ints / ints, ints * 2.5, 2.5 ** ints, ints - 0.5, tt.exp(ints), tt.sqrt(ints),
                   tt.clip(ints, 1.5, None), tt.where(ints > 1, ints, 0.5),
                   tt.sigmoid(tt.tensor([True, False], device=device)), tt.log(tt.tensor([1, 2], dtype=tt.uint8,
                                                                                          device=device))):
        assert result.dtype == tt.float32
    np.testing.assert_allclose((ints / 2).numpy(), [0.5, 1.0, 2.0])
    assert (ints * 2).dtype == (ints + ints).dtype == tt.int64                     # integers stay integers
    assert (ints / tt.tensor([2.0, 2.0, 2.0], dtype=tt.float64, device=device)).dtype == tt.float64


def test_reflected_operators(device):
    x = tt.tensor([1.0, 2.0, 4.0], device=device, dtype=tt.float64, requires_grad=True)
    y = (1 - x) + (8 / x) + (2 ** x)
    y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), [1 - 1 + 8 + 2, 1 - 2 + 4 + 4, 1 - 4 + 2 + 16])
    np.testing.assert_allclose(x.grad.numpy(), -1 - 8 / np.array([1, 4, 16.0]) + np.log(2) * 2 ** np.array([1, 2, 4.0]))


def test_pow_at_a_zero_base_follows_pytorch(device):
    # PyTorch: d(a^b)/da = 0 where b = 0 (not 0 * 0^-1), d(a^b)/db = 0 where a = 0 and b >= 0 (not 0 * log 0).
    x = tt.tensor([0.0, 1.0, -2.0], dtype=tt.float64, device=device, requires_grad=True)
    (x ** 0.0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    a = tt.tensor([0.0, 0.0, 2.0], dtype=tt.float64, device=device, requires_grad=True)
    b = tt.tensor([2.0, 0.0, 1.0], dtype=tt.float64, device=device, requires_grad=True)
    (a ** b).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, 1.0]
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.0, 2 * math.log(2)])


def test_pow_of_a_number_base_zero_or_negative(device):
    # A plain base of 0 or below used to crash in math.log; PyTorch gives 0 for 0 ** b (b >= 0), NaN below 0.
    b = tt.tensor([1.0, 2.0], dtype=tt.float64, device=device, requires_grad=True)
    (0.0 ** b).sum().backward()
    assert b.grad.tolist() == [0.0, 0.0]
    b.grad = None
    y = (-2.0) ** b
    y.sum().backward()
    assert y.tolist() == [-2.0, 4.0] and np.isnan(b.grad.numpy()).all()


def test_maximum_minimum_split_ties_evenly(device):
    a = tt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    b = tt.tensor([1.0, 5.0, 0.0], device=device, requires_grad=True)
    tt.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0, 1.0] and b.grad.tolist() == [0.5, 1.0, 0.0]
    a.grad = b.grad = None
    tt.minimum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 1.0, 0.0] and b.grad.tolist() == [0.5, 0.0, 1.0]


def test_maximum_with_scalar(device):
    x = tt.tensor([-1.0, 0.0, 2.0], device=device, requires_grad=True)
    tt.maximum(x, 0.0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.5, 1.0]


def test_kinks_follow_pytorch(device):
    x = tt.tensor([-1.0, 0.0, 1.0], device=device, requires_grad=True)
    for fn, expected in [(tt.relu, [0, 0, 1]), (tt.abs, [-1, 0, 1]),
                         (lambda x: tt.leaky_relu(x, 0.2), [0.2, 0.2, 1]),
                         (lambda x: tt.clip(x, 0.0, 1.0), [0, 1, 1])]:
        x.grad = None
        fn(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), expected, atol=1e-7)


def test_clip_with_tensor_bounds(device, rng):
    low, high = rng.uniform(-1, -0.2, (3,)), rng.uniform(0.2, 1, (2, 1))
    check_op(lambda x, lo, hi: tt.clip(x, lo, hi), lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
             rng.uniform(-1.5, 1.5, (2, 3)) + 0.05, low, high, device=device)


def test_clip_with_tensor_bounds_gives_ties_to_x_as_pytorch(device):
    x = tt.tensor([-1.0, 0.0, 1.0, 2.0, -3.0], device=device, requires_grad=True)
    low = tt.full((5,), -1.0, device=device, requires_grad=True)
    high = tt.full((5,), 1.0, device=device, requires_grad=True)
    tt.clip(x, low, high).sum().backward()
    assert x.grad.tolist() == [1, 1, 1, 0, 0] and low.grad.tolist() == [0, 0, 0, 0, 1]
    assert high.grad.tolist() == [0, 0, 0, 1, 0]
    # min > max: every element is max, which takes the whole gradient
    x, low, high = (tt.tensor([v], device=device, requires_grad=True) for v in (0.0, 1.0, -1.0))
    y = tt.clip(x, low, high)
    y.sum().backward()
    assert y.tolist() == [-1.0] and (x.grad.item(), low.grad.item(), high.grad.item()) == (0, 0, 1)


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="at least one of min and max"):
        tt.clip(tt.ones(2))


def test_erf_matches_math_erf_to_float64_precision(device):
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-12, 30, 2000), [0.0, 0.46875, 4.0]])
    x = np.concatenate([x, -x])
    got = tt.erf(tt.tensor(x, dtype=tt.float64, device=device)).numpy()
    np.testing.assert_allclose(got, np_erf(x), rtol=2e-15, atol=5e-16)
    extremes = tt.tensor([np.inf, -np.inf, 1e300], dtype=tt.float64, device=device)
    assert tt.erf(extremes).tolist() == [1.0, -1.0, 1.0]
    assert tt.erf(tt.tensor([0.5, -5.0], device=device)).dtype == tt.float32


def test_sigmoid_softplus_extreme_inputs_are_finite_and_accurate(device):
    x64 = np.array([-1000.0, -50.0, -20.0, 0.0, 20.0, 50.0, 1000.0])
    with np.errstate(over="ignore"):
        reference = 1 / (1 + np.exp(-x64))
    for dtype in (tt.float32, tt.float64):
        x = tt.tensor(x64, dtype=dtype, device=device, requires_grad=True)
        y = tt.sigmoid(x)
        np.testing.assert_allclose(y.detach().numpy(), reference, rtol=1e-6, atol=0)
        y.sum().backward()
        assert np.all(np.isfinite(x.grad.numpy()))
        s = tt.softplus(x)
        assert np.all(np.isfinite(s.detach().numpy()))
        np.testing.assert_allclose(s.detach().numpy()[[0, 3, 6]], [0.0, math.log(2), 1000.0], rtol=1e-6)


def test_gelu_known_values(device):
    x = tt.tensor([-1.0, 0.0, 1.0, 3.0], dtype=tt.float64, device=device)
    # Phi(1) = 0.8413447460685429, so gelu(1) = 0.8413..., gelu(-1) = -(1 - Phi(1)) = -0.1586...;
    # Phi(3) = 0.9986501019683699, gelu(3) = 3 Phi(3)
    np.testing.assert_allclose(tt.gelu(x).numpy(), [-0.15865525393145707, 0, 0.8413447460685429,
                                                    2.9959503059051], rtol=1e-13)
    np.testing.assert_allclose(tt.gelu(x, approximate="tanh").numpy(), np_gelu_tanh(x.numpy()), rtol=1e-14)
    with pytest.raises(ValueError, match="'none' or 'tanh'"):
        tt.gelu(x, approximate="fast")


def test_comparisons_return_bool_without_grad(device):
    a = tt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    b = tt.tensor([3.0, 2.0, 1.0], device=device)
    cases = {
        (a == b): [False, True, False], (a != b): [True, False, True], (a < b): [True, False, False],
        (a <= b): [True, True, False], (a > b): [False, False, True], (a >= 2): [False, True, True],
        tt.equal(a, 2.0): [False, True, False], a.less(b): [True, False, False],
    }
    for result, expected in cases.items():
        assert result.dtype == tt.bool_ and not result.requires_grad
        assert result.tolist() == expected


def test_cast_keeps_gradient_flowing(device):
    x = tt.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x.double() * 3
    assert y.dtype == tt.float64
    y.sum().backward()
    assert x.grad.dtype == tt.float32 and x.grad.tolist() == [3.0, 3.0]


def test_clone_is_a_copy_in_the_graph(device):
    x = tt.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x.clone()
    assert y.data is not x.data and y.requires_grad
    with tt.no_grad():
        y.data[0] = 5.0
    assert x.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("op, name", [(tt.add, "add"), (tt.sub, "sub"), (tt.mul, "mul"), (tt.div, "div"),
                                      (tt.pow, "pow"), (tt.maximum, "maximum"), (tt.less, "less")])
def test_broadcast_error_names_both_shapes(op, name, device):
    a, b = tt.ones(2, 3, device=device), tt.ones(4, device=device)
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be broadcast together"):
        op(a, b)


def test_where_errors(device):
    with pytest.raises(TypeError, match="bool"):
        tt.where(tt.ones(2, device=device), tt.ones(2, device=device), 0.0)
    with pytest.raises(ValueError, match=r"where: shapes \(3,\) \(condition\), \(2,\) and \(\)"):
        tt.where(tt.tensor([True, False, True], device=device), tt.ones(2, device=device), 0.0)


def test_a_wrong_backward_is_caught(monkeypatch, rng):
    """The checks above can fail: a planted bug in tanh's derivative (1 - y instead of 1 - y^2) is found."""
    from tinytensor.ops import elementwise
    monkeypatch.setattr(elementwise.Tanh, "backward", staticmethod(lambda ctx, g: g * (1 - ctx.saved_tensors[0])))
    with pytest.raises(AssertionError):
        check_op(tt.tanh, np.tanh, rng.standard_normal((2, 3)))


@pytest.mark.parametrize("name", ["relu", "abs", "leaky_relu", "clip", "neg"])
def test_piecewise_linear_ops_have_zero_second_derivative(name, device, rng):
    op = UNARY[name][0]
    x = tt.tensor(away_from_zero(rng, (2, 3)), dtype=tt.float64, device=device, requires_grad=True)
    (first,) = tt.grad(op(x).sum(), x, create_graph=True)
    assert not first.requires_grad      # a constant slope: nothing left to differentiate
