"""Layers: Modules that hold parameters (or settings) and call the functional ops of tinytensor.

Constructor arguments, parameter and buffer names and default initialisations follow PyTorch, so a
state dict moves between the two with a NumPy round trip.
"""
import math

import tinytensor as tt

from . import init
from .module import Module, Parameter


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _empty_parameter(*shape, device=None, dtype=None):
    return Parameter(tt.empty(*shape, dtype=dtype, device=device or "cpu"))


def _uniform_fan_in_(weight, bias):
    """PyTorch's default for Linear and Conv2d: weight and bias in U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (That is kaiming_uniform_ with a = sqrt(5): gain sqrt(2 / 6) times sqrt(3 / fan_in).)"""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """y = x"""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """y = x W^T + b        x (..., in_features), W (out_features, in_features), y (..., out_features)"""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty_parameter(out_features, in_features, device=device, dtype=dtype)
        self.bias = _empty_parameter(out_features, device=device, dtype=dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_fan_in_(self.weight, self.bias)

    def forward(self, x):
        return tt.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every framework)

    x (N, C_in, H, W), weight (C_out, C_in / groups, kh, kw), bias (C_out,) -> y (N, C_out, H', W')
    with H' = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1; padding may also be "valid" (0) or
    "same" (H' = H, stride 1 only). padding_mode "zeros" pads with zeros; "reflect", "replicate" or
    "circular" pad x with tt.pad's mode of that name first, as PyTorch does."""
    _padding_modes = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        if padding_mode not in self._padding_modes:
            raise ValueError(f"Conv2d: padding_mode must be one of {self._padding_modes}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        if padding == "same" and self.stride != (1, 1):
            raise ValueError(f"Conv2d: padding='same' needs stride 1 (as in PyTorch), got stride {self.stride}")
        self.weight = _empty_parameter(out_channels, in_channels // groups, *self.kernel_size,
                                       device=device, dtype=dtype)
        self.bias = _empty_parameter(out_channels, device=device, dtype=dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_fan_in_(self.weight, self.bias)

    def forward(self, x):
        if self.padding_mode == "zeros":
            return tt.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        x = tt.pad(x, self._pad_widths(), mode=self.padding_mode)
        return tt.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def _pad_widths(self):
        """(left, right, top, bottom) for tt.pad; "same" puts an odd total's extra on the right/bottom."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            totals = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]              # H, W
            (top, left) = (t // 2 for t in totals)
            return (left, totals[1] - left, top, totals[0] - top)
        (ph, pw) = self.padding
        return (pw, pw, ph, ph)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode = ceil_mode

    def extra_repr(self):
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """y = the largest value in each window (N, C, H, W) -> (N, C, H', W'); stride defaults to the window.
    return_indices=True also returns where each maximum was (for MaxUnpool2d)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation, self.return_indices = dilation, return_indices

    def forward(self, x):
        return tt.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                             self.return_indices)

    def extra_repr(self):
        text = super().extra_repr() + (f", dilation={self.dilation}" if self.dilation != 1 else "")
        return text + (", return_indices=True" if self.return_indices else "")


class AvgPool2d(_Pool2d):
    """y = the mean of each window (N, C, H, W) -> (N, C, H', W'); stride defaults to the window.
    count_include_pad=False leaves the zero padding out of each mean."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return tt.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                             self.count_include_pad)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.count_include_pad else ", count_include_pad=False")


class MaxUnpool2d(_Pool2d):
    """Undo MaxPool2d(..., return_indices=True): each value goes back to where its maximum was, zeros
    elsewhere. forward(x, indices, output_size=None); output_size (H, W) when the default is ambiguous."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)

    def forward(self, x, indices, output_size=None):
        return tt.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


class Flatten(Module):
    """Join axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default"""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        if not (-x.ndim <= self.start_dim < x.ndim and -x.ndim <= self.end_dim < x.ndim):
            raise ValueError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}): out of range for "
                             f"an input of shape {tuple(x.shape)} ({x.ndim} axes)")
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1 / (1 - p); else y = x"""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return tt.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class _BatchNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1).

    Training: mean and (biased) var of the batch; running_mean/var move towards them by `momentum`
    (with the unbiased var), or average all batches so far when momentum is None. Eval: the running ones."""
    _accepted_ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        device = device or "cpu"
        self.weight = Parameter(tt.ones(num_features, dtype=dtype, device=device)) if affine else None
        self.bias = Parameter(tt.zeros(num_features, dtype=dtype, device=device)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", tt.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", tt.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", tt.tensor(0, dtype=tt.int64, device=device))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if x.ndim not in self._accepted_ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input of "
                             f"{' or '.join(f'{n}-D' for n in self._accepted_ndims)} with "
                             f"{self.num_features} channels on axis 1, got shape {tuple(x.shape)}")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            with tt.no_grad():
                self.num_batches_tracked += 1
            if momentum is None:   # cumulative average: 1/n, kept on the device (reading n would sync)
                momentum = (1.0 / self.num_batches_tracked).to(self.running_mean.dtype)
        use_batch_stats = self.training or not self.track_running_stats
        return tt.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             use_batch_stats, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__ + "\n\n    Input (N, C) or (N, C, L)."
    _accepted_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__ + "\n\n    Input (N, C, H, W)."
    _accepted_ndims = (4,)


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last len(normalized_shape) axes"""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        device = device or "cpu"
        self.weight = Parameter(tt.ones(shape, dtype=dtype, device=device)) if elementwise_affine else None
        self.bias = (Parameter(tt.zeros(shape, dtype=dtype, device=device))
                     if elementwise_affine and bias else None)

    def forward(self, x):
        return tt.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Embedding(Module):
    """y[..., :] = weight[ids[...], :]        ids (...) integers, weight (num_embeddings, embedding_dim)

    With padding_idx, that row starts at zero and receives no gradient (so it stays as it is)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, device=None, dtype=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for "
                                 f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = _empty_parameter(num_embeddings, embedding_dim, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with tt.no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, ids):
        out = tt.embedding(ids, self.weight)
        if self.padding_idx is None:
            return out
        # Where ids == padding_idx, take the row's value without a path back to the weight.
        keep = (ids.data != self.padding_idx)[..., None]
        keep = tt.as_tensor(keep.astype(out.dtype))
        return out * keep + self.weight.detach()[self.padding_idx] * (1 - keep)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


# ------------------------------------------------------------------ activations

class ReLU(Module):
    """y = max(x, 0)"""

    def forward(self, x):
        return tt.relu(x)


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope * x"""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return tt.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))"""

    def forward(self, x):
        return tt.sigmoid(x)


class Tanh(Module):
    """y = tanh(x)"""

    def forward(self, x):
        return tt.tanh(x)


class GELU(Module):
    """y = x * Phi(x) (Phi: the standard normal CDF), or its tanh approximation with approximate='tanh'"""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return tt.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """y = exp(x) / sum(exp(x)) along `dim` (also accepted as `axis`; the last axis by default)"""

    def __init__(self, dim=None, axis=None):
        super().__init__()
        if dim is not None and axis is not None:
            raise TypeError(f"{type(self).__name__}: got both dim={dim} and axis={axis}, two spellings of "
                            "the same argument; pass only one")
        chosen = dim if axis is None else axis
        self.dim = -1 if chosen is None else chosen

    def forward(self, x):
        return tt.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """y = x - log(sum(exp(x))) along `dim` (also accepted as `axis`)"""

    def forward(self, x):
        return tt.log_softmax(x, self.dim)
