"""Reductions and softmax: forward against NumPy, first and second derivatives (float64) over int,
tuple, negative and None axes with and without keepdims; ties; stability for huge logits; errors."""
import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op

AXES = [None, 0, -1, (0, 2), (-1, 1), ()]


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis) if axis is not None else y.reshape(())


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def distinct(rng, shape):
    """Random values with no ties (a permutation, spread out), so max/min are differentiable."""
    return rng.permutation(np.prod(shape, dtype=int)).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)


def unbiased(np_op):
    return lambda x, axis, keepdims: np_op(x, axis=axis, keepdims=keepdims, ddof=1)


REDUCTIONS = {
    "sum": (tt.sum, np.sum),
    "mean": (lambda x, axis, keepdims: x.mean(axis, keepdims), np.mean),
    "var": (tt.var, unbiased(np.var)),                         # unbiased by default, as PyTorch
    "var_population": (lambda x, axis, keepdims: tt.var(x, axis, keepdims, ddof=0), np.var),
    "std": (lambda x, axis, keepdims: x.std(axis, keepdims), unbiased(np.std)),
    "std_population": (lambda x, axis, keepdims: x.std(axis, keepdims, correction=0), np.std),
    "max": (tt.max, np.max),
    "min": (lambda x, axis, keepdims: x.min(axis=axis, keepdims=keepdims), np.min),
    "logsumexp": (tt.logsumexp, np_logsumexp),
}


# With axis=() each output is one element: the unbiased var and std have no degrees of freedom there, so
# those pairs are left out. (std_population there has zero spread: its gradient is 0, and so are the
# finite differences.)
REDUCTION_CASES = [(name, axis) for name in REDUCTIONS for axis in AXES
                   if not (name in ("var", "std") and axis == ())]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name, axis", REDUCTION_CASES, ids=str)
def test_reduction(name, axis, keepdims, device, rng):
    op, reference = REDUCTIONS[name]
    x = distinct(rng, (2, 3, 2))
    out = check_op(lambda x: op(x, axis=axis, keepdims=keepdims),
                   lambda x: reference(x, axis=axis, keepdims=keepdims), x, device=device,
                   second_order=True)
    assert out.shape == np.sum(x, axis=axis, keepdims=keepdims).shape


@pytest.mark.parametrize("name", ["sum", "mean", "max", "logsumexp", "var_population"])
def test_reduction_of_a_size_one_axis_and_0d(name, device, rng):
    op, reference = REDUCTIONS[name]
    x = rng.standard_normal((3, 1))
    check_op(lambda x: op(x, axis=1, keepdims=False), lambda x: reference(x, axis=1, keepdims=False), x,
             device=device, second_order=True)
    scalar = op(tt.tensor(2.0, device=device), axis=None, keepdims=False)
    assert scalar.shape == ()


@pytest.mark.parametrize("op", [tt.softmax, tt.log_softmax])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_family(op, axis, device, rng):
    reference = np_softmax if op is tt.softmax else lambda x, axis: np.log(np_softmax(x, axis))
    check_op(lambda x: op(x, axis=axis), lambda x: reference(x, axis), rng.standard_normal((2, 3, 2)),
             device=device, second_order=True)


def test_softmax_agrees_with_composite_from_primitives(device, rng):
    """The single Functions agree with exp(x - logsumexp(x)), values and gradients, first and second order."""
    x = tt.tensor(rng.standard_normal((3, 4)), dtype=tt.float64, device=device, requires_grad=True)
    weights = tt.tensor(rng.standard_normal((3, 4)), dtype=tt.float64, device=device)
    def composite_log_softmax(x):
        return x - x.logsumexp(axis=-1, keepdims=True)

    for fused, composite in [(tt.log_softmax(x), composite_log_softmax(x)),
                             (tt.softmax(x), composite_log_softmax(x).exp())]:
        np.testing.assert_allclose(fused.detach().numpy(), composite.detach().numpy(), rtol=1e-12, atol=1e-15)
        fused_grad, = tt.grad((fused * weights).sum(), x, create_graph=True)
        composite_grad, = tt.grad((composite * weights).sum(), x, create_graph=True)
        np.testing.assert_allclose(fused_grad.detach().numpy(), composite_grad.detach().numpy(), rtol=1e-12,
                                   atol=1e-15)
        fused_second, = tt.grad((fused_grad * fused_grad).sum(), x)
        composite_second, = tt.grad((composite_grad * composite_grad).sum(), x)
        np.testing.assert_allclose(fused_second.numpy(), composite_second.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [tt.float32, tt.float64])
