"""Loss functions (also exposed as nn.functional), with PyTorch's signatures and semantics.

cross_entropy is one fused Function for class-index targets (the hot path of every classifier);
`cross_entropy_composite` is the same loss from log_softmax and nll_loss, and
tests/tinytensor/test_fused.py checks that both agree, with weights, ignore_index and label smoothing.
"""
from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .common import array_on, constant, on_input_device
from .elementwise import clip, log, quiet, softplus
from .reduce import log_softmax, softmax

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _same_shape(op, input, target):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: target has shape {tuple(target.shape)} but input has shape "
                         f"{tuple(input.shape)}; they must be equal")
    if isinstance(target, Tensor) and target.dtype.kind != "f":
        raise TypeError(f"{op}: target must be a float tensor, got dtype {target.dtype} (convert with .float())")


# ----------------------------------------------------------------------------------- class targets

def _classes_last(op, x, target, ignore_index):
    """x as (rows, C) with the class axis last, target as (rows,) integers, and the per-element shape.

    Input (C,) with a 0-d target, (N, C) with (N,), or (N, C, d1, ...) with (N, d1, ...)."""
    raw = array_on(target, x, op, "target")
    if raw.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {raw.dtype} (for class "
                        "probabilities give a float target of the input's shape to cross_entropy)")
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have a class axis, got a 0-d tensor")
    classes = x.shape[0] if x.ndim == 1 else x.shape[1]
    expected = () if x.ndim == 1 else (x.shape[0],) + tuple(x.shape[2:])
    if tuple(raw.shape) != expected:
        raise ValueError(f"{op}: target has shape {tuple(raw.shape)} but input of shape {tuple(x.shape)} "
                         f"needs a target of shape {expected} (one class index per row; classes on axis "
                         f"{0 if x.ndim == 1 else 1})")
    flat = raw.reshape(-1)
    # Negative classes read as unsigned integers are huge, so one comparison catches both ends.
    wrong = (flat.view(flat.dtype.str.replace("i", "u")) >= classes) & (flat != ignore_index)
    valid = f"(valid: 0 to {classes - 1}, or ignore_index={ignore_index})"
    backend.check(wrong.any(), IndexError, f"{op}: a target class is out of range for {classes} classes {valid}",
                  lambda: f"{op}: target class {int(flat[wrong][0])} is out of range for {classes} classes {valid}")
    if x.ndim > 2:
        x = x.permute((0,) + tuple(range(2, x.ndim)) + (1,))
    return x.reshape(-1, classes), flat, expected


def _row_weights(xp, target, weight, ignore_index, dtype):
    """(safe target with ignored rows at class 0, weight of each row: weight[target], 0 if ignored)."""
    valid = target != ignore_index
    safe = xp.where(valid, target, 0)
    rows = valid.astype(dtype) if weight is None else weight[safe].astype(dtype) * valid
    return safe, rows


def _class_weight(op, weight, classes, like):
    if weight is None:
        return None
    raw = array_on(weight, like, op, "weight")
    if tuple(raw.shape) != (classes,):
        raise ValueError(f"{op}: weight has shape {tuple(raw.shape)}, expected ({classes},) (one per class)")
    return raw.astype(like.dtype, copy=False)


