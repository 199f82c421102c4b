"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A tensor made by an operation on tensors that require grad remembers the Node that made it (`grad_fn`,
see autograd.py); a tensor made by the user is a leaf, and `backward()` stores gradients in its `.grad`.
The operations themselves live in ops/; each method here is a one-line call of one of them, so
go-to-definition on `x.exp()` lands on `exp`, then on the `Exp` Function.
"""
import numpy as np

from . import backend
from .keywords import pytorch_keywords

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int8, int16, int32, int64 = np.dtype("int8"), np.dtype("int16"), np.dtype("int32"), np.dtype("int64")
uint8, bool_ = np.dtype("uint8"), np.dtype("bool")
default_dtype = float32


def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


class Tensor:
    __slots__ = ("data", "grad", "_requires_grad", "_node", "_version", "_retains_grad", "__weakref__")
    __array_ufunc__ = None   # NumPy defers to our reflected operators: np_array + tensor -> tensor

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        """Same as tt.tensor(...): a new leaf tensor holding a copy of `data`."""
        array = _to_array(data, dtype, backend.parse_device(device))
        self._set(array)
        self.requires_grad = requires_grad

    def _set(self, array):
        """Hold `array` (no copy) as a fresh leaf; also how a subclass (nn.Parameter) initialises itself."""
        self.data = array
        self.grad = None
        self._requires_grad = False
        self._node = None         # the autograd Node that produced this tensor; None for a leaf
        self._version = [0]       # bumped by in-place changes; shared with views made by __getitem__
        self._retains_grad = False

    @classmethod
    def _from_array(cls, array, device):
        """Wrap an array without copying (used by every operation; `device` is where it lives).
        Outside the engine, `tt.as_tensor(array)` does the same."""
        tensor = cls.__new__(cls)
        if type(array) is not np.ndarray and not backend.is_array(array):   # a NumPy scalar (a full sum)
            array = backend.xp_for(device).asarray(array)
        tensor._set(array)
        return tensor

    # ------------------------------------------------------------------ attributes
    @property
    def xp(self):
        """The array module holding the data: numpy on the CPU, cupy on a GPU (`t.xp.exp(t.data)`)."""
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
        """The number of elements, as NumPy's `.size` (PyTorch's `x.numel()`; its `x.size()` is `x.shape`)."""
        return self.data.size

    def dim(self):
        """The number of axes, PyTorch's name for `ndim`."""
        return self.data.ndim

    def numel(self):
        """The number of elements, PyTorch's name for `size`."""
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
        if not flag and self._node is not None:
            raise RuntimeError("requires_grad can only be switched off on a leaf; use .detach()")
        self._requires_grad = bool(flag)

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        """The autograd Node that made this tensor (its op's `name`, its `inputs`), None for a leaf."""
        return self._node

    @property
    def version(self):
        """How many times the data was changed in place (shared with views of the same memory)."""
        return self._version[0]

    def mark_modified(self):
        """Record that `.data` was changed in place outside autograd (an optimizer step, a load), so a
        backward that saved the old value raises instead of silently using the new one."""
        self._version[0] += 1

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor too after backward (leaves always keep it)."""
        if self._node is not None:
            self._retains_grad = True
            self._node.keep_grad_of(self)
        return self

    def zero_grad(self):
        self.grad = None

    # ------------------------------------------------------------------ autograd
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (`grad` = upstream gradient)."""
        autograd.run_backward([self], [grad], retain_graph or create_graph, create_graph)

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
        result = self if device is None else ops.to_device(self, backend.parse_device(device))
        return result if dtype is None else ops.cast(result, np.dtype(dtype))

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

    def __repr__(self):
        body = np.array2string(backend.move(self.data, "cpu"), separator=", ", precision=4,
                               prefix="tensor(")
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype={self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ------------------------------------------------------------------ in place
    def _update_in_place(self, other, compute, write):
        """Shared logic of += -= *= /= and item assignment.

        When autograd records the change, `compute(old)` makes the new value out of place and this tensor
        takes its place in the graph (earlier nodes still point at the old node). Otherwise `write()`
        changes the array itself. Either way the version goes up, so a backward that saved the old
        value raises instead of using a wrong one."""
        other_requires_grad = isinstance(other, Tensor) and other.requires_grad
        if autograd.is_grad_enabled() and (self.requires_grad or other_requires_grad):
            if self._node is None and self.requires_grad:
                raise RuntimeError(
                    f"a leaf tensor that requires grad (shape {tuple(self.shape)}) cannot be changed in "
                    "place while gradients are recorded; do it inside `with tt.no_grad():`")
            old = Tensor._from_array(self.data, self.device)   # the value before, as its own tensor
            old._node, old._requires_grad = self._node, self.requires_grad
            new = compute(old)
            self.data, self._node, self._requires_grad = new.data, new._node, True
            if self._retains_grad:   # the gradient kept is now the new value's
                old._node.keep_grad_of(None)
                self._node.keep_grad_of(self)
        else:
            write()
        self._version[0] += 1
        return self

    def _inplace_arithmetic(self, op, ufunc_name, other):
        def write():
            value = array_on_device(other, self.device, f"{op.__name__} (in place)", "operand",
                                    keep_numbers=True)
            with backend.on_device(self.device):
                try:
                    getattr(self.xp, ufunc_name)(self.data, value, out=self.data)
                except TypeError:   # NumPy's casting error: the result has a wider dtype (ints += 0.5)
                    raise TypeError(f"{op.__name__} (in place): the result does not fit this {self.dtype} "
                                    f"tensor (the operand is {getattr(other, 'dtype', type(other).__name__)}); "
                                    "compute it out of place, or convert the tensor first, e.g. with "
                                    ".float()") from None
        return self._update_in_place(other, lambda old: op(old, other), write)

    def __iadd__(self, other):
        return self._inplace_arithmetic(ops.add, "add", other)

    def __isub__(self, other):
        return self._inplace_arithmetic(ops.sub, "subtract", other)

    def __imul__(self, other):
        return self._inplace_arithmetic(ops.mul, "multiply", other)

    def __itruediv__(self, other):
        return self._inplace_arithmetic(ops.div, "divide", other)

    def __setitem__(self, key, value):
        if isinstance(value, Tensor) and value.device != self.device:
            value = value.to(self.device)    # assignment copies across devices, as PyTorch's does

        def write():
            raw = array_on_device(value, self.device, "setitem", "value", keep_numbers=True)
            with backend.on_device(self.device):
                self.data[ops.shape._index_key(self, key)[0]] = raw
        return self._update_in_place(value, lambda old: ops.setitem(old, key, value), write)

    # ------------------------------------------------------------------ operators (each one op of ops/)
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __eq__(self, other):
        return ops.equal(self, other)

    def __ne__(self, other):
        return ops.not_equal(self, other)

    def __lt__(self, other):
        return ops.less(self, other)

    def __le__(self, other):
        return ops.less_equal(self, other)

    def __gt__(self, other):
        return ops.greater(self, other)

    def __ge__(self, other):
        return ops.greater_equal(self, other)

    __hash__ = object.__hash__   # tensors are hashed by identity (== is elementwise)

    def __getitem__(self, key):
        return ops.getitem(self, key)

    # ------------------------------------------------------------------ methods (each one op of ops/)
    def add(self, other):
        return ops.add(self, other)

    def sub(self, other):
        return ops.sub(self, other)

    def mul(self, other):
        return ops.mul(self, other)

    def div(self, other):
        return ops.div(self, other)

    def neg(self):
        return ops.neg(self)

    def pow(self, exponent):
        return ops.pow(self, exponent)

    def matmul(self, other):
        return ops.matmul(self, other)

    def abs(self):
        return ops.abs(self)

    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def log1p(self):
        return ops.log1p(self)

    def sqrt(self):
        return ops.sqrt(self)

    def sin(self):
        return ops.sin(self)

    def cos(self):
        return ops.cos(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def leaky_relu(self, negative_slope=0.01):
        return ops.leaky_relu(self, negative_slope)

    def erf(self):
        return ops.erf(self)

    def gelu(self, approximate="none"):
        return ops.gelu(self, approximate)

    def softplus(self, beta=1.0, threshold=20.0):
        return ops.softplus(self, beta, threshold)

    def maximum(self, other):
        return ops.maximum(self, other)

    def minimum(self, other):
        return ops.minimum(self, other)

    def clip(self, min=None, max=None):
        return ops.clip(self, min, max)

    def equal(self, other):
        return ops.equal(self, other)

    def not_equal(self, other):
        return ops.not_equal(self, other)

    def less(self, other):
        return ops.less(self, other)

    def less_equal(self, other):
        return ops.less_equal(self, other)

    def greater(self, other):
        return ops.greater(self, other)

    def greater_equal(self, other):
        return ops.greater_equal(self, other)

    def clone(self):
        return ops.clone(self)

    @pytorch_keywords
    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis, keepdims)

    @pytorch_keywords
    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis, keepdims)

    @pytorch_keywords
    def var(self, axis=None, keepdims=False, ddof=1):
        return ops.var(self, axis, keepdims, ddof)

    @pytorch_keywords
    def std(self, axis=None, keepdims=False, ddof=1):
        return ops.std(self, axis, keepdims, ddof)

    @pytorch_keywords
    def max(self, axis=None, keepdims=False, *, dim=None):
        return ops.max(self, axis, keepdims, dim=dim)

    @pytorch_keywords
    def min(self, axis=None, keepdims=False, *, dim=None):
        return ops.min(self, axis, keepdims, dim=dim)

    @pytorch_keywords
    def logsumexp(self, axis=None, keepdims=False):
        return ops.logsumexp(self, axis, keepdims)

    @pytorch_keywords
    def softmax(self, axis=-1):
        return ops.softmax(self, axis)

    @pytorch_keywords
    def log_softmax(self, axis=-1):
        return ops.log_softmax(self, axis)

    @pytorch_keywords
    def argmax(self, axis=None, keepdims=False):
        return ops.argmax(self, axis, keepdims)

    @pytorch_keywords
    def argmin(self, axis=None, keepdims=False):
        return ops.argmin(self, axis, keepdims)

    def sum_to(self, shape):
        return autograd.sum_to(self, shape)

    def reshape(self, *shape):
        return ops.reshape(self, *shape)

    def view(self, *shape):
        return ops.reshape(self, *shape)

    @pytorch_keywords
    def flatten(self, start_axis=0, end_axis=-1):
        return ops.flatten(self, start_axis, end_axis)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, shape)

    def expand(self, *sizes):
        return ops.expand(self, *sizes)

    def transpose(self, *axes):
        return ops.transpose(self, *axes)

    @property
    def T(self):
        return ops.transpose(self)

    def permute(self, *axes):
        return ops.permute(self, *axes)

    def swapaxes(self, axis1, axis2):
        return ops.swapaxes(self, axis1, axis2)

    @pytorch_keywords
    def squeeze(self, axis=None):
        return ops.squeeze(self, axis)

    @pytorch_keywords
    def unsqueeze(self, axis):
        return ops.unsqueeze(self, axis)

    def contiguous(self):
        return ops.contiguous(self)

    @pytorch_keywords
    def split(self, split_size_or_sections, axis=0):
        return ops.split(self, split_size_or_sections, axis)

    @pytorch_keywords
    def chunk(self, chunks, axis=0):
        return ops.chunk(self, chunks, axis)


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


# The engine's one import seam. autograd.py and ops/ build on Tensor (so they import this module), and
# Tensor's methods call them (so this module needs them). Importing them here, once the class exists,
# closes the circle in one place: the methods above look `ops` and `autograd` up when they run.
from . import autograd, ops  # noqa: E402
