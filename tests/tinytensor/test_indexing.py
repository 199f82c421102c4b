"""Indexing: x[key] against NumPy, gradients (repeated indices add up), and x[key] = v under autograd."""
import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op

MASK = np.array([True, False, True, True])

# (name, key) applied to a (4, 3, 2) input; keys hold NumPy arrays, turned into Tensors where marked.
KEYS = [
    ("int", 1),
    ("negative int", -1),
    ("two ints", (2, 0)),
    ("all ints", (3, 2, 1)),
    ("slice", slice(1, 3)),
    ("slice with step", (slice(None), slice(None, None, 2))),
    ("negative step", slice(None, None, -1)),
    ("negative step from the end", (slice(None), slice(-1, 0, -2))),
    ("None", (None, 1)),
    ("Ellipsis", (Ellipsis, 0)),
    ("Ellipsis and None", (1, Ellipsis, None)),
    ("bool mask", MASK),
    ("bool mask on a later axis", (slice(None), np.array([True, False, True]))),
    ("fancy", np.array([0, 2])),
    ("fancy repeated", np.array([1, 1, 3, 1])),
    ("fancy negative", np.array([-1, 0])),
    ("fancy 2-D", np.array([[0, 1], [1, 1]])),
    ("fancy list", [2, 2, 0]),
    ("fancy two axes", (np.array([0, 0, 3]), np.array([1, 1, 2]))),
    ("fancy with slice between", (np.array([0, 0]), slice(None), np.array([1, 1]))),
    ("fancy and int", (1, np.array([2, 0, 2]))),
    ("mask and fancy", (MASK, np.array([0, 0, 2]))),
]


@pytest.mark.parametrize("as_tensor", [False, True], ids=["array-key", "tensor-key"])
@pytest.mark.parametrize("name, key", KEYS, ids=[k[0] for k in KEYS])
def test_getitem_matches_numpy_and_gradchecks(name, key, as_tensor, device, rng):
    x = rng.standard_normal((4, 3, 2))

    def tensor_key():
        parts = key if isinstance(key, tuple) else (key,)
        parts = tuple(tt.tensor(p, device=device) if as_tensor and isinstance(p, np.ndarray) else p
                      for p in parts)
        return parts if isinstance(key, tuple) else parts[0]

    check_op(lambda t: t[tensor_key()], lambda a: a[key], x, device=device)


def test_repeated_indices_accumulate(device):
    x = tt.zeros(4, device=device, requires_grad=True)
    x[tt.tensor([1, 1, 3, 1], device=device)].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 3, 0, 1])


def test_repeated_index_pairs_accumulate_in_two_axes(device):
    x = tt.zeros(2, 3, device=device, requires_grad=True)
    x[[0, 0, 1], [2, 2, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 2], [0, 0, 1]])


def test_basic_slice_gradient_is_exact_placement(device):
    x = tt.zeros(5, device=device, requires_grad=True)
    (x[::-2] * tt.tensor([1.0, 2.0, 3.0], device=device)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 0, 2, 0, 1])


@pytest.mark.parametrize("key", [(slice(1, None), 0), np.array([0, 2, 2]), MASK[:3]],
                         ids=["basic", "fancy repeated", "mask"])
def test_getitem_second_order(key, device, rng):
    x = rng.standard_normal((3, 2))
    check_op(lambda t: t[key] ** 3, lambda a: a[key] ** 3, x, device=device, second_order=True)


def test_empty_index_list_selects_nothing():
    x = tt.ones(3, 2, requires_grad=True)
    y = x[[]]
    assert y.shape == (0, 2)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 2)))


def test_indexing_with_bool_tensor_from_comparison(device, rng):
    data = rng.standard_normal((3, 4))
    x = tt.tensor(data, device=device, requires_grad=True)
    mask = tt.tensor(data > 0, device=device)
    x[mask].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (data > 0).astype(np.float32))


def test_basic_index_result_is_a_view_and_fancy_is_a_copy():
    x = tt.arange(6).float().reshape(2, 3)
    assert x[0, 1:]._version is x._version
    assert x[[0, 1]]._version is not x._version