class CrossEntropy(Function):
    """L_i = -sum_c a_ic log softmax(z_i)_c, a_i the target distribution of row i (one-hot, smoothed,
    weighted, scaled by the reduction)        dL/dz_i = softmax(z_i) * sum_c a_ic - a_i"""

    @staticmethod
    def forward(ctx, z, target, weight, ignore_index, reduction, smoothing):
        xp = ctx.xp
        rows, classes = z.shape
        shifted = z - z.max(axis=1, keepdims=True)             # (rows, C), exp cannot overflow
        e = xp.exp(shifted)
        total = e.sum(axis=1, keepdims=True)                    # (rows, 1)
        p = e / total                                           # softmax
        log_p = shifted - xp.log(total)                         # log-softmax, stable
        safe, row_weight = _row_weights(xp, target, weight, ignore_index, z.dtype)
        valid = target != ignore_index
        loss = -log_p[xp.arange(rows), safe] * row_weight       # (rows,)
        if smoothing:
            class_weight = xp.ones(classes, dtype=z.dtype) if weight is None else weight
            loss *= 1 - smoothing
            loss -= (smoothing / classes) * (log_p @ class_weight) * valid
        ctx.save_for_backward(z, p)
        ctx.safe, ctx.valid, ctx.row_weight = safe, valid, row_weight
        ctx.weight, ctx.smoothing = weight, smoothing
        ctx.scale = 1
        if reduction == "none":
            return loss
        if reduction == "mean":                                 # divided by the total target weight
            total = row_weight.sum()
            empty = total == 0                                  # every target ignored: NaN, gradient 0
            ctx.scale = 1 / xp.where(empty, 1, total)
            return xp.where(empty, xp.nan, loss.sum() * ctx.scale).astype(z.dtype)
        return loss.sum()

    @staticmethod
    def backward(ctx, grad):
        grad, z, p = ctx.backward_operands(grad)                # arrays, or Tensors under create_graph
        xp = ctx.xp
        if ctx.create_graph:   # softmax recomputed from z, so the gradient carries z's graph
            p = softmax(z, 1)
        rows, classes = z.shape
        # a = the target distribution: (1 - s) weight[t] at the target class, s/C weight[c] everywhere.
        a = xp.zeros((rows, classes), dtype=z.dtype)
        a[xp.arange(rows), ctx.safe] = (1 - ctx.smoothing) * ctx.row_weight
        if ctx.smoothing:
            class_weight = 1 if ctx.weight is None else ctx.weight
            a += (ctx.smoothing / classes) * ctx.valid[:, None] * class_weight
        a *= ctx.scale
        a_sum = a.sum(axis=1, keepdims=True)                    # (rows, 1)
        if grad.ndim:                                           # reduction="none": one gradient per row
            grad = grad.reshape(rows, 1)
        return (p * a_sum - a) * grad, None, None, None, None, None


@on_input_device
def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy from unnormalized logits, like PyTorch's: logits (N, C) or (N, C, d1, ...) or (C,).

    target: class indices (N,) / (N, d1, ...) / (), or class probabilities of the logits' shape.
    weight: per-class weights (C,); with reduction="mean" the sum is divided by the total weight of the
    targets that are not ignore_index. label_smoothing s mixes the one-hot target with the uniform
    distribution: (1 - s) one_hot + s / C. If every target is ignored, "mean" gives NaN (0 / 0) with a
    zero gradient, as PyTorch."""
    _check_reduction("cross_entropy", reduction)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0 and 1, got {label_smoothing}")
    raw = array_on(target, logits, "cross_entropy", "target")
    if raw.dtype.kind == "f" and tuple(raw.shape) == tuple(logits.shape):
        return _cross_entropy_probabilities(logits, target, weight, reduction, label_smoothing)
    z, flat, shape = _classes_last("cross_entropy", logits, target, ignore_index)
    weight = _class_weight("cross_entropy", weight, z.shape[1], logits)
    loss = CrossEntropy.apply(z, flat, weight, ignore_index, reduction, label_smoothing)
    return loss.reshape(shape) if reduction == "none" else loss


def _cross_entropy_probabilities(logits, target, weight, reduction, smoothing):
    """-sum_c weight_c y_c log softmax(z)_c with y given as probabilities; "mean" divides by the rows."""
    axis = 0 if logits.ndim == 1 else 1
    classes = logits.shape[axis]
    if smoothing:
        target = target * (1 - smoothing) + smoothing / classes
    terms = log_softmax(logits, axis) * target
    weight = _class_weight("cross_entropy", weight, classes, logits)
    if weight is not None:
        terms = terms * constant(weight.reshape((classes,) + (1,) * (logits.ndim - axis - 1)), logits)
    return _reduce(-terms.sum(axis), reduction)


@on_input_device
def nll_loss(log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
    """-log_probs[target] (times weight[target]) per row, like PyTorch: log_probs (N, C) or
    (N, C, d1, ...) or (C,); "mean" divides by the total weight of the targets not ignored."""
    _check_reduction("nll_loss", reduction)
    x, flat, shape = _classes_last("nll_loss", log_probs, target, ignore_index)
    weight = _class_weight("nll_loss", weight, x.shape[1], log_probs)
    xp = log_probs.xp
    safe, row_weight = _row_weights(xp, flat, weight, ignore_index, log_probs.dtype)
    loss = -x[xp.arange(x.shape[0]), safe] * constant(row_weight, log_probs)       # (rows,)
    if reduction == "none":
        return loss.reshape(shape)
    return loss.sum() if reduction == "sum" else _over_total_weight(loss.sum(), row_weight.sum(), log_probs)


def _over_total_weight(summed, total, like):
    """summed / total: the "mean" of losses weighted by their targets' weights. When every target is
    ignored (total = 0) it is NaN (0 / 0) but its gradient is 0, not NaN (no target contributes), as in
    PyTorch: divide by 1 there and add NaN as a constant."""
    xp = like.xp
    empty = total == 0
    divisor = constant(xp.where(empty, 1, total).astype(like.dtype), like)
    nan_if_empty = constant(xp.where(empty, xp.nan, 0).astype(like.dtype), like)
    return summed / divisor + nan_if_empty


@on_input_device
def cross_entropy_composite(logits, target, weight=None, ignore_index=-100, reduction="mean",
                            label_smoothing=0.0):
    """The plain version of `cross_entropy` for class-index targets: log_softmax, then nll_loss for the
    one-hot part and a weighted sum over classes for the smoothing part (gradient for free)."""
    _check_reduction("cross_entropy", reduction)
    axis = 0 if logits.ndim == 1 else 1
    log_p = log_softmax(logits, axis)
    loss = nll_loss(log_p, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return loss
    classes = logits.shape[axis]
    xp = logits.xp
    raw_target = array_on(target, logits, "cross_entropy", "target")
    flat = raw_target.reshape(-1)
    weight = _class_weight("cross_entropy", weight, classes, logits)
    class_weight = xp.ones(classes, dtype=logits.dtype) if weight is None else weight
    class_weight = class_weight.reshape((classes,) + (1,) * (logits.ndim - axis - 1))
    valid = raw_target != ignore_index
    smooth = -(log_p * constant(class_weight, logits)).sum(axis) * constant(valid.astype(logits.dtype), logits)
    if reduction == "mean":
        smooth = _over_total_weight(smooth.sum(), _row_weights(xp, flat, weight, ignore_index, logits.dtype)[1].sum(),
                                    logits)
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - label_smoothing) * loss + (label_smoothing / classes) * smooth


# ----------------------------------------------------------------------------------- regression, binary

def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, averaged or summed; input and target must have the same shape."""
    _check_reduction("mse_loss", reduction)
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


