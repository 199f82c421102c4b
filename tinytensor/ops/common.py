"""Helpers shared by the op families."""
import functools

import numpy as np

from .. import backend
from ..tensor import Tensor, array_on_device


def as_tensor_like(value, like):
    """`value` as an operand next to the Tensor `like`: Tensors and Python scalars pass through (NumPy
    scalars become Python ones, so np.float64(2) does not upcast a float32 tensor, as in PyTorch);
    arrays and lists become constant tensors on like's device (floats take like's float dtype)."""
    if isinstance(value, np.generic):
        value = value.item()
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


def promoted_dtype(a, b):
    """The dtype an elementwise op of Tensors a and b computes in: NumPy's promotion between two float
    dtypes (float32 with float64 gives float64); a float with an integer or bool keeps the float's dtype
    (as PyTorch does; NumPy would give float64); two non-floats as NumPy says."""
    if a.dtype == b.dtype:
        return a.dtype
    a_float, b_float = a.dtype.kind == "f", b.dtype.kind == "f"
    if a_float != b_float:
        return a.dtype if a_float else b.dtype
    return np.result_type(a.dtype, b.dtype)


def check_same_float_dtype(op, a_name, a, b_name, b):
    """Products (matmul, linear, conv2d) take one float dtype, as in PyTorch: a float32 model fed
    float64 data is an error, not a silent float64 model."""
    if a.dtype != b.dtype and "f" in (a.dtype.kind, b.dtype.kind):
        raise TypeError(f"{op}: {a_name} is {a.dtype} but {b_name} is {b.dtype}; they must have the same "
                        "dtype. Convert one with .to(dtype): .float() for float32, .double() for float64, "
                        "or a whole model with model.to(dtype)")


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
