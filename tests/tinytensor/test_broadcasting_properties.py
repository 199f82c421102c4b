"""Property tests: for random broadcast-compatible shape pairs, binary ops agree with NumPy and their
gradients have the input shapes and equal the NumPy gradient summed over the broadcast axes."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinytensor as tt

SHAPE_PAIRS = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=3)


def np_sum_to(array, shape):
    """Reference for undoing broadcasting: sum the leading axes, then the stretched size-1 axes."""
    lead = array.ndim - len(shape)
    array = array.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and array.shape[i] != 1)
    return array.sum(axis=stretched, keepdims=True).reshape(shape)


# name: (op, forward reference, reference d/da and d/db of the elementwise op, given a, b)
OPS = {
    "add": (tt.add, np.add, lambda a, b: (np.ones_like(a + b), np.ones_like(a + b))),
    "sub": (tt.sub, np.subtract, lambda a, b: (np.ones_like(a - b), -np.ones_like(a - b))),
    "mul": (tt.mul, np.multiply, lambda a, b: (b + 0 * a, a + 0 * b)),
    "div": (tt.div, np.divide, lambda a, b: (1 / b + 0 * a, -a / b ** 2)),
    "maximum": (tt.maximum, np.maximum, lambda a, b: ((a > b) + 0.0 * b, (a < b) + 0.0 * a)),
}


@settings(max_examples=60, deadline=None)
@given(shapes=SHAPE_PAIRS, name=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2 ** 16))
def test_binary_broadcasting_matches_numpy(shapes, name, seed):
    op, reference, local_grads = OPS[name]
    shape_a, shape_b = shapes.input_shapes
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.uniform(0.5, 2.0, shape_a) * rng.choice([-1, 1], shape_a))
    b = np.asarray(rng.uniform(0.5, 2.0, shape_b) * rng.choice([-1, 1], shape_b))
    ta = tt.tensor(a, requires_grad=True)
    tb = tt.tensor(b, requires_grad=True)
    out = op(ta, tb)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.detach().numpy(), reference(a, b), rtol=1e-12)

    upstream = rng.standard_normal(shapes.result_shape)
    out.backward(tt.tensor(upstream))
    assert ta.grad.shape == shape_a and tb.grad.shape == shape_b
    da, db = local_grads(a, b)
    np.testing.assert_allclose(ta.grad.numpy(), np_sum_to(upstream * da, shape_a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), np_sum_to(upstream * db, shape_b), rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shapes=SHAPE_PAIRS, seed=st.integers(0, 2 ** 16))
def test_where_broadcasting_routes_gradients(shapes, seed):
    shape_a, shape_b = shapes.input_shapes
    rng = np.random.default_rng(seed)
    cond = rng.standard_normal(shapes.result_shape) > 0
    a, b = np.asarray(rng.standard_normal(shape_a)), np.asarray(rng.standard_normal(shape_b))
    ta, tb = tt.tensor(a, requires_grad=True), tt.tensor(b, requires_grad=True)
    out = tt.where(tt.tensor(cond), ta, tb)
    np.testing.assert_array_equal(out.detach().numpy(), np.where(cond, a, b))
    out.sum().backward()
    np.testing.assert_array_equal(ta.grad.numpy(), np_sum_to(cond * 1.0, shape_a))
    np.testing.assert_array_equal(tb.grad.numpy(), np_sum_to(~cond * 1.0, shape_b))


@settings(max_examples=40, deadline=None)
@given(shapes=SHAPE_PAIRS)
def test_incompatible_shapes_name_both(shapes):
    shape_a, _ = shapes.input_shapes
    bad = tuple(shape_a) + (5,) if shape_a else (5,)
    other = tuple(shape_a) + (4,) if shape_a else (4,)
    try:
        tt.ones(*bad) * tt.ones(*other)
    except ValueError as err:
        assert str(err) == f"mul: shapes {bad} and {other} cannot be broadcast together"
    else:
        raise AssertionError("mismatched shapes were accepted")


REDUCTIONS = {"sum": (tt.sum, np.sum), "mean": (tt.mean, np.mean), "max": (tt.max, np.max),
              "var": (lambda x, **kwargs: tt.var(x, correction=0, **kwargs), np.var)}   # population


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=4), data=st.data(),
       name=st.sampled_from(sorted(REDUCTIONS)), keepdims=st.booleans())
def test_reductions_over_random_axes(shape, data, name, keepdims):
    ndim = len(shape)
    axes = data.draw(st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda a: a % ndim, max_size=ndim))
    axis = tuple(axes) if data.draw(st.booleans()) or len(axes) != 1 else axes[0]
    op, reference = REDUCTIONS[name]
    x = np.random.default_rng(len(shape)).permutation(int(np.prod(shape))).reshape(shape) * 0.5
    tx = tt.tensor(x, dtype=tt.float64, requires_grad=True)
    out = op(tx, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.detach().numpy(), reference(x, axis=axis, keepdims=keepdims), rtol=1e-12)
    out.sum().backward()
    assert tx.grad.shape == x.shape
    if name == "sum":       # each element feeds exactly one output
        np.testing.assert_array_equal(tx.grad.numpy(), np.ones(shape))
