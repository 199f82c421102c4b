"""Reverse-mode automatic differentiation.

Every differentiable operation is a `Function`: `forward` computes on arrays (NumPy or CuPy), and
`backward` turns the gradient of the output into gradients of the inputs using Tensor operations, so the
backward pass can itself be recorded (`create_graph=True`) and differentiated again.

`Function.apply` runs `forward` and, when a gradient will be needed, leaves behind a `Context`: the node
of the graph. A node remembers which nodes (or leaf tensors) its inputs came from and what `forward`
saved. `backward()` below walks the nodes from the output back to the leaves.
"""
import contextlib
import weakref

from . import backend
from .tensor import Tensor

# ----------------------------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled():
    """True when operations are being recorded for backward."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that switches recording on or off and restores it after."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self.previous, _grad_enabled = _grad_enabled, self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous


def no_grad(fn=None):
    """`with tt.no_grad():` or `@tt.no_grad` (with or without parentheses): record nothing."""
    return _GradMode(False)(fn) if callable(fn) else _GradMode(False)


def enable_grad(fn=None):
    """`with tt.enable_grad():` or `@tt.enable_grad`: record, even inside no_grad."""
    return _GradMode(True)(fn) if callable(fn) else _GradMode(True)


# ----------------------------------------------------------------------------------- the node

class Context:
    """What one call of a Function leaves for its backward: saved values and links to its inputs."""

    def __init__(self, xp, device):
        self.xp = xp                    # numpy or cupy, for forward code: `ctx.xp.exp(x)`
        self.device = device
        self.needs_input_grad = ()      # one bool per argument of forward
        self._to_save = ()

    def save_for_backward(self, *values):
        """Keep arrays (inputs, the output or intermediates) for backward; read them back as Tensors."""
        self._to_save = values

    def check_not_freed(self):
        """Raise if an earlier backward (without retain_graph) has already freed this node."""
        if self._saved is None:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time, but its saved "
                "values were freed by the first backward; call backward(retain_graph=True) the first time")

    @property
    def saved_tensors(self):
        """The saved values as Tensors, after checking none was modified in place since it was saved."""
        self.check_not_freed()
        tensors = []
        for tensor, version in self._saved:
            if tensor is _OUTPUT:   # rebuild the output tensor: its data, its version, this node
                tensor = Tensor._from_array(self._output_data, self.device)
                tensor._version, tensor._ctx, tensor._requires_grad = self._output_version, self, True
            if version is not None and tensor._version[0] != version:
                raise RuntimeError(
                    f"{self.name}: a {tuple(tensor.shape)} tensor it saved for backward was modified by "
                    f"an in-place operation: it is at version {tensor._version[0]}, it was at version "
                    f"{version} when saved. Use an out-of-place operation (x = x + y, or x.clone()) "
                    "before changing it, or change it after backward")
            tensors.append(tensor)
        return tuple(tensors)

    @property
    def name(self):
        return self.fn.__name__

    def __repr__(self):
        return f"<{self.name}Backward>"


class Function:
    """Base class of every differentiable operation, built-in or written by a user.

    Subclasses define `forward(ctx, *args)` on arrays and `backward(ctx, grad_output)` on Tensors,
    returning one gradient per argument of forward (None where there is none), and are called as
    `MyOp.apply(*args)`. Tensor arguments arrive in forward as arrays; other arguments as they are.
    """

    differentiable_backward = True   # False where backward works on raw arrays (no second derivative)

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        device = _common_device(cls.__name__, args)
        ctx = Context(backend.xp_for(device), device)
        ctx.needs_input_grad = tuple(isinstance(arg, Tensor) and arg._requires_grad for arg in args)
        arrays = [arg.data if isinstance(arg, Tensor) else arg for arg in args]
        if device == "cpu":
            output = cls.forward(ctx, *arrays)
        else:
            with backend.on_device(device):     # CuPy computes on its current device: make it this one
                output = cls.forward(ctx, *arrays)
        result = Tensor._from_array(output, device)
        if _grad_enabled and any(ctx.needs_input_grad) and result.dtype.kind == "f":
            ctx.fn = cls
            # Edges of the graph: the node that made each input, or the leaf itself, or None.
            ctx.parents = tuple(
                (arg._ctx or arg) if isinstance(arg, Tensor) and arg.requires_grad else None
                for arg in args)
            ctx._saved = [_saved_entry(value, args, output, result) for value in ctx._to_save]
            if any(tensor is _OUTPUT for tensor, _ in ctx._saved):
                ctx._output_data, ctx._output_version = output, result._version
            ctx._output = weakref.ref(result)
            ctx._output_shape = result.shape
            result._requires_grad = True
            result._ctx = ctx
        ctx._to_save = ()
        return result


def _common_device(op_name, args):
    """The device all Tensor arguments share; an error naming both when they differ."""
    if backend.cuda_unused():
        return "cpu"              # no GPU array can exist yet: skip the checks
    device = None
    for arg in args:
        if isinstance(arg, Tensor):
            if device is None:
                device = arg.device
            elif arg.device != device:
                raise RuntimeError(f"device mismatch: {op_name} got a {device} tensor and a {arg.device} "
                                   "tensor; move one with .to(...)")
    return device or "cpu"


_OUTPUT = object()   # marks the output among saved values (kept as data alone, to avoid a cycle)


def _saved_entry(value, args, output, result):
    """(tensor, version) for one saved value: the input Tensor it is, the output, or a new constant."""
    if value is output:
        return _OUTPUT, result._version[0]
    for arg in args:
        if isinstance(arg, Tensor) and value is arg.data:
            return arg, arg._version[0]
    if not backend.is_array(value):   # None, a Python number, a tuple of axes...
        return value, None
    constant = Tensor._from_array(value, result.device)
    return constant, constant._version[0]


# ----------------------------------------------------------------------------------- the backward walk

def _topological_order(roots):
    """Nodes reachable from the roots, each after every node that consumes its output.

    Iterative depth-first search (no recursion, so a graph thousands of nodes deep is fine)."""
    order, visited = [], set()
    stack = [(root, False) for root in roots]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.parents:
            if isinstance(parent, Context) and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def _accumulated_grad(existing, grad, create_graph):
    """existing + grad for a `.grad` field; a new Tensor each time, never an in-place change."""
    if not create_graph:
        grad = grad.detach()
    return grad if existing is None else existing + grad


def run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=None):
    """Propagate gradients from `outputs` to every leaf, or only to `inputs` when given.

    Without `inputs` the gradients accumulate into each leaf's `.grad`; with `inputs` they are
    returned in the same order (None for an input the outputs do not depend on)."""
    grads = {}        # id(node or leaf) -> gradient Tensor flowing into it
    leaves = {}       # id(leaf) -> leaf, for the leaves reached
    roots = []

    def send(target, grad):
        key = id(target)
        grads[key] = grad if key not in grads else grads[key] + grad
        if isinstance(target, Tensor):
            leaves[key] = target

    for out, grad in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"backward: this {tuple(out.shape)} tensor does not require grad and has no graph; "
                "was it computed under no_grad, or from tensors without requires_grad=True?")
        if grad is None:
            if out.size != 1:
                raise RuntimeError(
                    f"backward: a gradient can be created implicitly only for a scalar output, but this "
                    f"one has shape {tuple(out.shape)}; pass a gradient of that shape, or reduce it "
                    "first (e.g. loss.sum())")
            with backend.on_device(out.device):
                grad = Tensor._from_array(out._xp.ones_like(out.data), out.device)
        elif not isinstance(grad, Tensor):
            grad = Tensor(grad, dtype=out.dtype, device=out.device)
        if grad.shape != out.shape:
            raise RuntimeError(f"backward: the gradient has shape {tuple(grad.shape)} but the output "
                               f"has shape {tuple(out.shape)}")
        send(out._ctx or out, grad)
        if out._ctx is not None:
            roots.append(out._ctx)
    wanted = None if inputs is None else {id(t._ctx or t) for t in inputs}
    captured = {}     # id(node) -> gradient, for non-leaf `inputs`

    with _GradMode(create_graph):
        for node in _topological_order(roots):
            grad_output = grads.pop(id(node), None)
            if grad_output is None:
                continue
            if wanted is not None and id(node) in wanted:
                captured[id(node)] = grad_output
            output = node._output()
            if inputs is None and output is not None and output._retains_grad:
                output.grad = _accumulated_grad(output.grad, grad_output, create_graph)
            node.check_not_freed()
            if create_graph and not node.fn.differentiable_backward:
                raise RuntimeError(f"{node.name}: its backward is not differentiable, so "
                                   "create_graph=True (second derivatives) is not supported through it")
            with backend.on_device(node.device):
                input_grads = node.fn.backward(node, grad_output)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(node.parents):
                raise RuntimeError(f"{node.name}.backward returned {len(input_grads)} gradients for "
                                   f"{len(node.parents)} arguments of forward")
            for parent, grad in zip(node.parents, input_grads):
                if parent is None or grad is None:
                    continue
                if not isinstance(grad, Tensor):
                    grad = Tensor._from_array(grad, node.device)
                shape = parent.shape if isinstance(parent, Tensor) else parent._output_shape
                if grad.shape != shape:
                    grad = grad.sum_to(shape)    # undo broadcasting, in this one place
                send(parent, grad)
            if not retain_graph:
                node._saved = None

    if inputs is not None:
        captured.update((key, grads[key]) for key in leaves)
        return tuple(captured.get(id(t._ctx or t)) for t in inputs)
    for key, leaf in leaves.items():
        leaf.grad = _accumulated_grad(leaf.grad, grads[key], create_graph)
    return None


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned instead of stored in `.grad`."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {tuple(tensor.shape)}) does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=inputs)
    for i, value in enumerate(result):
        if value is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {tuple(inputs[i].shape)}) was not used to "
                               "compute the outputs; pass allow_unused=True to get None for it")
    return result