def test_huge_logits_stay_finite(dtype, device):
    logits = [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4]]
    x = tt.tensor(logits, dtype=dtype, device=device, requires_grad=True)
    for fn in (tt.softmax, tt.log_softmax, lambda x: x.logsumexp(axis=-1)):
        x.grad = None
        y = fn(x)
        (y * tt.tensor([[1.0, 2.0, 3.0]], dtype=dtype, device=device)).sum().backward() if y.ndim == 2 \
            else y.sum().backward()
        assert np.all(np.isfinite(y.detach().numpy())) and np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(tt.softmax(x).detach().numpy(), [[1, 0, 0], [1 / 3] * 3, [1 / 3] * 3], atol=1e-6)
    np.testing.assert_allclose(tt.log_softmax(x).detach().numpy()[0], [0, -2e4, -1e4])
    np.testing.assert_allclose(x.logsumexp(axis=1).detach().numpy(), [1e4, -1e4 + np.log(3), 1e4 + np.log(3)],
                               rtol=1e-6)


def test_logsumexp_of_all_minus_infinity_is_minus_infinity():
    assert tt.logsumexp(tt.tensor([-np.inf, -np.inf])).item() == -np.inf


def test_max_min_split_ties_evenly(device):
    x = tt.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], device=device, requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    x.min().backward()        # the three 2.0 and the 1.0: the 1.0 alone is the min
    np.testing.assert_allclose(x.grad.numpy(), [[1, 0, 0], [0, 0, 0]])
    x.grad = None
    x.max(axis=0, keepdims=True).backward(tt.ones(1, 3, device=device))
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1, 1], [1, 0, 0]])


def test_argmax_argmin(device, rng):
    data = rng.standard_normal((3, 4))
    x = tt.tensor(data, device=device)
    for fn, reference in [(tt.argmax, np.argmax), (lambda x, **k: x.argmin(**k), np.argmin)]:
        for kwargs in [{}, {"axis": 0}, {"axis": -1}, {"axis": 1, "keepdims": True}]:
            index = fn(x, **kwargs)
            assert index.dtype == tt.int64 and not index.requires_grad
            np.testing.assert_array_equal(index.numpy(), reference(data, **kwargs))
    assert tt.argmax(tt.tensor([1.0, 5.0, 5.0])).item() == 1     # the first on ties


def test_sum_to_inverts_broadcasting(device, rng):
    x = tt.tensor(rng.standard_normal((4, 2, 3)), device=device)
    for shape in [(2, 3), (1, 3), (2, 1), (3,), (), (4, 1, 1), (4, 2, 3)]:
        np.testing.assert_allclose(x.sum_to(shape).numpy(),
                                   np.sum(x.numpy(), axis=tuple(range(3 - len(shape)))).sum(
                                       axis=tuple(i for i, n in enumerate(shape) if n == 1),
                                       keepdims=True).reshape(shape), rtol=1e-6)


def test_var_std_known_values(device):
    # [1, 2, 3, 4]: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; divided by n - 1 = 3
    # (the default, as PyTorch) or by n = 4 (correction=0, NumPy's default)
    x = tt.tensor([[1.0, 2.0, 3.0, 4.0]], device=device)
    assert x.var().item() == pytest.approx(5 / 3)
    assert x.std(axis=1).item() == pytest.approx(1.2909944)
    for population in [dict(ddof=0), dict(correction=0), dict(unbiased=False)]:
        assert x.var(**population).item() == pytest.approx(1.25)
        assert x.std(axis=-1, **population).item() == pytest.approx(1.1180340)
    assert tt.std(x, dim=1, unbiased=True).item() == pytest.approx(1.2909944)
    assert tt.var(x, correction=2).item() == pytest.approx(5 / 2)


