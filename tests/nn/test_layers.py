"""Each layer's forward against a NumPy reference, its parameter gradients by gradcheck in float64, and
the default initialisations."""
import math

import numpy as np
import pytest

from tinytensor import nn
import tinytensor as tt
from tests.helpers import to_numpy


def as_function(layer):
    """(fn, params): fn(x, *params) runs the layer with `params` put in place of its parameters, so
    gradcheck can perturb them (it works on fresh copies of its inputs)."""
    slots = [(m, name) for m in layer.modules() for name, p in m._parameters.items() if p is not None]

    def fn(x, *params):
        for (module, name), p in zip(slots, params):
            module._parameters[name] = p
        return layer(x)
    return fn, [getattr(module, name) for module, name in slots]


def check_layer(layer, x, reference, device, atol=1e-6, gradcheck=True):
    """Forward (float64) against reference(x, *numpy params); gradients for x and every parameter."""
    layer.to(tt.float64).to(device)
    fn, params = as_function(layer)
    x = tt.tensor(x, dtype=tt.float64, device=device, requires_grad=True)
    out = fn(x, *params)
    np.testing.assert_allclose(to_numpy(out), reference(to_numpy(x), *[to_numpy(p) for p in params]),
                               atol=atol, rtol=1e-6)
    if gradcheck:
        assert tt.gradcheck(fn, [x, *params])


# ------------------------------------------------------------------ layers with parameters

def test_linear(rng, device):
    check_layer(nn.Linear(4, 3), rng.standard_normal((2, 5, 4)),
                lambda x, w, b: x @ w.T + b, device)


def test_linear_without_bias(rng):
    layer = nn.Linear(4, 3, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    check_layer(layer, rng.standard_normal((2, 4)), lambda x, w: x @ w.T, "cpu")


def conv2d_reference(x, w, b, stride, padding, groups):
    """Direct loops over output positions (tiny shapes only)."""
    n, c_in, _, _ = x.shape
    c_out, c_per_group, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = (x.shape[2] - kh) // stride + 1
    w_out = (x.shape[3] - kw) // stride + 1
    out = np.zeros((n, c_out, h_out, w_out))
    outs_per_group = c_out // groups
    for o in range(c_out):
        g = o // outs_per_group
        channels = slice(g * c_per_group, (g + 1) * c_per_group)
        for i in range(h_out):
            for j in range(w_out):
                window = x[:, channels, i * stride:i * stride + kh, j * stride:j * stride + kw]
                out[:, o, i, j] = (window * w[o]).sum(axis=(1, 2, 3)) + b[o]
    return out


@pytest.mark.parametrize("stride, padding, groups", [(1, 0, 1), (2, 1, 1), (1, 1, 2)])
def test_conv2d(rng, device, stride, padding, groups):
    layer = nn.Conv2d(4, 2, kernel_size=3, stride=stride, padding=padding, groups=groups)
    assert layer.weight.shape == (2, 4 // groups, 3, 3)
    check_layer(layer, rng.standard_normal((1, 4, 5, 5)),
                lambda x, w, b: conv2d_reference(x, w, b, stride, padding, groups), device)


def test_conv2d_errors_and_repr():
    with pytest.raises(ValueError, match=r"in_channels \(3\).*divisible by groups \(2\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    assert repr(nn.Conv2d(1, 6, 5, padding=2)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1"):
        nn.Conv2d(1, 2, 3, stride=2, padding="same")


def test_conv2d_same_and_valid_padding(rng):
    x = tt.tensor(rng.standard_normal((2, 3, 7, 6)), dtype=tt.float32)
    same = nn.Conv2d(3, 4, (4, 3), padding="same", dilation=2)
    assert same(x).shape == (2, 4, 7, 6)
    assert repr(same) == "Conv2d(3, 4, kernel_size=(4, 3), stride=(1, 1), padding='same', dilation=(2, 2))"
    valid = nn.Conv2d(3, 4, 3, padding="valid")
    assert valid(x).shape == (2, 4, 5, 4)


@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_conv2d_padding_modes(rng, device, mode, numpy_mode):
    def reference(x, w, b):
        padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (1, 1)), mode=numpy_mode)
        return conv2d_reference(padded, w, b, stride=2, padding=0, groups=1)
    check_layer(nn.Conv2d(2, 3, 3, stride=2, padding=(2, 1), padding_mode=mode), rng.standard_normal((1, 2, 6, 5)),
                reference, device)


