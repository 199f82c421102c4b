"""Shape ops: forward against NumPy, gradients by finite differences (float64), errors, views."""
import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op

# (name, op on tensors, NumPy reference, input shape, second order?)
UNARY = [
    ("reshape", lambda x: x.reshape(3, -1), lambda x: x.reshape(3, -1), (2, 3, 2), True),
    ("reshape tuple", lambda x: x.reshape((6, 2)), lambda x: x.reshape(6, 2), (2, 3, 2), False),
    ("view", lambda x: x.view(-1), lambda x: x.reshape(-1), (2, 3), False),
    ("flatten all", lambda x: x.flatten(), lambda x: x.reshape(-1), (2, 3, 2), False),
    ("flatten middle", lambda x: tt.flatten(x, 1, 2), lambda x: x.reshape(2, 6, 1), (2, 3, 2, 1), False),
    ("flatten negative", lambda x: x.flatten(-2), lambda x: x.reshape(2, 6), (2, 3, 2), False),
    ("transpose reverse", lambda x: x.transpose(), lambda x: x.transpose(), (2, 3, 4), True),
    ("transpose axes", lambda x: x.transpose(1, 2, 0), lambda x: x.transpose(1, 2, 0), (2, 3, 4), True),
    ("permute negative", lambda x: x.permute(-1, 0, 1), lambda x: x.transpose(2, 0, 1), (2, 3, 4), False),
    # two axes: PyTorch's swap, on any number of dimensions; a permutation keeps NumPy's meaning
    ("transpose two axes of a matrix", lambda x: x.transpose(0, 1), lambda x: x.T, (3, 4), True),
    ("transpose two axes in a tuple", lambda x: x.transpose((1, 0)), lambda x: x.T, (3, 4), False),
    ("transpose swaps two of three axes", lambda x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2), (2, 3, 4),
     True),
    ("tt.transpose negative axes", lambda x: tt.transpose(x, -1, -3), lambda x: x.swapaxes(0, 2),
     (2, 3, 4), False),
    ("transpose the same axis twice", lambda x: x.transpose(1, -2), lambda x: x, (2, 3, 4), False),
    ("permute of a matrix in order", lambda x: x.permute(0, 1), lambda x: x, (3, 4), False),
    ("permute of a matrix reversed", lambda x: tt.permute(x, 1, 0), lambda x: x.T, (3, 4), False),
    (".T", lambda x: x.T, lambda x: x.T, (3, 4), False),
    ("swapaxes", lambda x: x.swapaxes(0, -1), lambda x: x.swapaxes(0, -1), (2, 3, 4), False),
    ("squeeze all", lambda x: x.squeeze(), lambda x: x.squeeze(), (1, 3, 1, 2), False),
    ("squeeze one", lambda x: x.squeeze(-2), lambda x: x.squeeze(-2), (1, 3, 1, 2), False),
    ("squeeze size>1 is a no-op", lambda x: x.squeeze(1), lambda x: x, (2, 3), False),
    ("unsqueeze", lambda x: x.unsqueeze(1), lambda x: x[:, None], (2, 3), False),
    ("unsqueeze end", lambda x: x.unsqueeze(-1), lambda x: x[..., None], (2, 3), False),
    ("broadcast_to", lambda x: x.broadcast_to((4, 2, 3)), lambda x: np.broadcast_to(x, (4, 2, 3)),
     (2, 1), True),
    ("expand", lambda x: x.expand(2, -1, 3), lambda x: np.broadcast_to(x, (2, 4, 3)), (4, 1), False),
    ("expand tuple", lambda x: x.expand((3, 2)), lambda x: np.broadcast_to(x, (3, 2)), (1, 2), False),
    ("contiguous of transpose", lambda x: x.T.contiguous(), lambda x: x.T, (3, 4), False),
    ("pad last axis", lambda x: tt.pad(x, (1, 2)), lambda x: np.pad(x, ((0, 0), (1, 2))), (2, 3), True),
    ("pad two axes with value", lambda x: tt.pad(x, (0, 1, 2, 0), value=-1.5),
     lambda x: np.pad(x, ((0, 0), (2, 0), (0, 1)), constant_values=-1.5), (2, 2, 3), False),
    ("pad negative crops", lambda x: tt.pad(x, (-1, 2, 1, -1)),
     lambda x: np.pad(x[:-1, 1:], ((1, 0), (0, 2))), (3, 4), True),
    # NumPy's reflect, edge and wrap are PyTorch's reflect, replicate and circular.
    ("pad reflect", lambda x: tt.pad(x, (2, 3, 1, 0), mode="reflect"),
     lambda x: np.pad(x, ((0, 0), (1, 0), (2, 3)), mode="reflect"), (2, 3, 5), True),
    ("pad replicate", lambda x: tt.pad(x, (3, 1, 2, 2), mode="replicate"),
     lambda x: np.pad(x, ((2, 2), (3, 1)), mode="edge"), (3, 2), True),
    ("pad circular", lambda x: tt.pad(x, (3, 2, 0, 1), mode="circular"),
     lambda x: np.pad(x, ((0, 0), (0, 1), (3, 2)), mode="wrap"), (1, 2, 3), True),
    ("pad reflect length 2", lambda x: tt.pad(x, (1, 1), mode="reflect"),
     lambda x: np.pad(x, ((0, 0), (1, 1)), mode="reflect"), (3, 2), False),
]


