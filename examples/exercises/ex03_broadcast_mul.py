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
        # TODO: return (dL/da, dL/db), each in its input's shape
        raise NotImplementedError("exercise 3: write this part")
