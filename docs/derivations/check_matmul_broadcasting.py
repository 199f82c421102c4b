"""Checks docs/derivations/matmul_broadcasting.md: dL/dA = sum_to(G @ B^T), dL/dB = sum_to(A^T @ G),
with broadcast batch axes and 1-D operands, against finite differences and tinytensor.

    python docs/derivations/check_matmul_broadcasting.py
"""
import sys

import numpy as np

import tinytensor as tt
from numeric import agree, numeric_gradient


def sum_to(grad, shape):
    """Sum grad down to `shape`: the leading axes broadcasting added, then the size-1 axes it stretched."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    return grad.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def page_gradients(a, b, g):
    """The page's rules, 1-D operands first made matrices: a (k,) a row (1, k), b (k,) a column (k, 1)."""
    a2 = a.reshape(1, -1) if a.ndim == 1 else a                      # (..., m, k)
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b                      # (..., k, n)
    g2 = g.reshape(g.shape[:g.ndim - (a.ndim > 1) - (b.ndim > 1)] + (a2.shape[-2], b2.shape[-1]))
    grad_a = sum_to(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
    grad_b = sum_to(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
    return grad_a, grad_b


CASES = [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((3, 4), (4,))]


def main():
    rng = np.random.default_rng(2)
    results = []
    for shape_a, shape_b in CASES:
        a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
        g = rng.standard_normal(np.matmul(a, b).shape)
        grad_a, grad_b = page_gradients(a, b, g)
        ta, tb = (tt.tensor(v, dtype=tt.float64, requires_grad=True) for v in (a, b))
        lib_a, lib_b = tt.grad(ta @ tb, [ta, tb], grad_outputs=tt.tensor(g))
        case = f"{shape_a} @ {shape_b}"
        results += [
            agree(f"{case}: dL/dA vs finite differences", grad_a,
                  numeric_gradient(lambda v: float((np.matmul(v, b) * g).sum()), a.copy())),
            agree(f"{case}: dL/dB vs finite differences", grad_b,
                  numeric_gradient(lambda v: float((np.matmul(a, v) * g).sum()), b.copy())),
            agree(f"{case}: both vs tinytensor's matmul", np.concatenate([grad_a.ravel(), grad_b.ravel()]),
                  np.concatenate([lib_a.numpy().ravel(), lib_b.numpy().ravel()]), 1e-10),
        ]
    return all(results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
