"""Helpers shared by the op families."""
import functools

import numpy as np

from .. import backend
from ..tensor import Tensor, array_on_device


def as_tensor_like(value, like):
    """`value` as an operand next to the Tensor `like`: Tensors and Python scalars pass through;
    arrays and lists become constant tensors on like's device (floats take like's float dtype)."""
    if isinstance(value, (Tensor, int, float, bool)):
        return value
    array = np.asarray(value) if not backend.is_array(value) else value
    dtype = like.dtype if array.dtype.kind == "f" and like.dtype.kind == "f" else array.dtype
    return Tensor(array, dtype=dtype, device=like.device)


def array_on(value, like, op, what):
    """The array of `value` (a Tensor, an array, a list or a number) on like's device; see
    tensor.array_on_device."""
    return array_on_device(value, like.device, op, what)


def on_input_device(fn):
    """Run fn(x, ...) while x's device is CuPy's current one, so the array code it runs outside
    Functions (value checks, index arrays, masks) computes where x lives: cuda:1 stays on cuda:1."""
    @functools.wraps(fn)
    def run(x, *args, **kwargs):
        if x.device == "cpu":
            return fn(x, *args, **kwargs)
        with backend.on_device(x.device):
            return fn(x, *args, **kwargs)
    return run


def constant(array, like):
    """A constant Tensor (no gradient) holding `array`, on like's device."""
    return Tensor._from_array(array, like.device)


def operands(a, b):
    """Both operands of a binary op, with non-Tensors made to fit the Tensor one."""
    if isinstance(a, Tensor):
        return a, as_tensor_like(b, a)
    if isinstance(b, Tensor):
        return as_tensor_like(a, b), b
    raise TypeError(f"expected a Tensor operand, got {type(a).__name__} and {type(b).__name__}")


def normalize_axis(axis, ndim):
    """An axis argument (None, int or tuple, negative allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    result = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimension(s)")
        result.append(a % max(ndim, 1))
    return tuple(sorted(result))
