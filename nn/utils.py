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
    device, xp = params[0].device, params[0].xp
    with backend.on_device(device):
        # All gradients as one vector (in their common dtype): a handful of device calls in all, not a
        # handful per parameter, which is what a GPU step of a small model is bound by.
        flat = xp.concatenate([p.grad.data.reshape(-1) for p in params])
        if math.isinf(norm_type):
            total = xp.abs(flat).max()
        elif norm_type == 2.0:
            total = xp.sqrt(xp.vdot(flat, flat))
        else:
            total = (xp.abs(flat) ** norm_type).sum() ** (1 / norm_type)
        total = xp.asarray(total)
        if error_if_nonfinite:
            value = float(backend.to_host(total))
            if not math.isfinite(value):
                raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {value}; set "
                                   "error_if_nonfinite=False to clip anyway")
        flat *= xp.minimum(max_norm / (total + 1e-6), 1)    # 1: no change when the norm is small
        offset = 0
        for p in params:     # each new gradient is a slice of the scaled vector, in the gradient's dtype
            p.grad = tt.as_tensor(flat[offset:offset + p.size].reshape(p.shape).astype(p.grad.dtype, copy=False))
            offset += p.size
    return tt.as_tensor(total)


def count_parameters(module, trainable_only=False):
    """How many numbers a module's parameters hold (the same as module.num_parameters())."""
    return module.num_parameters(trainable_only)
