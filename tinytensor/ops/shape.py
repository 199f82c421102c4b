"""Operations that move elements around without changing them: reshape, broadcast, join, split, pad, index.

Every backward here only moves the gradient back to where its element came from, with the same ops, so
all of them can be differentiated again. Ops whose result is a view of the input's memory (reshape,
transpose, broadcast, basic indexing) share the input's version counter, like PyTorch's views: writing
into either one in place makes a backward that saved the other raise instead of using changed values.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..keywords import pytorch_keywords
from ..tensor import Tensor
from .common import normalize_axis

__all__ = ["reshape", "flatten", "broadcast_to", "expand", "transpose", "permute", "swapaxes", "squeeze",
           "unsqueeze", "contiguous", "cat", "stack", "split", "chunk", "pad", "getitem", "setitem",
           "to_device"]


def _shape_arg(shape):
    """Accept reshape(2, 3) as well as reshape((2, 3))."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _axis(axis, ndim, op):
    """One axis in range(ndim), negative counting from the end; a clear error otherwise."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimension(s) "
                         f"(valid: {-ndim} to {ndim - 1})")
    return axis % ndim


def _view_of(out, x):
    """Give `out` the version counter of `x` when it shares x's memory (a view), then return it."""
    if out is not x and out.xp.may_share_memory(out.data, x.data):
        out._version = x._version
    return out


# ----------------------------------------------------------------------------------- new shapes

class Reshape(Function):
    """y = x with a new shape        dy/dx = 1, so grad is reshaped back"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape), None


def reshape(x, *shape):
    """x with a new shape of the same size; one size may be -1 (inferred). Also `x.view(...)`."""
    shape = _shape_arg(shape)
    if shape == x.shape:
        return x
    known = 1
    for n in shape:
        known *= n if n != -1 else 1
    unknown = sum(n == -1 for n in shape)
    if unknown > 1 or any(n < -1 for n in shape) or (
            x.size != known if not unknown else (known == 0 or x.size % known)):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} ({x.size} elements) "
                         f"into shape {shape} (at most one -1, and the sizes must multiply to {x.size})")
    shape = tuple(x.size // known if n == -1 else n for n in shape)
    if shape == x.shape:
        return x
    return _view_of(Reshape.apply(x, shape), x)


@pytorch_keywords
def flatten(x, start_axis=0, end_axis=-1):
    """Merge axes start_axis..end_axis (inclusive) into one, like torch.flatten; a 0-d x becomes (1,)."""
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = _axis(start_axis, x.ndim, "flatten"), _axis(end_axis, x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis} for a tensor "
                         f"of shape {tuple(x.shape)}")
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


@pytorch_keywords
def unsqueeze(x, axis):
    """Insert a size-1 axis at `axis` (negative counts from the end of the result)."""
    axis = _axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


@pytorch_keywords
def squeeze(x, axis=None):
    """Remove size-1 axes: all of them, or those named that have size 1 (others stay, like PyTorch)."""
    axes = range(x.ndim) if axis is None else normalize_axis(axis, x.ndim)
    drop = {a for a in axes if x.shape[a] == 1}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in drop))


class BroadcastTo(Function):
    """y = x repeated along stretched axes        dy/dx: grad summed over those axes"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return ctx.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.sum_to(ctx.input_shape), None


def broadcast_to(x, shape):
    """x stretched to `shape` by NumPy's broadcasting rules (a read-only view, no copy)."""
    shape = tuple(shape)
    if shape == x.shape:
        return x
    lead = len(shape) - x.ndim
    if lead < 0 or any(n != 1 and n != m for n, m in zip(x.shape, shape[lead:])):
        raise ValueError(f"broadcast_to: shape {tuple(x.shape)} cannot be broadcast to {shape} (each "
                         "axis, matched from the right, must be equal or 1 in the tensor)")
    return _view_of(BroadcastTo.apply(x, shape), x)


