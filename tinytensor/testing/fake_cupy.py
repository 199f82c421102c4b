"""A strict stand-in for CuPy, computed with NumPy, so the cuda path runs in tests without a GPU.

It imitates CuPy where CuPy is stricter than NumPy, so code that passes here does not crash on a GPU:
- its `ndarray` is not a `numpy.ndarray`: `np.asarray(x)` raises TypeError, and so does mixing it with
  NumPy arrays or lists in an operation; `.get()` (or `cupy.asnumpy`) is the way back to the host;
- it has only names CuPy has (the dated snapshot in cupy_names.py);
- reductions and scalar indexing give 0-d arrays, never NumPy scalars;
- `ufunc.at` takes only the dtypes CuPy's atomics support; `cupyx.scipy.special.erf` has CuPy's type
  table (float16 in, float64 out); there is no `errstate`; `random.Generator` has no `permutation`,
  `choice` or `normal`, and `standard_normal` only float32/float64;
- several devices (`cuda.Device(i)`): an array lives where it was made, and an operation on an array of
  another device than the current one raises, as CuPy does without peer access;
- assigning a NumPy array into a basic slice raises (CuPy fills slices with scalars only).
It also counts (see `counters`): host syncs by kind and call site (bool, float, int, item, tolist, get,
repr, a boolean-mask index), host-to-device copies, and device calls (every operation that writes new
data: a proxy for kernel launches).

Also imitated: integer index arrays wrap around (CuPy does not check them; NumPy raises IndexError).
Not imitated: NumPy's promotion of NumPy scalars (NEP 50) is used where CuPy may differ.

    from tinytensor.testing import fake_cupy
    fake_cupy.install()                 # tinytensor's "cuda" devices now use the stand-in
    with fake_cupy.counting() as counts:
        ...                             # counts.syncs, counts.host_to_device, counts.device_calls
"""
import collections
import contextlib
import math
import os
import sys
import types

import numpy as np

from .. import backend
from . import cupy_names

DEVICE_COUNT = 2          # devices the stand-in pretends to have, so cuda:1 can be tested


# ----------------------------------------------------------------------------------- counters

