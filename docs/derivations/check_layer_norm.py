"""Checks docs/derivations/layer_norm.md: the page's formulas against finite differences and tinytensor.

    python docs/derivations/check_layer_norm.py        # exit status 0 when every line says ok
"""
import sys

import numpy as np

import tinytensor as tt
from numeric import agree, numeric_gradient

EPS = 1e-5


def forward(x, w, b):
    """y = xhat * w + b, the statistics over the last axis: x (N, D), w and b (D,) -> (N, D)."""
    mu = x.mean(-1, keepdims=True)                       # (N, 1)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + EPS)   # (N, 1)
    return (x - mu) * r * w + b


def backward(x, w, g):
    """The page's result: dL/dx, dL/dw, dL/db for upstream gradient g (N, D)."""
    mu = x.mean(-1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + EPS)
    xhat = (x - mu) * r                                  # (N, D)
    h = g * w                                            # (N, D)
    grad_x = r * (h - h.mean(-1, keepdims=True) - xhat * (h * xhat).mean(-1, keepdims=True))
    return grad_x, (g * xhat).sum(0), g.sum(0)


def main():
    rng = np.random.default_rng(0)
    x, w, b, g = rng.standard_normal((4, 6)), rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((4, 6))
    grad_x, grad_w, grad_b = backward(x, w, g)
    numeric = [numeric_gradient(lambda v: float((forward(v, w, b) * g).sum()), x.copy()),
               numeric_gradient(lambda v: float((forward(x, v, b) * g).sum()), w.copy()),
               numeric_gradient(lambda v: float((forward(x, w, v) * g).sum()), b.copy())]
    inputs = [tt.tensor(a, dtype=tt.float64, requires_grad=True) for a in (x, w, b)]
    y = tt.layer_norm(inputs[0], (6,), inputs[1], inputs[2], eps=EPS)
    library = [t.numpy() for t in tt.grad(y, inputs, grad_outputs=tt.tensor(g))]
    results = []
    for name, formula, fd, lib in zip(("dL/dx", "dL/dw", "dL/db"), (grad_x, grad_w, grad_b), numeric, library):
        results.append(agree(f"{name} vs finite differences", formula, fd))
        results.append(agree(f"{name} vs tt.layer_norm's backward", formula, lib, 1e-10))
    return all(results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