def squared(op):
    """op(...) ** 2: shape ops are linear, so their second derivative shows only inside a product."""
    return lambda *xs: op(*xs) ** 2


@pytest.mark.parametrize("name, op, reference, shape, second_order", UNARY, ids=[u[0] for u in UNARY])
def test_unary_shape_op(name, op, reference, shape, second_order, device, rng):
    x = rng.standard_normal(shape)
    check_op(op, reference, x, device=device)
    if second_order:
        check_op(squared(op), squared(reference), x, device=device, second_order=True)


def test_cat(device, rng):
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 1)), rng.standard_normal((2, 2))
    check_op(squared(lambda *xs: tt.cat(xs, axis=-1)), squared(lambda *xs: np.concatenate(xs, axis=-1)),
             a, b, c, device=device, second_order=True)
    check_op(lambda *xs: tt.cat(xs), lambda *xs: np.concatenate(xs), a, a[:1], device=device)


def test_stack(device, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for axis in (0, 1, -1):
        check_op(squared(lambda *xs: tt.stack(xs, axis)), squared(lambda *xs: np.stack(xs, axis)), a, b,
                 device=device, second_order=axis == -1)


def test_cat_only_some_inputs_need_grad(rng):
    a = tt.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    b = tt.tensor(rng.standard_normal((3, 2)))
    tt.cat([b, a]).sum().backward()
    assert b.grad is None
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 2)))


def test_cat_mixed_dtypes_returns_each_grad_in_its_dtype():
    a = tt.ones(2, dtype=tt.float32, requires_grad=True)
    b = tt.ones(3, dtype=tt.float64, requires_grad=True)
    y = tt.cat([a, b])
    assert y.dtype == tt.float64
    (y * tt.arange(5, dtype=tt.float64)).sum().backward()
    assert a.grad.dtype == tt.float32 and b.grad.dtype == tt.float64
    np.testing.assert_array_equal(b.grad.numpy(), [2, 3, 4])


@pytest.mark.parametrize("sections, axis, sizes", [
    (2, 0, [2, 2, 1]), (5, 0, [5]), (7, 0, [5]), ([1, 4], 0, [1, 4]), ([3, 0, 2], 0, [3, 0, 2]),
    (2, -1, [2, 1]),
])
def test_split(sections, axis, sizes, device, rng):
    x = rng.standard_normal((5, 3))
    along = 0 if axis == 0 else 1
    expected = np.split(x, np.cumsum(sizes)[:-1], axis=along)
    pieces = tt.split(tt.tensor(x, device=device), sections, axis)
    assert isinstance(pieces, tuple) and [p.shape[along] for p in pieces] == sizes
    for piece, want in zip(pieces, expected):
        np.testing.assert_array_equal(piece.numpy(), want)
    assert tt.gradcheck(lambda t: tt.split(t, sections, axis), [tt.tensor(x, requires_grad=True,
                                                                          device=device)])


@pytest.mark.parametrize("length, chunks, sizes", [(6, 3, [2, 2, 2]), (5, 2, [3, 2]), (6, 4, [2, 2, 2]),
                                                   (2, 5, [1, 1])])