class Counters:
    """What the code under test asked of the "GPU" since the last reset()."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.syncs = collections.Counter()      # (kind, call site) -> how many
        self.host_to_device = 0                 # copies from host memory (arrays, lists, scalars)
        self.device_calls = 0                   # operations that computed or wrote device data

    @property
    def total_syncs(self):
        return sum(self.syncs.values())

    def report(self):
        """One line per sync call site, most frequent first."""
        return "\n".join(f"{count:6d}  {kind:8s} {site}" for (kind, site), count in self.syncs.most_common())


counters = Counters()


@contextlib.contextmanager
def counting():
    """`with counting() as counts:` resets the counters and yields them."""
    counters.reset()
    yield counters


# Frames not worth naming as a call site: this file, and tinytensor's transfer layer (backend.py).
_SKIPPED_FILES = {os.path.abspath(__file__),
                  os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "backend.py")}


def _call_site():
    """'file:line function <- file:line function': the two innermost frames outside this file and
    tinytensor/backend.py (whose to_host every read goes through)."""
    frame, sites = sys._getframe(1), []
    while frame is not None and len(sites) < 2:
        path = os.path.abspath(frame.f_code.co_filename)
        if path not in _SKIPPED_FILES:
            parts = path.split(os.sep)
            short = os.sep.join(parts[-2:])
            sites.append(f"{short}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return " <- ".join(sites)


def _sync(kind):
    counters.syncs[kind, _call_site()] += 1


# ----------------------------------------------------------------------------------- devices

_current_device = [0]     # a stack: the innermost `with Device(i)` is last


class Device:
    """cupy.cuda.Device: `with Device(1):` makes device 1 current; `.id`; `.synchronize()`."""

    def __init__(self, device=None):
        self.id = _current_device[-1] if device is None else int(device)
        if not 0 <= self.id < DEVICE_COUNT:
            raise ValueError(f"invalid device id {self.id} (the stand-in has {DEVICE_COUNT} devices)")

    def __enter__(self):
        _current_device.append(self.id)
        return self

    def __exit__(self, *exc):
        _current_device.pop()

    def use(self):
        _current_device[-1] = self.id

    def synchronize(self):
        _sync("synchronize")

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return DEVICE_COUNT

    @staticmethod
    def deviceSynchronize():
        _sync("synchronize")

    @staticmethod
    def getDeviceProperties(device):
        return {"name": b"CuPy stand-in (NumPy)", "multiProcessorCount": 1}


# ----------------------------------------------------------------------------------- the array

def _unsupported(value):
    return TypeError(f"Unsupported type {type(value)}")


def _to_numpy(value, sequences_ok=True, on_host=False):
    """The NumPy data behind an argument: our arrays (on the current device, unless the answer comes
    from the host alone), Python and NumPy scalars, and (where CuPy allows them) tuples and lists of
    those. Host arrays are refused as CuPy does."""
    if isinstance(value, ndarray):
        if value._device != _current_device[-1] and not on_host:
            raise ValueError(f"The device where the array resides ({value._device}) is different from the "
                             f"current device ({_current_device[-1]}). Peer access is unavailable between "
                             "these devices.")
        return value._array
    if isinstance(value, np.ndarray):
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        if not sequences_ok:
            raise _unsupported(value)
        return type(value)(_to_numpy(v, on_host=on_host) for v in value)
    return value


def _wrap(value, inputs=(), out=None):
    """NumPy results as our arrays on the current device; a NumPy scalar becomes a 0-d array. Counts a
    device call unless every array result is a view of an input (reshape, transpose, basic index)."""
    if isinstance(value, tuple):
        return tuple(_wrap(v, inputs, out) for v in value)
    if isinstance(value, list):
        return [_wrap(v, inputs, out) for v in value]
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        return value
    if out is not None and value is out._array:
        counters.device_calls += 1
        return out
    if not any(isinstance(a, np.ndarray) and np.may_share_memory(value, a) for a in inputs):
        counters.device_calls += 1
    return ndarray._of(value)


def _flat_arrays(values):
    for value in values:
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _flat_arrays(value)


def _call(function, args, kwargs, sequences_ok=True):
    """function(*args, **kwargs) on the NumPy data, the result wrapped back."""
    out = kwargs.get("out")
    if out is not None and not isinstance(out, ndarray):
        raise TypeError(f"out must be a cupy.ndarray, got {type(out)}")
    np_args = [_to_numpy(a, sequences_ok) for a in args]
    np_kwargs = {k: _to_numpy(v) for k, v in kwargs.items()}
    with np.errstate(all="ignore"):      # CuPy never warns about overflow or division by zero
        result = function(*np_args, **np_kwargs)
    return _wrap(result, tuple(_flat_arrays(np_args)) + tuple(_flat_arrays(np_kwargs.values())), out)


def _is_basic_key(key):
    parts = key if isinstance(key, tuple) else (key,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) and not isinstance(p, bool)
               for p in parts)


def _index_to_numpy(key, shape):
    """An index into an array of `shape`: our arrays unwrapped; host arrays and lists copied to the
    device; integer index arrays wrapped around as CuPy does (x[[5]] on an axis of 4 is x[1])."""
    parts = key if isinstance(key, tuple) else (key,)
    converted = []
    for part in parts:
        if isinstance(part, ndarray):
            part = _to_numpy(part)
        elif isinstance(part, (np.ndarray, list)):
            counters.host_to_device += 1
            part = np.asarray(part)
        converted.append(part)
    if any(isinstance(p, np.ndarray) and p.dtype == bool for p in converted):
        _sync("mask")     # CuPy counts the True elements on the host to size the result
    converted = _wrap_around(converted, shape)
    return tuple(converted) if isinstance(key, tuple) else converted[0]


def _axes_taken(part):
    if part is None or part is Ellipsis:
        return 0
    return part.ndim if isinstance(part, np.ndarray) and part.dtype == bool else 1


def _wrap_around(parts, shape):
    axis, wrapped = 0, []
    for part in parts:
        if part is Ellipsis:
            axis += len(shape) - sum(_axes_taken(p) for p in parts)
        elif isinstance(part, np.ndarray) and part.dtype.kind in "iu" and axis < len(shape) and shape[axis]:
            part = part % shape[axis]
        axis += _axes_taken(part)
        wrapped.append(part)
    return wrapped


def _host_read(kind, convert):
    """A method that copies the array's value to the host: a sync, counted under `kind`."""
    def read(self):
        _sync(kind)
        return convert(self._array)
    read.__name__ = kind
    return read


