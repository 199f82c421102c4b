"""Adam and AdamW: steps scaled per element by running averages of the gradient and its square."""
import math

from tinytensor.ops import fast

from .optimizer import Optimizer


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p             (Adam: L2 penalty through the gradient)
        p = p - lr * weight_decay * p        (AdamW instead: decoupled decay, before the update)
        m = beta1 * m + (1 - beta1) * g      v = beta2 * v + (1 - beta2) * g^2     (m, v start at 0)
        v_max = max(v_max, v) and used in place of v below, with amsgrad
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """
    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: needs lr >= 0 ({lr}), eps >= 0 ({eps}), "
                             f"weight_decay >= 0 ({weight_decay}) and betas in [0, 1) ({betas})")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def step(self, closure=None):
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                xp, param, g = p.xp, p.data, p.grad.data    # g is never written to
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {"step": 0, "exp_avg": xp.zeros_like(param),
                                             "exp_avg_sq": xp.zeros_like(param)}
                    if amsgrad:
                        state["max_exp_avg_sq"] = xp.zeros_like(param)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                if weight_decay and self.decoupled_weight_decay:
                    param *= 1 - lr * weight_decay
                elif weight_decay:
                    g = g + weight_decay * param
                # Bias correction: step size lr / (1 - beta1^t), denominator sqrt(v / (1 - beta2^t)) + eps.
                step_size, v_scale = lr / (1 - beta1 ** t), 1 / math.sqrt(1 - beta2 ** t)
                max_v = state.get("max_exp_avg_sq")
                if not fast.enabled():
                    m *= beta1
                    m += (1 - beta1) * g
                    v *= beta2
                    v += (1 - beta2) * g * g
                    if max_v is not None:
                        max_v[...] = xp.maximum(max_v, v)
                        v = max_v
                    param -= step_size * m / (xp.sqrt(v) * v_scale + eps)
                else:
                    adam_update_in_place(xp, param, g, m, v, max_v, beta1, beta2, step_size, v_scale, eps,
                                         self._scratch_like(param))
                p.mark_modified()
        return loss


def adam_update_in_place(xp, param, g, m, v, max_v, beta1, beta2, step_size, v_scale, eps, scratch):
    """The update of Adam.step without temporaries, through one work array kept between steps."""
    m *= beta1                                      # m = beta1 m + (1 - beta1) g
    xp.multiply(g, 1 - beta1, out=scratch)
    m += scratch
    v *= beta2                                      # v = beta2 v + (1 - beta2) g^2
    xp.multiply(g, g, out=scratch)
    scratch *= 1 - beta2
    v += scratch
    if max_v is not None:                           # amsgrad: the largest v so far
        v = xp.maximum(max_v, v, out=max_v)
    denom = xp.sqrt(v, out=scratch)                 # sqrt(v) v_scale + eps
    denom *= v_scale
    denom += eps
    update = xp.divide(m, denom, out=scratch)
    update *= step_size
    param -= update


class AdamW(Adam):
    __doc__ = Adam.__doc__
    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
