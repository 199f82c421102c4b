"""Checking analytic gradients against finite differences.

For a function f of tensors, take a fixed random weighting w of its outputs, L = sum(w * f(inputs)), and
compare dL/dx from backward with the central difference (L(x + eps) - L(x - eps)) / (2 eps), element by
element, for every input that requires grad. Everything runs in float64, where eps = 1e-6 leaves about
ten correct digits.
"""
import numpy as np

from . import backend
from .autograd import enable_grad, grad, no_grad
from .tensor import Tensor, float64


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def _as_float64_inputs(inputs):
    """Fresh float64 leaves (same device and requires_grad) for float tensors; other inputs unchanged."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    result = []
    for x in inputs:
        if isinstance(x, Tensor) and x.dtype.kind == "f":
            x = Tensor(x.data, dtype=float64, device=x.device).requires_grad_(x.requires_grad)
        result.append(x)
    return tuple(result)


def _outputs(fn, inputs):
    out = fn(*inputs)
    return (out,) if isinstance(out, Tensor) else tuple(out)


def _weights(outputs):
    """A fixed random weight per output element, so every output element is checked."""
    rng = np.random.default_rng(1234)
    return [out.xp.asarray(rng.standard_normal(out.shape)) for out in outputs]


def _weighted_sum(outputs, weights):
    return sum((out * w).sum() for out, w in zip(outputs, weights))


def _numeric_value(fn, inputs, weights):
    with no_grad():
        return float(_weighted_sum(_outputs(fn, inputs), weights).item())


def _check_close(name, analytic, numeric, atol, rtol):
    """Raise GradcheckError naming the worst element when |analytic - numeric| > atol + rtol |numeric|."""
    error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if analytic.size and error.max() > 0:
        worst = np.unravel_index(int(error.argmax()), analytic.shape)
        a, n = analytic[worst], numeric[worst]
        relative = abs(a - n) / max(abs(n), 1e-12)
        raise GradcheckError(
            f"gradcheck failed for {name} at index {tuple(int(i) for i in worst)}: analytic {a:.8g}, "
            f"numeric {n:.8g}, relative error {relative:.3g} (atol={atol}, rtol={rtol})")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast=False):
    """Check fn's gradients with respect to every input that requires grad; return True or raise.

    `fast=True` checks one random direction u per input instead of every element: the analytic
    directional derivative (dL/dx . u, one backward) against (L(x + eps u) - L(x - eps u)) / (2 eps),
    so a large op is checked in two extra forward passes."""
    inputs = _as_float64_inputs(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    outputs = _outputs(fn, inputs)
    weights = _weights(outputs)
    loss = _weighted_sum(outputs, weights)
    analytic = [None] * len(checked)          # None: the outputs do not depend on that input
    if loss.requires_grad:
        analytic = grad(loss, [inputs[i] for i in checked], allow_unused=True)
    rng = np.random.default_rng(4321)
    for i, g in zip(checked, analytic):
        x = inputs[i]
        g = np.zeros(x.shape) if g is None else backend.move(g.data, "cpu")
        if fast:
            direction = rng.standard_normal(x.shape)
            step = x.xp.asarray(eps * direction)
            x.data += step
            plus = _numeric_value(fn, inputs, weights)
            x.data -= 2 * step
            minus = _numeric_value(fn, inputs, weights)
            x.data += step
            _check_close(f"input {i} (shape {x.shape}, one random direction)",
                         np.array([np.sum(g * direction)]), np.array([(plus - minus) / (2 * eps)]),
                         atol, rtol)
            continue
        numeric = np.zeros(x.shape)
        for index in np.ndindex(*x.shape):
            original = x.data[index].item()
            x.data[index] = original + eps
            plus = _numeric_value(fn, inputs, weights)
            x.data[index] = original - eps
            minus = _numeric_value(fn, inputs, weights)
            x.data[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        _check_close(f"input {i} (shape {x.shape})", g, numeric, atol, rtol)
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast=False):
    """Check second derivatives: gradcheck the function that maps the inputs to fn's gradients
    (taken with create_graph=True, for a fixed random weighting of fn's outputs)."""
    inputs = _as_float64_inputs(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    weights = _weights(_outputs(fn, inputs))

    @enable_grad()
    def first_derivatives(*args):
        loss = _weighted_sum(_outputs(fn, args), weights)
        grads = grad(loss, [args[i] for i in checked], create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)   # a constant g checks a zero Hessian

    return gradcheck(first_derivatives, inputs, eps=eps, atol=atol, rtol=rtol, fast=fast)
