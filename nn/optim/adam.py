"""Adam and AdamW: steps scaled per element by running averages of the gradient and its square."""
import math

from tinytensor import backend
from tinytensor.ops import fast

from .optimizer import Optimizer


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p             (Adam: L2 penalty through the gradient)
        p = p - lr * weight_decay * p        (AdamW instead: decoupled decay, before the update)
        m = beta1 * m + (1 - beta1) * g      v = beta2 * v + (1 - beta2) * g^2     (m, v start at 0)
        v_max = max(v_max, v) and used in place of v below, with amsgrad
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    foreach: update all the parameters of a group as one flat vector, in about a dozen device calls for
    the group instead of a dozen per parameter; on a GPU each call is a kernel launch, and a small model's
    step is bound by their number. None (the default) uses it on GPUs; on the CPU the per-parameter loop
    is kept, as it copies nothing. Both give the same numbers (tests/nn/test_optim.py).
    """
    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 foreach=None):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: needs lr >= 0 ({lr}), eps >= 0 ({eps}), "
                             f"weight_decay >= 0 ({weight_decay}) and betas in [0, 1) ({betas})")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, foreach=foreach))
        self._flat = {}        # group index -> (ids of its parameters, their state views, flat m, v, v_max)

    def step(self, closure=None):
        loss = self._evaluate(closure)
        for index, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if self._can_step_flat(group, params):
                with backend.on_device(params[0].device):
                    self._step_flat(index, group, params)
                continue
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                with backend.on_device(p.device):     # a cuda:1 parameter is updated on cuda:1
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

    def _can_step_flat(self, group, params):
        """foreach applies: asked for (or None on a GPU), one device and dtype, one step count, and the
        in-place twins not switched off (tt.ops.fast.disabled() runs the plain formula)."""
        foreach = group["foreach"]
        if foreach is None:
            foreach = bool(params) and params[0].device != "cpu"
        if not foreach or not params or not fast.enabled():
            return False
        first = params[0]
        steps = {self.state[p]["step"] if p in self.state else 0 for p in params}
        return len(steps) == 1 and all(p.device == first.device and p.dtype == first.dtype for p in params)

    def _step_flat(self, index, group, params):
        """Adam.step for all `params` of a group at once: gradients (and weights, for the decay) joined
        into one vector, the update of adam_direction on it, then each parameter's slice subtracted."""
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, xp = group["weight_decay"], params[0].xp
        m, v, max_v = self._flat_state(index, params, group["amsgrad"])
        for p in params:
            self.state[p]["step"] += 1
        t = self.state[params[0]]["step"]
        g = xp.concatenate([p.grad.data.reshape(-1) for p in params])
        scratch = self._scratch_like(g)
        update = adam_direction(xp, g, m, v, max_v, beta1, beta2, lr / (1 - beta1 ** t),
                                1 / math.sqrt(1 - beta2 ** t), eps, scratch, l2=0 if self.decoupled_weight_decay
                                else weight_decay, weights=params if weight_decay else None)
        if weight_decay and self.decoupled_weight_decay:   # p (1 - lr wd) - update = p - (update + lr wd p)
            update += xp.concatenate([p.data.reshape(-1) for p in params]) * (lr * weight_decay)
        offset = 0
        for p in params:
            p.data -= update[offset:offset + p.size].reshape(p.shape)
            offset += p.size
            p.mark_modified()

    def _flat_state(self, index, params, amsgrad):
        """m, v (and v_max) of `params` as one flat vector each; each parameter's state entries are views
        into them, so state_dict still sees one array per parameter. Rebuilt when the parameters with a
        gradient change, or load_state_dict has replaced the entries."""
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
        ids = [id(p) for p in params]
        cached = self._flat.get(index)
        if cached and cached[0] == ids and all(self.state[p][name] is view
                                               for p, views in zip(params, cached[1])
                                               for name, view in zip(names, views)):
            return cached[2]
        xp = params[0].xp
        for p in params:
            state = self.state.setdefault(p, {"step": 0})
            for name in names:
                state.setdefault(name, xp.zeros_like(p.data))
        flats = [xp.concatenate([self.state[p][name].reshape(-1) for p in params]) for name in names]
        views, offset = [], 0
        for p in params:
            views.append([flat[offset:offset + p.size].reshape(p.shape) for flat in flats])
            self.state[p].update(zip(names, views[-1]))
            offset += p.size
        result = (flats[0], flats[1], flats[2] if amsgrad else None)
        self._flat[index] = (ids, views, result)
        return result


def adam_update_in_place(xp, param, g, m, v, max_v, beta1, beta2, step_size, v_scale, eps, scratch):
    """The update of Adam.step without temporaries, through one work array kept between steps."""
    param -= adam_direction(xp, g, m, v, max_v, beta1, beta2, step_size, v_scale, eps, scratch)


def adam_direction(xp, g, m, v, max_v, beta1, beta2, step_size, v_scale, eps, scratch, l2=0, weights=None):
    """Update m and v in place and return the step to subtract from the weights, in `scratch`:
    step_size m / (sqrt(v) v_scale + eps). With l2, g (a copy of its own) first gets l2 * weights."""
    if l2:
        g += xp.concatenate([p.data.reshape(-1) for p in weights]) * l2
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
    return update


class AdamW(Adam):
    __doc__ = Adam.__doc__
    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 foreach=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach)