class ndarray:
    """cupy.ndarray: a NumPy array held on a (pretend) device."""

    __slots__ = ("_array", "_device")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, order="C"):
        self._array = np.empty(shape, dtype, order=order)
        self._device = _current_device[-1]

    @classmethod
    def _of(cls, array):
        self = cls.__new__(cls)
        self._array, self._device = array, _current_device[-1]
        return self

    # -- leaving the device: each of these waits for the GPU
    def get(self, stream=None, order="C", out=None):
        _sync("get")
        return self._array.copy(order=order)

    item = _host_read("item", np.ndarray.item)
    tolist = _host_read("tolist", np.ndarray.tolist)
    __bool__ = _host_read("bool", bool)
    __float__ = _host_read("float", float)
    __int__ = _host_read("int", int)
    __complex__ = _host_read("complex", complex)

    def __repr__(self):
        _sync("repr")
        return repr(self._array)

    def __str__(self):
        _sync("repr")
        return str(self._array)

    def __format__(self, spec):
        _sync("format")
        return format(self._array.item() if self._array.ndim == 0 else self._array, spec)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                        "construct a NumPy array explicitly.")

    # -- NumPy functions called on our arrays are sent to our versions, as CuPy does
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        ours = getattr(cupy, ufunc.__name__, None)
        if not isinstance(ours, _Ufunc):
            return NotImplemented
        return getattr(ours, method)(*inputs, **kwargs) if method != "__call__" else ours(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        ours = getattr(cupy, func.__name__, None)
        if ours is None or not callable(ours):
            return NotImplemented
        return ours(*args, **kwargs)

    # -- attributes
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    strides = property(lambda self: self._array.strides)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    flags = property(lambda self: self._array.flags)
    device = property(lambda self: Device(self._device))
    T = property(lambda self: self.transpose())
    mT = property(lambda self: self.swapaxes(-1, -2))
    real = property(lambda self: _wrap(self._array.real, (self._array,)))
    imag = property(lambda self: _wrap(self._array.imag, (self._array,)))

    @property
    def base(self):
        return None if self._array.base is None else ndarray._of(self._array.base)

    @shape.setter
    def shape(self, value):
        self._array.shape = value

    def __len__(self):
        if self._array.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._array)

    def __iter__(self):
        if self._array.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._array)))

    __hash__ = None

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # -- indexing
    def __getitem__(self, key):
        if _is_basic_key(key):         # a view: no kernel, so no device check (CuPy does none either)
            with Device(self._device):
                return _wrap(self._array[key], (self._array,))
        array = _to_numpy(self)
        return _wrap(array[_index_to_numpy(key, array.shape)], (array,))

    def __setitem__(self, key, value):
        array = _to_numpy(self)
        if isinstance(value, (np.ndarray, list, tuple)):
            if _is_basic_key(key) and not (isinstance(value, np.ndarray) and value.ndim == 0):
                # CuPy fills a basic slice with a scalar only: a host array must be copied over first.
                if isinstance(value, np.ndarray):
                    raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
                raise _unsupported(value)
            counters.host_to_device += 1
            value = np.asarray(value)
        else:
            value = _to_numpy(value)
        array[_index_to_numpy(key, array.shape)] = value
        counters.device_calls += 1

    def fill(self, value):
        if isinstance(value, np.ndarray) and value.ndim:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        _to_numpy(self).fill(_to_numpy(value, sequences_ok=False))
        counters.device_calls += 1

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        counters.device_calls += 1
        return ndarray._of(_to_numpy(self).astype(dtype, order=order))

    def copy(self, order="C"):
        with Device(self._device):     # CuPy copies on the array's own device
            counters.device_calls += 1
            return ndarray._of(self._array.copy(order=order))

    def reduced_view(self, dtype=None):
        return self

    def _scatter(self, ufunc_name, indices, values):
        getattr(cupy, ufunc_name).at(self, indices, values)

    def scatter_add(self, indices, values):
        self._scatter("add", indices, values)

    def scatter_max(self, indices, values):
        self._scatter("maximum", indices, values)

    def scatter_min(self, indices, values):
        self._scatter("minimum", indices, values)


def _array_method(name):
    def method(self, *args, **kwargs):
        return _call(getattr(np.ndarray, name), (self,) + args, kwargs)
    method.__name__ = name
    return method


def _operator(ufunc_name, reflected=False, in_place=False):
    def operator(self, other):
        ufunc = getattr(cupy, ufunc_name)
        if in_place:
            return ufunc(self, other, out=self)
        return ufunc(other, self) if reflected else ufunc(self, other)
    return operator


