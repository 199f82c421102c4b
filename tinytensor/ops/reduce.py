"""Reductions over axes, NumPy style: `axis` is None, an int or a tuple; `keepdims` keeps size-1 axes."""
from ..autograd import Function
from .common import normalize_axis

__all__ = ["sum", "mean", "sum_to"]
TENSOR_METHODS = ["sum", "mean", "sum_to"]


def _expand_to_input(grad, input_shape, axes, keepdims):
    """Put back the reduced axes as size 1 so `grad` broadcasts against the input."""
    if keepdims or not axes:
        return grad
    shape = [1 if i in axes else n for i, n in enumerate(input_shape)]
    return grad.reshape(shape)


class Sum(Function):
    """y = sum of x over axes        dy/dx = 1 (the gradient is broadcast back over the summed axes)"""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.input_shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = _expand_to_input(grad, ctx.input_shape, ctx.axes, ctx.keepdims)
        return grad.broadcast_to(ctx.input_shape), None, None


def sum(x, axis=None, keepdims=False):
    return Sum.apply(x, normalize_axis(axis, x.ndim), keepdims)


def mean(x, axis=None, keepdims=False):
    axes = normalize_axis(axis, x.ndim)
    count = 1
    for a in axes:
        count *= x.shape[a]
    return sum(x, axes, keepdims) / count


def sum_to(x, shape):
    """Sum `x` down to `shape`, the inverse of broadcasting `shape` up to x.shape.

    Broadcasting adds leading axes and stretches size-1 axes; their gradients add up over both."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    y = sum(x, tuple(range(lead)) + stretched, keepdims=True)
    return y.reshape(shape) if y.shape != shape else y
