"""Elementwise operations. Broadcasting is undone by the engine (autograd.py), not here.

Every backward is written with Tensor operations, so it can be differentiated again. Where a derivative
is piecewise constant (relu, abs, maximum, clip) it is a mask saved as a constant: its own derivative is
zero, which is exactly right away from the kinks.
"""
import contextlib
import math

from .. import numerics
from ..autograd import Function
from ..tensor import Tensor, default_dtype
from . import fast
from .common import constant, operands, promoted_dtype

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "abs", "exp", "log", "log1p", "sqrt", "sin", "cos",
           "tanh", "sigmoid", "relu", "leaky_relu", "erf", "gelu", "softplus", "maximum", "minimum", "clip",
           "where", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "clone", "cast"]


def _shape(value):
    return tuple(getattr(value, "shape", ()))


def broadcasting(name, ufunc, a, b):
    """ufunc(a, b), with NumPy's broadcasting error replaced by one that names the op and both shapes."""
    try:
        return ufunc(a, b)
    except ValueError:
        raise ValueError(f"{name}: shapes {_shape(a)} and {_shape(b)} cannot be broadcast together") from None


def promoted(a, b, floating=False):
    """Both operands of an elementwise op as Tensors of one dtype (see promoted_dtype). The narrower one
    goes through `cast`, whose backward casts the gradient back: a float32 input gets a float32 grad.
    When the result is a float (floating=True, as for division, or a Python float operand), integer and
    bool Tensors first become the default float dtype, as in PyTorch (NumPy would give float64)."""
    a, b = operands(a, b)
    if floating or isinstance(a, float) or isinstance(b, float):
        a, b = floating_point(a), floating_point(b)
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or a.dtype == b.dtype:
        return a, b
    dtype = promoted_dtype(a, b)
    return cast(a, dtype), cast(b, dtype)


def floating_point(x):
    """x when it is a float Tensor (or not a Tensor); an integer or bool Tensor as the default float dtype,
    as PyTorch computes exp(ints) or ints / ints in float32 (NumPy: float64, or float16 for bool and uint8)."""
    return x if not isinstance(x, Tensor) or x.dtype.kind == "f" else cast(x, default_dtype)


def quiet(xp, **kinds):
    """NumPy's errstate (e.g. over="ignore") where the warning is about a correct inf; CuPy never warns."""
    return xp.errstate(**kinds) if hasattr(xp, "errstate") else contextlib.nullcontext()


# ----------------------------------------------------------------------------------- arithmetic