_OPERATORS = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
              "floordiv": "floor_divide", "mod": "remainder", "pow": "power", "matmul": "matmul",
              "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor", "lshift": "left_shift",
              "rshift": "right_shift"}
for _op, _ufunc_name in _OPERATORS.items():
    setattr(ndarray, f"__{_op}__", _operator(_ufunc_name))
    setattr(ndarray, f"__r{_op}__", _operator(_ufunc_name, reflected=True))
    setattr(ndarray, f"__i{_op}__", _operator(_ufunc_name, in_place=True))
for _op, _ufunc_name in {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
                         "gt": "greater", "ge": "greater_equal"}.items():
    setattr(ndarray, f"__{_op}__", _operator(_ufunc_name))
for _op, _ufunc_name in {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}.items():
    setattr(ndarray, f"__{_op}__", lambda self, name=_ufunc_name: getattr(cupy, name)(self))


_DEFINED_ON_NDARRAY = set(vars(ndarray))
for _name in cupy_names.NDARRAY:
    if _name not in _DEFINED_ON_NDARRAY and callable(getattr(np.ndarray, _name, None)):
        setattr(ndarray, _name, _array_method(_name))


# ----------------------------------------------------------------------------------- ufuncs

# ufunc.at: the dtypes of the values that CuPy's atomic scatter kernels take.
_AT_DTYPES = {
    "add": {"int32", "uint32", "uint64", "float16", "float32", "float64"},
    "subtract": {"int32", "uint32"},
    "maximum": {"int32", "uint32", "uint64", "float32", "float64"},
    "minimum": {"int32", "uint32", "uint64", "float32", "float64"},
}


class _Ufunc:
    """cupy.ufunc: elementwise, with NumPy's broadcasting; lists and host arrays are refused."""

    def __init__(self, numpy_ufunc, name=None, types=None):
        self._ufunc = numpy_ufunc
        self.__name__ = name or numpy_ufunc.__name__
        self.nin, self.nout = numpy_ufunc.nin, numpy_ufunc.nout
        self._types = types     # CuPy's own type table where it differs from NumPy's: {in: out}

    @property
    def types(self):
        return self._ufunc.types

    def __call__(self, *args, **kwargs):
        if self._types is not None:
            return self._call_with_table(*args, **kwargs)
        return _call(self._ufunc, args, kwargs, sequences_ok=False)

    def _call_with_table(self, x, out=None):
        array = np.asarray(_to_numpy(x, sequences_ok=False))
        kind = next((k for k in self._types if np.can_cast(array.dtype, k)), None)
        if kind is None:
            raise TypeError(f"Wrong type ({array.dtype}) of arguments for {self.__name__}")
        result = np.asarray(self._ufunc(array.astype(np.float64))).astype(self._types[kind])
        if out is not None:
            out._array[...] = result
            counters.device_calls += 1
            return out
        return _wrap(result)

    def at(self, a, indices, b=None):
        """CuPy casts the values to a's dtype (copying host values over), then its atomics decide."""
        allowed = _AT_DTYPES.get(self.__name__)
        if allowed is None:
            raise NotImplementedError(f"cupy.{self.__name__}.at is not supported")
        if a.dtype.name not in allowed:
            raise TypeError(f"cupy.{self.__name__}.at only supports {', '.join(sorted(allowed))} as data "
                            f"type, got {a.dtype}")
        if isinstance(b, ndarray):
            values = _to_numpy(b)
        else:
            counters.host_to_device += 1
            values = np.asarray(b, dtype=a.dtype)
        self._ufunc.at(_to_numpy(a), _index_to_numpy(indices, a.shape), values)
        counters.device_calls += 1

    def reduce(self, *args, **kwargs):
        return _call(self._ufunc.reduce, args, kwargs)

    def accumulate(self, *args, **kwargs):
        return _call(self._ufunc.accumulate, args, kwargs)

    def outer(self, *args, **kwargs):
        return _call(self._ufunc.outer, args, kwargs, sequences_ok=False)

    def __repr__(self):
        return f"<ufunc 'cupy_{self.__name__}'>"


# erf's type table in cupyx.scipy.special: ('e->d', 'f->f', 'd->d'): float16 in gives float64 out.
_erf = _Ufunc(np.frompyfunc(math.erf, 1, 1), "erf",
              types={np.dtype("float16"): np.float64, np.dtype("float32"): np.float32,
                     np.dtype("float64"): np.float64})


