"""Reductions over axes, NumPy style: `axis` is None, an int or a tuple; `keepdims` keeps size-1 axes.
PyTorch's spellings (`dim=`, `keepdim=`, `correction=`, `unbiased=`) work too (see keywords.py).

Also the reductions that keep the shape (softmax, log_softmax) since they are built on one.
"""
from typing import NamedTuple

from ..autograd import Function
from ..keywords import pytorch_keywords
from ..tensor import Tensor, int64
from . import fast
from .common import constant, normalize_axis
from .elementwise import exp, quiet, where

__all__ = ["sum", "mean", "var", "std", "max", "min", "logsumexp", "softmax", "log_softmax", "argmax",
           "argmin", "ValuesIndices"]


def _expand_to_input(grad, input_shape, axes, keepdims):
    """Put back the reduced axes as size 1 so `grad` broadcasts against the input. Leading axes
    (a full sum, a sum over the batch) need nothing: broadcasting adds missing axes at the front."""
    if keepdims or axes == tuple(range(len(axes))):
        return grad
    shape = [1 if i in axes else n for i, n in enumerate(input_shape)]
    return grad.reshape(shape)


def _count(shape, axes):
    """How many elements each output element of a reduction over `axes` gathers."""
    count = 1
    for a in axes:
        count *= shape[a]
    return count


def _check_not_empty(name, x, axes):
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{name}: cannot reduce a tensor of shape {tuple(x.shape)} over axes {axes}, "
                         "at least one of them is empty")


class Sum(Function):
    """y = sum of x over axes        dy/dx = 1 (the gradient is broadcast back over the summed axes)

    Integers and bools add up in int64, as in PyTorch (NumPy would keep uint8 sums unsigned)."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.input_shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims, dtype=int64 if x.dtype.kind in "biu" else None)

    @staticmethod
    def backward(ctx, grad):
        grad = _expand_to_input(grad, ctx.input_shape, ctx.axes, ctx.keepdims)
        return grad.broadcast_to(ctx.input_shape), None, None


class Var(Function):
    """y = sum((x - mean)^2) / (n - ddof) over axes        dy/dx = 2 (x - mean) / (n - ddof)"""

    @staticmethod
    def forward(ctx, x, axes, keepdims, ddof):
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdims, ctx.ddof = axes, keepdims, ddof
        return x.var(axis=axes, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        grad = _expand_to_input(grad, x.shape, ctx.axes, ctx.keepdims)
        centred = x - mean(x, ctx.axes, keepdims=True)
        return grad * centred * (2 / (_count(x.shape, ctx.axes) - ctx.ddof)), None, None, None


class Std(Function):
    """y = sqrt(var(x)) over axes        dy/dx = (x - mean) / ((n - ddof) y), and 0 where y = 0

    Where the spread is zero (one element, or all equal) sqrt has an infinite slope but x - mean is 0;
    the gradient there is taken as 0, PyTorch's convention, instead of 0 * inf = NaN."""

    @staticmethod
    def forward(ctx, x, axes, keepdims, ddof):
        y = x.std(axis=axes, keepdims=keepdims, ddof=ddof)
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdims, ctx.ddof = axes, keepdims, ddof
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        y = _expand_to_input(y, x.shape, ctx.axes, ctx.keepdims)
        grad = _expand_to_input(grad, x.shape, ctx.axes, ctx.keepdims)
        flat = constant(y.data == 0, y)                     # no spread: the gradient is 0 there
        slope = where(flat, 0.0, grad / where(flat, 1.0, y))
        centred = x - mean(x, ctx.axes, keepdims=True)
        return slope * centred * (1 / (_count(x.shape, ctx.axes) - ctx.ddof)), None, None, None