@pytest.mark.parametrize("shape, axis", [((1, 3), 0), ((4,), None), ((2, 5), 1)])
def test_std_without_spread_has_zero_gradient(shape, axis, device):
    """An axis of length 1 or a constant input: zero gradient (PyTorch's convention), not NaN."""
    x = tt.full(shape, 2.5, dtype=tt.float64, device=device, requires_grad=True)
    (first,) = tt.grad(x.std(axis, correction=0).sum(), x, create_graph=True)
    assert first.tolist() == np.zeros(shape).tolist()
    (second,) = tt.grad((first * first).sum() + first.sum(), x, allow_unused=True)
    assert second is None or second.tolist() == np.zeros(shape).tolist()


def test_std_gradient_beside_a_flat_row_is_still_right(device, rng):
    x = rng.standard_normal((3, 4))
    x[1] = 0.7                                                  # one row without spread
    check_op(lambda x: x.std(axis=1, ddof=1), lambda x: np.std(x, axis=1, ddof=1), x, device=device)


def test_mean_of_nothing_is_nan_without_a_warning(device, recwarn):
    assert np.isnan(tt.zeros(0, device=device).mean().item())
    assert np.isnan(tt.zeros(3, 0, device=device).mean(axis=1).numpy()).all()
    x = tt.zeros(0, 2, device=device, requires_grad=True)
    x.mean(axis=0).sum().backward()
    assert x.grad.shape == (0, 2)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_mean_gradient_is_one_over_count(device):
    x = tt.ones(2, 5, device=device, requires_grad=True)
    x.mean(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 5), 0.2))


def test_reduction_errors(device):
    x = tt.ones(2, 3, device=device)
    with pytest.raises(ValueError, match="axis 2 is out of range for a tensor with 2 dimension"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="axis -3 is out of range"):
        tt.softmax(x, axis=-3)
    with pytest.raises(TypeError, match="softmax: axis must be an int"):
        tt.softmax(x, axis=(0, 1))
    with pytest.raises(ValueError, match=r"max: cannot reduce a tensor of shape \(0, 3\) over axes \(0,\)"):
        tt.zeros(0, 3, device=device).max(axis=0)
    with pytest.raises(ValueError, match=r"ddof=1 leaves no degrees of freedom .*ddof=0 \(correction=0\)"):
        tt.ones(3, 1, device=device).var(axis=1)


def test_a_wrong_softmax_backward_is_caught(monkeypatch, rng):
    """A planted bug (forgetting the - sum(g * y) term) makes the gradient check fail."""
    from tinytensor.ops import reduce
    monkeypatch.setattr(reduce.Softmax, "backward",
                        staticmethod(lambda ctx, g: (ctx.saved_tensors[0] * g, None)))
    with pytest.raises(AssertionError):
        check_op(tt.softmax, np_softmax, rng.standard_normal((2, 3)))


def test_max_of_a_nan_sends_the_gradient_to_the_nan(device):
    # NaN propagates through max; PyTorch's x.max() gives the gradient to the NaN elements (shared evenly),
    # where looking for elements equal to the max would find none and divide by zero.
    nan = float("nan")
    x = tt.tensor([[1.0, nan, nan], [1.0, 2.0, 3.0]], dtype=tt.float64, device=device, requires_grad=True)
    tt.max(x).backward()
    assert x.grad.tolist() == [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]
    x.grad = None
    tt.min(x, axis=1).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]


def test_integer_sums_are_int64_as_pytorch(device):
    pixels = tt.tensor(np.array([200, 100, 1], dtype=np.uint8), device=device)
    assert pixels.sum().dtype == tt.int64 and pixels.sum().item() == 301                   # NumPy: uint64
    assert tt.tensor([True, True, False], device=device).sum(keepdims=True).dtype == tt.int64
    assert tt.tensor([1, 2], dtype=tt.int32, device=device).sum(axis=0).dtype == tt.int64


