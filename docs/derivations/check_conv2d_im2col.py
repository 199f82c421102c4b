"""Checks docs/derivations/conv2d_im2col.md: convolution as im2col then a matrix product, and its
backward (dL/dW = sum_n G_n cols_n^T, dL/dx = col2im(W^T G)), against finite differences and tinytensor.

    python docs/derivations/check_conv2d_im2col.py
"""
import sys

import numpy as np

import tinytensor as tt
from numeric import agree, numeric_gradient


def im2col(x, kh, kw, stride, padding):
    """x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW): cols[n, (c, i, j), (oh, ow)] = xp[n, c, oh*s + i, ow*s + j]."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, w = xp.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    cols = np.empty((n, c, kh, kw, oh, ow))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.reshape(n, c * kh * kw, oh * ow), (oh, ow)


def col2im(cols, shape, kh, kw, stride, padding):
    """The transpose of im2col: every entry goes back to the pixel it was copied from; overlaps add."""
    n, c, h, w = shape
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += cols[:, :, i, j]
    return xp[:, :, padding:padding + h, padding:padding + w]


def conv2d(x, w, stride, padding):
    cols, (oh, ow) = im2col(x, *w.shape[2:], stride, padding)          # (N, K, L)
    return (w.reshape(len(w), -1) @ cols).reshape(len(x), len(w), oh, ow)   # (O, K) @ (N, K, L)


def page_gradients(x, w, g, stride, padding):
    cols, _ = im2col(x, *w.shape[2:], stride, padding)                  # (N, K, L)
    g = g.reshape(len(x), len(w), -1)                                    # (N, O, L)
    grad_w = (g @ cols.swapaxes(1, 2)).sum(0).reshape(w.shape)           # sum_n (O, L) @ (L, K)
    grad_cols = w.reshape(len(w), -1).T @ g                              # (K, O) @ (N, O, L) = (N, K, L)
    return col2im(grad_cols, x.shape, *w.shape[2:], stride, padding), grad_w


def main():
    rng = np.random.default_rng(3)
    results = []
    for stride, padding in ((1, 0), (2, 1)):
        x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 2))
        y = conv2d(x, w, stride, padding)
        g = rng.standard_normal(y.shape)
        grad_x, grad_w = page_gradients(x, w, g, stride, padding)
        tx, tw = (tt.tensor(v, dtype=tt.float64, requires_grad=True) for v in (x, w))
        ty = tt.conv2d(tx, tw, stride=stride, padding=padding)
        lib_x, lib_w = tt.grad(ty, [tx, tw], grad_outputs=tt.tensor(g))
        case = f"stride {stride}, padding {padding}"
        results += [
            agree(f"{case}: im2col forward vs tt.conv2d", y, ty.detach().numpy(), 1e-10),
            agree(f"{case}: dL/dx vs finite differences", grad_x,
                  numeric_gradient(lambda v: float((conv2d(v, w, stride, padding) * g).sum()), x.copy())),
            agree(f"{case}: dL/dW vs finite differences", grad_w,
                  numeric_gradient(lambda v: float((conv2d(x, v, stride, padding) * g).sum()), w.copy())),
            agree(f"{case}: dL/dx vs tt.conv2d", grad_x, lib_x.numpy(), 1e-10),
            agree(f"{case}: dL/dW vs tt.conv2d", grad_w, lib_w.numpy(), 1e-10),
        ]
    return all(results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
