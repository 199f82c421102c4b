"""Checks docs/derivations/attention.md: the backward of softmax(Q K^T s) V, line by line, against
finite differences and tinytensor.

    python docs/derivations/check_attention.py
"""
import sys

import numpy as np

import tinytensor as tt
from numeric import agree, numeric_gradient


def attention(q, k, v, causal=False):
    s = 1 / np.sqrt(q.shape[-1])
    scores = q @ k.swapaxes(-1, -2) * s                                   # (..., L, S)
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], dtype=bool)), scores, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True), s                                # P (..., L, S)


def page_gradients(q, k, v, g, causal=False):
    p, s = attention(q, k, v, causal)
    grad_v = p.swapaxes(-1, -2) @ g                                       # (..., S, L) @ (..., L, Ev)
    grad_p = g @ v.swapaxes(-1, -2)                                       # (..., L, Ev) @ (..., Ev, S)
    grad_scores = p * (grad_p - (grad_p * p).sum(-1, keepdims=True))      # softmax backward, row by row
    return grad_scores @ k * s, grad_scores.swapaxes(-1, -2) @ q * s, grad_v


def main():
    rng = np.random.default_rng(4)
    results = []
    for causal in (False, True):
        q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 5))
        g = rng.standard_normal((2, 3, 5))
        grads = page_gradients(q, k, v, g, causal)
        inputs = [tt.tensor(a, dtype=tt.float64, requires_grad=True) for a in (q, k, v)]
        y = tt.scaled_dot_product_attention(*inputs, is_causal=causal)
        library = tt.grad(y, inputs, grad_outputs=tt.tensor(g))
        losses = [lambda a: float((attention(a, k, v, causal)[0] @ v * g).sum()),
                  lambda a: float((attention(q, a, v, causal)[0] @ v * g).sum()),
                  lambda a: float((attention(q, k, v, causal)[0] @ a * g).sum())]
        for name, grad, loss, lib, value in zip("QKV", grads, losses, library, (q, k, v)):
            case = f"{'causal' if causal else 'full'}: dL/d{name}"
            results.append(agree(f"{case} vs finite differences", grad, numeric_gradient(loss, value.copy())))
            results.append(agree(f"{case} vs tt.scaled_dot_product_attention", grad, lib.numpy(), 1e-10))
    return all(results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
