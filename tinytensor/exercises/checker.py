"""Checking a learner's backward against tinytensor's own ops, and saying in plain words what is wrong.

For one exercise and one set of inputs (a `Case`) the checker:
1. runs the learner's Function forward and compares it with the reference (built from tinytensor ops);
2. calls the learner's `backward(ctx, grad)` directly with a fixed upstream gradient, so it sees exactly
   what the learner returned (the engine would quietly sum a wrongly shaped gradient down to its input);
3. compares each returned gradient with the one autograd finds through the reference ops, and on a
   mismatch names the input, the element with the largest relative error, both values, and the likely
   mistake: a known wrong variant of that exercise, or a pattern (sign, constant factor, shape).
"""
import importlib.util
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import tinytensor as tt

RTOL, ATOL = 1e-6, 1e-9   # float64 throughout: a right answer agrees to far more digits than this


class Failure(Exception):
    """What is wrong with the learner's version, already said in plain words."""


class NotStarted(Failure):
    """The stub still raises NotImplementedError."""


@dataclass
class Case:
    """One set of forward arguments. Float arrays become float64 tensors that require grad, integer
    arrays integer tensors; anything else (an axis, a flag) is passed as it is."""
    label: str
    args: tuple


@dataclass
class Mistake:
    """A known wrong answer: `grads(*args, g)` gives {argument index: the wrong gradient} in NumPy."""
    what: str
    grads: Callable


@dataclass
class Exercise:
    number: int
    name: str                      # the file's stem: ex01_softsign
    title: str
    function: str                  # the tt.Function the learner completes
    arg_names: tuple               # forward's arguments, for the messages
    cases: list
    reference: Callable            # (*forward args as tensors) -> Tensor, from tinytensor's ops
    mistakes: list = field(default_factory=list)
    hints: list = field(default_factory=list)
    extra_check: Callable = None   # (module) -> None, raises Failure: training, second derivatives

    @property
    def filename(self):
        return f"{self.name}.py"


# ----------------------------------------------------------------------------------- running the learner

def load(path):
    """Import the learner's file as a module; a Failure naming the line when it does not import."""
    path = Path(path)
    if not path.is_file():
        raise Failure(f"{path} does not exist; `python -m tinytensor.exercises init` writes the stubs")
    spec = importlib.util.spec_from_file_location(f"tinytensor_exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise Failure(crash_message(error, path, "importing the file")) from None
    module.__path_checked__ = path
    return module


def crash_message(error, path, doing):
    """'<doing> raised <error> (line N of the learner's file: <code>)', plus a hint for common errors."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve() == Path(path).resolve()]
    where = f" at line {frames[-1].lineno} of {Path(path).name}: {frames[-1].line.strip()}" if frames else ""
    text = f"{doing} raised {type(error).__name__}: {error}{where}."
    message = str(error)
    if "broadcast" in message or "align" in message or "cannot reshape" in message:
        text += (" The shapes do not fit: write each tensor's shape in a comment beside each line (a matmul's "
                 "inner sizes must match; a sum combined with the tensor it came from needs keepdims=True).")
    if "does not require grad" in message or "not used to compute" in message:
        text += (" A gradient that should carry a graph does not: was the first tt.grad called with "
                 "create_graph=True, and is backward written with Tensor operations (not arrays)?")
    return text


def as_args(case):
    """The case's arguments as forward takes them: fresh tensors each time, so checks never interfere."""
    args = []
    for value in case.args:
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            value = tt.tensor(value, dtype=tt.float64, requires_grad=True)
        elif isinstance(value, np.ndarray):
            value = tt.tensor(value)
        args.append(value)
    return tuple(args)


def upstream_gradient(shape, seed=7):
    """The dL/d(output) fed to backward: fixed random values with two decimals, easy to read."""
    return tt.tensor(np.round(np.random.default_rng(seed).uniform(-2, 2, shape), 2), dtype=tt.float64)


def learner_function(exercise, module):
    function = getattr(module, exercise.function, None)
    if not (isinstance(function, type) and issubclass(function, tt.Function)):
        raise Failure(f"{module.__path_checked__.name} must define `class {exercise.function}(tt.Function)`")
    return function


def run_backward_directly(function, out, grad, path):
    """The learner's backward(ctx, grad) as it returned it, one gradient per argument of forward."""
    try:
        with tt.no_grad():
            grads = function.backward(out.grad_fn, grad)
    except NotImplementedError:
        raise NotStarted(f"backward is not written yet: open {path} and replace the "
                         "`raise NotImplementedError` line") from None
    except Exception as error:
        raise Failure(crash_message(error, path, "backward")) from None
    return grads if isinstance(grads, tuple) else (grads,)


def check_case(exercise, module, case):
    """Raise Failure unless the learner's forward and backward agree with the reference on this case."""
    function, path = learner_function(exercise, module), module.__path_checked__
    args = as_args(case)
    try:
        out = function.apply(*args)
    except NotImplementedError:
        raise NotStarted(f"forward is not written yet: open {path}") from None
    except Exception as error:
        raise Failure(crash_message(error, path, "forward")) from None
    expected_out = exercise.reference(*args)
    compare(f"{case.label}: the forward output", out.detach().numpy(), expected_out.detach().numpy())
    grad = upstream_gradient(out.shape)
    grads = run_backward_directly(function, out, grad, path)
    if len(grads) != len(args):
        raise Failure(f"backward returned {len(grads)} value(s), but forward takes {len(args)} arguments "
                      f"({', '.join(exercise.arg_names)}): return one gradient per argument, None for the "
                      "ones that are not float tensors")
    wanted = [i for i, a in enumerate(args) if isinstance(a, tt.Tensor) and a.requires_grad]
    expected = tt.grad(expected_out, [args[i] for i in wanted], grad_outputs=grad, allow_unused=True)
    np_args = [a.detach().numpy() if isinstance(a, tt.Tensor) else a for a in args]
    for i, want in zip(wanted, expected):
        name = exercise.arg_names[i]
        got = grads[i]
        if got is None:
            raise Failure(f"{case.label}: backward returned None for {name}, which needs a gradient")
        got = got.detach().numpy() if isinstance(got, tt.Tensor) else np.asarray(got)
        want = np.zeros(args[i].shape) if want is None else want.numpy()
        compare(f"{case.label}: the gradient for {name}", got, want, np_args, name=name, index=i,
                grad=grad.numpy(), likely=lambda: likely_mistake(exercise, i, got, want, np_args, grad.numpy()))


# ----------------------------------------------------------------------------------- diagnosis

def compare(what, got, want, np_args=None, name=None, index=None, grad=None, likely=lambda: None):
    """Raise Failure naming the worst element (by relative error) when got and want differ; `likely()`
    names the probable mistake."""
    if got.shape != want.shape:
        likely = likely()
        text = f"{what} has shape {got.shape}, but it should have shape {want.shape}"
        if name is not None:
            text += f" ({name}'s shape: a gradient always has the shape of its input)"
        raise Failure(text + "." + (f" Likely mistake: {likely}." if likely else ""))
    wrong = ~np.isclose(got, want, rtol=RTOL, atol=ATOL) | ~np.isfinite(got)
    if not wrong.any():
        return
    likely = likely()
    relative = np.abs(got - want) / np.maximum(np.abs(want), ATOL)
    relative = np.where(np.isfinite(relative), relative, np.inf)
    worst = np.unravel_index(int(np.argmax(np.where(wrong, relative, -1))), got.shape)
    at = f"[{', '.join(str(int(i)) for i in worst)}]" if got.ndim else ""
    text = (f"{what} is wrong at {name or 'output'}{at}: expected {want[worst]:.6g}, got {got[worst]:.6g} "
            f"({int(wrong.sum())} of {got.size} elements are wrong; this one has the largest relative error)")
    if name is not None and np_args[index].shape == got.shape and got.ndim:
        text += f". There {name} = {np_args[index][worst]:.6g}"
        if grad.shape == got.shape:
            text += f" and grad_output = {grad[worst]:.6g}"
    raise Failure(text + "." + (f" Likely mistake: {likely}." if likely else ""))


def _same(a, b):
    return a is not None and np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-5, atol=1e-8)


