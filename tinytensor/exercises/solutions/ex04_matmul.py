"""Exercise 4: the backward of a matrix product, with a broadcast batch.

    Y = A @ B        A (m, k) or (batch, m, k),  B (k, n)  ->  Y (m, n) or (batch, m, n)

Per matrix: dL/dA = G @ B^T (m, k) and dL/dB = A^T @ G (k, n), with G = grad. When A has a batch axis,
the one B is used by every matrix of the batch: its gradient is the sum over the batch.
Write the shapes beside every line; a transpose in the wrong place shows up as a shape error.

    python -m tinytensor.exercises check 4
    python -m tinytensor.exercises hint 4
"""
import tinytensor as tt


class MatMul(tt.Function):
    """Y = A @ B, A (..., m, k), B (k, n)"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # ANSWER: return (dL/dA, dL/dB)
        grad_a = grad @ b.T                                        # (..., m, n) @ (n, k) -> (..., m, k)
        k, n = b.shape
        grad_b = a.reshape(-1, k).T @ grad.reshape(-1, n)          # (k, batch*m) @ (batch*m, n): summed
        return grad_a, grad_b
        # END
