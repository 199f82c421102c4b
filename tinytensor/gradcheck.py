"""Checking analytic gradients against finite differences.

For a function f of tensors, take a fixed random weighting w of its outputs, L = sum(w * f(inputs)), and
compare dL/dx from backward with the central difference (L(x + eps) - L(x - eps)) / (2 eps), element by
element, for every input that requires grad: one backward checks every output element. Everything runs
in float64, where eps = 1e-6 leaves about ten correct digits.

When an element fails, the report shows it the way it is derived on paper, without the weighting: for the
input element x[j] with the largest relative error it takes d out[k] / d x[j] for every output element
(central differences, and one backward per output element) and names the output element that disagrees
most; for an elementwise op that is just d out[j] / d x[j].
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


# ----------------------------------------------------------------------------------- the report
# The check itself compares dL/dx for the weighted sum L: one backward checks every output element. A
# failure is reported the way a learner derives it on paper, as d out[k] / d x[j] for one output element
# and one input element, with no weighting; only when no single output element is wrong beyond the
# tolerance (many small errors adding up) does the report fall back to the weighted sum, and say so.

_MAX_OUTPUTS_FOR_JACOBIAN = 4096      # beyond this, one backward per output element is too slow


def _worst_failure(analytic, numeric, atol, rtol):
    """Index of the element that fails |analytic - numeric| <= atol + rtol |numeric| with the largest
    relative error |analytic - numeric| / |numeric|, or None when every element passes."""
    difference = np.abs(analytic - numeric)
    failing = difference > atol + rtol * np.abs(numeric)
    if not failing.any():
        return None
    relative = np.where(failing, difference / np.maximum(np.abs(numeric), 1e-300), -1.0)
    return np.unravel_index(int(relative.argmax()), analytic.shape)


def _relative(a, n):
    return abs(a - n) / max(abs(n), 1e-300)


def _at(name, index):
    return f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name


def _output_element(flat, outputs, what):
    """The name of element `flat` of all outputs raveled one after another: out[1, 2], or out1[0] when
    fn returns several outputs."""
    k = 0
    while flat >= outputs[k].size:
        flat -= outputs[k].size
        k += 1
    return _at(what if len(outputs) == 1 else f"{what}{k}", np.unravel_index(flat, outputs[k].shape))


def _jacobian_column(fn, inputs, i, index, eps):
    """d out / d x[index] for every output element: numeric by central differences, analytic by one
    backward per output element. Lists of arrays, one per output."""
    x = inputs[i]
    original = x.data[index].item()
    with no_grad():
        x.data[index] = original + eps
        plus = [backend.move(o.data, "cpu").astype(float) for o in _outputs(fn, inputs)]
        x.data[index] = original - eps
        minus = [backend.move(o.data, "cpu").astype(float) for o in _outputs(fn, inputs)]
        x.data[index] = original
    numeric = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
    analytic = [np.zeros(n.shape) for n in numeric]
    with enable_grad():
        outputs = _outputs(fn, inputs)
        for out, column in zip(outputs, analytic):
            if not out.requires_grad:
                continue
            for k in np.ndindex(*out.shape):
                one_hot = np.zeros(out.shape)
                one_hot[k] = 1
                (g,) = grad(out, [x], grad_outputs=Tensor(one_hot, dtype=out.dtype, device=out.device),
                            retain_graph=True, allow_unused=True)
                column[k] = 0.0 if g is None else backend.move(g.data, "cpu")[index]
    return analytic, numeric


def _failure_message(fn, inputs, i, index, weighted, eps, atol, rtol, what):
    """One paragraph: where it failed, the derivative a learner would write down, analytic vs numeric."""
    x = inputs[i]
    name = "x" if sum(isinstance(t, Tensor) and t.requires_grad for t in inputs) == 1 else f"x{i}"
    where = (f"gradcheck failed for input {i} (shape {tuple(x.shape)}) at index {tuple(int(j) for j in index)}, "
             f"where {_at(name, index)} = {x.data[index].item():.6g}: ")
    tolerance = f" (the tolerance is |analytic - numeric| <= {atol:g} + {rtol:g} |numeric|)."
    outputs = _outputs(fn, inputs)
    if sum(o.size for o in outputs) <= _MAX_OUTPUTS_FOR_JACOBIAN:
        columns = _jacobian_column(fn, inputs, i, index, eps)
        analytic, numeric = (np.concatenate([c.ravel() for c in column]) for column in columns)
        worst = _worst_failure(analytic, numeric, atol, rtol)
        if worst is not None:
            a, n = analytic[worst], numeric[worst]
            out_name = _output_element(int(worst[0]), outputs, what)
            moved = np.count_nonzero(np.maximum(np.abs(analytic), np.abs(numeric)) > atol) - 1
            wrong = np.count_nonzero(np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)) - 1
            context = (f" {out_name} is the only output element that depends on {_at(name, index)}."
                       if moved <= 0 else
                       f" {_at(name, index)} moves {moved} other output element(s); {wrong} of them "
                       f"disagree too, and this one disagrees the most.")
            return (where + f"d {out_name} / d {_at(name, index)} is {a:.8g} from backward (analytic) "
                    f"but {n:.8g} by central differences (numeric), relative error {_relative(a, n):.3g}"
                    + tolerance + context)
        reason = ("every single output element's derivative agrees within the tolerance, but their "
                  "small errors add up")
    else:
        reason = (f"the outputs have {sum(o.size for o in outputs)} elements, too many to differentiate "
                  "one by one")
    a, n = weighted
    return (where + f"{reason}, so this is the derivative of L = sum(w * {what}), with w fixed random "
            f"weights (seed 1234): d L / d {_at(name, index)} is {a:.8g} from backward (analytic) but "
            f"{n:.8g} by central differences (numeric), relative error {_relative(a, n):.3g}" + tolerance)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast=False, *, _what="out", _note=""):
    """Check fn's gradients with respect to every input that requires grad; return True or raise
    GradcheckError, whose message names the input element with the largest relative error and shows
    d out[k] / d x[j] there, analytic against numeric.

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
            a, n = float(np.sum(g * direction)), (plus - minus) / (2 * eps)
            if _worst_failure(np.array([a]), np.array([n]), atol, rtol) is not None:
                raise GradcheckError(
                    f"gradcheck failed for input {i} (shape {tuple(x.shape)}) along one random direction u "
                    f"(fast=True checks one direction per input, so a weighting is needed): for L = "
                    f"sum(w * {_what}) with w fixed random weights (seed 1234), d L(x + t u) / d t is "
                    f"{a:.8g} from backward (analytic) but {n:.8g} by central differences (numeric), "
                    f"relative error {_relative(a, n):.3g} (the tolerance is |analytic - numeric| <= "
                    f"{atol:g} + {rtol:g} |numeric|). Run without fast=True to find the element." + _note)
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
        worst = _worst_failure(g, numeric, atol, rtol)
        if worst is not None:
            raise GradcheckError(_failure_message(fn, inputs, i, worst, (g[worst], numeric[worst]), eps,
                                                  atol, rtol, _what) + _note)
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

    return gradcheck(first_derivatives, inputs, eps=eps, atol=atol, rtol=rtol, fast=fast, _what="grad",
                     _note=" Here grad is fn's first derivative d L / d x for L = sum(w * out), w fixed "
                           "random weights (seed 1234): gradgradcheck checks the derivatives of grad.")
