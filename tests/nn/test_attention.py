"""nn.MultiHeadAttention against a plain NumPy reference: self- and cross-attention, bool and float masks,
padding, fully masked rows; gradients by finite differences in float64; PyTorch's names and init."""
import math

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn


def mha_reference(query, key, value, params, heads, blocked=None, added=None):
    """out (B, L, E) and per-head weights (B, H, L, S); blocked: True = may not attend (broadcast to
    (B, H, L, S)); added: float added to the scores. A row with nothing allowed gets zero weights."""
    e = query.shape[-1]
    if "in_proj_weight" in params:
        w_q, w_k, w_v = np.split(params["in_proj_weight"], 3)
    else:
        w_q, w_k, w_v = params["q_proj_weight"], params["k_proj_weight"], params["v_proj_weight"]
    b_q, b_k, b_v = np.split(params.get("in_proj_bias", np.zeros(3 * e)), 3)

    def heads_of(x, w, b):                                 # (B, T, E) -> (B, H, T, D)
        y = x @ w.T + b
        return y.reshape(y.shape[0], y.shape[1], heads, -1).transpose(0, 2, 1, 3)

    q, k, v = heads_of(query, w_q, b_q), heads_of(key, w_k, b_k), heads_of(value, w_v, b_v)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(e // heads)
    if added is not None:
        scores = scores + added
    allowed = np.isfinite(scores)
    if blocked is not None:
        allowed &= ~np.broadcast_to(blocked, scores.shape)
    scores = np.where(allowed, scores, -1e300)
    weights = np.exp(scores - scores.max(-1, keepdims=True)) * allowed
    weights = np.divide(weights, weights.sum(-1, keepdims=True), out=np.zeros_like(weights),
                        where=weights.sum(-1, keepdims=True) > 0)
    merged = (weights @ v).transpose(0, 2, 1, 3).reshape(query.shape[0], query.shape[1], e)
    out = merged @ params["out_proj.weight"].T + params.get("out_proj.bias", 0)
    return out, weights


def float64_module(*args, rng, device="cpu", **kwargs):
    """A float64 MultiHeadAttention with random biases (they start at zero, which would hide them), and
    its parameters as NumPy arrays."""
    module = nn.MultiHeadAttention(*args, **kwargs).to(tt.float64)
    with tt.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.data[...] = rng.standard_normal(p.shape)
    params = {name: p.detach().numpy().copy() for name, p in module.named_parameters()}
    return module.to(device), params


def gradcheck_through(module, call, inputs):
    """gradcheck of call(*inputs) with respect to the inputs and every parameter of module."""
    names = [name for name, _ in module.named_parameters()]

    def run(*tensors):
        for name, tensor in zip(names, tensors[len(inputs):]):
            owner = module
            *path, leaf = name.split(".")
            for part in path:
                owner = getattr(owner, part)
            owner._parameters[leaf] = tensor       # let the checker's float64 copies stand in for the weights
        return call(*tensors[:len(inputs)])

    params = [p.detach().requires_grad_() for p in module.parameters()]
    assert tt.gradcheck(run, [*inputs, *params])


@pytest.fixture
def inputs(rng):
    return rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 5, 8))


def test_self_attention_with_padding_and_a_bool_mask(device, rng, inputs):
    """The masks are NumPy arrays (host data) whatever the device: the module moves them."""
    module, params = float64_module(8, 2, rng=rng, device=device)
    x = inputs[0]
    padding = np.array([[False, False, False, True], [False, False, False, False]])    # True = padding
    attn_mask = np.zeros((4, 4), bool)
    attn_mask[0, 1] = True                                                             # True = may NOT attend
    x_t = tt.tensor(x, device=device)
    out, weights = module(x_t, x_t, x_t, key_padding_mask=padding, attn_mask=attn_mask, average_attn_weights=False)
    blocked = attn_mask | padding[:, None, None, :]
    want_out, want_weights = mha_reference(x, x, x, params, 2, blocked=blocked)
    np.testing.assert_allclose(out.detach().numpy(), want_out, atol=1e-12)
    np.testing.assert_allclose(weights.detach().numpy(), want_weights, atol=1e-12)
    assert (weights.detach().numpy()[0, :, :, 3] == 0).all() and (weights.detach().numpy()[:, :, 0, 1] == 0).all()
    # query is key is value takes one matmul for the three projections; copies take three: same numbers
    copy = tt.tensor(x, device=device)
    three = module(x_t, copy, copy, key_padding_mask=padding, attn_mask=attn_mask)[0]
    np.testing.assert_allclose(three.detach().numpy(), out.detach().numpy(), atol=1e-13)
    same = lambda q: module(q, q, q, key_padding_mask=padding, attn_mask=attn_mask)[0]   # noqa: E731
    gradcheck_through(module, same, [tt.tensor(x, device=device, requires_grad=True)])


