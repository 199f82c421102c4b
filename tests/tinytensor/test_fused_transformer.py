"""The fused transformer kernels (tinytensor/ops/nn.py) agree with their plain versions, forward and
backward, and pass gradcheck on their own."""
import numpy as np
import pytest

import tinytensor as tt


def _values_and_grads(fn, *arrays, device="cpu"):
    tensors = [tt.tensor(a, device=device, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = tt.tensor(np.random.default_rng(9).standard_normal(out.shape), dtype=out.dtype, device=device)
    (out * weights).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def _plain_causal(q, k, v):
    """The plain version: query i is position S - L + i (is_causal when L == S)."""
    L, S = q.shape[-2], k.shape[-2]
    if L == S:
        return tt.scaled_dot_product_attention(q, k, v, is_causal=True)
    allowed = np.arange(S)[None, :] <= np.arange(S - L, S)[:, None]
    return tt.scaled_dot_product_attention(q, k, v, attn_mask=tt.tensor(allowed))


@pytest.mark.parametrize("shapes", [((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 6)),   # batch, heads, L = S
                                    ((4, 2), (7, 2), (7, 3)),                      # 4 queries after 3 cached keys
                                    ((2, 1, 3), (2, 6, 3), (2, 6, 2))])            # one new query (decoding)
def test_causal_attention_fused_matches_plain(rng, shapes):
    q, k, v = (rng.standard_normal(s) for s in shapes)
    fused = _values_and_grads(tt.causal_attention_fused, q, k, v)
    plain = _values_and_grads(_plain_causal, q, k, v)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    qt, kt, vt = (tt.tensor(a, requires_grad=True) for a in (q, k, v))
    assert tt.gradcheck(tt.causal_attention_fused, (qt, kt, vt))


def test_gelu_tanh_fused_matches_plain(rng):
    x = rng.standard_normal((3, 17)) * 3
    for a, b in zip(_values_and_grads(tt.gelu_tanh_fused, x),
                    _values_and_grads(lambda x: tt.gelu(x, approximate="tanh"), x)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert tt.gradcheck(tt.gelu_tanh_fused, (tt.tensor(x, requires_grad=True),))


def test_fused_kernels_refuse_second_derivatives_and_bad_shapes():
    x = tt.randn(4, dtype=tt.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable"):
        tt.grad(tt.gelu_tanh_fused(x).sum(), x, create_graph=True)
    with pytest.raises(ValueError, match="causal_attention_fused"):
        tt.causal_attention_fused(tt.randn(2, 3, 4), tt.randn(2, 5, 3), tt.randn(2, 5, 4))
    with pytest.raises(ValueError, match="L <= S"):
        tt.causal_attention_fused(tt.randn(4, 2), tt.randn(3, 2), tt.randn(3, 2))


@pytest.mark.cuda
def test_fused_kernels_on_cuda_match_cpu(rng):
    q, k, v = (rng.standard_normal((2, 2, 5, 4)) for _ in range(3))
    for a, b in zip(_values_and_grads(tt.causal_attention_fused, q, k, v, device="cuda"),
                    _values_and_grads(tt.causal_attention_fused, q, k, v)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    x = rng.standard_normal((3, 7))
    for a, b in zip(_values_and_grads(tt.gelu_tanh_fused, x, device="cuda"), _values_and_grads(tt.gelu_tanh_fused, x)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