class Add(Function):
    """y = a + b        dy/da = 1, dy/db = 1"""

    @staticmethod
    def forward(ctx, a, b):
        return broadcasting("add", ctx.xp.add, a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """y = a - b        dy/da = 1, dy/db = -1"""

    @staticmethod
    def forward(ctx, a, b):
        return broadcasting("sub", ctx.xp.subtract, a, b)

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b        dy/da = b, dy/db = a"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return broadcasting("mul", ctx.xp.multiply, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (grad * b if ctx.needs_input_grad[0] else None,
                grad * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    """y = a / b        dy/da = 1/b, dy/db = -a/b^2"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return broadcasting("div", ctx.xp.true_divide, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = grad / b
        return grad_a, (-grad_a * a / b if ctx.needs_input_grad[1] else None)


class Neg(Function):
    """y = -x        dy/dx = -1"""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """y = a ** b        dy/da = b a^(b-1), dy/db = y log(a)

    As in PyTorch, dy/da is 0 where b = 0 (y = 1 for every a, even a = 0, where b a^(b-1) = 0 * inf), and
    dy/db is 0 where a = 0 and b >= 0 (y stays 0 or 1 there, where y log(a) = 0 * -inf)."""

    @staticmethod
    def forward(ctx, a, b):
        y = broadcasting("pow", ctx.xp.power, a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:   # b may be a plain number here (x ** 2)
            if not isinstance(b, Tensor):
                grad_a = grad * b * a ** (b - 1) if b != 0 else grad * 0
            else:
                with quiet(ctx.xp, divide="ignore", invalid="ignore"):     # 0 ** -1 where b = 0, masked
                    grad_a = grad * where(constant(b.data == 0, b), 0.0, b * a ** (b - 1))
        if ctx.needs_input_grad[1]:   # a may be a plain number here (2 ** x)
            base_is_zero = (a.data if isinstance(a, Tensor) else a) == 0
            flat = constant((b.data >= 0) & base_is_zero, b)
            with quiet(ctx.xp, divide="ignore", invalid="ignore"):         # y log(0) where a = 0, masked
                log_a = log(a) if isinstance(a, Tensor) else _real_log(a)
                grad_b = grad * where(flat, 0.0, y * log_a)
        return grad_a, grad_b


def _real_log(number):
    """log of a plain number as NumPy gives it for arrays: -inf at 0, NaN below (math.log raises)."""
    return math.log(number) if number > 0 else (-math.inf if number == 0 else math.nan)


# ----------------------------------------------------------------------------------- one-input math

class Abs(Function):
    """y = |x|        dy/dx = sign(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(ctx.xp.sign(x))
        return ctx.xp.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (sign,) = ctx.saved_tensors
        return grad * sign


class Exp(Function):
    """y = exp(x)        dy/dx = y"""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Log(Function):
    """y = log(x)        dy/dx = 1/x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Log1p(Function):
    """y = log(1 + x), accurate for small x        dy/dx = 1/(1 + x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x + 1)


class Sqrt(Function):
    """y = sqrt(x)        dy/dx = 1/(2y)"""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


class Sin(Function):
    """y = sin(x)        dy/dx = cos(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * cos(x)


class Cos(Function):
    """y = cos(x)        dy/dx = -sin(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * sin(x)


# ----------------------------------------------------------------------------------- activations

class Tanh(Function):
    """y = tanh(x)        dy/dx = 1 - y^2"""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x))        dy/dx = y (1 - y)"""

    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        with quiet(xp, over="ignore"):        # x << 0: exp(-x) = inf, y = 1 / inf = 0, the right limit
            y = 1 / (1 + xp.exp(-x)) if not fast.enabled() else fast.sigmoid(xp, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)


class Relu(Function):
    """y = max(x, 0)        dy/dx = 1 where x > 0, else 0"""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        grad, y = ctx.backward_operands(grad)             # arrays, or Tensors under create_graph
        return grad * (y > 0)


class LeakyRelu(Function):
    """y = x where x > 0, else slope * x        dy/dx = 1 where x > 0, else slope"""

    @staticmethod
    def forward(ctx, x, slope):
        xp = ctx.xp
        scale = xp.where(x > 0, xp.asarray(1, dtype=x.dtype), xp.asarray(slope, dtype=x.dtype))
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt        dy/dx = 2/sqrt(pi) exp(-x^2)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return numerics.erf(x, ctx.xp)          # tinytensor/numerics.py: the method and its accuracy

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2 / math.sqrt(math.pi)) * exp(-x * x)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


class Gelu(Function):
    """y = x Phi(x), Phi the normal CDF = (1 + erf(x/sqrt 2))/2        dy/dx = Phi(x) + x phi(x)

    approximate="tanh": Phi(x) ~ (1 + tanh(u))/2 with u = sqrt(2/pi) (x + 0.044715 x^3), and
    dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(u)."""

    @staticmethod
    def forward(ctx, x, approximate):
        xp = ctx.xp
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            if not fast.enabled():
                return 0.5 * x * (1 + xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x)))
            return fast.gelu_tanh(xp, x, _GELU_CUBIC, _SQRT_2_OVER_PI)[0]
        if not fast.enabled():
            return 0.5 * x * (1 + numerics.erf(x * _SQRT_HALF, xp))
        return fast.gelu_erf(xp, x, _SQRT_HALF)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            t = tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x))
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
        else:
            slope = 0.5 * (1 + erf(x * _SQRT_HALF)) + x * _INV_SQRT_2PI * exp(-0.5 * x * x)
        return grad * slope, None


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold        dy/dx = sigmoid(beta x)"""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = ctx.xp
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        bx = x * beta if beta != 1 else x
        # log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)): the exp never overflows.
        if not fast.enabled():
            y = xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))
        else:
            y = fast.softplus(xp, bx)
        if beta != 1:
            y /= beta
        return xp.where(bx > threshold, x, y)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        slope = sigmoid(x * ctx.beta if ctx.beta != 1 else x)
        linear = constant(x.data * ctx.beta > ctx.threshold, x)
        return grad * where(linear, 1.0, slope), None, None


# ----------------------------------------------------------------------------------- two-input choices

class Maximum(Function):
    """y = max(a, b)        dy/da = 1 where a > b, 1/2 where a == b, else 0 (dy/db the rest)"""

    @staticmethod
    def forward(ctx, a, b):
        xp = ctx.xp
        y = broadcasting("maximum", xp.maximum, a, b)
        share_a = xp.greater(a, b).astype(y.dtype)
        share_a += 0.5 * xp.equal(a, b)
        ctx.save_for_backward(share_a)
        return y

    @staticmethod
    def backward(ctx, grad):
        (share_a,) = ctx.saved_tensors
        return (grad * share_a if ctx.needs_input_grad[0] else None,
                grad * (1 - share_a) if ctx.needs_input_grad[1] else None)


class Clip(Function):
    """y = min(max(x, low), high)        dy/dx = 1 where low <= x <= high, else 0"""

    @staticmethod
    def forward(ctx, x, low, high):
        xp = ctx.xp
        y, inside = x, None
        if low is not None:
            y, inside = xp.maximum(x, low), x >= low
        if high is not None:
            below = x <= high
            y, inside = xp.minimum(y, high), (below if inside is None else inside & below)
        ctx.save_for_backward(inside)
        return y

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


