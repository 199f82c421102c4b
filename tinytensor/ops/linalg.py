"""Matrix product with NumPy's rules: batch axes broadcast, 1-D operands act as a row or a column."""
from ..autograd import Function
from .common import check_same_float_dtype, operands

__all__ = ["matmul"]


class MatMul(Function):
    """Y = A @ B        dY/dA: grad @ B^T,  dY/dB: A^T @ grad   (per batch; broadcast batch axes summed)"""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least one dimension, got shapes {a.shape} "
                             f"and {b.shape}")
        inner_a, inner_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
        if inner_a != inner_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: {inner_a} != "
                             f"{inner_b} (inner dimensions must match)")
        try:
            y = ctx.xp.matmul(a, b)
        except ValueError:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: batch shapes "
                             f"{a.shape[:-2]} and {b.shape[:-2]} cannot be broadcast together") from None
        ctx.save_for_backward(a, b)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # Treat 1-D operands as matrices: a (k,) is a row (1, k), b (k,) is a column (k, 1).
        a2 = a.reshape(1, -1) if a.ndim == 1 else a                 # (..., m, k)
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b                 # (..., k, n)
        batch = grad.shape[:grad.ndim - (a.ndim > 1) - (b.ndim > 1)]
        g2 = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))     # (..., m, n)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = (g2 @ b2.swapaxes(-1, -2)).sum_to(a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            if b2.ndim == 2 and g2.ndim > 2:
                # A shared matrix (a weight): fold the batch into rows, one BLAS call, no (batch, k, n) temp.
                k, n = b2.shape
                grad_b = a2.reshape(-1, k).swapaxes(0, 1) @ g2.reshape(-1, n)
            else:
                grad_b = (a2.swapaxes(-1, -2) @ g2).sum_to(b2.shape)
            grad_b = grad_b.reshape(b.shape)
        return grad_a, grad_b


def matmul(a, b):
    """a @ b; both operands must have the same float dtype (no silent float64 product)."""
    a, b = operands(a, b)
    check_same_float_dtype("matmul", "the left operand", a, "the right operand", b)
    return MatMul.apply(a, b)
