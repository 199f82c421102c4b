"""Weight initialisation, as in PyTorch. Each function fills a tensor in place (under no_grad) with
numbers from `tt.random.generator(device)`, so `tt.manual_seed` makes it reproducible, and returns it.

Why the scales: a layer y = W x with n inputs of variance 1 gives outputs of variance n Var(W). Keeping
that near 1 through many layers needs Var(W) = gain^2 / n ("fan in", Kaiming) or 2 / (n_in + n_out)
(Xavier, a compromise between the forward and the backward pass). U(-a, a) has variance a^2 / 3.
"""
import math

import tinytensor as tt
from tinytensor.random import generator

_FLOAT_SAMPLING = (tt.float32, tt.float64)   # dtypes the generators sample directly


def _fill(tensor, sample):
    """tensor[...] = sample(generator, shape, dtype), under no_grad (bumps the version)."""
    dtype = tensor.dtype if tensor.dtype in _FLOAT_SAMPLING else tt.float32
    values = sample(generator(tensor.device), tensor.shape, dtype)
    with tt.no_grad():
        tensor[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    return _fill(tensor, lambda gen, shape, dtype: gen.random(shape, dtype=dtype) * dtype.type(b - a)
                 + dtype.type(a))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std^2)."""
    return _fill(tensor, lambda gen, shape, dtype: gen.standard_normal(shape, dtype=dtype)
                 * dtype.type(std) + dtype.type(mean))


def constant_(tensor, value):
    with tt.no_grad():
        tensor[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def calculate_gain(nonlinearity, param=None):
    """The factor by which a nonlinearity shrinks the standard deviation, to be made up in the weights:
    1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu."""
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; use one of "
                     f"{list(linear) + ['tanh', 'relu', 'leaky_relu', 'selu']}")


def calculate_fan_in_and_fan_out(tensor):
    """Inputs and outputs per unit of a weight: (in, out) for Linear's (out, in) weight; a conv weight
    (out, in, kh, kw) counts in * kh * kw and out * kh * kw."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of 2 or more dimensions, but this one has "
                         f"shape {tuple(tensor.shape)}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', not {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor, gain=1.0):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = gain * sqrt(3 / fan); gain = calculate_gain(nonlinearity, a)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))
