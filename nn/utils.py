"""Helpers used around training: gradient clipping, parameter counts."""
import math

import tinytensor as tt
from tinytensor import backend


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm is at most max_norm; return the norm
    before clipping as a 0-d tensor.

    total = (sum over every gradient element of |g|^p)^(1/p)  (p = norm_type; 'inf' for the largest |g|)
    Every gradient is replaced by g * min(1, max_norm / (total + 1e-6)): a new tensor, since gradient
    arrays may be shared and are never changed in place. The norm is computed in the gradients' own
    dtype (a float64 norm is exact to float64) and stays on their device: nothing waits for a GPU, unless
    error_if_nonfinite asks to look at the norm."""
    if isinstance(parameters, tt.Tensor):
        parameters = [parameters]
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return tt.tensor(0.0)
    norm_type = float(norm_type)
    device = params[0].device
    xp = params[0].xp
    grads = [p.grad.data for p in params]
    dtype = xp.result_type(*grads)
    with backend.on_device(device):
        if math.isinf(norm_type):
            total = xp.stack([xp.abs(g).max() for g in grads]).max()
        elif norm_type == 2.0:   # dot products: no temporary array per gradient
            total = xp.sqrt(xp.stack([xp.vdot(g.ravel(), g.ravel()) for g in grads]).astype(dtype).sum())
        else:
            total = xp.stack([(xp.abs(g) ** norm_type).sum() for g in grads]).astype(dtype).sum()
            total **= 1 / norm_type
        total = total.astype(dtype, copy=False)
        if error_if_nonfinite:
            value = float(backend.to_host(xp.asarray(total)))
            if not math.isfinite(value):
                raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {value}; set "
                                   "error_if_nonfinite=False to clip anyway")
        scale = xp.minimum(max_norm / (total + 1e-6), 1)     # 1: no change when the norm is small
        scales = {}                                          # one cast per gradient dtype
        for p in params:
            if p.grad.dtype not in scales:
                scales[p.grad.dtype] = scale.astype(p.grad.dtype, copy=False)
            p.grad = tt.as_tensor(p.grad.data * scales[p.grad.dtype])
    return tt.as_tensor(total)


def count_parameters(module, trainable_only=False):
    """How many numbers a module's parameters hold (the same as module.num_parameters())."""
    return module.num_parameters(trainable_only)
