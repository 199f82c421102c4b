"""Exercise 1: the backward of an elementwise op.

    y = softsign(x) = x / (1 + |x|)

Derive dy/dx on paper (the quotient rule; d|x|/dx = sign(x)). Then write `backward`: it receives
grad = dL/dy, a Tensor of y's shape, and returns dL/dx = grad * dy/dx, a Tensor of x's shape.
At x = 1 you should find dy/dx = 0.25.

    python -m tinytensor.exercises check 1        # is it right?
    python -m tinytensor.exercises hint 1         # one more hint each time
"""
import tinytensor as tt


class Softsign(tt.Function):
    """y = x / (1 + |x|)"""

    @staticmethod
    def forward(ctx, x):                 # x: an array (NumPy, or CuPy on a GPU)
        ctx.save_for_backward(x)
        return x / (1 + ctx.xp.abs(x))

    @staticmethod
    def backward(ctx, grad):             # grad and the saved x are Tensors
        (x,) = ctx.saved_tensors
        # TODO: return dL/dx = grad * dy/dx
        raise NotImplementedError("exercise 1: write this part")
