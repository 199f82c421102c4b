"""Helpers shared by the op families."""
import numpy as np

from .. import backend
from ..tensor import Tensor


def as_tensor_like(value, like):
    """`value` as an operand next to the Tensor `like`: Tensors and Python scalars pass through;
    arrays and lists become constant tensors on like's device (floats take like's float dtype)."""
    if isinstance(value, (Tensor, int, float, bool)):
        return value
    array = np.asarray(value) if not backend.is_array(value) else value
    dtype = like.dtype if array.dtype.kind == "f" and like.dtype.kind == "f" else array.dtype
    return Tensor(array, dtype=dtype, device=like.device)


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
