"""Exercise 5: the backward of softmax.

    y_i = exp(x_i) / sum_j exp(x_j)        along the last axis, x (..., C)

Every y_i depends on every x_j: dy_i/dx_j = y_i (delta_ij - y_j). Multiply by grad and sum over i to get
dL/dx_j = y_j (g_j - sum_i g_i y_i), without ever building the C x C Jacobian.

    python -m tinytensor.exercises check 5
    python -m tinytensor.exercises hint 5
"""
import tinytensor as tt


class Softmax(tt.Function):
    """y = softmax(x) along the last axis"""

    @staticmethod
    def forward(ctx, x):
        e = ctx.xp.exp(x - x.max(axis=-1, keepdims=True))     # shifted: exp cannot overflow
        y = e / e.sum(axis=-1, keepdims=True)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # ANSWER: return dL/dx, of x's shape
        return y * (grad - (grad * y).sum(axis=-1, keepdims=True))    # (..., C) - (..., 1)
        # END
