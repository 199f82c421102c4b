"""Learning-rate schedules. Each one sets every group's lr from a formula of the step count t:
make the scheduler after the optimizer, call `scheduler.step()` after each `optimizer.step()` (per
batch or per epoch, as the formula's units say). The group's lr when the scheduler was made is its
base lr (kept in the group as "initial_lr")."""
import math


class LRScheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def lr_at(self, base_lr, t):
        """The learning rate after t steps for a group whose base lr is base_lr."""
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base_lr, self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates set by the last step, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (which saves its own state)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (t // step_size)"""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)


def _cosine(high, low, progress):
    """From high at progress 0 to low at progress 1 along half a cosine."""
    return low + (high - low) * (1 + math.cos(math.pi * progress)) / 2


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2"""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max (the steps from base lr to eta_min) must be > 0, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr, t):
        return _cosine(base_lr, self.eta_min, t / self.T_max)


class WarmupCosine(LRScheduler):
    """Linear warm-up, then cosine decay to min_lr:

        lr = base_lr * (t + 1) / warmup_steps                         for t < warmup_steps
        lr = cosine from base_lr to min_lr over the remaining steps   up to total_steps, min_lr after
    """

    def __init__(self, optimizer, warmup_steps, total_steps, min_lr=0.0):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"WarmupCosine: need 0 <= warmup_steps < total_steps, got {warmup_steps} "
                             f"and {total_steps}")
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer)

    def lr_at(self, base_lr, t):
        if t < self.warmup_steps:
            return base_lr * (t + 1) / self.warmup_steps
        progress = (t - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return _cosine(base_lr, self.min_lr, min(progress, 1.0))
