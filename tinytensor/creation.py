"""Making tensors: from data, filled with a constant, ranges, and random numbers."""
import numpy as np

from . import backend
from .tensor import Tensor, bool_, default_dtype, int64


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new leaf tensor holding a copy of `data` (list, scalar, NumPy/CuPy array or Tensor).

    Python floats become float32 and Python ints int64; arrays keep their dtype unless `dtype` is given."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None):
    """A tensor on the same memory as `data` when it is a NumPy/CuPy array already of that dtype and on
    that device (no copy; changing one changes the other), as PyTorch's as_tensor does; a copy made by
    tt.tensor otherwise. A Tensor comes back as it is unless `dtype` or `device` asks for a change."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if backend.is_array(data):
        device = backend.device_of(data) if device is None else backend.parse_device(device)
        if device == backend.device_of(data) and (dtype is None or np.dtype(dtype) == data.dtype):
            return Tensor._from_array(data, device)
    return tensor(data, dtype=dtype, device=device or "cpu")


def _filled(make, shape, dtype, device, requires_grad):
    """A leaf made by `make(xp, shape, dtype)` on `device`; shape may be given as ints or one tuple."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    device = backend.parse_device(device)
    with backend.on_device(device):
        array = make(backend.xp_for(device), shape, np.dtype(dtype or default_dtype))
    return Tensor._from_array(array, device).requires_grad_(requires_grad)


def zeros(*shape, dtype=None, device="cpu", requires_grad=False):
    return _filled(lambda xp, s, d: xp.zeros(s, d), shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device="cpu", requires_grad=False):
    return _filled(lambda xp, s, d: xp.ones(s, d), shape, dtype, device, requires_grad)


def empty(*shape, dtype=None, device="cpu", requires_grad=False):
    return _filled(lambda xp, s, d: xp.empty(s, d), shape, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device="cpu", requires_grad=False):
    """A tensor of `shape` holding fill_value; without dtype, the fill value's kind decides as in PyTorch:
    bool, int64 for an int, the default float dtype for a float."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if dtype is None and isinstance(fill_value, (bool, int)):
        dtype = bool_ if isinstance(fill_value, bool) else int64
    return _filled(lambda xp, s, d: xp.full(s, fill_value, d), (shape,), dtype, device, requires_grad)


def zeros_like(other, dtype=None, device=None, requires_grad=False):
    return zeros(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                 requires_grad=requires_grad)


def ones_like(other, dtype=None, device=None, requires_grad=False):
    return ones(other.shape, dtype=dtype or other.dtype, device=device or other.device,
                requires_grad=requires_grad)


def full_like(other, fill_value, dtype=None, device=None, requires_grad=False):
    return full(other.shape, fill_value, dtype=dtype or other.dtype, device=device or other.device,
                requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    """Like range(): arange(5) is 0..4. Integer arguments give int64, float ones the default float."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = int64 if all(isinstance(v, int) for v in (start, end, step)) else default_dtype
    return _filled(lambda xp, s, d: xp.arange(start, end, step, dtype=d), (), dtype, device,
                   requires_grad)


def linspace(start, end, steps, dtype=None, device="cpu", requires_grad=False):
    return _filled(lambda xp, s, d: xp.linspace(start, end, steps, dtype=d), (), dtype, device,
                   requires_grad)


def eye(n, m=None, dtype=None, device="cpu", requires_grad=False):
    return _filled(lambda xp, s, d: xp.eye(n, m, dtype=d), (), dtype, device, requires_grad)