def test_cross_attention_with_a_float_mask_and_averaged_weights(device, rng, inputs):
    module, params = float64_module(8, 4, rng=rng, device=device)
    x, memory = inputs
    added = rng.standard_normal((4, 5))
    padding = np.array([[False] * 5, [False, False, True, True, True]])
    memory_t = tt.tensor(memory, device=device)
    out, weights = module(tt.tensor(x, device=device), memory_t, memory_t, attn_mask=added, key_padding_mask=padding)
    want_out, want_weights = mha_reference(x, memory, memory, params, 4, blocked=padding[:, None, None, :],
                                           added=added)
    np.testing.assert_allclose(out.detach().numpy(), want_out, atol=1e-12)
    np.testing.assert_allclose(weights.detach().numpy(), want_weights.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(weights.detach().numpy().sum(-1), 1)
    call = lambda q, kv: module(q, kv, kv, attn_mask=added, key_padding_mask=padding)   # noqa: E731
    gradcheck_through(module, call, [tt.tensor(a, device=device, requires_grad=True) for a in (x, memory)])


def test_per_head_masks_and_separate_key_and_value_sizes(rng):
    module, params = float64_module(6, 3, kdim=4, vdim=5, rng=rng)
    assert [name for name, _ in module.named_parameters()] == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    query, key, value = rng.standard_normal((2, 3, 6)), rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 5))
    per_head = rng.random((2 * 3, 3, 4)) < 0.3                                         # (B*H, L, S)
    out, weights = module(tt.tensor(query), tt.tensor(key), tt.tensor(value), attn_mask=per_head,
                          average_attn_weights=False)
    want_out, want_weights = mha_reference(query, key, value, params, 3, blocked=per_head.reshape(2, 3, 3, 4))
    np.testing.assert_allclose(out.detach().numpy(), want_out, atol=1e-12)
    np.testing.assert_allclose(weights.detach().numpy(), want_weights, atol=1e-12)
    call = lambda q, k, v: module(q, k, v, attn_mask=per_head)[0]                      # noqa: E731
    gradcheck_through(module, call, [tt.tensor(a, requires_grad=True) for a in (query, key, value)])


def test_bool_and_float_masks_together(rng, inputs):
    module, params = float64_module(8, 2, rng=rng)
    x, memory = inputs
    added = rng.standard_normal((4, 5))
    padding = np.zeros((2, 5), bool)
    padding[1, 0] = True
    out = module(tt.tensor(x), tt.tensor(memory), tt.tensor(memory), attn_mask=added, key_padding_mask=padding)[0]
    as_float = np.where(padding, -np.inf, 0.0)
    out_float = module(tt.tensor(x), tt.tensor(memory), tt.tensor(memory), attn_mask=added,
                       key_padding_mask=as_float)[0]
    want = mha_reference(x, memory, memory, params, 2, blocked=padding[:, None, None, :], added=added)[0]
    np.testing.assert_allclose(out.detach().numpy(), want, atol=1e-12)
    np.testing.assert_allclose(out_float.detach().numpy(), want, atol=1e-12)


def test_a_query_with_nothing_to_attend_gets_zero_weights_not_nan(device, rng, inputs):
    module, params = float64_module(8, 2, rng=rng, device=device)
    x = tt.tensor(inputs[0], device=device, requires_grad=True)
    attn_mask = np.zeros((4, 4), bool)
    attn_mask[2] = True                                               # query 2 may attend to nothing
    for mask in (attn_mask, np.where(attn_mask, -np.inf, 0.0)):
        out, weights = module(x, x, x, attn_mask=mask)
        out.sum().backward()
        np.testing.assert_array_equal(weights.detach().numpy()[:, 2], 0)
        np.testing.assert_allclose(out.detach().numpy()[:, 2], np.broadcast_to(params["out_proj.bias"], (2, 8)))
        assert np.isfinite(x.grad.numpy()).all()
        x.grad = None


