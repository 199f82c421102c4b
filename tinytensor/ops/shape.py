"""Operations that move elements around without changing them: reshape, broadcast, indexing."""
from .. import backend
from ..autograd import Function
from ..tensor import Tensor, _raw_key
from .common import normalize_axis

__all__ = ["reshape", "broadcast_to", "transpose", "permute", "swapaxes", "squeeze", "unsqueeze",
           "getitem", "setitem", "to_device"]
TENSOR_METHODS = ["reshape", "broadcast_to", "transpose", "permute", "swapaxes", "squeeze", "unsqueeze"]


def _shape_arg(shape):
    """Accept reshape(2, 3) as well as reshape((2, 3))."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


class Reshape(Function):
    """y = x with a new shape        dy/dx = 1, reshaped back"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                             f"into shape {shape}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape), None


class BroadcastTo(Function):
    """y = x repeated along stretched axes        dy/dx = sum of grad over those axes"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        try:
            return ctx.xp.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: shape {x.shape} cannot be broadcast to {shape}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.sum_to(ctx.input_shape), None


class Transpose(Function):
    """y = x with its axes permuted        dy/dx = grad with the inverse permutation"""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.axes)
        for position, axis in enumerate(ctx.axes):
            inverse[axis] = position
        return grad.transpose(*inverse), None


class GetItem(Function):
    """y = x[key]        dy/dx scatters grad back into zeros; repeated indices add up"""

    @staticmethod
    def forward(ctx, x, key):
        ctx.input_shape, ctx.key = x.shape, key
        return x[key]

    @staticmethod
    def backward(ctx, grad):
        return ScatterAdd.apply(grad, ctx.input_shape, ctx.key), None


class ScatterAdd(Function):
    """y = zeros(shape) with y[key] += x (repeated indices accumulate)        dy/dx = grad[key]"""

    @staticmethod
    def forward(ctx, x, shape, key):
        ctx.key = key
        y = ctx.xp.zeros(shape, dtype=x.dtype)
        if ctx.xp.__name__ == "numpy":
            ctx.xp.add.at(y, key, x)
        else:
            import cupyx
            cupyx.scatter_add(y, key, x)
        return y

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, ctx.key), None, None


class SetItem(Function):
    """y = x with y[key] = value        dy/dx = grad with grad[key] = 0, dy/dvalue = grad[key]"""

    @staticmethod
    def forward(ctx, x, key, value):
        ctx.key = key
        y = x.copy()
        y[key] = value
        return y

    @staticmethod
    def backward(ctx, grad):
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = SetItem.apply(grad, ctx.key, 0.0)
        grad_value = GetItem.apply(grad, ctx.key) if ctx.needs_input_grad[2] else None
        return grad_x, None, grad_value


class ToDevice(Function):
    """y = x copied to another device        dy/dx = grad copied back"""

    @staticmethod
    def forward(ctx, x, device):
        ctx.input_device = backend.device_of(x)
        return backend.move(x, device)

    @staticmethod
    def backward(ctx, grad):
        return to_device(grad, ctx.input_device), None


def reshape(x, *shape):
    shape = _shape_arg(shape)
    return x if shape == x.shape else Reshape.apply(x, shape)


def broadcast_to(x, shape):
    shape = tuple(shape)
    return x if shape == x.shape else BroadcastTo.apply(x, shape)


def transpose(x, *axes):
    """Permute axes; with no axes, reverse them (like NumPy and .T)."""
    axes = _shape_arg(axes) or tuple(reversed(range(x.ndim)))
    if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of a "
                         f"tensor of shape {x.shape}")
    axes = tuple(a % x.ndim for a in axes)
    return x if axes == tuple(range(x.ndim)) else Transpose.apply(x, axes)


def permute(x, *axes):
    return transpose(x, *axes)


def swapaxes(x, axis1, axis2):
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


def unsqueeze(x, axis):
    """Insert a size-1 axis at `axis` (negative counts from the end of the result)."""
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None):
    """Remove size-1 axes (all of them, or the ones named)."""
    axes = normalize_axis(axis, x.ndim) if axis is not None else [i for i, n in enumerate(x.shape) if n == 1]
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 (shape {x.shape})")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def getitem(x, key):
    return GetItem.apply(x, _raw_key(key))


def setitem(x, key, value):
    """A new tensor equal to x with x[key] replaced by value (the differentiable form of x[key] = v)."""
    if not isinstance(value, Tensor):
        value = Tensor(value, dtype=x.dtype, device=x.device)
    return SetItem.apply(x, _raw_key(key), value)


def to_device(x, device):
    return x if x.device == device else ToDevice.apply(x, device)
