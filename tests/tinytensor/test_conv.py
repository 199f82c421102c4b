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


# ----------------------------------------------------------------------------------- padding="same"/"valid"

@pytest.mark.parametrize("ws, dilation", [((3, 2, 3, 3), 1), ((3, 2, 2, 3), 1), ((2, 2, 3, 2), 2),
                                          ((2, 2, 4, 1), 1)])
def test_conv2d_same_padding_keeps_the_size(device, rng, ws, dilation):
    """Total padding dilation (k - 1) per axis, the odd one on the bottom/right (PyTorch's rule)."""
    x, w, b = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal(ws), rng.standard_normal(ws[0])

    def reference(x, w, b):
        totals = [dilation * (k - 1) for k in ws[2:]]
        padded = np.pad(x, ((0, 0), (0, 0)) + tuple((t // 2, t - t // 2) for t in totals))
        return conv2d_reference(padded, w, b, dilation=dilation)

    out = check_op(lambda x, w, b: tt.conv2d(x, w, b, padding="same", dilation=dilation), reference, x, w, b,
                   device=device)
    assert out.shape == (1, ws[0], 5, 4)


def test_conv2d_valid_padding_is_no_padding(device, rng):
    x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    check_op(lambda x, w: tt.conv2d(x, w, padding="valid", stride=2), lambda x, w: conv2d_reference(x, w, stride=2),
             x, w, device=device)


def test_conv2d_named_padding_errors():
    x, w = tt.zeros(1, 1, 5, 5), tt.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1.*got stride 2"):
        tt.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"'valid' or 'same', got 'full'"):
        tt.conv2d(x, w, padding="full")


# ----------------------------------------------------------------------------------- ceil_mode, indices, unpool

def ceil_pool_reference(x, k, s, p, reduce):
    """PyTorch's ceil_mode by hand: OH = ceil((H + 2p - k) / s) + 1, less one if the last window would
    start past the input and its left padding; windows are clipped to the padded input, and the mean
    divides by what is left of the window (count_include_pad=True)."""
    n, c, h, w = x.shape
    fill = -np.inf if reduce is np.max else 0.0
    sizes = []
    for length in (h, w):
        o = -(-(length + 2 * p - k) // s) + 1
        sizes.append(o - 1 if (o - 1) * s >= length + p else o)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    out = np.empty((n, c, *sizes))
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            window = padded[:, :, i * s:i * s + k, j * s:j * s + k]       # numpy clips at the edge
            out[:, :, i, j] = reduce(window, axis=(2, 3)) if reduce is np.max else window.mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 1), (2, 3, 1), (3, 3, 0)])
@pytest.mark.parametrize("op, reduce", [(tt.max_pool2d, np.max), (tt.avg_pool2d, np.mean)])
def test_pools_with_ceil_mode(device, rng, k, s, p, op, reduce):
    x = rng.standard_normal((1, 2, 7, 6))
    out = check_op(lambda x: op(x, k, s, p, ceil_mode=True), lambda x: ceil_pool_reference(x, k, s, p, reduce),
                   x, device=device)
    floor = op(tt.tensor(x, device=device), k, s, p)
    assert out.shape[2:] >= floor.shape[2:]


