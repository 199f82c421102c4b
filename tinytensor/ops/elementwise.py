"""Elementwise operations. Broadcasting is undone by the engine (autograd.py), not here.

Every backward is written with Tensor operations, so it can be differentiated again. Where a derivative
is piecewise constant (relu, abs, maximum, clip) it is a mask saved as a constant: its own derivative is
zero, which is exactly right away from the kinks.
"""
import contextlib
import math

from ..autograd import Function
from ..tensor import Tensor
from .common import constant, operands

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
    """y = a ** b        dy/da = b a^(b-1), dy/db = y log(a)"""

    @staticmethod
    def forward(ctx, a, b):
        y = broadcasting("pow", ctx.xp.power, a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        grad_a = grad * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        grad_b = None
        if ctx.needs_input_grad[1]:   # a may be a plain number here (2 ** x)
            grad_b = grad * y * (log(a) if isinstance(a, Tensor) else math.log(a))
        return grad_a, grad_b


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
        # For x << 0, exp(-x) overflows to inf and y = 1 / inf = 0: the right limit, so the overflow
        # warning is silenced. Four passes over memory, one new array.
        y = xp.negative(x, out=xp.empty_like(x))      # out=: an array even when x is 0-d
        with quiet(xp, over="ignore"):
            xp.exp(y, out=y)
        y += 1
        xp.reciprocal(y, out=y)
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
        (y,) = ctx.saved_tensors
        return grad * constant(y.data > 0, y)


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


# erf(x) by W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969), three ranges of |x|,
# each accurate to about 1e-16 in float64. For |x| > 0.46875 they give erfc(|x|) = exp(-x^2) R(|x|).
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
          1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
          8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
          2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
          3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
          6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
          2.33520497626869185e-3)


def _rational(t, num, den):
    """(num[-1] t^n + num[0] t^(n-1) + ... + num[n-1]) / (t^n + den[0] t^(n-1) + ... + den[n-1]),
    Cody's layout: the leading numerator coefficient is stored last. Horner's rule, in place."""
    top, bottom = t * num[-1], t.copy()
    for p, q in zip(num[:len(den) - 1], den[:-1]):
        top += p
        top *= t
        bottom += q
        bottom *= t
    top += num[len(den) - 1]
    bottom += den[-1]
    top /= bottom
    return top


def erf_array(x, xp):
    """erf of a float array (float64-accurate to ~1e-15), on NumPy or CuPy; same dtype as x."""
    if xp.__name__ == "cupy":
        from cupyx.scipy.special import erf as cupy_erf
        return cupy_erf(x)
    if x.ndim == 0:                                   # keep every step below an array, not a scalar
        return erf_array(x.reshape(1), xp).reshape(())
    y = xp.abs(x, out=xp.empty_like(x))
    xp.minimum(y, 30.0, out=y)                        # erfc(30) < 1e-300
    near_zero = xp.clip(x, -0.46875, 0.46875)
    small = _rational(near_zero * near_zero, _ERF_A, _ERF_B)
    small *= near_zero                                # erf(x) for |x| <= 0.46875
    # Beyond that, erfc(y) = exp(-y^2) R(y) with R rational in y up to 4 and in 1/y^2 above 4.
    erf = _rational(xp.clip(y, 0.46875, 4.0), _ERF_C, _ERF_D)
    use_small = y <= 0.46875
    if (y > 4.0).any():                               # rare in practice: skip the work when absent
        big = xp.maximum(y, 4.0)
        inv_square = big * big
        xp.reciprocal(inv_square, out=inv_square)
        tail = _rational(inv_square, _ERF_P, _ERF_Q)
        tail *= inv_square
        xp.subtract(1 / math.sqrt(math.pi), tail, out=tail)
        tail /= big
        erf = xp.where(y <= 4.0, erf, tail)
    decay = xp.multiply(y, y, out=y)
    xp.negative(decay, out=decay)
    xp.exp(decay, out=decay)                          # exp(-y^2)
    erf *= decay                                      # erfc(|x|)
    xp.subtract(1, erf, out=erf)
    erf *= xp.sign(x)
    return xp.where(use_small, small, erf)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt        dy/dx = 2/sqrt(pi) exp(-x^2)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return erf_array(x, ctx.xp)

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
            cdf = xp.multiply(x, x, out=xp.empty_like(x))
            cdf *= _GELU_CUBIC
            cdf += 1
            cdf *= x
            cdf *= _SQRT_2_OVER_PI                  # u
            xp.tanh(cdf, out=cdf)
        else:
            cdf = erf_array(x * _SQRT_HALF, xp)
        cdf += 1
        cdf *= 0.5                                  # Phi(x)
        cdf *= x
        return cdf

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
        y = xp.abs(bx, out=xp.empty_like(x))
        xp.negative(y, out=y)
        xp.exp(y, out=y)
        xp.log1p(y, out=y)
        y += xp.maximum(bx, 0)
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
    return Add.apply(*operands(a, b))


def sub(a, b):
    return Sub.apply(*operands(a, b))


def mul(a, b):
    return Mul.apply(*operands(a, b))


def div(a, b):
    return Div.apply(*operands(a, b))


def neg(x):
    return Neg.apply(x)


def pow(a, b):
    return Pow.apply(*operands(a, b))


def abs(x):
    return Abs.apply(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def log1p(x):
    return Log1p.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return Relu.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyRelu.apply(x, negative_slope)


def erf(x):
    return Erf.apply(x)


def gelu(x, approximate="none"):
    """x Phi(x) (Phi the standard normal CDF); approximate="tanh" is GPT-2's tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(x, approximate)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, taken as x itself where beta x > threshold (like PyTorch)."""
    return Softplus.apply(x, beta, threshold)


def maximum(a, b):
    """Elementwise max; on ties the gradient is split evenly between a and b."""
    return Maximum.apply(*operands(a, b))


def minimum(a, b):
    """Elementwise min = -max(-a, -b); on ties the gradient is split evenly between a and b."""
    a, b = operands(a, b)
    return -maximum(-a, -b)


def clip(x, min=None, max=None):
    """x limited to [min, max] (either may be None); the gradient passes where min <= x <= max."""
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    if isinstance(min, Tensor) or isinstance(max, Tensor):   # tensor bounds: compose, so they get grads
        y = x if min is None else maximum(x, min)
        return y if max is None else minimum(y, max)
    return Clip.apply(x, min, max)


def where(cond, a, b):
    """Elementwise a where cond is True, else b (cond a bool tensor or array; all three broadcast)."""
    a, b = operands(a, b)
    cond = cond.data if isinstance(cond, Tensor) else (a if isinstance(a, Tensor) else b).xp.asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"where: the condition must be a bool tensor, got dtype {cond.dtype}")
    return Where.apply(cond, a, b)


def _compare(name, ufunc_name, a, b):
    return Comparison.apply(*operands(a, b), name, ufunc_name)


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