def likely_mistake(exercise, index, got, want, np_args, grad):
    """The exercise's known wrong variant that got matches, else a general pattern; None if none fits."""
    for mistake in exercise.mistakes:
        try:
            with np.errstate(all="ignore"):
                variant = mistake.grads(*np_args, grad).get(index)
        except ValueError:        # the variant does not apply to these shapes
            continue
        if _same(got, variant):
            return mistake.what
    if got.shape != want.shape:
        return shape_pattern(got.shape, want.shape, grad.shape)
    if not np.all(np.isfinite(got)):
        return "the gradient has NaN or inf in it: a division by zero, or exp of a large number"
    if got.dtype != np.float64 and np.allclose(got, want, rtol=1e-2, atol=1e-4):
        return (f"the values are right to {got.dtype} precision, but the checker works in float64: make new "
                "tensors with dtype=tt.float64 (or from the saved tensors, which are float64 already)")
    if not np.allclose(want, 0) and _same(got, -want):
        return "the sign is flipped"
    if not np.allclose(want, 0) and np.allclose(got, 0):
        return "the gradient is zero everywhere"
    if got.shape == grad.shape:
        if _same(got, grad):
            return "returned grad_output unchanged: it still has to be multiplied by the local derivative"
        if np.all(grad != 0) and _same(got * grad, want):
            return ("forgot to multiply by grad_output (the chain rule: dL/dx = dL/dy * dy/dx; backward "
                    "returns dL/dx, not dy/dx)")
    ratio = got[np.abs(want) > 1e-6] / want[np.abs(want) > 1e-6]
    if ratio.size and np.allclose(ratio, ratio[0], rtol=1e-5) and not np.isclose(ratio[0], 1):
        return (f"off by a constant factor of {ratio[0]:.6g} everywhere: a scale such as 1/N, 1/sqrt(d) "
                "or 2 is missing or extra")
    return None


def shape_pattern(got, want, out):
    """A likely reason for a gradient of shape `got` where `want` was needed (out: the output's shape)."""
    if got == tuple(out) and got != want:
        return ("forgot to sum over the broadcast axes: the input was stretched to the output's shape, so "
                "the gradients of all its copies add up (sum them, keepdims=True where a size-1 axis stays)")
    if got == tuple(n for n in want if n != 1) or (len(got) < len(want) and np.prod(got) == np.prod(want)):
        return "summed an axis away: keep it with keepdims=True (or reshape back to the input's shape)"
    if got == tuple(reversed(want)) or got == want[:-2] + want[-2:][::-1]:
        return "the gradient is transposed: check the order of the matrix product (A^T @ G or G @ B^T)"
    if len(got) > len(want):
        return "forgot to sum over the batch axes that the input was broadcast across"
    return None


# ----------------------------------------------------------------------------------- one exercise

def check(exercise, path):
    """None when the file at `path` passes every case and extra check; else raise Failure."""
    module = load(path)
    for case in exercise.cases:
        check_case(exercise, module, case)
    if exercise.extra_check is not None:
        exercise.extra_check(module)