# ----------------------------------------------------------------------------------- module functions

def _host_to_device(data, dtype=None, copy=True, order="K", ndmin=0, **unused):
    """cupy.array / cupy.asarray: our arrays are copied (or kept), host data is copied over."""
    if isinstance(data, ndarray):
        if data._device != _current_device[-1]:          # a peer-to-peer copy, not a host transfer
            counters.device_calls += 1
            return ndarray._of(np.array(data._array, dtype=dtype, ndmin=ndmin))
        if not copy and (dtype is None or np.dtype(dtype) == data.dtype) and data.ndim >= ndmin:
            return data
        counters.device_calls += 1
        return ndarray._of(np.array(data._array, dtype=dtype, ndmin=ndmin))
    if isinstance(data, (list, tuple)) and any(isinstance(v, ndarray) for v in data):
        return _call(np.array, ([_host_to_device(v) for v in data],), {"dtype": dtype})
    counters.host_to_device += 1
    return ndarray._of(np.array(data, dtype=dtype, ndmin=ndmin))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0):
    return _host_to_device(obj, dtype, copy=copy, ndmin=ndmin)


def asarray(a, dtype=None, order=None):
    return _host_to_device(a, dtype, copy=False)


def asnumpy(a, stream=None, order="C", out=None):
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*args):
    return cupy if any(isinstance(a, ndarray) for a in args) else np


def is_available():
    return True


# Names answered on the host alone (dtypes, shapes, promotion rules): no device work.
_HOST_ONLY = {"dtype", "finfo", "iinfo", "result_type", "can_cast", "promote_types", "issubdtype",
              "min_scalar_type", "common_type", "shape", "ndim", "size", "isscalar", "binary_repr",
              "base_repr", "may_share_memory", "shares_memory", "isfortran", "iscomplexobj", "isrealobj"}
_WRITTEN_HERE = {"array": array, "asarray": asarray, "asanyarray": asarray, "asnumpy": asnumpy,
                 "get_array_module": get_array_module, "is_available": is_available, "ndarray": ndarray}


def _host_function(function):
    def host(*args, **kwargs):
        return function(*[_to_numpy(a, on_host=True) for a in args],
                        **{k: _to_numpy(v, on_host=True) for k, v in kwargs.items()})
    return host


def _device_function(function):
    def on_device(*args, **kwargs):
        return _call(function, args, kwargs)
    on_device.__name__ = getattr(function, "__name__", "function")
    return on_device