class BinaryCrossEntropy(Function):
    """L = -(t log p + (1 - t) log(1 - p)), logs clamped to >= -100
    dL/dp = (p - t) / max(p (1 - p), 1e-12),  dL/dt = log(1 - p) - log(p)"""

    @staticmethod
    def forward(ctx, p, t):
        xp = ctx.xp
        ctx.save_for_backward(p, t)
        with quiet(xp, divide="ignore"):
            log_p = xp.maximum(xp.log(p), -100)
            log_q = xp.maximum(xp.log1p(-p), -100)
        return -(t * log_p + (1 - t) * log_q)

    @staticmethod
    def backward(ctx, grad):
        p, t = ctx.saved_tensors
        grad_p = grad * (p - t) / clip(p * (1 - p), min=1e-12) if ctx.needs_input_grad[0] else None
        grad_t = None
        if ctx.needs_input_grad[1]:
            grad_t = grad * (clip(log(1 - p), min=-100) - clip(log(p), min=-100))
        return grad_p, grad_t


@on_input_device
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1], each log clamped to >= -100 like
    PyTorch (so p = 0 or 1 gives a large finite loss, not inf); weight multiplies each element."""
    _check_reduction("binary_cross_entropy", reduction)
    if not isinstance(target, Tensor):
        target = constant(array_on(target, input, "binary_cross_entropy", "target").astype(input.dtype), input)
    _same_shape("binary_cross_entropy", input, target)
    raw = input.data
    if raw.size:   # on a GPU, checked without waiting for it (see backend.check)
        advice = "(for logits use binary_cross_entropy_with_logits)"
        backend.check(((raw < 0) | (raw > 1)).any(), ValueError,
                      f"binary_cross_entropy: input must hold probabilities in [0, 1] {advice}",
                      lambda: f"binary_cross_entropy: input must hold probabilities in [0, 1], got values "
                              f"from {float(raw.min()):.4g} to {float(raw.max()):.4g} {advice}")
    loss = BinaryCrossEntropy.apply(input, target)
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction="mean"):
    """binary_cross_entropy(sigmoid(z), t), computed stably from the logits z:
    L = (1 - t) z + (1 + (pos_weight - 1) t) softplus(-z), softplus(-z) = -log sigmoid(z) without overflow.
    pos_weight (broadcast over the last axis, e.g. (C,)) weighs the positive term."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    log_weight = 1 if pos_weight is None else (pos_weight - 1) * target + 1
    loss = (1 - target) * input + log_weight * softplus(-input)
    return _reduce(loss if weight is None else loss * weight, reduction)
