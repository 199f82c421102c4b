"""Neural-network operations (also exposed as nn.functional), with PyTorch's signatures.

The hot paths (linear, layer_norm) are single Functions with hand-derived backward rules written in
Tensor ops; their plain versions from primitives (`linear_composite`, `layer_norm_composite`) sit beside
them and tests/tinytensor/test_fused.py checks that both agree. Convolution and pooling are built on
`Im2Col` / `Col2Im`, two Functions that are each other's backward, so they differentiate any number of
times for free.
"""
import math

from .. import backend
from ..autograd import Function, no_grad
from ..random import generator
from ..tensor import Tensor, int64
from . import fast
from .common import array_on, check_same_float_dtype, constant, on_input_device
from .elementwise import sqrt, where
from .reduce import softmax
from .shape import pad, setitem

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "max_unpool2d", "embedding", "dropout",
           "layer_norm", "batch_norm", "scaled_dot_product_attention"]


# ----------------------------------------------------------------------------------- linear

class Linear(Function):
    """y = x @ W^T + b        dL/dx = g @ W,  dL/dW = g^T @ x,  dL/db = sum of g over the batch axes"""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        # (..., in) -> (rows, in) @ (in, out): one BLAS call whatever the number of batch axes.
        # weight.T is a transposed view: BLAS reads it as it is, no copy.
        y = x.reshape(-1, x.shape[-1]) @ weight.T
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        grad, x, weight = ctx.backward_operands(grad)     # arrays, or Tensors under create_graph
        rows = grad.reshape(-1, weight.shape[0])                                      # (rows, out)
        grad_x = (rows @ weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        grad_weight = rows.T @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        grad_bias = rows.sum(axis=0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def _check_linear(x, weight, bias):
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(x.shape)} has {x.shape[-1] if x.ndim else 0} features "
                         f"but weight of shape {tuple(weight.shape)} expects {weight.shape[1]} (weight is "
                         "(out_features, in_features), the input's last axis must be in_features)")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {tuple(bias.shape)} but weight of shape "
                         f"{tuple(weight.shape)} needs a bias of shape ({weight.shape[0]},)")
    _check_parameter_dtypes("linear", x, weight, bias)


