"""Checks docs/derivations/softmax_cross_entropy.md: softmax's backward and cross-entropy's
dL/dz = (p - Y) / N against finite differences and tinytensor.

    python docs/derivations/check_softmax_cross_entropy.py
"""
import sys

import numpy as np

import tinytensor as tt
from numeric import agree, numeric_gradient


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def cross_entropy(z, t):
    """Mean over the rows of -log softmax(z)[row, t]: z (N, C), t (N,) -> a number."""
    return float(-np.log(softmax(z)[np.arange(len(z)), t]).mean())


def main():
    rng = np.random.default_rng(1)
    z, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    t = np.array([0, 3, 4, 1])
    p = softmax(z)                                                    # (N, C)
    softmax_grad = p * (g - (g * p).sum(-1, keepdims=True))           # the page's softmax backward
    ce_grad = (p - np.eye(5)[t]) / len(z)                             # the page's dL/dz
    zt = tt.tensor(z, dtype=tt.float64, requires_grad=True)
    (lib_softmax,) = tt.grad(tt.softmax(zt, -1), zt, grad_outputs=tt.tensor(g))
    (lib_ce,) = tt.grad(tt.cross_entropy(zt, tt.tensor(t)), zt)
    return all([
        agree("softmax backward vs finite differences", softmax_grad,
              numeric_gradient(lambda v: float((softmax(v) * g).sum()), z.copy())),
        agree("softmax backward vs tt.softmax", softmax_grad, lib_softmax.numpy(), 1e-10),
        agree("cross-entropy dL/dz vs finite differences", ce_grad,
              numeric_gradient(lambda v: cross_entropy(v, t), z.copy())),
        agree("cross-entropy dL/dz vs tt.cross_entropy", ce_grad, lib_ce.numpy(), 1e-10),
    ])


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
