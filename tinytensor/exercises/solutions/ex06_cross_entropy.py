"""Exercise 6: log-softmax with cross-entropy, the loss of every classifier.

    L = -(1/N) sum_n log softmax(z_n)[t_n]        z (N, C) logits, t (N,) class indices

With p = softmax(z) (N, C) and Y the one-hot targets (N, C): dL/dz = (p - Y) / N. The log and the exp
cancel, which is why the two are fused. grad, the gradient arriving from above, is a 0-d Tensor
(1 when this loss is the one backward starts from): multiply by it.

    python -m tinytensor.exercises check 6
    python -m tinytensor.exercises hint 6
"""
import tinytensor as tt


class CrossEntropy(tt.Function):
    """L = mean over rows of -log softmax(z)[row, target]"""

    @staticmethod
    def forward(ctx, z, target):
        xp = ctx.xp
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))   # (N, C) log-softmax
        ctx.save_for_backward(xp.exp(log_p), target)                            # p (N, C), t (N,)
        return -log_p[xp.arange(len(z)), target].mean()

    @staticmethod
    def backward(ctx, grad):
        p, target = ctx.saved_tensors
        # ANSWER: return (dL/dz, None): the integer targets get no gradient
        n, classes = p.shape
        one_hot = tt.eye(classes, dtype=p.dtype)[target]                         # (N, C)
        return (p - one_hot) / n * grad, None
        # END