def test_iterating_a_tensor_gives_differentiable_rows(rng):
    x = tt.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    sum(row[0] * (i + 1) for i, row in enumerate(x)).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0], [2, 0], [3, 0]])


# ----------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("key, message", [
    (5, r"index 5 is out of bounds for axis 0 with size 4.*shape \(4, 3\)"),
    ((0, -4), r"index -4 is out of bounds for axis 1 with size 3"),
    (np.array([0, 7]), r"index 7 is out of bounds for axis 0 with size 4"),
    ((0, 0, 0), r"too many indices.*shape \(4, 3\)"),
    (np.array([True, False]), r"boolean index did not match.*shape \(4, 3\)"),
    (np.array([0.0, 1.0]), r"index arrays must be integer or bool, got float64"),
    ("a", r"cannot index with a str"),
])
def test_index_errors_name_the_sizes(key, message):
    with pytest.raises(IndexError, match=message):
        tt.ones(4, 3)[key]


def test_float_tensor_index_is_refused():
    with pytest.raises(IndexError, match="float32"):
        tt.ones(4)[tt.tensor([0.0, 1.0])]


# ----------------------------------------------------------------------------------- setitem

def test_setitem_gradients_of_base_and_value(device, rng):
    w = tt.tensor(rng.standard_normal((4, 3)), device=device)
    x = tt.tensor(rng.standard_normal((4, 3)), device=device, requires_grad=True)
    v = tt.tensor(rng.standard_normal((2, 3)), device=device, requires_grad=True)
    y = x * 1.0
    y[1:3] = v
    np.testing.assert_array_equal(y.detach().numpy()[1:3], v.detach().numpy())
    (y * w).sum().backward()
    expected_x = w.numpy().copy()
    expected_x[1:3] = 0
    np.testing.assert_array_equal(x.grad.numpy(), expected_x)
    np.testing.assert_array_equal(v.grad.numpy(), w.numpy()[1:3])


def test_setitem_broadcast_value_gets_summed_gradient(device):
    x = tt.zeros(3, 4, device=device).requires_grad_() * 1.0
    v = tt.tensor([1.0, 2.0, 3.0, 4.0], device=device, requires_grad=True)
    x[[0, 2]] = v                       # v broadcast over 2 rows
    x.sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [2, 2, 2, 2])


def test_setitem_with_extra_leading_axes_in_value(device):
    x = tt.zeros(2, 3, device=device).requires_grad_() * 1.0
    v = tt.ones(1, 3, device=device, requires_grad=True)
    x[0] = v                             # (1, 3) into a (3,) slot, as NumPy allows
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [[2, 2, 2]])


def test_setitem_function_gradchecks(device, rng):
    x, v = rng.standard_normal((3, 4)), rng.standard_normal((3,))
    key = (slice(None), 1)

    def reference(a, b):
        a = a.copy()
        a[key] = b
        return a

    check_op(lambda a, b: tt.setitem(a, key, b) ** 2, lambda a, b: reference(a, b) ** 2, x, v,
             device=device, second_order=True)


def test_setitem_with_a_scalar_stops_gradient_there():
    x = tt.ones(3, requires_grad=True)
    y = x * 3.0
    y[tt.tensor([True, False, True])] = 0.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 3, 0])


def test_setitem_after_save_raises_at_backward():
    a = tt.ones(3, requires_grad=True)
    b = a * 2.0
    c = b * b                            # Mul saves b
    b[0] = 5.0
    with pytest.raises(RuntimeError, match=r"Mul: a \(3,\) tensor it saved.*version 1.*version 0"):
        c.sum().backward()


def test_setitem_on_a_leaf_that_requires_grad_is_refused_then_allowed_under_no_grad():
    w = tt.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w[0] = 1.0
    with tt.no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0, 0.0] and w._version[0] == 1


def test_setitem_error_names_shapes():
    y = tt.ones(3, requires_grad=True) * 1.0
    with pytest.raises(ValueError, match=r"setitem.*value of shape \(2,\).*tensor of shape \(3,\)"):
        y[:] = tt.ones(2)
