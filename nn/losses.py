"""Losses as modules: the settings are given once, the call takes (input, target).

Class weights (`weight`, `pos_weight`) are buffers, so `to()` moves them with the model."""
import tinytensor as tt

from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, not {reduction!r}")
        self.reduction = reduction

    def _register_optional(self, name, tensor):
        """A buffer (moved by .to()) holding a copy of `tensor`, on the device a Tensor is given on."""
        device = tensor.device if isinstance(tensor, tt.Tensor) else "cpu"
        self.register_buffer(name, None if tensor is None else tt.tensor(tensor, device=device))

    def __call__(self, input, *args, **kwargs):
        for name, buffer in self.named_buffers():
            if buffer is not None and isinstance(input, tt.Tensor) and buffer.device != input.device:
                raise RuntimeError(f"{type(self).__name__}: its {name} is on {buffer.device} but the input is "
                                   f"on {input.device}; move the loss with .to('{input.device}') as the model")
        return super().__call__(input, *args, **kwargs)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """mean((input - target)^2)"""

    def forward(self, input, target):
        return tt.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """-log softmax(logits)[target]: logits (N, C) or (N, C, d1, ...), integer targets (N) or (N, d1, ...)"""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self._register_optional("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return tt.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                                reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """-log_probs[target]: takes log-probabilities (e.g. from log_softmax) and integer targets"""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self._register_optional("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return tt.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                           reduction=self.reduction)


class BCELoss(_Loss):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1] (logs clamped at -100)"""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self._register_optional("weight", weight)

    def forward(self, input, target):
        return tt.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """BCELoss of sigmoid(logits), computed stably from the logits; pos_weight scales the positive term"""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self._register_optional("weight", weight)
        self._register_optional("pos_weight", pos_weight)

    def forward(self, input, target):
        return tt.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                   pos_weight=self.pos_weight, reduction=self.reduction)
