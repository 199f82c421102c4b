"""Fused Functions against their plain versions built from primitives: same values, same gradients
(first and second order), in float32 and float64."""
import numpy as np
import pytest

import tinytensor as tt
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
