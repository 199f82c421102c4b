"""Fast kernels: a few hot forward formulas rewritten to make fewer temporary arrays.

Every op's forward is written first as its formula, in plain NumPy/CuPy expressions; that is the version
to read. A plain expression such as 1 / (1 + exp(-x)) makes a new array at every step. On a large
activation, allocating and filling those temporaries costs as much as the arithmetic, so the hot ones
have a twin here that computes the same values in one buffer, updated in place (NumPy's `out=`).

Forwards take the twin while `enabled()` (the default). Inside `with tt.ops.fast.disabled():` every
forward, and every optimizer step, runs its plain formula instead: for stepping through in a debugger,
or to check a twin. tests/tinytensor/test_fused.py checks that each twin gives its formula's values.
"""
import contextlib

from .. import numerics

_enabled = True


def enabled():
    """True when forwards and optimizer steps use the in-place twins (the default)."""
    return _enabled


@contextlib.contextmanager
def disabled():
    """`with tt.ops.fast.disabled():` runs every forward and optimizer step as its plain formula."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def _fresh(xp, x):
    """An uninitialised array shaped like x (an array even when x is 0-d, unlike the result of -x)."""
    return xp.empty_like(x)


def sigmoid(xp, x):
    """1 / (1 + exp(-x)) in one buffer: four passes over memory, one new array."""
    y = xp.negative(x, out=_fresh(xp, x))
    xp.exp(y, out=y)
    y += 1
    return xp.reciprocal(y, out=y)


def softplus(xp, bx):
    """max(z, 0) + log(1 + exp(-|z|)) for z = bx, in one buffer (plus the max)."""
    y = xp.abs(bx, out=_fresh(xp, bx))
    xp.negative(y, out=y)
    xp.exp(y, out=y)
    xp.log1p(y, out=y)
    y += xp.maximum(bx, 0)
    return y


def gelu_tanh(xp, x, cubic, scale):
    """(0.5 x (1 + t), t) with t = tanh(scale (x + cubic x^3)), in two buffers; t is what a backward
    needs (tinytensor/ops/nn.py's GeluTanhFused keeps it)."""
    t = xp.multiply(x, x, out=_fresh(xp, x))
    t *= cubic
    t += 1
    t *= x
    t *= scale                                   # u = scale (x + cubic x^3)
    xp.tanh(t, out=t)
    y = t + 1                                    # 0.5 x (1 + t)
    y *= 0.5
    y *= x
    return y, t


def gelu_erf(xp, x, sqrt_half):
    """0.5 x (1 + erf(x sqrt(1/2))), with erf by numerics.erf, finished in its buffer."""
    return _half_x_one_plus(numerics.erf(x * sqrt_half, xp), x)


def _half_x_one_plus(y, x):
    """y becomes 0.5 x (1 + y), in place: x Phi(x) from y = erf(x / sqrt 2) or its tanh stand-in."""
    y += 1
    y *= 0.5
    y *= x
    return y


def softmax(xp, x, axis):
    """exp(x - max) / sum(exp(x - max)) along axis, in one buffer."""
    y = x - x.max(axis=axis, keepdims=True)
    xp.exp(y, out=y)
    y /= y.sum(axis=axis, keepdims=True)
    return y