class Max(Function):
    """y = max of x over axes        dy/dx = 1/k at the k elements equal to the max, else 0

    A NaN is the max of its group (NaN propagates); the gradient goes to the NaN elements, as PyTorch's
    x.max() does (NaN == NaN is False, so they are looked for by name)."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdims = axes, keepdims
        y = x.max(axis=axes, keepdims=True)
        ctx.y = y                      # (kept dims) to find the winners in backward
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        xp = ctx.xp
        winners = ((x.data == ctx.y) | (xp.isnan(x.data) & xp.isnan(ctx.y))).astype(x.dtype)
        winners /= winners.sum(axis=ctx.axes, keepdims=True)      # ties share the gradient evenly
        grad = _expand_to_input(grad, x.shape, ctx.axes, ctx.keepdims)
        return grad * Tensor._from_array(winners, x.device), None, None


class LogSumExp(Function):
    """y = log(sum(exp(x))) over axes        dy/dx = exp(x - y) (the softmax)"""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        xp = ctx.xp
        ctx.axes, ctx.keepdims = axes, keepdims
        shift = x.max(axis=axes, keepdims=True)
        shift = xp.where(xp.isfinite(shift), shift, 0)      # all -inf: log(0) + 0 = -inf, not NaN
        total = xp.exp(x - shift).sum(axis=axes, keepdims=True)
        with quiet(xp, divide="ignore"):
            y = xp.log(total) + shift                       # log(0) = -inf is right here
        if not keepdims:
            y = y.reshape([n for i, n in enumerate(x.shape) if i not in axes])
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        y = _expand_to_input(y, x.shape, ctx.axes, ctx.keepdims)
        grad = _expand_to_input(grad, x.shape, ctx.axes, ctx.keepdims)
        return grad * exp(x - y), None, None


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along axis        dL/dx = y * (g - sum(g * y))  (g = dL/dy)"""

    @staticmethod
    def forward(ctx, x, axis):
        xp = ctx.xp
        ctx.axis = axis
        if x.shape[axis] == 0:     # no entries to normalise (the max would have nothing to reduce)
            y = x.copy()
        elif not fast.enabled():
            e = xp.exp(x - x.max(axis=axis, keepdims=True))      # shifted by the max: exp never overflows
            y = e / e.sum(axis=axis, keepdims=True)
        else:
            y = fast.softmax(xp, x, axis)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return y * (grad - (grad * y).sum(ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """y = x - logsumexp(x) along axis        dL/dx = g - exp(y) * sum(g)  (g = dL/dy)"""

    @staticmethod
    def forward(ctx, x, axis):
        xp = ctx.xp
        ctx.axis = axis
        if x.shape[axis] == 0:     # no entries to normalise
            y = x.copy()
        else:
            shifted = x - x.max(axis=axis, keepdims=True)
            y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad - exp(y) * grad.sum(ctx.axis, keepdims=True), None


@pytorch_keywords
def sum(x, axis=None, keepdims=False):
    return Sum.apply(x, normalize_axis(axis, x.ndim), keepdims)


@pytorch_keywords
def mean(x, axis=None, keepdims=False):
    """sum / count over axes; the mean of no elements is NaN (0 / 0), as in PyTorch."""
    axes = normalize_axis(axis, x.ndim)
    count = _count(x.shape, axes)
    if count == 0:        # 0 * NaN is NaN without NumPy's "invalid value" warning that 0 / 0 gives
        return sum(x, axes, keepdims) * float("nan")
    return sum(x, axes, keepdims) / count


@pytorch_keywords
def var(x, axis=None, keepdims=False, ddof=1):
    """Variance over axes, divided by n - ddof. The default ddof=1 is the unbiased (sample) variance, as
    PyTorch's correction=1; ddof=0 (correction=0, unbiased=False) is the population variance, NumPy's
    default."""
    axes = normalize_axis(axis, x.ndim)
    _check_degrees_of_freedom("var", x, axes, ddof)
    return Var.apply(x, axes, keepdims, ddof)


def _check_degrees_of_freedom(name, x, axes, ddof):
    if _count(x.shape, axes) - ddof <= 0:
        raise ValueError(f"{name}: {_count(x.shape, axes)} element(s) per output with ddof={ddof} leaves "
                         f"no degrees of freedom (shape {tuple(x.shape)}, axes {axes}); ddof=0 "
                         "(correction=0) gives the population value")


@pytorch_keywords
def std(x, axis=None, keepdims=False, ddof=1):
    """sqrt(var(x)) over axes, unbiased by default (ddof=1) as var; where the spread is 0 its gradient
    is 0 (PyTorch's convention)."""
    axes = normalize_axis(axis, x.ndim)
    _check_degrees_of_freedom("std", x, axes, ddof)
    return Std.apply(x, axes, keepdims, ddof)


class ValuesIndices(NamedTuple):
    """What max and min return with PyTorch's `dim=`: the extreme values and where they are."""
    values: Tensor        # differentiable, as max/min with axis=
    indices: Tensor       # int64, the first position on ties, no gradient (as argmax/argmin)


@pytorch_keywords
def max(x, axis=None, keepdims=False, *, dim=None):
    """Largest element over axes; on ties the gradient is split evenly among them.

    Two spellings, two results, as in NumPy and in PyTorch: with `axis=` (or the axis by position; None,
    an int or a tuple) the values only, as np.max; with `dim=` (one int) the named tuple
    (values, indices), the indices of the first largest element, as torch.max(x, dim)."""
    if dim is not None:
        return _values_and_indices("max", max, argmax, x, axis, dim, keepdims)
    axes = normalize_axis(axis, x.ndim)
    _check_not_empty("max", x, axes)
    return Max.apply(x, axes, keepdims)


@pytorch_keywords
def min(x, axis=None, keepdims=False, *, dim=None):
    """Smallest element over axes = -max(-x); on ties the gradient is split evenly among them. As max:
    with `axis=` the values only, with `dim=` the named tuple (values, indices), as torch.min(x, dim)."""
    if dim is not None:
        return _values_and_indices("min", min, argmin, x, axis, dim, keepdims)
    _check_not_empty("min", x, normalize_axis(axis, x.ndim))
    return -max(-x, axis, keepdims)


def _values_and_indices(name, values_of, index_of, x, axis, dim, keepdims):
    """max or min along one axis for PyTorch's dim= spelling: (values, indices)."""
    if axis is not None:
        raise TypeError(f"{name}(): got both axis and dim=, two spellings of the same argument; pass only "
                        "one (axis= returns the values, dim= the values and their indices)")
    dim = _one_axis(name, x, dim, "dim")
    return ValuesIndices(values_of(x, dim, keepdims), index_of(x, dim, keepdims))


@pytorch_keywords
def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over axes, computed as m + log(sum(exp(x - m))) with m the max: no overflow."""
    axes = normalize_axis(axis, x.ndim)
    _check_not_empty("logsumexp", x, axes)
    return LogSumExp.apply(x, axes, keepdims)


def _one_axis(name, x, axis, word="axis"):
    if not isinstance(axis, int):
        raise TypeError(f"{name}: {word} must be an int, got {axis!r}")
    (axis,) = normalize_axis(axis, x.ndim)
    return axis


@pytorch_keywords
def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along one axis (shifted by the max first, so large logits are fine)."""
    return Softmax.apply(x, _one_axis("softmax", x, axis))


@pytorch_keywords
def log_softmax(x, axis=-1):
    """x - logsumexp(x) along one axis; stable for logits of any size."""
    return LogSoftmax.apply(x, _one_axis("log_softmax", x, axis))


def _arg(name, x, axis, keepdims):
    if axis is not None:
        axis = _one_axis(name, x, axis)
    _check_not_empty(name, x, normalize_axis(axis, x.ndim))
    index = getattr(x.data, name)(axis=axis)
    if keepdims:
        index = index.reshape([1 if axis is None or i == axis else n for i, n in enumerate(x.shape)])
    return Tensor._from_array(index.astype(int64, copy=False), x.device)


@pytorch_keywords
def argmax(x, axis=None, keepdims=False):
    """Index of the largest element (the first on ties) along axis, or in the flattened tensor; int64."""
    return _arg("argmax", x, axis, keepdims)


@pytorch_keywords
def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element (the first on ties) along axis, or in the flattened tensor; int64."""
    return _arg("argmin", x, axis, keepdims)