def test_conv2d_padding_mode_worked_numbers():
    """[1 2 3] under a (1, 3) kernel of ones with one column of padding each side: reflect pads to
    [2 1 2 3 2] (sums 5 6 7), replicate to [1 1 2 3 3] (4 6 8), circular to [3 1 2 3 1] (6 6 6)."""
    x = tt.tensor([[[[1.0, 2.0, 3.0]]]])
    for mode, sums in [("reflect", [5, 6, 7]), ("replicate", [4, 6, 8]), ("circular", [6, 6, 6])]:
        conv = nn.Conv2d(1, 1, (1, 3), padding=(0, 1), padding_mode=mode, bias=False)
        nn.init.ones_(conv.weight)
        assert conv(x).tolist() == [[[sums]]]
    same = nn.Conv2d(1, 1, (1, 2), padding="same", padding_mode="reflect", bias=False)   # the extra on the right
    nn.init.ones_(same.weight)
    assert same(x).tolist() == [[[[3, 5, 5]]]]
    assert repr(same).endswith("padding='same', padding_mode='reflect', bias=False)")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")


def layer_norm_reference(x, w, b, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def test_layer_norm(rng, device):
    layer = nn.LayerNorm(4)
    with tt.no_grad():
        layer.weight[...] = rng.standard_normal(4)
        layer.bias[...] = rng.standard_normal(4)
    check_layer(layer, rng.standard_normal((3, 4)), layer_norm_reference, device)


def batch_norm_reference(x, w, b, mean, var, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("layer_class, shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm2d, (2, 3, 2, 2))])
def test_batch_norm_train(rng, device, layer_class, shape):
    layer = layer_class(3)
    x = rng.standard_normal(shape) * 2 + 1
    axes = (0,) + tuple(range(2, len(shape)))
    batch_mean, batch_var = x.mean(axis=axes), x.var(axis=axes)
    check_layer(layer, x, lambda x, w, b: batch_norm_reference(x, w, b, batch_mean, batch_var), device,
                gradcheck=False)
    # the running statistics moved 10% of the way, with the unbiased variance
    count = x.size / 3
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.1 * batch_mean, rtol=1e-6)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.9 + 0.1 * batch_var * count / (count - 1),
                               rtol=1e-6)
    assert layer.num_batches_tracked.item() == 1
    fn, params = as_function(layer)
    assert tt.gradcheck(fn, [tt.tensor(x, dtype=tt.float64, device=device, requires_grad=True), *params])


def test_batch_norm_eval_uses_running_statistics(rng, device):
    layer = nn.BatchNorm2d(3).eval()
    with tt.no_grad():
        layer.running_mean[...] = np.array([0.5, -1.0, 2.0])
        layer.running_var[...] = np.array([4.0, 0.25, 1.0])
    mean, var = layer.running_mean.numpy().astype(np.float64), layer.running_var.numpy().astype(np.float64)
    check_layer(layer, rng.standard_normal((2, 3, 2, 2)),
                lambda x, w, b: batch_norm_reference(x, w, b, mean, var), device)
    assert layer.num_batches_tracked.item() == 0
    np.testing.assert_allclose(layer.running_mean.numpy(), [0.5, -1.0, 2.0])    # not updated in eval


@pytest.mark.parametrize("layer, shape", [(nn.Linear(3, 2), (4, 3)), (nn.Conv2d(1, 2, 3), (1, 1, 5, 5)),
                                          (nn.LayerNorm(3), (2, 3)), (nn.BatchNorm1d(3), (4, 3))])
def test_float64_data_into_a_float32_layer_is_a_clear_error(layer, shape):
    """As in PyTorch: no silent float64 model; the message names both dtypes and how to convert."""
    x = tt.ones(*shape, dtype=tt.float64)
    with pytest.raises(TypeError, match=r"the input is float64 but the \w+ is float32.*\.float\(\)"):
        layer(x)
    assert layer(x.float()).dtype == tt.float32
    assert layer.to(tt.float64)(x).dtype == tt.float64


def test_batch_norm_cumulative_average_and_shape_error(rng):
    layer = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((4, 2)) for _ in range(2)]
    for batch in batches:
        layer(tt.tensor(batch, dtype=tt.float32))
    np.testing.assert_allclose(layer.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0),
                               rtol=1e-5)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(2\).*2 channels on axis 1, got shape \(4, 3\)"):
        layer(tt.zeros(4, 3))


