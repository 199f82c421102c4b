"""linear, embedding, dropout, layer_norm, batch_norm: NumPy forward references, float64 gradcheck."""
import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op


# ----------------------------------------------------------------------------------- linear

@pytest.mark.parametrize("x_shape", [(3, 4), (2, 3, 4), (4,)])
def test_linear(device, rng, x_shape):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal((5, 4)), rng.standard_normal(5)
    check_op(tt.linear, lambda x, w, b: x @ w.T + b, x, w, b, device=device, second_order=x_shape == (3, 4))


def test_linear_without_bias_second_order(device, rng):
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    check_op(lambda x, w: tt.linear(x, w) ** 2, lambda x, w: (x @ w.T) ** 2, x, w, device=device,
             second_order=True)


def test_linear_float32_keeps_dtype_and_grads(device):
    x = tt.randn(8, 4, device=device)
    w = tt.randn(3, 4, device=device, requires_grad=True)
    b = tt.zeros(3, device=device, requires_grad=True)
    tt.linear(x, w, b).sum().backward()
    assert w.grad.dtype == tt.float32 and b.grad.shape == (3,)
    np.testing.assert_allclose(b.grad.numpy(), [8, 8, 8])
    np.testing.assert_allclose(w.grad.numpy(), np.tile(x.numpy().sum(0), (3, 1)), rtol=1e-5)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"\(32, 784\) has 784 features but weight of shape \(10, 256\) expects 256"):
        tt.linear(tt.zeros(32, 784), tt.zeros(10, 256))
    with pytest.raises(ValueError, match=r"bias has shape \(3,\).*\(10,\)"):
        tt.linear(tt.zeros(2, 4), tt.zeros(10, 4), tt.zeros(3))


# ----------------------------------------------------------------------------------- embedding

def test_embedding_repeated_ids_accumulate(device, rng):
    ids = tt.tensor([[0, 2, 2], [3, 0, 2]], device=device)
    w = rng.standard_normal((4, 3))
    out = check_op(lambda w: tt.embedding(ids, w), lambda w: w[ids.numpy()], w, device=device)
    assert out.shape == (2, 3, 3)
    weight = tt.tensor(w, device=device, requires_grad=True)
    tt.embedding(ids, weight).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy()[:, 0], [2, 0, 3, 1])   # how often each id appears


def test_embedding_errors():
    with pytest.raises(TypeError, match="ids must be an integer tensor, got float32"):
        tt.embedding(tt.zeros(3), tt.zeros(4, 2))
    with pytest.raises(IndexError, match=r"id 4 is out of range for 4 embeddings"):
        tt.embedding(tt.tensor([1, 4]), tt.zeros(4, 2))


# ----------------------------------------------------------------------------------- dropout

def test_dropout_train_mask_and_gradient(device):
    x = tt.ones(2000, device=device, requires_grad=True)
    y = tt.dropout(x, p=0.25)
    values = y.detach().numpy()
    kept = values != 0
    np.testing.assert_allclose(values[kept], 1 / 0.75, rtol=1e-6)      # survivors scaled by 1/(1-p)
    assert abs(kept.mean() - 0.75) < 0.04
    (y * tt.arange(2000, dtype=tt.float32, device=device)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), values * np.arange(2000), rtol=1e-6)   # grad = g * mask * scale


def test_dropout_is_reproducible_with_seed(device):
    x = tt.ones(50, device=device)
    tt.manual_seed(3)
    first = tt.dropout(x, 0.5).numpy()
    tt.manual_seed(3)
    np.testing.assert_array_equal(tt.dropout(x, 0.5).numpy(), first)


def test_dropout_identity_and_extremes(device):
    x = tt.randn(10, device=device)
    assert tt.dropout(x, 0.5, training=False) is x
    assert tt.dropout(x, 0.0) is x
    np.testing.assert_array_equal(tt.dropout(x, 1.0).numpy(), np.zeros(10))
    with pytest.raises(ValueError, match="p must be between 0 and 1, got 1.5"):
        tt.dropout(x, 1.5)


# ----------------------------------------------------------------------------------- layer norm

def layer_norm_reference(x, axes, w=None, b=None, eps=1e-5):
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


@pytest.mark.parametrize("fn", [tt.layer_norm, tt.ops.nn.layer_norm_composite])
def test_layer_norm(device, rng, fn):
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    check_op(lambda x, w, b: fn(x, 4, w, b), lambda x, w, b: layer_norm_reference(x, -1, w, b), x, w, b,
             device=device, second_order=True)


def test_layer_norm_over_two_axes_without_affine(device, rng):
    x = rng.standard_normal((2, 3, 2))
    check_op(lambda x: tt.layer_norm(x, (3, 2)), lambda x: layer_norm_reference(x, (1, 2)), x, device=device,
             second_order=True)


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"normalized_shape \(5,\) must equal the last axes.*\(2, 4\)"):
        tt.layer_norm(tt.zeros(2, 4), 5)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        tt.layer_norm(tt.zeros(2, 4), 4, tt.ones(3))


# ----------------------------------------------------------------------------------- batch norm

@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
def test_batch_norm_training_forward_gradients_and_running_stats(device, rng, shape):
    x, w, b = rng.standard_normal(shape), rng.standard_normal(3), rng.standard_normal(3)
    axes = (0,) + tuple(range(2, len(shape)))
    view = (1, 3) + (1,) * (len(shape) - 2)
    reference = lambda x, w, b: ((x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
                                 * w.reshape(view) + b.reshape(view))
    check_op(lambda x, w, b: tt.batch_norm(x, None, None, w, b, training=True), reference, x, w, b,
             device=device)
    mean = tt.full(3, 0.5, dtype=tt.float64, device=device)
    var = tt.ones(3, dtype=tt.float64, device=device)
    tt.batch_norm(tt.tensor(x, device=device), mean, var, training=True, momentum=0.1)
    n = x.size // 3
    np.testing.assert_allclose(mean.numpy(), 0.9 * 0.5 + 0.1 * x.mean(axes), rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), 0.9 + 0.1 * x.var(axes) * n / (n - 1), rtol=1e-12)   # unbiased


def test_batch_norm_eval_uses_running_stats(device, rng):
    x, w, b = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5
    view = (1, 3, 1, 1)
    running_mean, running_var = tt.tensor(mean, device=device), tt.tensor(var, device=device)
    check_op(lambda x, w, b: tt.batch_norm(x, running_mean, running_var, w, b),
             lambda x, w, b: (x - mean.reshape(view)) / np.sqrt(var.reshape(view) + 1e-5) * w.reshape(view)
             + b.reshape(view), x, w, b, device=device)
    np.testing.assert_array_equal(running_mean.numpy(), mean)     # eval leaves the statistics alone


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"weight has shape \(4,\).*has 3 channels"):
        tt.batch_norm(tt.zeros(2, 3), None, None, tt.ones(4), training=True)
    with pytest.raises(ValueError, match="more than one value per channel"):
        tt.batch_norm(tt.zeros(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="running_mean and running_var are needed"):
        tt.batch_norm(tt.zeros(2, 3), None, None)
