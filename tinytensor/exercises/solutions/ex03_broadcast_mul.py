"""Exercise 3: the backward of a broadcasting op.

    y = a * b        a (4, 3), b (3,)  ->  y (4, 3): b is stretched to (4, 3) first

dL/da = grad * b and dL/db = grad * a, each of y's shape. An input that was stretched got copied, and the
gradients of its copies add up: sum over every axis it was stretched along, so each gradient ends up in
its input's shape. (The engine does this for you in one place, `sum_to` in `run_backward`; the checker
calls your backward directly, so here you do it yourself.)

    python -m tinytensor.exercises check 3
    python -m tinytensor.exercises hint 3
"""
import tinytensor as tt


class BroadcastMul(tt.Function):
    """y = a * b, with NumPy's broadcasting"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # ANSWER: return (dL/da, dL/db), each in its input's shape
        return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)


def unbroadcast(grad, shape):
    """Sum grad (the output's shape) down to `shape`: over the leading axes broadcasting added, and over
    the axes where shape has 1 but grad does not."""
    lead = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(lead))) if lead else grad            # drop the added axes
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad   # size-1 axes stay
    # END