def expand(x, *sizes):
    """x stretched to `sizes` like torch.Tensor.expand: -1 keeps an axis, new axes go in front."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0 or any(n == -1 for n in sizes[:lead]):
        raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {sizes}: give at least "
                         f"{x.ndim} sizes, and -1 only for existing axes")
    shape = sizes[:lead] + tuple(m if n == -1 else n for n, m in zip(sizes[lead:], x.shape))
    return broadcast_to(x, shape)


class Transpose(Function):
    """y = x with its axes permuted        dy/dx: grad with the inverse permutation"""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(tuple(np.argsort(ctx.axes).tolist())), None


def transpose(x, *axes):
    """Reorder axes; how many are given decides how, so NumPy's and PyTorch's code both read right:
    none reverses them (`x.T`, as NumPy); two, transpose(x, a, b), swap those two (as PyTorch; for a matrix
    also NumPy's x.transpose(1, 0)); more are a full permutation, as NumPy (also spelled permute).
    A permutation you computed goes to permute, which never swaps: a 2-D one may have two entries."""
    axes = _shape_arg(axes)
    if not axes:                        # x.T (in every linear backward): reversed axes need no checks
        return x if x.ndim < 2 else _view_of(Transpose.apply(x, tuple(range(x.ndim - 1, -1, -1))), x)
    if len(axes) == 2:
        return _swap(x, *axes, "transpose")
    return _permute(x, axes, "transpose")


def permute(x, *axes):
    """x with its axes in the order `axes`, a full permutation (negative axes count from the end):
    result axis i is input axis axes[i]. The PyTorch name; NumPy's transpose with a permutation."""
    return _permute(x, _shape_arg(axes), "permute")


def swapaxes(x, axis1, axis2):
    """Exchange two axes; also x.transpose(a, b), PyTorch's spelling."""
    return _swap(x, axis1, axis2, "swapaxes")


def _permute(x, axes, op):
    in_range = all(-x.ndim <= a < x.ndim for a in axes)
    normalized = tuple(a % x.ndim for a in axes) if in_range else ()
    if not in_range or sorted(normalized) != list(range(x.ndim)):
        raise ValueError(f"{op}: axes {axes} are not a permutation of the {x.ndim} axes of a tensor of "
                         f"shape {tuple(x.shape)}; to exchange two axes use transpose(a, b)")
    return x if normalized == tuple(range(x.ndim)) else _view_of(Transpose.apply(x, normalized), x)


def _swap(x, axis1, axis2, op):
    axes = list(range(x.ndim))
    a, b = _axis(axis1, x.ndim, op), _axis(axis2, x.ndim, op)
    axes[a], axes[b] = b, a
    return _permute(x, axes, op)


class Contiguous(Function):
    """y = a C-ordered copy of x        dy/dx = 1"""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.ascontiguousarray(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def contiguous(x):
    """x itself when its memory is already in C order, else a C-ordered copy (faster to read row-wise)."""
    return x if x.data.flags.c_contiguous else Contiguous.apply(x)


# ----------------------------------------------------------------------------------- join and split

def _check_tensors(tensors, op):
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {i} is a {type(t).__name__}, not a Tensor")
    return tensors


def _cast_back(grads, dtypes):
    """Gradients in the dtypes of their inputs (joins promote mixed dtypes the NumPy way)."""
    return tuple(g if g is None or g.dtype == d else g.to(d) for g, d in zip(grads, dtypes))


class Cat(Function):
    """y = [x1, x2, ...] joined along axis        dy/dxi = the slice of grad where xi went"""

    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis, ctx.dtypes = axis, [x.dtype for x in xs]
        ctx.bounds = np.cumsum([0] + [x.shape[axis] for x in xs]).tolist()
        return ctx.xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        lead = (slice(None),) * ctx.axis
        grads = [grad[lead + (slice(start, stop),)] if needed else None
                 for start, stop, needed in zip(ctx.bounds, ctx.bounds[1:], ctx.needs_input_grad[1:])]
        return (None,) + _cast_back(grads, ctx.dtypes)


@pytorch_keywords
def cat(tensors, axis=0):
    """Join tensors along an existing axis; all other axes must match."""
    tensors = _check_tensors(tensors, "cat")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("cat: 0-d tensors cannot be joined along an axis; use stack")
    axis = _axis(axis, first.ndim, "cat")
    def others(shape):
        return shape[:axis] + shape[axis + 1:]
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or others(t.shape) != others(first.shape):
            raise ValueError(f"cat: tensor {i} has shape {tuple(t.shape)} but tensor 0 has shape "
                             f"{tuple(first.shape)}; all axes except axis {axis} must match")
    return Cat.apply(axis, *tensors)


class Stack(Function):
    """y = [x1, x2, ...] along a new axis        dy/dxi = grad at index i of that axis"""

    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis, ctx.dtypes = axis, [x.dtype for x in xs]
        return ctx.xp.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        lead = (slice(None),) * ctx.axis
        grads = [grad[lead + (i,)] if needed else None for i, needed in enumerate(ctx.needs_input_grad[1:])]
        return (None,) + _cast_back(grads, ctx.dtypes)


@pytorch_keywords
def stack(tensors, axis=0):
    """Join same-shaped tensors along a new axis (negative counts from the end of the result)."""
    tensors = _check_tensors(tensors, "stack")
    first = tensors[0]
    axis = _axis(axis, first.ndim + 1, "stack")
    for i, t in enumerate(tensors):
        if t.shape != first.shape:
            raise ValueError(f"stack: tensor {i} has shape {tuple(t.shape)} but tensor 0 has shape "
                             f"{tuple(first.shape)} (stacking along axis {axis} needs equal shapes)")
    return Stack.apply(axis, *tensors)


@pytorch_keywords
def split(x, split_size_or_sections, axis=0):
    """A tuple of slices along `axis`, like torch.split: an int is the size of every piece (the last
    may be smaller); a list gives each piece's size and must add up to the axis length."""
    axis = _axis(axis, x.ndim, "split")
    length = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, length - start) for start in range(0, length, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length or any(n < 0 for n in sizes):
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} of a tensor "
                             f"of shape {tuple(x.shape)} has length {length}")
    lead = (slice(None),) * axis
    bounds = np.cumsum([0] + sizes).tolist()
    return tuple(getitem(x, lead + (slice(start, stop),)) for start, stop in zip(bounds, bounds[1:]))


