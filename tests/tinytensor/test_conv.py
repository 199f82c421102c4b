"""conv2d and the pools against direct loop-over-output references; gradients by gradcheck in float64."""
import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op


def conv2d_reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, o, i, j] = sum over (c, p, q) of w[o, c, p, q] * x_padded[n, g*C/G + c, i*s + p*d, j*s + q*d]."""
    n, channels, h, wd = x.shape
    out_channels, group_channels, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, out_channels, oh, ow))
    per_group = out_channels // groups
    for o in range(out_channels):
        c0 = (o // per_group) * group_channels
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, c0:c0 + group_channels, i * stride:i * stride + dilation * (kh - 1) + 1:dilation,
                           j * stride:j * stride + dilation * (kw - 1) + 1:dilation]
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3))
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def pool_reference(x, k, s, p, reduce, fill):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return out


CONV_CASES = [   # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0, 1, 1),
    ((1, 2, 6, 5), (3, 2, 3, 2), 2, 1, 1, 1),
    ((1, 2, 7, 7), (2, 2, 3, 3), 1, 2, 2, 1),
    ((1, 4, 4, 4), (6, 2, 2, 2), 1, 1, 1, 2),
    ((2, 3, 4, 4), (3, 1, 3, 3), 2, 1, 1, 3),    # depthwise
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv2d_forward_and_gradients(device, rng, xs, ws, stride, padding, dilation, groups):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    check_op(lambda x, w, b: tt.conv2d(x, w, b, stride, padding, dilation, groups),
             lambda x, w, b: conv2d_reference(x, w, b, stride, padding, dilation, groups),
             x, w, b, device=device, fast=np.prod(xs) > 60)


def test_conv2d_without_bias_and_second_order(device, rng):
    x, w = rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 2, 2, 2))
    check_op(lambda x, w: tt.conv2d(x, w, padding=1), lambda x, w: conv2d_reference(x, w, padding=1),
             x, w, device=device, second_order=True)


def test_conv2d_float32_large_against_float64(device, rng):
    x, w = rng.standard_normal((4, 8, 16, 16)), rng.standard_normal((16, 8, 3, 3))
    y = tt.conv2d(tt.tensor(x, dtype=tt.float32, device=device), tt.tensor(w, dtype=tt.float32, device=device),
                  padding=1)
    assert y.dtype == tt.float32 and y.shape == (4, 16, 16, 16)
    np.testing.assert_allclose(y.numpy(), tt.conv2d(tt.tensor(x, dtype=tt.float64), tt.tensor(w, dtype=tt.float64),
                                                    padding=1).numpy(), rtol=1e-4, atol=1e-4)


def test_im2col_and_col2im_are_transposes(rng):
    """<im2col(x), c> == <x, col2im(c)>: col2im is exactly the adjoint, so each is the other's backward."""
    from tinytensor.ops.nn import Col2Im, Im2Col, _geometry
    x = tt.tensor(rng.standard_normal((1, 2, 5, 6)), dtype=tt.float64)
    geometry = _geometry("test", x, (2, 3), (2, 1), (1, 0), (1, 2))
    cols = Im2Col.apply(x, geometry, 0)
    c = tt.tensor(rng.standard_normal(cols.shape), dtype=tt.float64)
    back = Col2Im.apply(c, geometry)
    assert back.shape == x.shape
    np.testing.assert_allclose((cols * c).sum().item(), (x * back).sum().item(), rtol=1e-12)


def test_conv2d_errors():
    x = tt.zeros(1, 3, 5, 5)
    with pytest.raises(ValueError, match=r"3 channels.*expects 4"):
        tt.conv2d(x, tt.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"groups=2 must divide.*\(3\)"):
        tt.conv2d(x, tt.zeros(2, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"output size .* too small"):
        tt.conv2d(x, tt.zeros(2, 3, 7, 7))
    with pytest.raises(ValueError, match=r"4-D input"):
        tt.conv2d(tt.zeros(3, 5, 5), tt.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"bias has shape \(3,\), expected \(2,\)"):
        tt.conv2d(x, tt.zeros(2, 3, 3, 3), tt.zeros(3))


@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 1, 1), (3, 2, 1)])
def test_max_pool2d(device, rng, k, s, p):
    x = rng.standard_normal((2, 2, 5, 5))
    check_op(lambda x: tt.max_pool2d(x, k, s, p), lambda x: pool_reference(x, k, s or k, p, np.max, -np.inf),
             x, device=device)


@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 1, 1), (3, 2, 1)])
def test_avg_pool2d(device, rng, k, s, p):
    x = rng.standard_normal((2, 2, 5, 5))
    check_op(lambda x: tt.avg_pool2d(x, k, s, p), lambda x: pool_reference(x, k, s or k, p, np.mean, 0.0),
             x, device=device)


def test_max_pool2d_ties_go_to_the_first_maximum(device):
    x = tt.tensor([[[[1.0, 1.0], [0.0, 1.0]]]], device=device, requires_grad=True)
    tt.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_max_pool2d_overlapping_windows_accumulate(device):
    x = tt.tensor([[[[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]], device=device, requires_grad=True)
    tt.max_pool2d(x, 2, stride=1).sum().backward()      # the 5 wins all four windows
    assert x.grad.numpy()[0, 0, 1, 1] == 4.0 and x.grad.numpy().sum() == 4.0


def test_pool_errors():
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel size \(2, 2\)"):
        tt.max_pool2d(tt.zeros(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="too small"):
        tt.avg_pool2d(tt.zeros(1, 1, 2, 2), 3)
