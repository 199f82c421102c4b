"""scaled_dot_product_attention against a NumPy reference: no mask, bool mask, float mask, causal."""
import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op


def attention_reference(q, k, v, allowed=None, added=None, scale=None):
    scores = q @ k.swapaxes(-1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    if added is not None:
        scores = scores + added
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True) @ v


@pytest.fixture
def qkv(rng):
    return rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 2))


def test_attention_plain_and_scale(device, qkv):
    check_op(lambda q, k, v: tt.scaled_dot_product_attention(q, k, v, scale=0.3),
             lambda q, k, v: attention_reference(q, k, v, scale=0.3), *qkv, device=device)


def test_attention_bool_mask(device, rng, qkv):
    allowed = rng.random((3, 5)) > 0.4
    allowed[:, 0] = True
    mask = tt.tensor(allowed, device=device)
    check_op(lambda q, k, v: tt.scaled_dot_product_attention(q, k, v, attn_mask=mask),
             lambda q, k, v: attention_reference(q, k, v, allowed=allowed), *qkv, device=device)


def test_attention_float_mask_is_added(device, rng, qkv):
    added = rng.standard_normal((2, 3, 5))
    check_op(lambda q, k, v, m: tt.scaled_dot_product_attention(q, k, v, attn_mask=m),
             lambda q, k, v, m: attention_reference(q, k, v, added=m), *qkv, added, device=device)


def test_attention_causal(device, rng):
    q, k, v = (rng.standard_normal((1, 2, 4, 3)) for _ in range(3))
    out = check_op(lambda q, k, v: tt.scaled_dot_product_attention(q, k, v, is_causal=True),
                   lambda q, k, v: attention_reference(q, k, v, allowed=np.tril(np.ones((4, 4), bool))),
                   q, k, v, device=device)
    np.testing.assert_allclose(out.detach().numpy()[..., 0, :], v[..., 0, :])   # the first query sees key 0 only


def test_fully_masked_rows_give_zeros_not_nan(device, qkv):
    allowed = np.ones((3, 5), bool)
    allowed[1] = False
    q, k, v = (tt.tensor(a, device=device, requires_grad=True) for a in qkv)
    out = tt.scaled_dot_product_attention(q, k, v, attn_mask=tt.tensor(allowed, device=device))
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy()[:, 1], 0)
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()
    np.testing.assert_array_equal(q.grad.numpy()[:, 1], 0)


def test_attention_dropout_keeps_expectation_and_zeroes_some(device):
    q = tt.zeros(1, 200, 4, device=device)
    v = tt.ones(1, 8, 1, device=device)
    out = tt.scaled_dot_product_attention(q, tt.zeros(1, 8, 4, device=device), v, dropout_p=0.5).numpy()
    assert 0.8 < out.mean() < 1.2 and out.std() > 0.05   # uniform weights 1/8, half dropped, rest doubled


def test_attention_errors():
    with pytest.raises(ValueError, match=r"q \(2, 3\) and k \(2, 4\) must share the last axis"):
        tt.scaled_dot_product_attention(tt.zeros(2, 3), tt.zeros(2, 4), tt.zeros(2, 4))
    with pytest.raises(ValueError, match="not both"):
        tt.scaled_dot_product_attention(tt.zeros(2, 3), tt.zeros(2, 3), tt.zeros(2, 3),
                                        attn_mask=tt.ones(2, 2), is_causal=True)


def test_attention_dropout_values_and_gradients_under_a_fixed_seed(device, qkv):
    """Reseeding before each call fixes the dropout mask, so gradcheck can compare against it."""
    q, k, v = qkv

    def attend(q, k, v):
        tt.manual_seed(7)
        return tt.scaled_dot_product_attention(q, k, v, dropout_p=0.3)

    def reference(q, k, v):
        tt.manual_seed(7)    # the same draws dropout makes: uniform (2, 3, 5) in the scores' dtype
        keep = tt.rand(2, 3, 5, dtype=tt.float64, device=device).numpy() >= 0.3
        scores = q @ k.swapaxes(-1, -2) / 2.0
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        return (weights * keep / 0.7) @ v

    check_op(attend, reference, q, k, v, device=device)


def test_float_mask_rows_of_minus_infinity_give_zeros_not_nan(device, qkv):
    """-inf in a float mask masks like False in a bool one: a row of them attends to nothing."""
    added = np.zeros((3, 5))
    added[0, 2:] = -np.inf
    added[1] = -np.inf
    q, k, v = (tt.tensor(a, device=device, requires_grad=True) for a in qkv)
    out = tt.scaled_dot_product_attention(q, k, v, attn_mask=tt.tensor(added, device=device))
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy()[:, 1], 0)
    np.testing.assert_allclose(out.detach().numpy()[:, 0],
                               attention_reference(*qkv, added=added[:1])[:, 0], rtol=1e-6)
    assert all(np.isfinite(t.grad.numpy()).all() for t in (q, k, v))