class _Module(types.ModuleType):
    """A module that answers only the names it was given, with an error naming CuPy for the rest."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"module '{self.__name__}' has no attribute '{name}' (the CuPy stand-in "
                             f"exposes only names CuPy has, {cupy_names.SNAPSHOT}; see "
                             "tinytensor/testing/cupy_names.py)")


def _module_value(name):
    """What cupy.<name> is in the stand-in, or None when it is not emulated."""
    if name in _WRITTEN_HERE:
        return _WRITTEN_HERE[name]
    value = getattr(np, name, None)
    if value is None:
        return None
    if isinstance(value, np.ufunc):
        return _Ufunc(value, name)
    if isinstance(value, type) or not callable(value):        # dtypes, classes, constants
        return value
    if name in _HOST_ONLY:
        return _host_function(value)
    return _device_function(value)


# ----------------------------------------------------------------------------------- random

class _BitGenerator:
    """Like CuPy's cuRAND bit generators, its whole state is a device array, `_state` (int8): here the
    bytes of a NumPy PCG64 state, read before each draw and written back after it."""

    def __init__(self, seed):
        self._numpy = np.random.PCG64(seed)
        self._device = _current_device[-1]
        self._state = ndarray._of(np.zeros(40, dtype=np.int8))
        self._store()

    def _store(self):
        state = self._numpy.state
        words = [state["state"]["state"], state["state"]["inc"]]
        packed = b"".join(w.to_bytes(16, "little") for w in words)
        packed += state["has_uint32"].to_bytes(4, "little") + state["uinteger"].to_bytes(4, "little")
        self._state._array[...] = np.frombuffer(packed, dtype=np.int8)

    def _load(self):
        packed = self._state._array.tobytes()
        self._numpy.state = {"bit_generator": "PCG64",
                             "state": {"state": int.from_bytes(packed[:16], "little"),
                                       "inc": int.from_bytes(packed[16:32], "little")},
                             "has_uint32": int.from_bytes(packed[32:36], "little"),
                             "uinteger": int.from_bytes(packed[36:], "little")}


class Generator:
    """cupy.random.Generator: NumPy's PCG64 underneath; CuPy's methods and dtype rules on top."""

    def __init__(self, seed=None):
        self.bit_generator = _BitGenerator(seed)
        self._numpy = np.random.Generator(self.bit_generator._numpy)

    def _draw(self, draw, size, dtype):
        if self.bit_generator._device != _current_device[-1]:
            raise RuntimeError("This Generator state is allocated in a different device")
        counters.device_calls += 1
        self.bit_generator._load()
        sample = ndarray._of(np.asarray(draw(size)).astype(dtype, copy=False))
        self.bit_generator._store()
        return sample

    def random(self, size=None, dtype=np.float64, out=None):
        # CuPy draws float64 for 'd', float32 for every other dtype, then casts.
        draw_dtype = np.float64 if np.dtype(dtype) == np.float64 else np.float32
        return self._draw(lambda s: self._numpy.random(s, dtype=draw_dtype), size, dtype)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        if np.dtype(dtype).char not in "fd":
            raise TypeError(f"Unsupported dtype {np.dtype(dtype).name} for standard_normal")
        return self._draw(lambda s: self._numpy.standard_normal(s, dtype=dtype), size, dtype)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._draw(lambda s: self._numpy.integers(low, high, s, endpoint=endpoint), size, dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return self._draw(lambda s: self._numpy.uniform(low, high, s), size, dtype)


def _generator_method(name):
    def method(self, *args, **kwargs):
        return self._draw(lambda s: getattr(self._numpy, name)(*args, size=s), kwargs.pop("size", None),
                          np.float64 if name not in ("geometric", "hypergeometric", "logseries", "poisson",
                                                     "binomial") else np.int64)
    method.__name__ = name
    return method


for _name in cupy_names.GENERATOR - set(vars(Generator)) - {"bit_generator"}:
    setattr(Generator, _name, _generator_method(_name))


def default_rng(seed=None):
    return Generator(seed)


# ----------------------------------------------------------------------------------- the modules

def _build():
    cupy_module = _Module("cupy", "A strict NumPy-backed stand-in for CuPy (tinytensor.testing.fake_cupy).")
    for name in cupy_names.MODULE:
        value = _module_value(name)
        if value is not None:
            setattr(cupy_module, name, value)
    cupy_module.ufunc = _Ufunc

    cuda = _Module("cupy.cuda")
    cuda.Device, cuda.runtime = Device, _Runtime
    cuda.is_available = is_available
    cupy_module.cuda = cuda

    random = _Module("cupy.random")
    random.default_rng, random.Generator = default_rng, Generator
    cupy_module.random = random

    linalg = _Module("cupy.linalg")
    for name in cupy_names.LINALG:
        if hasattr(np.linalg, name):
            setattr(linalg, name, _device_function(getattr(np.linalg, name)))
    cupy_module.linalg = linalg

    cupyx_module = _Module("cupyx")
    cupyx_module.scipy = _Module("cupyx.scipy")
    cupyx_module.scipy.special = _Module("cupyx.scipy.special")
    cupyx_module.scipy.special.erf = _erf
    return cupy_module, cupyx_module


cupy, cupyx = _build()


def install():
    """Make tinytensor's cuda devices use the stand-in (for tests on a machine without a GPU)."""
    backend.use_cupy(cupy, cupyx)


def check_names():
    """Print how the snapshot in cupy_names.py differs from the CuPy installed here."""
    import cupy as real                       # noqa: F811 (the real one, on a GPU machine)
    generator = real.random.default_rng(0)
    for label, snapshot, names in (
            ("cupy", cupy_names.MODULE, {n for n in dir(real) if not n.startswith("_")}),
            ("cupy.ndarray", cupy_names.NDARRAY, {n for n in dir(real.ndarray) if not n.startswith("_")}),
            ("cupy.random.Generator", cupy_names.GENERATOR, {n for n in dir(generator) if not n.startswith("_")})):
        missing = sorted(snapshot - names)
        print(f"{label}: in the snapshot but not in CuPy {real.__version__}: {missing or 'none'}")
        if label != "cupy":
            print(f"{label}: in CuPy {real.__version__} but not in the snapshot: {sorted(names - snapshot) or 'none'}")


if __name__ == "__main__":
    if "--check-names" in sys.argv:
        check_names()