@pytorch_keywords
def chunk(x, chunks, axis=0):
    """Split into `chunks` pieces of ceil(length / chunks) each, like torch.chunk (can give fewer)."""
    if chunks <= 0:
        raise ValueError(f"chunk: the number of chunks must be positive, got {chunks}")
    length = x.shape[_axis(axis, x.ndim, "chunk")]
    return split(x, max(-(-length // chunks), 1), axis)


class Pad(Function):
    """y = x surrounded by `value` (negative widths crop)        dy/dx = grad with the padding cut off,
    which is pad(grad, -widths)"""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        shape = tuple(n + before + after for n, (before, after) in zip(x.shape, widths))
        y = ctx.xp.full(shape, value, dtype=x.dtype)
        # Positive widths leave room in y, negative ones cut x: copy the part of x that is kept.
        kept = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(x.shape, widths))
        room = tuple(slice(max(b, 0), m - max(a, 0)) for m, (b, a) in zip(shape, widths))
        y[room] = x[kept]
        return y

    @staticmethod
    def backward(ctx, grad):
        return Pad.apply(grad, tuple((-before, -after) for before, after in ctx.widths), 0), None, None


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(x, pad_width, value=0, *, mode="constant"):
    """Pad like PyTorch's F.pad: pad_width pairs start at the LAST axis, (left, right) for the last axis,
    then (top, bottom) for the one before, and so on.

    mode="constant" fills with `value` (negative widths crop); "reflect" mirrors the tensor without
    repeating its edge (widths < the axis length); "replicate" repeats the edge; "circular" wraps around
    (widths <= the axis length). pad(x, (1, 1)) widens the last axis by one on each side;
    pad(img, (1, 1, 2, 2)) pads W by 1, H by 2."""
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if isinstance(value, str):
        raise TypeError(f"pad: value must be a number, got {value!r}; name the mode: pad(x, widths, mode={value!r}) "
                        "(nn.functional.pad takes PyTorch's order, F.pad(x, widths, mode, value))")
    pad_width = tuple(int(w) for w in pad_width)
    if len(pad_width) % 2 or len(pad_width) > 2 * x.ndim:
        raise ValueError(f"pad: pad_width {pad_width} must hold (before, after) pairs for at most the "
                         f"{x.ndim} axes of a tensor of shape {tuple(x.shape)}")
    pairs = [pad_width[i:i + 2] for i in range(0, len(pad_width), 2)]
    widths = ((0, 0),) * (x.ndim - len(pairs)) + tuple(reversed(pairs))
    for axis, (n, (before, after)) in enumerate(zip(x.shape, widths)):
        if n + before + after < 0:
            raise ValueError(f"pad: widths {(before, after)} would leave axis {axis} of a tensor of shape "
                             f"{tuple(x.shape)} with a negative length")
    if not any(pad_width):
        return x
    if mode == "constant":
        return Pad.apply(x, widths, value)
    for axis, (before, after) in enumerate(widths):   # one gather per padded axis: gradients for free
        if before or after:
            index = _pad_positions(mode, x.shape[axis], before, after, axis, x)
            x = getitem(x, (slice(None),) * axis + (index,))
    return x


def _pad_positions(mode, n, before, after, axis, x):
    """Which input position each output position along one axis copies, for the non-constant modes."""
    largest = {"reflect": n - 1, "replicate": None, "circular": n}[mode]
    if min(before, after) < 0 or n == 0 or (largest is not None and max(before, after) > largest):
        limit = "" if largest is None else f", at most {largest} here (the axis has length {n})"
        raise ValueError(f"pad: mode={mode!r} needs non-negative widths{limit}, and a non-empty axis; got "
                         f"{(before, after)} for axis {axis} of a tensor of shape {tuple(x.shape)}")
    xp = x.xp
    position = xp.arange(-before, n + after)
    if mode == "replicate":
        return xp.clip(position, 0, n - 1)
    if mode == "circular":
        return position % n
    period = 2 * (n - 1)                            # reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...
    folded = position % period                      # n >= 2 here: a width of 1 or more needs n - 1 >= 1
    return xp.where(folded < n, folded, period - folded)


# ----------------------------------------------------------------------------------- indexing

def _index_key(x, key):
    """The key with Tensors, lists and arrays as index arrays on x's device, and whether it is basic
    (only ints, slices, None and ...), so the result is a view and every element is picked once."""
    parts = key if isinstance(key, tuple) else (key,)
    xp = x.xp
    raw, basic = [], True
    for part in parts:
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list) or backend.is_array(part):
            if isinstance(part, list):   # [] means no positions, not an array of floats
                part = xp.asarray(part) if part else xp.zeros(0, dtype=np.int64)
            part = backend.move(part, x.device)
            if part.dtype.kind not in "biu":
                raise IndexError(f"getitem: index arrays must be integer or bool, got {part.dtype} "
                                 f"(indexing a tensor of shape {tuple(x.shape)})")
            basic = False
        elif not isinstance(part, (int, np.integer, np.bool_, slice, type(None), type(Ellipsis))):
            raise IndexError(f"getitem: cannot index with a {type(part).__name__} (use ints, slices, None, "
                             "..., bool masks or integer index tensors)")
        raw.append(part)
    return (tuple(raw) if isinstance(key, tuple) else raw[0]), basic


def _unique_positions(key, basic):
    """True when no element of x is picked twice by key: basic keys and bool masks alone."""
    parts = key if isinstance(key, tuple) else (key,)
    return basic or all(not backend.is_array(p) or p.dtype == bool for p in parts)


class GetItem(Function):
    """y = x[key]        dy/dx: grad scattered back into zeros of x's shape; repeated indices add up"""

    @staticmethod
    def forward(ctx, x, key, unique):
        ctx.input_shape, ctx.key, ctx.unique = x.shape, key, unique
        try:
            return x[key]
        except IndexError as err:
            raise IndexError(f"getitem: {err} (indexing a tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        return ScatterAdd.apply(grad, ctx.input_shape, ctx.key, ctx.unique), None, None


class ScatterAdd(Function):
    """y = zeros(shape) with y[key] += x (repeated indices accumulate)        dy/dx = grad[key]"""

    @staticmethod
    def forward(ctx, x, shape, key, unique):
        ctx.key, ctx.unique = key, unique
        y = ctx.xp.zeros(shape, dtype=x.dtype)
        if unique:      # each position once: a plain assignment, much faster than add.at
            y[key] = x
        else:           # NumPy, and CuPy >= 12 (atomic adds on the GPU)
            ctx.xp.add.at(y, key, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, ctx.key, ctx.unique), None, None, None


def getitem(x, key):
    """x[key] with NumPy's indexing: ints, slices (any step), None, ..., bool masks, integer arrays,
    Tensors or lists. Basic keys give a view sharing x's version counter. (On a GPU, out-of-range
    index arrays are not checked: CuPy wraps them around.)"""
    key, basic = _index_key(x, key)
    out = GetItem.apply(x, key, _unique_positions(key, basic))
    return _view_of(out, x) if basic else out


class SetItem(Function):
    """y = x with y[key] = value        dy/dx = grad with grad[key] = 0,  dy/dvalue = grad[key]"""

    @staticmethod
    def forward(ctx, x, key, value, unique):
        ctx.key, ctx.unique, ctx.value_shape = key, unique, getattr(value, "shape", ())
        y = x.copy()
        try:
            y[key] = value
        except (IndexError, ValueError) as err:
            raise type(err)(f"setitem: {err} (assigning a value of shape {ctx.value_shape} into a "
                            f"tensor of shape {x.shape})") from None
        return y

    @staticmethod
    def backward(ctx, grad):
        grad_x = SetItem.apply(grad, ctx.key, 0, ctx.unique) if ctx.needs_input_grad[0] else None
        grad_value = None
        if ctx.needs_input_grad[2]:
            grad_value = GetItem.apply(grad, ctx.key, ctx.unique)
            if grad_value.ndim < len(ctx.value_shape):   # value had extra leading size-1 axes
                grad_value = grad_value.reshape(ctx.value_shape)
        return grad_x, None, grad_value, None


def setitem(x, key, value):
    """A new tensor equal to x with x[key] replaced by value (the differentiable form of x[key] = v;
    `x[key] = v` on a Tensor calls this when autograd records it)."""
    key, basic = _index_key(x, key)
    if not isinstance(value, Tensor):
        value = Tensor(value, dtype=x.dtype, device=x.device)
    return SetItem.apply(x, key, value, _unique_positions(key, basic))


class ToDevice(Function):
    """y = x copied to another device        dy/dx: grad copied back"""

    @staticmethod
    def forward(ctx, x, device):
        ctx.input_device = backend.device_of(x)
        return backend.move(x, device)

    @staticmethod
    def backward(ctx, grad):
        return to_device(grad, ctx.input_device), None


def to_device(x, device):
    return x if x.device == device else ToDevice.apply(x, device)
