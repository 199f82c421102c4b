"""Stochastic gradient descent, with momentum (heavy-ball or Nesterov) and L2 weight decay."""
from tinytensor import backend
from tinytensor.ops import fast

from .optimizer import Optimizer


class SGD(Optimizer):
    """For each parameter p with gradient g, in one step:

        g = g + weight_decay * p                                  (L2 penalty, when weight_decay > 0)
        b = g (first step),  b = momentum * b + (1 - dampening) * g (after)     (when momentum > 0)
        g = g + momentum * b (nesterov) or g = b
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr ({lr}), momentum ({momentum}) and weight_decay ({weight_decay}) "
                             "must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def step(self, closure=None):
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            nesterov, weight_decay = group["nesterov"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                with backend.on_device(p.device):     # a cuda:1 parameter is updated on cuda:1
                    xp, param, g = p.xp, p.data, p.grad.data    # g is never written to
                    if weight_decay:
                        g = g + weight_decay * param
                    if momentum:
                        state = self.state.setdefault(p, {})
                        buf = state.get("momentum_buffer")
                        if buf is None:
                            buf = state["momentum_buffer"] = g.copy()
                        else:
                            buf *= momentum
                            buf += g if dampening == 0 else (1 - dampening) * g
                        g = g + momentum * buf if nesterov else buf
                    if not fast.enabled():
                        param -= lr * g
                    else:
                        sgd_update_in_place(xp, param, g, lr, self._scratch_like(param))
                    p.mark_modified()
        return loss


def sgd_update_in_place(xp, param, g, lr, scratch):
    """param -= lr * g without a temporary: lr * g goes into a work array kept between steps."""
    xp.multiply(g, lr, out=scratch)
    xp.subtract(param, scratch, out=param)