def _check_parameter_dtypes(op, x, weight, bias):
    check_same_float_dtype(op, "the input", x, "the weight", weight)
    if bias is not None:
        check_same_float_dtype(op, "the bias", bias, "the weight", weight)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, weight (out_features, in_features) like PyTorch; x (..., in_features)."""
    _check_linear(x, weight, bias)
    return Linear.apply(x, weight, bias)


def linear_composite(x, weight, bias=None):
    """The plain version of `linear`, from matmul and add (gradient for free)."""
    _check_linear(x, weight, bias)
    y = x @ weight.T
    return y if bias is None else y + bias


# ----------------------------------------------------------------------------------- im2col
#
# A convolution is a matrix product once every window of the input is laid out as a column:
#   cols[n, c, i, j, oh, ow] = x_padded[n, c, oh*stride + i*dilation, ow*stride + j*dilation]
# For each kernel offset (i, j) the windows' elements form one strided slice of the padded input, so
# im2col is kh*kw slice copies (no loop over pixels or batch). Then, per group,
#   out[n, o, oh, ow] = sum over (c, i, j) of weight[o, c, i, j] * cols[n, c, i, j, oh, ow]
# is (out, C*kh*kw) @ (C*kh*kw, OH*OW). Going back, each window element returns to the pixel it was
# copied from, and overlapping windows add up: that is col2im, the transpose (and backward) of im2col.

def _window(i, j, geometry):
    """The slice of the padded input seen by kernel offset (i, j), over all output positions."""
    _, (kh, kw), (sh, sw), _, (dh, dw), (oh, ow) = geometry
    return (slice(None), slice(None), slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _padded_size(geometry):
    """(H, W) of the padded input: the padding on both sides, and on the bottom and right whatever more
    the last window reaches (only with a pool's ceil_mode)."""
    shape, kernel, stride, padding, dilation, out = geometry
    return tuple(max(n + 2 * p, (o - 1) * s + d * (k - 1) + 1)
                 for n, k, s, p, d, o in zip(shape[2:], kernel, stride, padding, dilation, out))


def _im2col(xp, x, geometry, pad_value):
    """Every window of x as (N, C, kh, kw, OH, OW); padding filled with pad_value."""
    shape, (kh, kw), _, (ph, pw), _, (oh, ow) = geometry
    n, c, h, w = shape
    if _padded_size(geometry) != (h, w):
        padded = xp.full((n, c) + _padded_size(geometry), pad_value, dtype=x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = x
    else:
        padded = x
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = padded[_window(i, j, geometry)]
    return cols


class Im2Col(Function):
    """cols[n, c, i, j, oh, ow] = x_padded[n, c, oh*s + i*d, ow*s + j*d]        dL/dx = col2im(g)"""

    @staticmethod
    def forward(ctx, x, geometry, pad_value):
        ctx.geometry = geometry
        return _im2col(ctx.xp, x, geometry, pad_value)

    @staticmethod
    def backward(ctx, grad):
        return Col2Im.apply(grad, ctx.geometry), None, None


class Col2Im(Function):
    """x[n, c, h, w] = sum of the cols copied from (h, w) by im2col        dL/dcols = im2col(g)"""

    @staticmethod
    def forward(ctx, cols, geometry):
        ctx.geometry = geometry
        shape, (kh, kw), _, (ph, pw), _, _ = geometry
        n, c, h, w = shape
        padded = ctx.xp.zeros((n, c) + _padded_size(geometry), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                padded[_window(i, j, geometry)] += cols[:, :, i, j]
        return ctx.xp.ascontiguousarray(padded[:, :, ph:ph + h, pw:pw + w])

    @staticmethod
    def backward(ctx, grad):
        return Im2Col.apply(grad, ctx.geometry, 0), None


def _pair(value, name, op):
    pair = (value, value) if hasattr(value, "__index__") else tuple(value)
    if len(pair) != 2 or not all(hasattr(v, "__index__") for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in pair)


def _geometry(op, x, kernel, stride, padding, dilation, ceil_mode=False):
    """(input shape, kernel, stride, padding, dilation, output size), checked, as tuples of ints.

    OH = floor((H + 2 padding - dilation (kh - 1) - 1) / stride) + 1, or ceil(...) with ceil_mode (pools),
    where as in PyTorch the last window must still start inside the input or its left padding."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    kernel, stride = _pair(kernel, "kernel_size", op), _pair(stride, "stride", op)
    padding, dilation = _pair(padding, "padding", op), _pair(dilation, "dilation", op)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: kernel_size {kernel}, stride {stride} and dilation {dilation} must be "
                         f">= 1 and padding {padding} >= 0")
    out = tuple(_output_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation))
    if min(out) <= 0:
        raise ValueError(f"{op}: output size {out} is too small: input {tuple(x.shape[2:])} (H, W) with "
                         f"padding {padding} is smaller than the kernel {kernel} with dilation {dilation}")
    return tuple(x.shape), kernel, stride, padding, dilation, out


def _output_size(n, k, s, p, d, ceil_mode):
    room = n + 2 * p - d * (k - 1) - 1                 # how far the first window can slide
    if room < 0:
        return 0
    if not ceil_mode:
        return room // s + 1
    out = -(-room // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


# ----------------------------------------------------------------------------------- conv and pools

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation like PyTorch: x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,)
    -> (N, O, OH, OW), OH = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1.

    padding is an int, a pair, "valid" (no padding) or "same" (OH = H, stride 1 only: dilation (kh - 1)
    zeros in all, the odd one on the bottom or right, as PyTorch does)."""
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kh, kw), got "
                         f"shape {tuple(weight.shape)}")
    out_channels, group_channels, kh, kw = weight.shape
    if isinstance(padding, str):
        x, padding = _named_padding(x, padding, (kh, kw), stride, dilation)
    geometry = _geometry("conv2d", x, (kh, kw), stride, padding, dilation)
    n, channels = x.shape[:2]
    if groups < 1 or channels % groups or out_channels % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input channels ({channels}) and "
                         f"the output channels ({out_channels})")
    if group_channels * groups != channels:
        raise ValueError(f"conv2d: input of shape {tuple(x.shape)} has {channels} channels, but weight of "
                         f"shape {tuple(weight.shape)} with groups={groups} expects "
                         f"{group_channels * groups} ({group_channels} per group)")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"conv2d: bias has shape {tuple(bias.shape)}, expected ({out_channels},)")
    _check_parameter_dtypes("conv2d", x, weight, bias)
    oh, ow = geometry[-1]
    cols = Im2Col.apply(x, geometry, 0)                                         # (N, C, kh, kw, OH, OW)
    # C is the outer axis of cols, so each group's channels are one contiguous block of rows.
    cols = cols.reshape(n, groups, group_channels * kh * kw, oh * ow)           # (N, G, K, L)
    kernels = weight.reshape(groups, out_channels // groups, group_channels * kh * kw)   # (G, O/G, K)
    y = (kernels @ cols).reshape(n, out_channels, oh, ow)                       # (N, G, O/G, L)
    return y if bias is None else y + bias.reshape(1, out_channels, 1, 1)


def _named_padding(x, padding, kernel, stride, dilation):
    """(x, padding) for padding="valid" or "same"; "same" with an odd total pads x's bottom/right first."""
    if padding == "valid":
        return x, 0
    if padding != "same":
        raise ValueError(f"conv2d: padding must be an int, a pair of ints, 'valid' or 'same', got {padding!r}")
    if _pair(stride, "stride", "conv2d") != (1, 1):
        raise ValueError(f"conv2d: padding='same' needs stride 1 (as in PyTorch), got stride {stride!r}")
    totals = [d * (k - 1) for k, d in zip(kernel, _pair(dilation, "dilation", "conv2d"))]   # (H, W)
    (extra_h, extra_w) = (t % 2 for t in totals)
    if extra_h or extra_w:
        x = pad(x, (0, extra_w, 0, extra_h))
    return x, tuple(t // 2 for t in totals)


def _windows_and_winners(xp, x, geometry):
    """Every window of x, (N, C, kh*kw, OH, OW) with -inf padding, and where each one's max is in it
    (N, C, OH, OW): the first maximum on ties, as PyTorch."""
    n, c = x.shape[:2]
    (kh, kw), (oh, ow) = geometry[1], geometry[-1]
    windows = _im2col(xp, x, geometry, -math.inf).reshape(n, c, kh * kw, oh, ow)
    winner = windows.argmax(axis=2)
    if _padded_size(geometry) != tuple(x.shape[2:]):
        # A window of -inf ties with its padding; PyTorch then picks its first element inside the input.
        plane = ((1, 1) + tuple(x.shape[2:]),) + geometry[1:]
        inside = _im2col(xp, xp.ones(plane[0], dtype=x.dtype), plane, 0).reshape(1, 1, kh * kw, oh, ow)
        lost = xp.take_along_axis(windows, winner[:, :, None], axis=2)[:, :, 0] == -math.inf
        winner = xp.where(lost, inside.argmax(axis=2), winner)
    return windows, winner


class MaxPool2d(Function):
    """y = max over each window        dL/dx: g goes to the window's argmax (the first one on ties)"""

    @staticmethod
    def forward(ctx, x, geometry):
        windows, winner = _windows_and_winners(ctx.xp, x, geometry)
        winner = winner[:, :, None]                                             # (N, C, 1, OH, OW)
        ctx.geometry, ctx.winner = geometry, winner
        return ctx.xp.take_along_axis(windows, winner, axis=2)[:, :, 0]

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        n, c = grad.shape[:2]
        (kh, kw), (oh, ow) = ctx.geometry[1], ctx.geometry[-1]
        one_hot = xp.arange(kh * kw).reshape(1, 1, -1, 1, 1) == ctx.winner      # (N, C, kh*kw, OH, OW)
        cols = grad.reshape(n, c, 1, oh, ow) * constant(one_hot, grad)
        return Col2Im.apply(cols.reshape(n, c, kh, kw, oh, ow), ctx.geometry), None


def _pool_geometry(op, x, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    geometry = _geometry(op, x, kernel_size, kernel_size if stride is None else stride, padding, dilation,
                         ceil_mode)
    kernel, padding = geometry[1], geometry[3]
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    return geometry


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows (stride defaults to kernel_size; padding counts as -inf).
    On ties the whole gradient goes to the first maximum in the window (row-major), like PyTorch.

    ceil_mode: round the output size up, so a last partial window at the bottom/right is kept.
    return_indices: also return where each maximum is, as PyTorch does: an int64 (N, C, OH, OW) index
    into the flattened H*W plane of the input (what max_unpool2d takes)."""
    geometry = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    y = MaxPool2d.apply(x, geometry)
    return (y, _max_pool_indices(x, geometry)) if return_indices else y


def _max_pool_indices(x, geometry):
    """The flat H*W position in x of each window's maximum (the first on ties), by a second pass."""
    xp = x.xp
    (_, _, _, w), (_, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = geometry
    _, winner = _windows_and_winners(xp, x.data, geometry)                       # (N, C, OH, OW)
    rows = xp.arange(oh).reshape(-1, 1) * sh - ph + (winner // kw) * dh
    cols = xp.arange(ow) * sw - pw + (winner % kw) * dw
    return Tensor(rows * w + cols, dtype=int64, device=x.device)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over kernel_size windows (stride defaults to kernel_size), as PyTorch's avg_pool2d.
    count_include_pad=True: the zero padding counts in the mean; False: each window is averaged over its
    elements inside the input only. ceil_mode: round the output size up; a last partial window is
    averaged over its elements inside the padded input (or the input, without count_include_pad)."""
    geometry = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, ceil_mode=ceil_mode)
    (kh, kw), (oh, ow) = geometry[1], geometry[-1]
    windows = Im2Col.apply(x, geometry, 0).reshape(x.shape[0], x.shape[1], kh * kw, oh, ow)
    if count_include_pad and not ceil_mode:    # every window counts kh * kw elements
        return windows.mean(axis=2)
    counts = _window_counts(x.xp, geometry, count_include_pad)                     # (OH, OW)
    return windows.sum(axis=2) / constant(counts.astype(x.dtype), x)


def _window_counts(xp, geometry, count_include_pad):
    """How many elements each pooling window averages, (OH, OW): the part of the window that lies inside
    the padded input (count_include_pad) or inside the input itself."""
    shape, kernel, stride, padding, _, out = geometry
    sizes = []
    for n, k, s, p, o in zip(shape[2:], kernel, stride, padding, out):             # H, then W
        start = xp.arange(o) * s - p                                               # first row of each window
        low, high = (-p, n + p) if count_include_pad else (0, n)
        sizes.append(xp.minimum(start + k, high) - xp.maximum(start, low))
    return sizes[0].reshape(-1, 1) * sizes[1]


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of max_pool2d's gather, as PyTorch's: an all-zero (N, C, H, W) with x[n, c, i, j]
    placed at position indices[n, c, i, j] of its flattened H*W plane. H = (OH - 1) stride - 2 padding +
    kernel_size unless output_size (H, W) or (N, C, H, W) says otherwise. The gradient gathers back."""
    if x.ndim != 4:
        raise ValueError(f"max_unpool2d: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    raw = indices.data if isinstance(indices, Tensor) else x.xp.asarray(indices)
    if tuple(raw.shape) != tuple(x.shape) or raw.dtype.kind not in "iu":
        raise ValueError(f"max_unpool2d: indices must be integers of the input's shape {tuple(x.shape)}, got "
                         f"{raw.dtype} of shape {tuple(raw.shape)} (the second result of max_pool2d(..., "
                         "return_indices=True))")
    kernel, padding = _pair(kernel_size, "kernel_size", "max_unpool2d"), _pair(padding, "padding", "max_unpool2d")
    stride = kernel if stride is None else _pair(stride, "stride", "max_unpool2d")
    if output_size is None:
        size = tuple((o - 1) * s - 2 * p + k for o, s, p, k in zip(x.shape[2:], stride, padding, kernel))
    else:
        size = tuple(int(v) for v in tuple(output_size)[-2:])
    n, c = x.shape[:2]
    plane = size[0] * size[1]
    if raw.size and (int(raw.min()) < 0 or int(raw.max()) >= plane):
        bad = int(raw.min()) if int(raw.min()) < 0 else int(raw.max())
        raise IndexError(f"max_unpool2d: index {bad} is outside the output plane {size} (valid: 0 to "
                         f"{plane - 1}); pass output_size when the pooled input's size was not the default")
    xp = x.xp
    zeros = constant(xp.zeros((n * c, plane), dtype=x.dtype), x)
    rows = xp.arange(n * c).reshape(-1, 1)
    out = setitem(zeros, (rows, raw.reshape(n * c, -1)), x.reshape(n * c, -1))
    return out.reshape(n, c, *size)


# ----------------------------------------------------------------------------------- embedding, dropout

def embedding(ids, weight):
    """weight[ids]: ids an integer tensor of any shape, weight (num_embeddings, dim) -> (*ids.shape, dim).
    The backward scatter-adds the gradient rows into the weight; repeated ids accumulate."""
    raw = ids.data if isinstance(ids, Tensor) else ids
    if not hasattr(raw, "dtype") or raw.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be an integer tensor, got "
                        f"{getattr(raw, 'dtype', type(ids).__name__)} (convert with .long())")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape {tuple(weight.shape)}")
    count = weight.shape[0]
    if raw.size:
        _check_ids(raw, count)
    return weight[ids]


def _check_ids(raw, count):
    """IndexError for an id outside 0..count-1: at once on the CPU, at the next read on a GPU (see
    backend.check: looking at the ids would make every step wait for the GPU)."""
    with backend.on_device(backend.device_of(raw)):
        # Negative ids read as unsigned integers are huge, so one comparison catches both ends.
        outside = raw.view(raw.dtype.str.replace("i", "u")) >= count

        def exact_message():
            return (f"embedding: id {int(raw[outside][0])} is out of range for {count} embeddings "
                    f"(valid: 0 to {count - 1})")
        backend.check(outside.any(), IndexError, f"embedding: an id is out of range for {count} "
                      f"embeddings (valid: 0 to {count - 1})", exact_message)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout), so the
    expected value is unchanged; x itself when not training or p == 0. Random numbers come from
    tt.random.generator(x.device), so tt.manual_seed makes the mask reproducible."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be between 0 and 1, got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    with backend.on_device(x.device):
        uniform = generator(x.device).random(x.shape, dtype=x.dtype if x.dtype.itemsize >= 4 else "float32")
        mask = (uniform >= p).astype(x.dtype)           # kept with probability 1 - p
        mask *= 1 / (1 - p)
    return x * constant(mask, x)


# ----------------------------------------------------------------------------------- normalization

def _norm_axes(x, normalized_shape, weight, bias):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or tuple(x.shape[x.ndim - len(shape):]) != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} must equal the last axes of the input, "
                         f"which has shape {tuple(x.shape)}")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(param.shape)}, expected {shape}")
        if param is not None:
            check_same_float_dtype("layer_norm", "the input", x, f"the {name}", param)
    return tuple(range(x.ndim - len(shape), x.ndim))


class LayerNorm(Function):
    """y = xhat * w + b, xhat = (x - mean) * r, r = 1/sqrt(var + eps)
    dL/dx = r * (h - mean(h) - xhat * mean(h * xhat)), h = g * w;  dL/dw = sum g * xhat;  dL/db = sum g"""

    @staticmethod
    def forward(ctx, x, weight, bias, axes, eps):
        xp = ctx.xp
        centred = x - x.mean(axis=axes, keepdims=True)
        rstd = 1 / xp.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
        xhat = centred * rstd
        ctx.save_for_backward(x, weight, xhat, rstd)
        ctx.axes, ctx.eps = axes, eps
        y = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            y += bias
        return y

    @staticmethod
    def backward(ctx, grad):
        grad, x, weight, xhat, rstd = ctx.backward_operands(grad)   # arrays unless create_graph
        axes = ctx.axes
        if ctx.create_graph:   # rebuild the statistics from x so the gradient carries x's graph
            centred = x - x.mean(axes, keepdims=True)
            rstd = 1 / sqrt((centred * centred).mean(axes, keepdims=True) + ctx.eps)
            xhat = centred * rstd
        h = grad * weight if weight is not None else grad
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = rstd * (h - h.mean(axes, keepdims=True) - xhat * (h * xhat).mean(axes, keepdims=True))
        grad_weight = grad * xhat if ctx.needs_input_grad[1] else None   # the engine sums the batch axes
        grad_bias = grad if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias, None, None


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias, statistics (biased var) over the last
    len(normalized_shape) axes. One Function; `layer_norm_composite` is the same from primitives."""
    return LayerNorm.apply(x, weight, bias, _norm_axes(x, normalized_shape, weight, bias), eps)


def layer_norm_composite(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """The plain version of `layer_norm`, from mean, sub, mul, sqrt (gradient for free)."""
    axes = _norm_axes(x, normalized_shape, weight, bias)
    centred = x - x.mean(axes, keepdims=True)
    y = centred / sqrt((centred * centred).mean(axes, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Per-channel (axis 1) normalization of (N, C) or (N, C, ...) like PyTorch.

    training: normalize with the batch mean and biased variance, and move the running statistics (when
    given) towards the batch's mean and unbiased variance in place: r = (1 - momentum) r + momentum b.
    Otherwise: normalize with running_mean and running_var."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C) or (N, C, ...), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(t.shape)}, but the input of shape "
                             f"{tuple(x.shape)} has {channels} channels on axis 1")
        if t is not None:
            check_same_float_dtype("batch_norm", "the input", x, f"the {name}", t)
    shape = (1, channels) + (1,) * (x.ndim - 2)            # broadcasts a (C,) vector over axis 1
    if training:
        axes = (0,) + tuple(range(2, x.ndim))
        count = x.size // max(channels, 1)
        if count <= 1:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got input of "
                             f"shape {tuple(x.shape)}")
        mean = x.mean(axes, keepdims=True)
        var = x.var(axes, keepdims=True, ddof=0)           # normalize with the population variance
        with no_grad():
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.reshape(channels)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += (momentum * count / (count - 1)) * var.reshape(channels)   # unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (x - mean) / sqrt(var + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


# ----------------------------------------------------------------------------------- attention

@on_input_device
def scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0, scale=None):
    """softmax(q @ k^T * scale + mask) @ v, q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev).

    scale defaults to 1/sqrt(E). A bool attn_mask marks True where a query may attend (the opposite of
    nn.MultiHeadAttention's masks, where True means may NOT attend, as in PyTorch); a float one is added
    to the scores, and its -inf entries count as masked; is_causal lets query i attend to keys 0..i.
    Masked scores are set to the most negative finite value of the dtype (not -inf, whose softmax is NaN
    when a whole row is masked), and a query that may attend to nothing gets an all-zero output and zero
    gradient instead of NaN."""
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: q, k, v need at least 2 axes (..., length, dim), "
                         f"got shapes {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {tuple(q.shape)} and k {tuple(k.shape)} must "
                         f"share the last axis (E), k and v {tuple(v.shape)} the second last (S)")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal=True, not both")
    xp = q.xp
    length, source = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.swapaxes(-1, -2)) * scale                             # (..., L, S)
    allowed = None
    if is_causal:
        allowed = xp.tril(xp.ones((length, source), dtype=bool))
    elif attn_mask is not None:
        raw = array_on(attn_mask, q, "scaled_dot_product_attention", "attn_mask")
        if raw.dtype == bool:
            allowed = raw
        else:
            scores = scores + attn_mask
            allowed = ~xp.isneginf(raw)           # -inf entries are masked positions, as False ones are
    if allowed is not None:
        scores = where(allowed, scores, float(xp.finfo(scores.dtype).min))
    attention = softmax(scores, -1)
    if allowed is not None and not is_causal:     # causal: every query sees at least key 0
        # Zero the rows of queries that may attend to nothing. Always multiplied, never tested first:
        # a test would wait for the GPU (a sync) in every step.
        attends = allowed.any(axis=-1, keepdims=True)
        attention = attention * constant(attends.astype(scores.dtype), scores)
    if dropout_p > 0:
        attention = dropout(attention, dropout_p)
    return attention @ v


# ----------------------------------------------------------------------------------- fused transformer kernels
#
# The plain versions are tt.scaled_dot_product_attention(q, k, v, is_causal=True) and
# tt.gelu(x, approximate="tanh"): read those first. These two do the same arithmetic with fewer passes
# over memory and fewer temporaries, and their backward works on arrays in place (so, unlike the plain
# versions, they have no second derivative). tests/tinytensor/test_fused_transformer.py checks that both
# agree, forward and backward.

__all__ += ["causal_attention_fused", "gelu_tanh_fused"]


def causal_attention_probs(xp, q, k, scale):
    """P = softmax(q k^T * scale, keys after each query masked) on arrays, in one (..., L, S) buffer.
    Query i is position S - L + i. Used by CausalAttentionFused and by array-level decoders."""
    length, source = q.shape[-2], k.shape[-2]
    probs = q @ k.swapaxes(-1, -2)
    probs *= scale
    if length > 1:     # keys after the query -> -inf (a single query is the last position: it sees all)
        probs += xp.triu(xp.full((length, source), -xp.inf, dtype=probs.dtype), source - length + 1)
    probs -= probs.max(axis=-1, keepdims=True)
    xp.exp(probs, out=probs)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs


class CausalAttentionFused(Function):
    """y = P v, P = softmax(S), S = q k^T * scale with the keys after each query masked out
    dL/dv = P^T g;  dL/dP = g v^T;  dL/dS = P * (dL/dP - rowsum(dL/dP * P));  dL/dq = dL/dS k scale;
    dL/dk = dL/dS^T q scale"""

    differentiable_backward = False

    @staticmethod
    def forward(ctx, q, k, v, scale):
        probs = causal_attention_probs(ctx.xp, q, k, scale)              # (..., L, S)
        ctx.save_for_backward(q, k, v, probs)
        ctx.scale = scale
        return probs @ v

    @staticmethod
    def backward(ctx, grad):
        q, k, v, probs = (t.data for t in ctx.saved_tensors)
        g = grad.data
        grad_v = probs.swapaxes(-1, -2) @ g
        grad_scores = g @ v.swapaxes(-1, -2)                              # dL/dP, then dL/dS in place
        grad_scores -= (grad_scores * probs).sum(axis=-1, keepdims=True)
        grad_scores *= probs
        grad_scores *= ctx.scale
        grad_q = grad_scores @ k
        grad_k = grad_scores.swapaxes(-1, -2) @ q
        return grad_q, grad_k, grad_v, None


def causal_attention_fused(q, k, v, scale=None):
    """Causal attention as one Function: q (..., L, E), k (..., S, E), v (..., S, Ev), L <= S. The L queries
    are the last L of the S positions (the first S - L are earlier tokens, e.g. from a KV cache), so query
    i attends to keys 0 .. S - L + i. For L == S that is scaled_dot_product_attention(q, k, v,
    is_causal=True); for L < S, that with attn_mask[i, j] = j <= S - L + i. No dropout, no second derivative."""
    if (q.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2] or k.shape[:-2] != v.shape[:-2]
            or q.shape[-2] > k.shape[-2]):
        raise ValueError(f"causal_attention_fused: q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} "
                         "must be (..., L, E), (..., S, E) and (..., S, Ev) with the same batch axes and L <= S")
    return CausalAttentionFused.apply(q, k, v, 1 / math.sqrt(q.shape[-1]) if scale is None else scale)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


def gelu_tanh_array(xp, x):
    """(gelu(x, approximate="tanh"), t) on arrays, t = tanh(sqrt(2/pi) (x + 0.044715 x^3)): the in-place
    kernel of tinytensor/ops/fast.py. Used by GeluTanhFused and by array-level decoders."""
    return fast.gelu_tanh(xp, x, _GELU_CUBIC, _SQRT_2_OVER_PI)


class GeluTanhFused(Function):
    """y = x (1 + t) / 2, t = tanh(sqrt(2/pi) (x + 0.044715 x^3))
    dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)"""

    differentiable_backward = False

    @staticmethod
    def forward(ctx, x):
        y, t = gelu_tanh_array(ctx.xp, x)
        ctx.save_for_backward(x, t)
        return y

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        x, t = (saved.data for saved in ctx.saved_tensors)
        slope = x * x                              # sqrt(2/pi) (1 + 3 * 0.044715 x^2)
        slope *= 3 * _GELU_CUBIC * _SQRT_2_OVER_PI
        slope += _SQRT_2_OVER_PI
        inner = t * t                              # x/2 (1 - t^2) * that
        xp.subtract(1, inner, out=inner)
        inner *= x
        inner *= 0.5
        slope *= inner
        xp.add(t, 1, out=inner)                    # + (1 + t)/2
        inner *= 0.5
        slope += inner
        slope *= grad.data
        return slope


def gelu_tanh_fused(x):
    """gelu(x, approximate="tanh") as one Function with fewer temporaries; no second derivative."""
    return GeluTanhFused.apply(x)