def test_embedding_with_repeated_indices(rng, device):
    layer = nn.Embedding(5, 3).to(device)
    ids = tt.tensor([[1, 1, 4], [0, 1, 2]], device=device)
    out = layer(ids)
    np.testing.assert_array_equal(out.detach().numpy() if device == "cpu" else to_numpy(out),
                                  to_numpy(layer.weight)[[[1, 1, 4], [0, 1, 2]]])
    out.sum().backward()
    np.testing.assert_array_equal(to_numpy(layer.weight.grad)[:, 0], [1, 3, 1, 0, 1])   # row 1 used 3 times


def test_embedding_padding_idx(device):
    layer = nn.Embedding(4, 2, padding_idx=-1).to(device)
    assert layer.padding_idx == 3
    np.testing.assert_array_equal(to_numpy(layer.weight)[3], [0, 0])
    with tt.no_grad():
        layer.weight[3] = 5.0
    out = layer(tt.tensor([3, 0, 3], device=device))
    np.testing.assert_array_equal(to_numpy(out)[0], [5, 5])           # the row's value, as it is
    (out * out).sum().backward()
    grad = to_numpy(layer.weight.grad)
    np.testing.assert_array_equal(grad[3], [0, 0])                    # but no gradient to it
    np.testing.assert_allclose(grad[0], 2 * to_numpy(layer.weight)[0])


# ------------------------------------------------------------------ layers without parameters

def test_dropout_train_and_eval(device):
    layer = nn.Dropout(0.25)
    x = tt.ones(4000, device=device, requires_grad=True)
    out = layer(x)
    values = to_numpy(out)
    assert set(np.unique(values)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((values == 0).mean() - 0.25) < 0.03
    out.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), values)        # gradient = mask * 1 / (1 - p)
    layer.eval()
    np.testing.assert_array_equal(to_numpy(layer(x)), to_numpy(x))
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_pools(rng, device):
    x = rng.standard_normal((2, 3, 4, 4))
    windows = x.reshape(2, 3, 2, 2, 2, 2)         # (N, C, H/2, 2, W/2, 2)
    check_layer(nn.MaxPool2d(2), x, lambda x: windows.max(axis=(3, 5)), device)
    check_layer(nn.AvgPool2d(2), x, lambda x: windows.mean(axis=(3, 5)), device)
    assert nn.MaxPool2d(3).stride == 3 and nn.AvgPool2d(3, stride=1).stride == 1


def test_pools_with_ceil_mode_and_unpool_round_trip(rng, device):
    x = tt.tensor(rng.uniform(0.5, 2.0, (1, 2, 5, 5)), device=device)    # positive: maxima beat the zeros
    pool = nn.MaxPool2d(2, return_indices=True, ceil_mode=True)
    assert repr(pool) == "MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True, return_indices=True)"
    y, indices = pool(x)
    assert y.shape == (1, 2, 3, 3)
    unpooled = nn.MaxUnpool2d(2)(y, indices, output_size=x.shape)
    assert unpooled.shape == x.shape
    np.testing.assert_array_equal(to_numpy(pool(unpooled)[0]), to_numpy(y))
    assert nn.AvgPool2d(2, ceil_mode=True)(x).shape == (1, 2, 3, 3)
    np.testing.assert_allclose(to_numpy(nn.AvgPool2d(2, ceil_mode=True)(x))[..., 2, 2], to_numpy(x)[..., 4, 4])
    assert nn.functional.max_unpool2d is tt.max_unpool2d
    corner = nn.AvgPool2d(2, padding=1, count_include_pad=False)
    assert repr(corner) == "AvgPool2d(kernel_size=2, stride=2, padding=1, count_include_pad=False)"
    np.testing.assert_allclose(to_numpy(corner(x))[..., 0, 0], to_numpy(x)[..., 0, 0])   # 1 of 4 inside


def test_flatten_and_identity(rng):
    x = tt.tensor(rng.standard_normal((2, 3, 4, 5)))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(-2)(x).shape == (2, 3, 20)
    assert nn.Identity(54, unused=1)(x) is x
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=1, end_dim=-1\): out of range for an input "
                                         r"of shape \(3,\) \(1 axes\)"):
        nn.Flatten()(tt.zeros(3))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


@pytest.mark.parametrize("layer, reference", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.GELU(approximate="tanh"), gelu_tanh),
    (nn.GELU(), lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    (nn.Softmax(dim=0), lambda x: np.exp(x) / np.exp(x).sum(axis=0)),
    (nn.LogSoftmax(axis=-1), lambda x: x - np.log(np.exp(x).sum(axis=-1, keepdims=True))),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_activations(rng, device, layer, reference):
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 0.05] = 0.5                      # keep away from the kinks of relu
    check_layer(layer, x, reference, device)


# ------------------------------------------------------------------ losses

