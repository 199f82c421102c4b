"""nn.functional: the functional form of the layers and losses, for use inside forward methods.

The ops themselves live in tinytensor (tinytensor/ops/nn.py, loss.py, elementwise.py, reduce.py);
this module names them the way PyTorch's torch.nn.functional does (softmax(x, dim=1) works, as every
axis-taking op accepts PyTorch's dim=), and pad takes PyTorch's argument order (input, pad, mode, value)."""
import tinytensor as tt
from tinytensor import (avg_pool2d, batch_norm, binary_cross_entropy, binary_cross_entropy_with_logits,
                        conv2d, cross_entropy, dropout, embedding, gelu, layer_norm, leaky_relu, linear,
                        log_softmax, max_pool2d, max_unpool2d, mse_loss, nll_loss, relu,
                        scaled_dot_product_attention, sigmoid, softmax, tanh)

__all__ = ["linear", "conv2d", "max_pool2d", "max_unpool2d", "avg_pool2d", "pad", "embedding", "dropout",
           "layer_norm", "batch_norm", "scaled_dot_product_attention", "cross_entropy", "nll_loss", "mse_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "relu", "leaky_relu", "sigmoid",
           "tanh", "gelu", "softmax", "log_softmax"]


def pad(x, pad, mode="constant", value=None):
    """tt.pad in PyTorch's order: F.pad(x, (1, 1), "reflect") pads with the mode, as in PyTorch."""
    return tt.pad(x, pad, 0 if value is None else value, mode=mode)