def test_chunk_follows_pytorch(length, chunks, sizes, device):
    x = tt.arange(length, device=device).float().requires_grad_()
    pieces = x.chunk(chunks)
    assert [p.shape[0] for p in pieces] == sizes
    np.testing.assert_array_equal(np.concatenate([p.detach().numpy() for p in pieces]), np.arange(length))
    assert tt.gradcheck(lambda t: tt.chunk(t, chunks), [x])


def test_split_method_and_chunk_axis(rng):
    x = tt.tensor(rng.standard_normal((2, 6)))
    q, k, v = x.chunk(3, axis=-1)
    np.testing.assert_array_equal(k.numpy(), x.numpy()[:, 2:4])
    assert [p.shape for p in x.split([4, 2], axis=1)] == [(2, 4), (2, 2)]


def test_pad_gradient_is_crop_of_grad():
    x = tt.ones(2, 2, requires_grad=True)
    y = tt.pad(x, (1, 1, 1, 1))
    weights = tt.arange(16).float().reshape(4, 4)
    (y * weights).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[5, 6], [9, 10]])


def test_pad_zero_widths_is_identity():
    x = tt.ones(2, 3)
    assert tt.pad(x, (0, 0)) is x


def test_contiguous_returns_self_when_already_c_ordered():
    x = tt.ones(3, 4)
    assert x.contiguous() is x
    y = x.T.contiguous()
    assert y.data.flags.c_contiguous and y.shape == (4, 3)


def test_views_share_the_version_counter():
    """Writing into a view of a saved tensor makes backward raise, as writing into the tensor would."""
    w = tt.ones(3, requires_grad=True)
    x = tt.tensor([1.0, 2.0, 3.0, 4.0])
    y = w * x[:3]                      # Mul saves the (3,) view x[:3]
    with tt.no_grad():
        part = x.reshape(2, 2)[0]      # a view of a view: the same memory as x
        part += 10.0
    assert x.numpy()[0] == 11.0
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_copies_do_not_share_the_version_counter():
    x = tt.ones(2, 3)
    y = x.T.reshape(-1)                # reshape of a transpose must copy
    assert y._version is not x._version


def test_transpose_of_two_axes_swaps_them_as_pytorch(device):
    matrix = tt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device=device)
    assert matrix.transpose(0, 1).tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]   # not NumPy's identity
    assert matrix.transpose(0, 1).tolist() == matrix.transpose(1, 0).tolist() == matrix.T.tolist()
    cube = tt.arange(6, device=device).reshape(1, 2, 3)       # cube[0, i, j] = 3 i + j
    assert cube.transpose(0, 2).tolist() == [[[0], [3]], [[1], [4]], [[2], [5]]]
    assert cube.transpose(-1, -2).shape == (1, 3, 2) and cube.transpose(-1, -2)[0, 2, 1].item() == 5
    assert cube.transpose(2, 0, 1).shape == (3, 1, 2)         # three axes: a permutation, as NumPy
    assert cube.transpose(0, 2)._version is cube._version       # a view, like every transpose


def test_second_derivative_through_reshape_and_transpose(device, rng):
    """d2/dx2 of sum((x^T reshaped)^3) is 6x: the shape ops must pass the graph through backward."""
    x = tt.tensor(rng.standard_normal((2, 3)), dtype=tt.float64, device=device, requires_grad=True)
    y = (x.T.reshape(-1) ** 3).sum()
    (g,) = tt.grad(y, x, create_graph=True)
    (gg,) = tt.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 6 * x.detach().numpy())


