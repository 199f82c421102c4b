"""Helpers used around training: gradient clipping, parameter counts."""
import math

import numpy as np

import tinytensor as tt


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm is at most max_norm; return the norm
    before clipping as a 0-d tensor of the gradients' dtype.

    total = (sum over every gradient element of |g|^p)^(1/p)  (p = norm_type; 'inf' for the largest |g|)
    If total > max_norm, every gradient is replaced by g * max_norm / (total + 1e-6): a new tensor,
    since gradient arrays may be shared and are never changed in place."""
    if isinstance(parameters, tt.Tensor):
        parameters = [parameters]
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return tt.tensor(0.0)
    norm_type = float(norm_type)
    xp = params[0].xp
    grads = [p.grad.data for p in params]
    if math.isinf(norm_type):
        total = max(float(xp.abs(g).max()) for g in grads)
    elif norm_type == 2.0:   # dot products: no temporary array per gradient
        total = math.sqrt(float(sum(xp.vdot(g.ravel(), g.ravel()) for g in grads)))
    else:
        total = float(sum((xp.abs(g) ** norm_type).sum() for g in grads)) ** (1 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}; set "
                           "error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if not scale >= 1:   # a NaN norm scales by NaN too, as in PyTorch: the gradients are all NaN after
        for p in params:
            p.grad = tt.as_tensor(p.grad.data * p.grad.dtype.type(scale))
    return tt.tensor(total, dtype=np.result_type(*[g.dtype for g in grads]), device=params[0].device)


def count_parameters(module, trainable_only=False):
    """How many numbers a module's parameters hold (the same as module.num_parameters())."""
    return module.num_parameters(trainable_only)