@pytest.mark.parametrize("op", [tt.softmax, tt.log_softmax])
def test_softmax_over_an_empty_axis_is_empty(device, op):
    # PyTorch returns an empty tensor; the max used for stability had nothing to reduce (a NumPy error).
    x = tt.zeros(2, 0, device=device, requires_grad=True)
    y = op(x, axis=1)
    assert y.shape == (2, 0)
    y.sum().backward()
    assert x.grad.shape == (2, 0)
    with tt.ops.fast.disabled():
        assert op(x, axis=1).shape == (2, 0)


def test_max_min_with_dim_return_values_and_indices_as_pytorch(device):
    x = tt.tensor([[3.0, 7.0, 7.0], [-2.0, 5.0, -4.0]], device=device, requires_grad=True)
    values, indices = x.max(dim=1)                              # a named tuple unpacks
    assert values.tolist() == [7.0, 5.0] and indices.tolist() == [1, 1]     # the first 7 on the tie
    low = x.min(dim=1)
    assert low.values.tolist() == [3.0, -4.0] and low.indices.tolist() == [0, 2]
    high = tt.max(x, dim=0)
    assert high.values.tolist() == [3.0, 7.0, 7.0] and high.indices.tolist() == [0, 0, 0]
    kept = tt.min(x, dim=-2, keepdim=True)
    assert kept.values.tolist() == [[-2.0, 5.0, -4.0]] and kept.indices.tolist() == [[1, 1, 1]]
    assert kept._fields == ("values", "indices") and kept[0] is kept.values
    assert indices.dtype == tt.int64 and not indices.requires_grad and values.requires_grad
    # values keep max's gradient rule: the tie in row 0 shares it evenly
    (grad,) = tt.grad(values.sum(), x)
    np.testing.assert_allclose(grad.numpy(), [[0, 0.5, 0.5], [0, 1, 0]])


def test_max_min_with_axis_return_the_values_only(device):
    x = tt.tensor([[3.0, 7.0, 7.0], [-2.0, 5.0, -4.0]], device=device)
    for values in (x.max(axis=1), x.max(1), tt.max(x, 1, keepdim=False)):
        assert isinstance(values, tt.Tensor) and values.tolist() == [7.0, 5.0]
    assert isinstance(tt.min(x, axis=0), tt.Tensor) and tt.min(x, axis=0).tolist() == [-2.0, 5.0, -4.0]
    assert x.max().item() == 7.0 and x.min(axis=(0, 1)).item() == -4.0


def test_max_min_with_dim_gradients(device, rng):
    x = tt.tensor(distinct(rng, (2, 3, 2)), dtype=tt.float64, device=device, requires_grad=True)
    for op in (lambda x: x.max(dim=1).values, lambda x: tt.min(x, dim=-1, keepdim=True).values):
        assert tt.gradcheck(op, (x,)) and tt.gradgradcheck(op, (x,))


def test_max_min_with_dim_on_nan_point_at_the_nan(device):
    x = tt.tensor([[1.0, np.nan, 3.0], [4.0, 0.0, 2.0]], device=device)
    for op, expected in [(tt.max, [1, 0]), (tt.min, [1, 1])]:
        values, indices = op(x, dim=1)
        assert np.isnan(values.numpy()[0]) and indices.tolist() == expected


def test_max_min_with_dim_errors():
    x = tt.ones(2, 3)
    with pytest.raises(TypeError, match=r"max: dim must be an int, got \(0, 1\)"):
        x.max(dim=(0, 1))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.min(dim=2)
    with pytest.raises(ValueError, match=r"max: cannot reduce a tensor of shape \(2, 0\)"):
        tt.zeros(2, 0).max(dim=1)
    with pytest.raises(ValueError, match=r"min: cannot reduce a tensor of shape \(2, 0\)"):
        tt.zeros(2, 0).min(dim=1)
