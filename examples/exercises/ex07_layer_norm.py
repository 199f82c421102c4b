"""Exercise 7: the backward of layer norm.

    xhat = (x - mean(x)) * r,   r = 1 / sqrt(var(x) + eps)        over the last axis, x (..., D)

Both the mean and the variance depend on every x_j, so the gradient has three terms. With g = grad:
dL/dx = r * (g - mean(g) - xhat * mean(g * xhat)), the means over the last axis (keepdims).
docs/derivations/layer_norm.md derives it line by line.

    python -m tinytensor.exercises check 7
    python -m tinytensor.exercises hint 7
"""
import tinytensor as tt


class LayerNorm(tt.Function):
    """y = (x - mean) / sqrt(var + eps) over the last axis (no weight or bias)"""

    @staticmethod
    def forward(ctx, x, eps):
        centred = x - x.mean(axis=-1, keepdims=True)
        r = 1 / ctx.xp.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)   # (..., 1)
        xhat = centred * r                                                            # (..., D)
        ctx.save_for_backward(xhat, r)
        return xhat

    @staticmethod
    def backward(ctx, grad):
        xhat, r = ctx.saved_tensors
        # TODO: return (dL/dx, None): eps gets no gradient
        raise NotImplementedError("exercise 7: write this part")