def test_losses_match_numpy(rng):
    logits = rng.standard_normal((4, 3))
    target = np.array([0, 2, 1, 2])
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -log_probs[np.arange(4), target]
    t_logits, t_target = tt.tensor(logits, dtype=tt.float64), tt.tensor(target)
    assert nn.CrossEntropyLoss()(t_logits, t_target).item() == pytest.approx(nll.mean())
    assert nn.CrossEntropyLoss(reduction="sum")(t_logits, t_target).item() == pytest.approx(nll.sum())
    assert nn.NLLLoss()(tt.tensor(log_probs), t_target).item() == pytest.approx(nll.mean(), rel=1e-6)
    weight = np.array([1.0, 2.0, 0.5])
    weighted = nn.CrossEntropyLoss(weight=weight)(t_logits, t_target).item()
    assert weighted == pytest.approx((nll * weight[target]).sum() / weight[target].sum())
    assert nn.CrossEntropyLoss()(tt.zeros(2, 5), tt.tensor([1, 3])).item() == pytest.approx(math.log(5))

    prediction, goal = rng.random(5), rng.random(5)
    assert nn.MSELoss()(tt.tensor(prediction), tt.tensor(goal)).item() == pytest.approx(
        ((prediction - goal) ** 2).mean(), rel=1e-6)
    bce = -(goal * np.log(prediction) + (1 - goal) * np.log(1 - prediction))
    assert nn.BCELoss()(tt.tensor(prediction), tt.tensor(goal)).item() == pytest.approx(bce.mean(), rel=1e-5)
    z = rng.standard_normal(5)
    p = 1 / (1 + np.exp(-z))
    with_pos = -(3 * goal * np.log(p) + (1 - goal) * np.log(1 - p))
    loss = nn.BCEWithLogitsLoss(pos_weight=[3.0] * 5)(tt.tensor(z), tt.tensor(goal))
    assert loss.item() == pytest.approx(with_pos.mean(), rel=1e-5)


def test_loss_settings_and_weight_buffer():
    loss = nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert [n for n, _ in loss.named_buffers()] == ["weight"] and loss.num_parameters() == 0
    loss.to(tt.float64)
    assert loss.weight.dtype == tt.float64
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="average")


# ------------------------------------------------------------------ initialisation

def test_linear_and_conv_default_init_ranges():
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    weight = layer.weight.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound
    assert weight.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)       # U(-a, a): std a / sqrt(3)
    assert np.abs(layer.bias.detach().numpy()).max() <= bound
    conv = nn.Conv2d(8, 16, 3, groups=2)
    fan_in = 8 // 2 * 3 * 3
    assert np.abs(conv.weight.detach().numpy()).max() <= 1 / math.sqrt(fan_in)
    assert nn.Embedding(200, 50).weight.detach().numpy().std() == pytest.approx(1.0, rel=0.03)


def test_init_is_reproducible_with_manual_seed():
    tt.manual_seed(3)
    a = nn.Linear(3, 3).weight.detach().numpy()
    tt.manual_seed(3)
    b = nn.Linear(3, 3).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_init_functions():
    w = tt.empty(300, 200)
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= math.sqrt(6 / 500)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 200), rel=0.03)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 300), rel=0.03)
    nn.init.xavier_normal_(w, gain=2.0)
    assert w.numpy().std() == pytest.approx(2 * math.sqrt(2 / 500), rel=0.03)
    nn.init.kaiming_uniform_(w, a=0)
    assert np.abs(w.numpy()).max() <= math.sqrt(2) * math.sqrt(3 / 200)
    nn.init.normal_(w, mean=3.0, std=0.5)
    assert w.numpy().mean() == pytest.approx(3.0, abs=0.01)
    nn.init.uniform_(w, -2.0, -1.0)
    assert w.numpy().min() >= -2 and w.numpy().max() < -1 and w.dtype == tt.float32
    nn.init.constant_(w, 0.5)
    assert (w.numpy() == 0.5).all()
    assert nn.init.calculate_gain("tanh") == 5 / 3 and nn.init.calculate_gain("relu") == math.sqrt(2)
    assert nn.init.calculate_gain("leaky_relu", 1.0) == 1.0
    assert nn.init.calculate_fan_in_and_fan_out(tt.empty(6, 4, 3, 3)) == (36, 54)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        nn.init.xavier_uniform_(tt.empty(5))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swish")


def test_init_writes_in_place_under_no_grad():
    p = nn.Parameter(tt.zeros(3, 3))
    data, version = p.data, p.version
    nn.init.ones_(p)
    assert p.data is data and (p.data == 1).all() and p.version > version
