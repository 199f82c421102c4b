"""Exercise 9: the backward of scaled dot-product attention.

    S = Q @ K^T * s        Q (..., L, E), K (..., S, E)  ->  S (..., L, S),  s = 1 / sqrt(E)
    P = softmax(S)         along the last axis
    Y = P @ V              V (..., S, Ev)  ->  Y (..., L, Ev)

Go backwards one line at a time with G = grad: first dL/dV and dL/dP from the matrix product, then dL/dS
through the softmax (exercise 5), then dL/dQ and dL/dK from the first product, not forgetting s.
docs/derivations/attention.md derives it with the shapes.

    python -m tinytensor.exercises check 9
    python -m tinytensor.exercises hint 9
"""
import math

import tinytensor as tt


class Attention(tt.Function):
    """Y = softmax(Q K^T / sqrt(E)) V"""

    @staticmethod
    def forward(ctx, q, k, v):
        xp = ctx.xp
        scale = 1 / math.sqrt(q.shape[-1])
        scores = q @ k.swapaxes(-1, -2) * scale                        # (..., L, S)
        e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)                           # (..., L, S)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return p @ v                                                    # (..., L, Ev)

    @staticmethod
    def backward(ctx, grad):
        q, k, v, p = ctx.saved_tensors
        # ANSWER: return (dL/dQ, dL/dK, dL/dV)
        grad_v = p.swapaxes(-1, -2) @ grad                              # (..., S, L) @ (..., L, Ev)
        grad_p = grad @ v.swapaxes(-1, -2)                              # (..., L, Ev) @ (..., Ev, S)
        grad_scores = p * (grad_p - (grad_p * p).sum(axis=-1, keepdims=True))   # softmax backward
        grad_q = grad_scores @ k * ctx.scale                            # (..., L, S) @ (..., S, E)
        grad_k = grad_scores.swapaxes(-1, -2) @ q * ctx.scale           # (..., S, L) @ (..., L, E)
        return grad_q, grad_k, grad_v
        # END
