"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A tensor made by an operation on tensors that require grad remembers the node that made it (`_ctx`,
see autograd.py); a tensor made by the user is a leaf, and `backward()` stores gradients in its `.grad`.
The operations themselves live in ops/; this file attaches them as methods at the bottom.
"""
import weakref

import numpy as np

from . import backend

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int8, int16, int32, int64 = np.dtype("int8"), np.dtype("int16"), np.dtype("int32"), np.dtype("int64")
uint8, bool_ = np.dtype("uint8"), np.dtype("bool")
default_dtype = float32


def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


class Tensor:
    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_version", "_retains_grad", "__weakref__")
    __array_ufunc__ = None   # NumPy defers to our reflected operators: np_array + tensor -> tensor

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        """Same as tt.tensor(...): a new leaf tensor holding a copy of `data`."""
        array = _to_array(data, dtype, backend.parse_device(device))
        self._set(array)
        self.requires_grad = requires_grad

    def _set(self, array):
        self.data = array
        self.grad = None
        self._requires_grad = False
        self._ctx = None          # the autograd node that produced this tensor; None for a leaf
        self._version = [0]       # bumped by in-place changes; shared with views made by __getitem__
        self._retains_grad = False

    @classmethod
    def _from_array(cls, array, device):
        """Wrap an array without copying (used by every operation; `device` is where it lives)."""
        tensor = cls.__new__(cls)
        if not backend.is_array(array):   # a NumPy scalar from a full reduction
            array = backend.xp_for(device).asarray(array)
        tensor._set(array)
        return tensor

    # ------------------------------------------------------------------ attributes
    @property
    def _xp(self):
        return backend.xp_for(self.device)

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and not _is_float(self.dtype):
            raise RuntimeError(f"only floating-point tensors can require grad; this one is {self.dtype} "
                               "(convert it first with .float())")
        if not flag and self._ctx is not None:
            raise RuntimeError("requires_grad can only be switched off on a leaf; use .detach()")
        self._requires_grad = bool(flag)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor too after backward (leaves always keep it)."""
        self._retains_grad = self._ctx is not None
        return self

    def zero_grad(self):
        self.grad = None

    # ------------------------------------------------------------------ autograd
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (`grad` = upstream gradient)."""
        from .autograd import run_backward
        run_backward([self], [grad], retain_graph or create_graph, create_graph)

    def detach(self):
        """The same data (no copy) cut from the graph."""
        return Tensor._from_array(self.data, self.device)

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("numpy() on a tensor that requires grad: call .detach().numpy()")
        return backend.move(self.data, "cpu")

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, but this one has shape "
                             f"{tuple(self.shape)}")
        return backend.to_host(self.data).item()

    def tolist(self):
        return backend.move(self.data, "cpu").tolist()

    def to(self, *targets, device=None, dtype=None):
        """A copy on another device ('cpu', 'cuda', 'cuda:1') and/or of another dtype, given in any
        order or as keywords; `x.to(other)` takes other's device and dtype. Self if nothing changes."""
        for target in targets:
            if isinstance(target, Tensor):
                device, dtype = target.device, target.dtype
            elif isinstance(target, str) and target.split(":")[0] in ("cpu", "cuda"):
                device = target
            else:
                try:
                    dtype = np.dtype(target)
                except TypeError:
                    raise ValueError(f"to: {target!r} is neither a device ('cpu', 'cuda', 'cuda:N') nor "
                                     "a dtype (tt.float32, 'float64', ...)") from None
        from .ops.elementwise import cast
        from .ops.shape import to_device
        result = self if device is None else to_device(self, backend.parse_device(device))
        return result if dtype is None else cast(result, np.dtype(dtype))

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index=0):
        return self.to(f"cuda:{index}")

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def half(self):
        return self.to(float16)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if _is_float(self.dtype):
            raise TypeError(f"a {self.dtype} tensor cannot be used as an index")
        return int(self.item())

    __hash__ = object.__hash__   # tensors are hashed by identity (== is elementwise)

    def __repr__(self):
        body = np.array2string(backend.move(self.data, "cpu"), separator=", ", precision=4,
                               prefix="tensor(")
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn={self._ctx!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ------------------------------------------------------------------ in place
    def _bump_version(self):
        self._version[0] += 1

    def _update_in_place(self, other, compute, write):
        """Shared logic of += -= *= /= and item assignment.

        When autograd records the change, `compute(old)` makes the new value out of place and this tensor
        takes its place in the graph (earlier nodes still point at the old node). Otherwise `write()`
        changes the array itself. Either way the version goes up, so a backward that saved the old
        value raises instead of using a wrong one."""
        from .autograd import is_grad_enabled
        other_requires_grad = isinstance(other, Tensor) and other.requires_grad
        if is_grad_enabled() and (self.requires_grad or other_requires_grad):
            if self._ctx is None and self.requires_grad:
                raise RuntimeError(
                    f"a leaf tensor that requires grad (shape {tuple(self.shape)}) cannot be changed in "
                    "place while gradients are recorded; do it inside `with tt.no_grad():`")
            old = Tensor._from_array(self.data, self.device)   # the value before, as its own tensor
            old._ctx, old._requires_grad = self._ctx, self.requires_grad
            new = compute(old)
            self.data, self._ctx, self._requires_grad = new.data, new._ctx, True
            new._ctx._output = weakref.ref(self)
        else:
            write()
        self._version[0] += 1
        return self

    def _inplace_arithmetic(self, op_name, ufunc_name, other):
        from . import ops

        def write():
            value = array_on_device(other, self.device, f"{op_name} (in place)", "operand", keep_numbers=True)
            with backend.on_device(self.device):
                getattr(self._xp, ufunc_name)(self.data, value, out=self.data)
        return self._update_in_place(other, lambda old: getattr(ops, op_name)(old, other), write)

    def __iadd__(self, other):
        return self._inplace_arithmetic("add", "add", other)

    def __isub__(self, other):
        return self._inplace_arithmetic("sub", "subtract", other)

    def __imul__(self, other):
        return self._inplace_arithmetic("mul", "multiply", other)

    def __itruediv__(self, other):
        return self._inplace_arithmetic("div", "divide", other)

    def __setitem__(self, key, value):
        from .ops.shape import _index_key, setitem

        def write():
            raw = array_on_device(value, self.device, "setitem", "value", keep_numbers=True)
            with backend.on_device(self.device):
                self.data[_index_key(self, key)[0]] = raw
        return self._update_in_place(value, lambda old: setitem(old, key, value), write)


def array_on_device(value, device, op, what, keep_numbers=False):
    """The array of `value` on `device`, as an operand of `op`: a Tensor's own array (an error when the
    Tensor is on another device), a host array or list copied there (as a loop feeding NumPy data to a
    GPU model expects). Python numbers stay numbers with keep_numbers, else become arrays."""
    if isinstance(value, Tensor):
        if value.device != device:
            raise RuntimeError(f"device mismatch: {op} got its input on {device} and its {what} on "
                               f"{value.device}; move one with .to(...)")
        return value.data
    if keep_numbers and isinstance(value, (int, float, bool, np.generic)):
        return value
    return backend.move(value if backend.is_array(value) else np.asarray(value), device)


def _to_array(data, dtype, device):
    """A fresh array on `device` from a Tensor, array, list or scalar. Python floats become float32."""
    xp = backend.xp_for(device)
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):   # a NumPy scalar keeps its dtype, like an array
        data = np.asarray(data)
    if backend.is_array(data):
        array = backend.move(data, device)
        array = array.astype(dtype or array.dtype, copy=array is data)
        return array
    try:
        array = np.asarray(data)
    except ValueError:   # NumPy refuses ragged nesting outright
        array = np.asarray(data, dtype=object)
    if dtype is None:
        dtype = default_dtype if array.dtype.kind == "f" else array.dtype
        if array.dtype.kind in "iu":
            dtype = int64
    if array.dtype == object:
        raise TypeError(f"cannot make a tensor from {type(data).__name__}: ragged lists or mixed types")
    with backend.on_device(device):
        return xp.asarray(array, dtype=dtype)


def attach_operations(ops):
    """Make the ops methods and operators of Tensor: x.exp() is ops.exp(x), a + b is ops.add(a, b)."""
    for name in ops.TENSOR_METHODS:
        setattr(Tensor, name, getattr(ops, name))
    operators = {
        "add": ops.add, "sub": ops.sub, "mul": ops.mul, "truediv": ops.div, "pow": ops.pow,
        "matmul": ops.matmul,
    }
    for name, op in operators.items():
        setattr(Tensor, f"__{name}__", lambda a, b, op=op: op(a, b))
        setattr(Tensor, f"__r{name}__", lambda a, b, op=op: op(b, a))
    comparisons = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                   "ge": "greater_equal"}
    for name, op_name in comparisons.items():
        if hasattr(ops, op_name):
            setattr(Tensor, f"__{name}__", lambda a, b, op=getattr(ops, op_name): op(a, b))
    Tensor.__neg__ = ops.neg
    Tensor.__getitem__ = ops.getitem
    Tensor.view = ops.reshape
    Tensor.T = property(lambda x: ops.transpose(x))
