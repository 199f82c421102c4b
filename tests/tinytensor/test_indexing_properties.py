"""Property tests: for random shapes and random basic/advanced keys, x[key] equals NumPy's and its gradient
equals a scatter-add of the upstream gradient done with np.add.at."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytensor as tt

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def index_keys(draw, shape):
    """A key for `shape`: per axis an int, a slice (any step), or an advanced part; then maybe None and
    Ellipsis. Advanced parts are all integer arrays of one length, or a single bool mask."""
    mode = draw(st.sampled_from(["basic", "integer arrays", "bool mask"]))
    used = draw(st.integers(0, len(shape)))          # how many leading axes the key names
    length = draw(st.integers(1, 4))
    mask_axis = draw(st.integers(0, max(used - 1, 0)))
    parts = []
    for axis, n in enumerate(shape[:used]):
        kinds = ["int", "slice"] + (["array"] if mode == "integer arrays" else [])
        kind = "mask" if mode == "bool mask" and axis == mask_axis else draw(st.sampled_from(kinds))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-n - 1, n + 1)
            step = draw(st.none() | st.sampled_from([-3, -2, -1, 1, 2, 3]))
            parts.append(slice(draw(bound), draw(bound), step))
        elif kind == "array":
            parts.append(np.array(draw(st.lists(st.integers(-n, n - 1), min_size=length, max_size=length))))
        else:
            parts.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if used < len(shape) and draw(st.booleans()):
        parts.append(Ellipsis)
    as_tensor = draw(st.booleans())
    parts = [tt.tensor(p) if as_tensor and isinstance(p, np.ndarray) else p for p in parts]
    return tuple(parts) if len(parts) != 1 or draw(st.booleans()) else parts[0]


def numpy_key(key):
    if isinstance(key, tuple):
        return tuple(numpy_key(k) for k in key)
    return key.numpy() if isinstance(key, tt.Tensor) else key


def scatter_add_reference(shape, key, upstream):
    """d(sum(upstream * x[key]))/dx: add each upstream element into the position it was read from."""
    positions = np.arange(int(np.prod(shape))).reshape(shape)[key]    # which element of x each came from
    grad = np.zeros(int(np.prod(shape)))
    np.add.at(grad, positions.ravel(), np.asarray(upstream).ravel())
    return grad.reshape(shape)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), shape=shapes)
def test_getitem_forward_and_gradient_match_numpy(data, shape):
    key = data.draw(index_keys(shape))
    rng = np.random.default_rng(len(shape))
    values = rng.standard_normal(shape)
    x = tt.tensor(values, dtype=tt.float64, requires_grad=True)
    y = x[key]
    expected = values[numpy_key(key)]
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    upstream = rng.standard_normal(expected.shape)
    y.backward(upstream)
    np.testing.assert_allclose(x.grad.numpy(), scatter_add_reference(shape, numpy_key(key), upstream),
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), shape=shapes)
def test_setitem_matches_numpy_and_splits_the_gradient(data, shape):
    """y = x with y[key] = v: NumPy's values; x gets the upstream gradient except where overwritten."""
    key = numpy_key(data.draw(index_keys(shape)))
    rng = np.random.default_rng(0)
    values = rng.standard_normal(shape)
    slot = values[key].shape
    x = tt.tensor(values, dtype=tt.float64, requires_grad=True)
    v = tt.tensor(rng.standard_normal(slot), dtype=tt.float64, requires_grad=True)
    y = x * 1.0
    y[key] = v
    expected = values.copy()
    expected[key] = v.detach().numpy()
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    upstream = rng.standard_normal(shape)
    y.backward(upstream)
    overwritten = np.zeros(shape, dtype=bool)
    overwritten[key] = True
    np.testing.assert_array_equal(x.grad.numpy(), np.where(overwritten, 0.0, upstream))
    if len(np.unique(np.arange(values.size).reshape(shape)[key])) == int(np.prod(slot)):
        np.testing.assert_array_equal(v.grad.numpy(), upstream[key])   # no position written twice
