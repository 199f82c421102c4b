"""Exercise 10: train a small network with a Function you wrote.

    y = x @ W^T + b        x (N, in), W (out, in), b (out,)  ->  y (N, out)

First write Linear's backward (b is added to every row, so its gradient sums over the batch). Then
write the training step in `train`: it fits y = sin(x) with Linear -> tanh -> Linear. One step of
gradient descent is: clear the old gradients, backpropagate the loss, move each parameter a little
against its gradient (under tt.no_grad(), so the update itself is not recorded).

    python -m tinytensor.exercises check 10
    python -m tinytensor.exercises hint 10
"""
import tinytensor as tt


class Linear(tt.Function):
    """y = x @ W^T + b"""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x @ w.T + b

    @staticmethod
    def backward(ctx, grad):                                    # grad (N, out)
        x, w = ctx.saved_tensors
        # ANSWER: return (dL/dx, dL/dW, dL/db)
        return grad @ w, grad.T @ x, grad.sum(axis=0)           # (N, in), (out, in), (out,)
        # END


def train(steps=400, lr=0.1, hidden=16):
    """Fit y = sin(x) on [-3, 3] with Linear(1, hidden) -> tanh -> Linear(hidden, 1); return the losses."""
    tt.manual_seed(0)
    x = tt.linspace(-3, 3, 64, dtype=tt.float64).reshape(64, 1)
    y = x.sin()
    w1 = tt.randn(hidden, 1, dtype=tt.float64, requires_grad=True)
    b1 = tt.zeros(hidden, dtype=tt.float64, requires_grad=True)
    w2 = (tt.randn(1, hidden, dtype=tt.float64) / hidden ** 0.5).requires_grad_()
    b2 = tt.zeros(1, dtype=tt.float64, requires_grad=True)
    parameters = [w1, b1, w2, b2]
    losses = []
    for _ in range(steps):
        prediction = Linear.apply(Linear.apply(x, w1, b1).tanh(), w2, b2)      # (64, 1)
        loss = ((prediction - y) ** 2).mean()
        losses.append(loss.item())
        # ANSWER: one step: clear the gradients, backward, update every parameter
        for p in parameters:
            p.grad = None
        loss.backward()
        with tt.no_grad():
            for p in parameters:
                p -= lr * p.grad
        # END
    return losses
