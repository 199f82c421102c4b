"""Exercise 2: the backward of a reduction, with and without keepdims.

    y = x.mean(axis, keepdims)        x (2, 3, 4), axis=1  ->  y (2, 4), or (2, 1, 4) with keepdims

Every x element of one averaged group moved y by 1/n (n = x.shape[axis]), so dL/dx is grad / n, spread
back over the averaged axis. Without keepdims that axis is gone from grad: put it back as size 1 first,
then broadcast to x's shape. `axis` is one int (it may be negative).

    python -m tinytensor.exercises check 2
    python -m tinytensor.exercises hint 2
"""
import tinytensor as tt


class Mean(tt.Function):
    """y = mean of x along one axis"""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.input_shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        # ANSWER: return (dL/dx, None, None): axis and keepdims get no gradient
        shape, axis = ctx.input_shape, ctx.axis % len(ctx.input_shape)
        if not ctx.keepdims:
            grad = grad.unsqueeze(axis)                          # (2, 4) -> (2, 1, 4)
        return grad.broadcast_to(shape) / shape[axis], None, None   # (2, 3, 4)
        # END