def test_mask_meaning_is_the_opposite_of_scaled_dot_product_attention(rng):
    """MultiHeadAttention: True = may NOT attend. scaled_dot_product_attention: True = may attend."""
    module = nn.MultiHeadAttention(4, 1, bias=False)
    x = tt.tensor(rng.standard_normal((1, 3, 4)).astype(np.float32))
    blocked = np.array([[False, True, True]] * 3)
    weights = module(x, x, x, attn_mask=blocked)[1].detach().numpy()
    np.testing.assert_allclose(weights[0, :, 0], 1)                    # only key 0 was allowed
    q = k = v = tt.tensor(rng.standard_normal((1, 3, 4)))
    sdpa = tt.scaled_dot_product_attention(q, k, v, attn_mask=tt.tensor(~blocked)).numpy()
    np.testing.assert_allclose(sdpa[0], np.broadcast_to(v.numpy()[0, 0], (3, 4)), rtol=1e-6)


def test_is_causal_and_the_float_causal_mask_agree(rng, inputs):
    module, params = float64_module(8, 2, rng=rng)
    x = tt.tensor(inputs[0])
    causal = module(x, x, x, is_causal=True)
    float_mask = module(x, x, x, attn_mask=nn.Transformer.generate_square_subsequent_mask(4, dtype=tt.float64))
    want = mha_reference(inputs[0], inputs[0], inputs[0], params, 2, blocked=np.triu(np.ones((4, 4), bool), 1))
    for out, weights in (causal, float_mask):
        np.testing.assert_allclose(out.detach().numpy(), want[0], atol=1e-12)
        np.testing.assert_allclose(weights.detach().numpy(), want[1].mean(1), atol=1e-12)


def test_need_weights_false_unbatched_input_and_dropout(rng, inputs):
    module, _ = float64_module(8, 2, rng=rng, dropout=0.5)
    x = tt.tensor(inputs[0])
    module.eval()
    out = module(x, x, x)[0].detach()
    assert module(x, x, x, need_weights=False)[1] is None
    np.testing.assert_allclose(module(x, x, x, need_weights=False)[0].detach().numpy(), out.numpy(), atol=1e-12)
    single, single_weights = module(x[1], x[1], x[1], key_padding_mask=np.zeros(4, bool))
    np.testing.assert_allclose(single.detach().numpy(), out.numpy()[1], atol=1e-12)
    assert single_weights.shape == (4, 4)
    module.train()
    dropped = module(x, x, x)[1].detach().numpy()
    assert (dropped == 0).any() and not np.allclose(dropped.sum(-1), 1)      # weights after dropout


def test_parameters_and_initialisation_are_pytorchs():
    module = nn.MultiHeadAttention(64, 8)
    assert [(k, tuple(v.shape)) for k, v in module.state_dict().items()] == [
        ("in_proj_weight", (192, 64)), ("in_proj_bias", (192,)), ("out_proj.weight", (64, 64)),
        ("out_proj.bias", (64,))]
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    w = state["in_proj_weight"]
    xavier = math.sqrt(6 / (64 + 192))                          # fan_in 64, fan_out 192
    assert np.abs(w).max() <= xavier and np.abs(w).max() > 0.95 * xavier
    assert (state["in_proj_bias"] == 0).all() and (state["out_proj.bias"] == 0).all()
    assert np.abs(state["out_proj.weight"]).max() <= 1 / math.sqrt(64)   # Linear's default
    assert [k for k in nn.MultiHeadAttention(8, 2, bias=False).state_dict()] == ["in_proj_weight", "out_proj.weight"]


def test_errors():
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be a positive multiple of num_heads \(4\)"):
        nn.MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="batch_first=True"):
        nn.MultiHeadAttention(8, 2, batch_first=False)
    module = nn.MultiHeadAttention(8, 2)
    x = tt.zeros(2, 3, 8)
    with pytest.raises(ValueError, match=r"last axes must be embed_dim, kdim, vdim = \(8, 8, 8\)"):
        module(x, tt.zeros(2, 3, 4), tt.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(3, 3\), expected \(B, S\) = \(2, 3\)"):
        module(x, x, x, key_padding_mask=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match=r"attn_mask has shape \(2, 2\), expected \(L, S\) = \(3, 3\)"):
        module(x, x, x, attn_mask=np.zeros((2, 2), bool))
    with pytest.raises(TypeError, match="must be bool .* or float .* got dtype int64"):
        module(x, x, x, attn_mask=np.zeros((3, 3), np.int64))