def masked_mean_pool_reference(x, k, s, p, ceil_mode):
    """avg_pool2d with count_include_pad=False by hand: each window's sum over the input's elements it
    covers, divided by how many there are (a ones-mask pooled the same way counts them)."""
    ones = np.ones_like(x)
    padded_x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    padded_ones = np.pad(ones, ((0, 0), (0, 0), (p, p), (p, p)))
    sizes = []
    for length in x.shape[2:]:
        o = (-(-(length + 2 * p - k) // s) if ceil_mode else (length + 2 * p - k) // s) + 1
        sizes.append(o - 1 if ceil_mode and (o - 1) * s >= length + p else o)
    out = np.empty(x.shape[:2] + tuple(sizes))
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            rows, cols = slice(i * s, i * s + k), slice(j * s, j * s + k)
            out[:, :, i, j] = (padded_x[:, :, rows, cols].sum(axis=(2, 3))
                               / padded_ones[:, :, rows, cols].sum(axis=(2, 3)))
    return out


@pytest.mark.parametrize("k, s, p, ceil_mode", [(3, 2, 1, False), (2, 1, 1, False), (3, 2, 1, True), (2, 3, 1, True)])
def test_avg_pool_without_counting_the_padding(device, rng, k, s, p, ceil_mode):
    x = rng.standard_normal((1, 2, 7, 6))
    check_op(lambda x: tt.avg_pool2d(x, k, s, p, ceil_mode=ceil_mode, count_include_pad=False),
             lambda x: masked_mean_pool_reference(x, k, s, p, ceil_mode), x, device=device)


def test_avg_pool_count_include_pad_worked_numbers(device):
    """[1 2 3] padded by one zero each side, windows of 3: sums 3, 6, 5; PyTorch gives 1, 2, 5/3 when the
    padding counts and 3/2, 2, 5/2 when it does not."""
    x = tt.tensor([[[[1.0, 2.0, 3.0]]]], dtype=tt.float64, device=device)
    np.testing.assert_allclose(tt.avg_pool2d(x, (1, 3), 1, (0, 1)).numpy().ravel(), [1, 2, 5 / 3])
    np.testing.assert_allclose(tt.avg_pool2d(x, (1, 3), 1, (0, 1), count_include_pad=False).numpy().ravel(),
                               [1.5, 2, 2.5])


def test_max_pool_window_of_minus_inf_picks_its_first_element_inside_the_input(device):
    """A window whose input elements are all -inf ties with its -inf padding; as PyTorch, the winner (its
    index and its gradient) is then the window's first element inside the input, never the padding."""
    x = np.full((1, 1, 3, 3), -np.inf)
    x[0, 0, 2, 2] = 1.0
    x = tt.tensor(x, device=device, requires_grad=True)
    y, indices = tt.max_pool2d(x, 3, 1, 1, return_indices=True)
    assert indices.tolist() == [[[[0, 0, 1], [0, 8, 8], [3, 8, 8]]]]              # PyTorch's
    y.sum().backward()
    assert x.grad.tolist() == [[[[3.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 4.0]]]]


def test_ceil_mode_keeps_a_partial_last_window(device):
    """5 wide, kernel 2, stride 2: floor gives 2 windows, ceil a third over the last column alone."""
    x = tt.tensor([[[[1.0, 2.0, 3.0, 4.0, 5.0]]]], device=device)
    assert tt.max_pool2d(x, (1, 2), ceil_mode=True).tolist() == [[[[2.0, 4.0, 5.0]]]]
    assert tt.avg_pool2d(x, (1, 2), ceil_mode=True).tolist() == [[[[1.5, 3.5, 5.0]]]]
    assert tt.max_pool2d(x, (1, 2)).tolist() == [[[[2.0, 4.0]]]]


def test_max_pool2d_return_indices_point_at_the_maxima(device, rng):
    x = tt.tensor(rng.standard_normal((2, 3, 5, 7)), device=device)
    y, indices = tt.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
    assert indices.dtype == tt.int64 and indices.shape == y.shape
    planes = x.numpy().reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(planes, indices.numpy().reshape(2, 3, -1), axis=2),
                                  y.numpy().reshape(2, 3, -1))
    small = tt.tensor([[[[1.0, 9.0, 2.0], [8.0, 3.0, 7.0]]]], device=device)
    assert tt.max_pool2d(small, 2, 1, return_indices=True)[1].tolist() == [[[[1, 1]]]]   # 9 at (0, 1)
    assert tt.max_pool2d(small, (2, 1), return_indices=True)[1].tolist() == [[[[3, 1, 5]]]]


def test_max_unpool2d_forward_and_gradients(device, rng):
    x = rng.standard_normal((1, 3, 6, 4))
    y, indices = tt.max_pool2d(tt.tensor(x, device=device), 2, return_indices=True)        # (1, 3, 3, 2)

    def reference(values):
        out = np.zeros((1, 3, 6 * 4))
        np.put_along_axis(out, indices.numpy().reshape(1, 3, -1), values.reshape(1, 3, -1), axis=2)
        return out.reshape(1, 3, 6, 4)

    check_op(lambda v: tt.max_unpool2d(v, indices, 2), reference, y.numpy(), device=device, second_order=True)


def test_max_unpool2d_with_output_size_undoes_an_odd_pool(device, rng):
    x = tt.tensor(rng.standard_normal((2, 2, 5, 5)), device=device)
    y, indices = tt.max_pool2d(x, 2, return_indices=True)              # the last row and column are dropped
    unpooled = tt.max_unpool2d(y, indices, 2, output_size=(5, 5))
    assert unpooled.shape == (2, 2, 5, 5)
    np.testing.assert_array_equal(tt.max_pool2d(unpooled, 2).numpy(), y.numpy())
    assert (unpooled.numpy() != 0).sum() == y.size


def test_max_unpool2d_errors(device):
    y, indices = tt.max_pool2d(tt.ones(1, 1, 4, 4, device=device), 2, return_indices=True)
    with pytest.raises(IndexError, match=r"index 20 is outside the output plane \(3, 3\).*output_size"):
        tt.max_unpool2d(y, indices + 10, 2, output_size=(3, 3))
    with pytest.raises(ValueError, match=r"indices must be integers of the input's shape \(1, 1, 2, 2\)"):
        tt.max_unpool2d(y, indices.reshape(1, 1, 4), 2)
