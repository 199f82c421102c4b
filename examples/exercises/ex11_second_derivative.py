"""Exercise 11: second derivatives, through a backward you wrote.

    y = softplus(x) = log(1 + exp(x))        dy/dx = sigmoid(x)        d2y/dx2 = sigmoid(x) (1 - sigmoid(x))

With create_graph=True the engine records the backward pass itself, so a gradient can be differentiated
again. That works only if backward computes with Tensor operations on what it saved from the inputs:
a value computed in forward and saved as a constant has no path back to x.
Write Softplus's backward, then `second_derivative(f, x)`: d2/dx2 of sum(f(x)) at every element of x
(for an elementwise f that is f''(x)), with tt.grad called twice.

    python -m tinytensor.exercises check 11
    python -m tinytensor.exercises hint 11
"""
import tinytensor as tt


class Softplus(tt.Function):
    """y = log(1 + exp(x))"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.logaddexp(0, x)                       # log(exp(0) + exp(x)), without overflow

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # TODO: return dL/dx, with Tensor operations on x
        raise NotImplementedError("exercise 11: write this part")


def second_derivative(f, x):
    """d2/dx2 of sum(f(x)), elementwise: f''(x) for an elementwise f. x requires grad."""
    # TODO: two calls of tt.grad; the first must record its own graph
    raise NotImplementedError("exercise 11: write this part")
