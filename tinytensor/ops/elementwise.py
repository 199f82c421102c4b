"""Elementwise operations. Broadcasting is undone by the engine (autograd.py), not here."""
from ..autograd import Function
from .common import operands

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "cast"]
TENSOR_METHODS = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log"]


class Add(Function):
    """y = a + b        dy/da = 1, dy/db = 1"""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """y = a - b        dy/da = 1, dy/db = -1"""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    """y = a * b        dy/da = b, dy/db = a"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

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
        return a / b

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
        y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved_tensors
        grad_a = grad * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        grad_b = grad * y * log(a) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


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


class Cast(Function):
    """y = x converted to another dtype        dy/dx = 1 (the gradient is cast back)"""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return cast(grad, ctx.input_dtype), None


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


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def cast(x, dtype):
    """x as `dtype` (the same tensor when it already is); gradients flow between float dtypes."""
    return x if x.dtype == dtype else Cast.apply(x, dtype)
