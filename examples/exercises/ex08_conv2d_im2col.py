"""Exercise 8: the backward of a convolution, through im2col.

    cols = im2col(x)                 x (N, C, H, W)  ->  cols (N, K, L),  K = C*kh*kw, L = OH*OW
    y = W2 @ cols                    W2 = w.reshape(O, K): (O, K) @ (N, K, L)  ->  (N, O, L)

im2col copies every kh x kw window of x into one column, which turns the convolution into a matrix
product (stride 1, no padding here). Going back, the matrix product's rules give dL/dW2 and dL/dcols;
col2im, the transpose of im2col, carries dL/dcols back to the pixels (overlapping windows add up).
Both helpers are given below; `grad` arrives as (N, O, OH, OW).

    python -m tinytensor.exercises check 8
    python -m tinytensor.exercises hint 8
"""
import tinytensor as tt


def im2col(x, kh, kw):
    """Every kh x kw window of x (N, C, H, W) as a column: (N, C*kh*kw, OH*OW), OH = H - kh + 1."""
    n, c, h, w = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    windows = [x[:, :, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)]   # kh*kw x (N, C, OH, OW)
    return tt.stack(windows, axis=2).reshape(n, c * kh * kw, oh * ow)


def col2im(cols, shape, kh, kw):
    """The transpose of im2col: each column entry goes back to the pixel it came from; overlaps add."""
    n, c, h, w = shape
    oh, ow = h - kh + 1, w - kw + 1
    windows = cols.reshape(n, c, kh * kw, oh, ow)
    x = tt.zeros(*shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):   # window (i, j) sits at rows i..i+OH-1, columns j..j+OW-1: pad it into place
            x = x + tt.pad(windows[:, :, i * kw + j], (j, kw - 1 - j, i, kh - 1 - i))
    return x


class Conv2d(tt.Function):
    """y = conv2d(x, w), stride 1, no padding: x (N, C, H, W), w (O, C, kh, kw) -> y (N, O, OH, OW)"""

    @staticmethod
    def forward(ctx, x, w):
        x, w = tt.as_tensor(x), tt.as_tensor(w)    # forward gets arrays; the helpers above take Tensors
        n, _, h, width = x.shape
        out_channels, _, kh, kw = w.shape
        cols = im2col(x, kh, kw)                                   # (N, K, L)
        w2 = w.reshape(out_channels, -1)                           # (O, K)
        ctx.save_for_backward(cols.data, w2.data)
        ctx.x_shape, ctx.w_shape = x.shape, w.shape
        return (w2 @ cols).reshape(n, out_channels, h - kh + 1, width - kw + 1).data

    @staticmethod
    def backward(ctx, grad):
        cols, w2 = ctx.saved_tensors                               # (N, K, L), (O, K)
        # TODO: return (dL/dx, dL/dw)
        raise NotImplementedError("exercise 8: write this part")