# ----------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("call, message", [
    (lambda x: x.reshape(4, 5), r"shape \(2, 3, 4\).*into shape \(4, 5\)"),
    (lambda x: x.reshape(-1, -1), r"at most one -1"),
    (lambda x: x.view(5, -1), r"\(2, 3, 4\).*\(5, -1\)"),
    (lambda x: x.transpose(0, 2, 2), r"transpose: axes \(0, 2, 2\) are not a permutation.*transpose\(a, b\)"),
    (lambda x: x.transpose(3, 1, 0), r"not a permutation"),
    (lambda x: x.transpose(0, 3), r"transpose: axis 3 is out of range"),
    (lambda x: x.permute(1, 0), r"permute: axes \(1, 0\) are not a permutation of the 3 axes"),
    (lambda x: x.permute(0, 0, 1), r"not a permutation"),
    (lambda x: x.swapaxes(0, 3), r"swapaxes: axis 3 is out of range"),
    (lambda x: x.unsqueeze(4), r"unsqueeze: axis 4 is out of range.*-4 to 3"),
    (lambda x: x.flatten(2, 1), r"start_axis 2 comes after end_axis 1"),
    (lambda x: x.expand(2, 5, 4), r"cannot be broadcast to \(2, 5, 4\)"),
    (lambda x: x.expand(3, 4), r"expand: cannot expand shape \(2, 3, 4\) to \(3, 4\)"),
    (lambda x: x.expand(-1, 2, 3, 4), r"-1 only for existing axes"),
    (lambda x: x.broadcast_to((3, 4)), r"\(2, 3, 4\) cannot be broadcast to \(3, 4\)"),
    (lambda x: tt.cat([x, tt.ones(2, 2, 4)], axis=0), r"tensor 1 has shape \(2, 2, 4\).*\(2, 3, 4\).*axis 0"),
    (lambda x: tt.cat([x, tt.ones(2, 3)]), r"tensor 1 has shape \(2, 3\)"),
    (lambda x: tt.cat([x], axis=3), r"cat: axis 3 is out of range"),
    (lambda x: tt.cat([]), r"non-empty"),
    (lambda x: tt.stack([x, tt.ones(2, 3, 5)], axis=1), r"tensor 1 has shape \(2, 3, 5\).*axis 1"),
    (lambda x: tt.stack([x], axis=4), r"stack: axis 4 is out of range"),
    (lambda x: x.split([1, 2], axis=2), r"sizes \[1, 2\] add up to 3.*axis 2.*length 4"),
    (lambda x: x.split(0), r"split_size must be positive"),
    (lambda x: x.chunk(0), r"chunks must be positive"),
    (lambda x: tt.pad(x, (1,)), r"pairs"),
    (lambda x: tt.pad(x, (1, 1) * 4), r"at most the 3 axes"),
    (lambda x: tt.pad(x, (-3, -2)), r"negative length"),
    (lambda x: tt.pad(x, (1, 1), mode="symmetric"), r"mode must be one of"),
    (lambda x: tt.pad(x, (4, 0), mode="reflect"), r"reflect.*at most 3 here \(the axis has length 4\).*\(4, 0\)"),
    (lambda x: tt.pad(x, (0, 0, 0, 4), mode="circular"), r"at most 3.*axis 1 of a tensor of shape \(2, 3, 4\)"),
    (lambda x: tt.pad(x, (-1, 0), mode="replicate"), r"replicate.*non-negative widths"),
])
def test_shape_errors_name_the_values(call, message):
    x = tt.ones(2, 3, 4)
    with pytest.raises(ValueError, match=message):
        call(x)


def test_cat_refuses_non_tensors():
    with pytest.raises(TypeError, match="element 1 is a ndarray, not a Tensor"):
        tt.cat([tt.ones(2), np.ones(2)])


def test_pad_reflect_gradient_gathers_every_copy(device):
    """[a b c] -> [c b | a b c | b a]: b is copied three times, c and a twice."""
    x = tt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = tt.pad(x, (2, 2), mode="reflect")
    assert y.tolist() == [3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 3.0, 2.0]


@pytest.mark.cuda
def test_cat_device_mismatch_is_named():
    with pytest.raises(RuntimeError, match="device mismatch"):
        tt.cat([tt.ones(2), tt.ones(2, device="cuda")])


def test_functional_pad_takes_pytorchs_argument_order():
    # PyTorch: F.pad(input, pad, mode="constant", value=None); tt.pad's third argument is the value.
    from tinytensor import nn
    x = tt.tensor([[1.0, 2.0, 3.0]])
    assert nn.functional.pad(x, (1, 1), "reflect").tolist() == [[2.0, 1.0, 2.0, 3.0, 2.0]]
    assert nn.functional.pad(x, (1, 1)).tolist() == [[0.0, 1.0, 2.0, 3.0, 0.0]]
    assert nn.functional.pad(x, (1, 0), "constant", 5.0).tolist() == [[5.0, 1.0, 2.0, 3.0]]
    with pytest.raises(TypeError, match=r"value must be a number, got 'reflect'; name the mode"):
        tt.pad(x, (1, 1), "reflect")