class Where(Function):
    """y = a where cond, else b        dy/da = cond, dy/db = not cond"""

    @staticmethod
    def forward(ctx, cond, a, b):
        try:
            y = ctx.xp.where(cond, a, b)
        except ValueError:
            raise ValueError(f"where: shapes {_shape(cond)} (condition), {_shape(a)} and {_shape(b)} cannot "
                             "be broadcast together") from None
        ctx.save_for_backward(cond)
        return y

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        return (None,
                where(cond, grad, 0.0) if ctx.needs_input_grad[1] else None,
                where(cond, 0.0, grad) if ctx.needs_input_grad[2] else None)


class Comparison(Function):
    """y = a <op> b as booleans        no gradient (the result is not a float tensor)"""

    @staticmethod
    def forward(ctx, a, b, name, ufunc_name):
        return broadcasting(name, getattr(ctx.xp, ufunc_name), a, b)


class Clone(Function):
    """y = a copy of x        dy/dx = 1"""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class Cast(Function):
    """y = x converted to another dtype        dy/dx = 1 (the gradient is cast back)"""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return cast(grad, ctx.input_dtype), None


# ----------------------------------------------------------------------------------- the functions

def add(a, b):
    return Add.apply(*promoted(a, b))


def sub(a, b):
    return Sub.apply(*promoted(a, b))


def mul(a, b):
    return Mul.apply(*promoted(a, b))


def div(a, b):
    return Div.apply(*promoted(a, b, floating=True))


def neg(x):
    return Neg.apply(x)


def pow(a, b):
    return Pow.apply(*promoted(a, b))


def abs(x):
    return Abs.apply(x)


def exp(x):
    return Exp.apply(floating_point(x))


def log(x):
    return Log.apply(floating_point(x))


def log1p(x):
    return Log1p.apply(floating_point(x))


def sqrt(x):
    return Sqrt.apply(floating_point(x))


def sin(x):
    return Sin.apply(floating_point(x))


def cos(x):
    return Cos.apply(floating_point(x))


def tanh(x):
    return Tanh.apply(floating_point(x))


def sigmoid(x):
    return Sigmoid.apply(floating_point(x))


def relu(x):
    return Relu.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyRelu.apply(x, negative_slope)


def erf(x):
    return Erf.apply(floating_point(x))


def gelu(x, approximate="none"):
    """x Phi(x) (Phi the standard normal CDF); approximate="tanh" is GPT-2's tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(floating_point(x), approximate)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, taken as x itself where beta x > threshold (like PyTorch)."""
    return Softplus.apply(floating_point(x), beta, threshold)


def maximum(a, b):
    """Elementwise max; on ties the gradient is split evenly between a and b."""
    return Maximum.apply(*promoted(a, b))


def minimum(a, b):
    """Elementwise min = -max(-a, -b); on ties the gradient is split evenly between a and b."""
    a, b = promoted(a, b)
    return -maximum(-a, -b)


def clip(x, min=None, max=None):
    """x limited to [min, max] (either may be None); the gradient passes where min <= x <= max. Where
    min > max, every element is max, as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    if isinstance(min, Tensor) or isinstance(max, Tensor):   # tensor bounds: compose, so they get grads
        # where, not maximum/minimum: as in PyTorch, x keeps the whole gradient where it equals a bound.
        y = x if min is None else where(less(x, min), min, x)
        return y if max is None else where(greater(y, max), max, y)
    if isinstance(min, float) or isinstance(max, float):     # integers clipped to 0.5 are floats
        x = floating_point(x)
    return Clip.apply(x, min, max)


def where(cond, a, b):
    """Elementwise a where cond is True, else b (cond a bool tensor or array; all three broadcast)."""
    a, b = promoted(a, b)
    cond = cond.data if isinstance(cond, Tensor) else (a if isinstance(a, Tensor) else b).xp.asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"where: the condition must be a bool tensor, got dtype {cond.dtype}")
    return Where.apply(cond, a, b)


def _compare(name, ufunc_name, a, b):
    return Comparison.apply(*promoted(a, b), name, ufunc_name)


def equal(a, b):
    return _compare("equal", "equal", a, b)


def not_equal(a, b):
    return _compare("not_equal", "not_equal", a, b)


def less(a, b):
    return _compare("less", "less", a, b)


def less_equal(a, b):
    return _compare("less_equal", "less_equal", a, b)


def greater(a, b):
    return _compare("greater", "greater", a, b)


def greater_equal(a, b):
    return _compare("greater_equal", "greater_equal", a, b)


def clone(x):
    """A copy of x that stays in the graph (gradients flow back to x)."""
    return Clone.apply(x)


def cast(x, dtype):
    """x as `dtype` (the same tensor when it already is); gradients flow between float dtypes."""
    return x if x.dtype == dtype else Cast.apply(x, dtype)
