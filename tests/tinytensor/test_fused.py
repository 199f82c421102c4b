"""Fused Functions against their plain versions built from primitives: same values, same gradients
(first and second order), in float32 and float64."""
import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn
from tinytensor.ops.loss import cross_entropy_composite
from tinytensor.ops.nn import layer_norm_composite, linear_composite


def outputs_and_grads(fn, arrays, device, dtype, second_order=False):
    """fn's output, the gradients of a weighted sum of it, and (optionally) gradients of those grads."""
    inputs = [tt.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    weights = tt.tensor(np.random.default_rng(7).standard_normal(out.shape), dtype=dtype, device=device)
    grads = tt.grad((out * weights).sum(), inputs, create_graph=second_order, allow_unused=True)
    results = [out.detach().numpy()] + [g.detach().numpy() for g in grads if g is not None]
    if second_order:
        total = sum((g * g).sum() for g in grads if g is not None)
        results += [g.detach().numpy() for g in tt.grad(total, inputs, allow_unused=True) if g is not None]
    return results


def assert_agree(fused, plain, arrays, device, second_order=False):
    for dtype, tolerance in ((tt.float64, 1e-10), (tt.float32, 2e-5)):
        got = outputs_and_grads(fused, arrays, device, dtype, second_order and dtype == tt.float64)
        want = outputs_and_grads(plain, arrays, device, dtype, second_order and dtype == tt.float64)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)


def test_linear_fused_matches_composite(device, rng):
    arrays = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    assert_agree(tt.linear, linear_composite, arrays, device, second_order=True)


def test_layer_norm_fused_matches_composite(device, rng):
    arrays = rng.standard_normal((3, 2, 6)), rng.standard_normal(6), rng.standard_normal(6)
    assert_agree(lambda x, w, b: tt.layer_norm(x, 6, w, b), lambda x, w, b: layer_norm_composite(x, 6, w, b),
                 arrays, device, second_order=True)


@pytest.mark.parametrize("kwargs", [
    {},
    {"reduction": "sum"},
    {"reduction": "none", "label_smoothing": 0.3},
    {"ignore_index": 2, "label_smoothing": 0.1},
    {"weight": [0.5, 2.0, 1.0, 0.1], "ignore_index": 2, "reduction": "mean", "label_smoothing": 0.2},
])
def test_cross_entropy_fused_matches_composite(device, rng, kwargs):
    target = tt.tensor([0, 2, 3, 1, 2, 3], device=device)
    kwargs = dict(kwargs)
    if "weight" in kwargs:
        kwargs["weight"] = tt.tensor(kwargs["weight"], device=device)
    assert_agree(lambda z: tt.cross_entropy(z, target, **kwargs),
                 lambda z: cross_entropy_composite(z, target, **kwargs), [rng.standard_normal((6, 4)) * 3],
                 device, second_order=True)


def test_cross_entropy_fused_matches_composite_spatial(device, rng):
    target = tt.tensor(rng.integers(0, 3, (2, 4, 2)), device=device)
    assert_agree(lambda z: tt.cross_entropy(z, target, label_smoothing=0.1, reduction="none"),
                 lambda z: cross_entropy_composite(z, target, label_smoothing=0.1, reduction="none"),
                 [rng.standard_normal((2, 3, 4, 2))], device)


# ----------------------------------------------------------------------------------- fast kernels
# Each in-place twin in tinytensor/ops/fast.py (and the optimizers' in-place updates) against the plain
# formula that the same forward runs inside `tt.ops.fast.disabled()`.

FAST_FORWARDS = {
    "sigmoid": tt.sigmoid,
    "softplus": tt.softplus,
    "softplus_beta": lambda x: tt.softplus(x, beta=2.0, threshold=3.0),
    "gelu": tt.gelu,
    "gelu_tanh": lambda x: tt.gelu(x, approximate="tanh"),
    "softmax": lambda x: tt.softmax(x, 0),
    "softmax_last_axis": lambda x: tt.softmax(x, -1),
}


@pytest.mark.parametrize("dtype", [tt.float64, tt.float32])
@pytest.mark.parametrize("name", FAST_FORWARDS)
def test_fast_kernel_matches_its_plain_formula(name, dtype, device, rng):
    op = FAST_FORWARDS[name]
    x = rng.standard_normal((3, 4, 5)) * 4
    x[0, 0, :] = [-100.0, -30.0, 0.0, 30.0, 100.0]              # far tails: overflow handled the same
    inputs = [tt.tensor(x, dtype=dtype, device=device, requires_grad=True) for _ in range(2)]
    fast_y = op(inputs[0])
    with tt.ops.fast.disabled():
        assert not tt.ops.fast.enabled()
        plain_y = op(inputs[1])
    assert tt.ops.fast.enabled()
    assert fast_y.dtype == plain_y.dtype == dtype
    tolerance = 1e-14 if dtype == tt.float64 else 1e-6
    np.testing.assert_allclose(fast_y.detach().numpy(), plain_y.detach().numpy(), rtol=tolerance,
                               atol=tolerance)
    for y in (fast_y, plain_y):
        (y * y).sum().backward()
    np.testing.assert_allclose(inputs[0].grad.numpy(), inputs[1].grad.numpy(), rtol=10 * tolerance,
                               atol=10 * tolerance)


@pytest.mark.parametrize("make", [
    lambda ps: nn.optim.SGD(ps, lr=0.1),
    lambda ps: nn.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: nn.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.3),
    lambda ps: nn.optim.Adam(ps, lr=0.01),
    lambda ps: nn.optim.Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    lambda ps: nn.optim.AdamW(ps, lr=0.01, betas=(0.8, 0.99)),
])
def test_optimizer_in_place_update_matches_its_formula(make, device, rng):
    """Five steps with random gradients: the in-place update with its scratch array (the default) and
    the plain formula give the same parameters and state."""
    start = rng.standard_normal((2, 12)), rng.standard_normal(4)
    grads = [[rng.standard_normal(a.shape) for a in start] for _ in range(5)]
    results = []
    for plain in (False, True):
        params = [nn.Parameter(tt.tensor(a, dtype=tt.float64, device=device)) for a in start]
        optimizer = make(params)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = tt.tensor(g, dtype=tt.float64, device=device)
            if plain:
                with tt.ops.fast.disabled():
                    optimizer.step()
            else:
                optimizer.step()
        state = [v for p in params for v in optimizer.state.get(p, {}).values() if hasattr(v, "shape")]
        results.append([p.detach().numpy() for p in params] + [tt.tensor(v).numpy() for v in state])
    assert len(results[0]) == len(results[1]) >= 2
    for fast_value, plain_value in zip(*results):
        np.testing.assert_allclose(fast_value, plain_value, rtol=1e-13, atol=1e-15)
