"""Reverse-mode automatic differentiation.

Every differentiable operation is a `Function`: `forward` computes on arrays (NumPy or CuPy), and
`backward` turns the gradient of the output into gradients of the inputs using Tensor operations, so the
backward pass can itself be recorded (`create_graph=True`) and differentiated again.

`Function.apply` runs `forward` and, when a gradient will be needed, records a `Node`: the node of the
graph, which knows where each input came from and what forward saved. `run_backward` walks the nodes
from the output back to the leaves.
"""
import contextlib
import weakref

from . import anomaly, backend
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

class Node:
    """One call of a Function in the graph. It is also the `ctx` that the Function's forward and backward
    receive: `ctx` is only the conventional name of their first parameter (as in PyTorch).

    forward keeps what backward needs with `ctx.save_for_backward(...)` (arrays, read back in backward
    as Tensors through `ctx.saved_tensors`) or as plain attributes (`ctx.axes = axes`).

    Public, read-only surface, for code that walks the graph (e.g. drawing it):
        name              the Function's name, e.g. "Log"
        inputs            one entry per argument of forward: the Node that made it, the leaf Tensor
                          itself, or None (not a Tensor, or it needs no gradient)
        output_shape      the shape of the tensor forward returned
        needs_input_grad  one bool per argument of forward
        retained_output   the output tensor, if it called retain_grad() (else None)
        create_graph      True while backward runs under create_graph=True: the gradients it returns are
                          then recorded, so they must be computed from `saved_tensors` with Tensor ops
                          (anything computed in forward carries no graph)

    Saving the output without a reference cycle. When forward saves its own output (Exp saves y = e^x),
    keeping that Tensor here would make a cycle: the tensor points at its node (`grad_fn`), the node at the
    tensor, and neither is freed until Python's cycle collector runs, which holds every activation of a
    model in memory longer. So the node keeps only the output's array and its version counter, and
    `saved_tensors` wraps them in a fresh Tensor whose grad_fn is this node: for backward, and for a
    second derivative through it, the same tensor.
    """

    __slots__ = ("fn", "xp", "device", "needs_input_grad", "inputs", "output_shape", "create_graph",
                 "created_at", "_to_save", "_saved", "_output", "_grad_kept_by", "__dict__")
    # (`__dict__` stays, for what a Function's forward stores on ctx: `ctx.axes = axes`.)

    def __init__(self, fn, device, needs_input_grad):
        self.fn = fn                              # the Function subclass this is a call of
        self.xp = backend.xp_for(device)          # numpy or cupy, for forward code: `ctx.xp.exp(x)`
        self.device = device
        self.needs_input_grad = needs_input_grad
        self.inputs = ()                          # filled in by record()
        self.output_shape = None
        self.create_graph = False                 # set by run_backward just before it calls backward
        self.created_at = None                    # (path, line) that called the op, in anomaly mode only
        self._to_save = ()                        # what forward passed to save_for_backward
        self._saved = ()                          # (value, version) pairs; None once backward freed them
        self._output = None                       # (array, version counter) of the output, when saved
        self._grad_kept_by = None                 # weak reference to the output, once it retain_grad()s

    @property
    def name(self):
        return self.fn.__name__

    def __repr__(self):
        return f"<{self.name}Backward>"

    def save_for_backward(self, *values):
        """Keep arrays (inputs, the output or intermediates) for backward; read them back as Tensors."""
        self._to_save = values

    @property
    def saved_tensors(self):
        """The saved values as Tensors, after checking none was modified in place since it was saved."""
        return self._saved_values(as_tensors=True)

    def backward_operands(self, grad_output):
        """(grad_output, *saved values) for a backward whose formulas read the same on Tensors and on
        arrays (`g @ w`, `g.sum(axis=0)`, `g * (y > 0)`): Tensors under create_graph, so the backward is
        recorded and can be differentiated again; otherwise the raw arrays, since nothing would be
        recorded and each Tensor op would only add bookkeeping. The hot fused ops (Linear, ReLU,
        CrossEntropy) use it; `saved_tensors` is the plain way."""
        if self.create_graph:
            return (grad_output,) + self._saved_values(as_tensors=True)
        return (grad_output.data,) + self._saved_values(as_tensors=False)

    def _saved_values(self, as_tensors):
        """The saved values, Tensors as Tensors or as their arrays, each checked against in-place change."""
        self.check_not_freed()
        values = []
        for tensor, version in self._saved:
            if tensor is _OUTPUT:
                tensor = self._rebuild_output()
            if version is not None:      # a Tensor (not None, a number, a tuple of axes...)
                if tensor._version[0] != version:
                    raise RuntimeError(
                        f"{self.name}: a {tuple(tensor.shape)} tensor it saved for backward was modified "
                        f"by an in-place operation: it is at version {tensor._version[0]}, it was at "
                        f"version {version} when saved. Use an out-of-place operation (x = x + y, or "
                        "x.clone()) before changing it, or change it after backward")
                if not as_tensors:
                    tensor = tensor.data
            values.append(tensor)
        return tuple(values)

    def _rebuild_output(self):
        """The output tensor, made anew from its array and version counter (see the class docstring)."""
        data, version = self._output
        tensor = Tensor._from_array(data, self.device)
        tensor._version, tensor._node, tensor._requires_grad = version, self, True
        return tensor

    def check_not_freed(self):
        """Raise if an earlier backward (without retain_graph) has already freed this node."""
        if self._saved is None:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time, but its saved "
                "values were freed by the first backward; call backward(retain_graph=True) the first time")

    def record(self, args, output_array, output):
        """Link this node into the graph as the maker of `output` (Function.apply calls this)."""
        self.inputs = tuple([_source(arg) for arg in args])
        if self._to_save:
            self._saved = [self._saved_entry(value, args, output_array, output) for value in self._to_save]
            self._to_save = ()
        self.output_shape = output_array.shape
        output._requires_grad = True
        output._node = self

    def _saved_entry(self, value, args, output_array, output):
        """(tensor, version) for one saved value: the input Tensor it is, the output, or a new constant."""
        if value is output_array:
            self._output = output_array, output._version
            return _OUTPUT, output._version[0]
        for arg in args:
            if isinstance(arg, Tensor) and value is arg.data:
                return arg, arg._version[0]
        if not backend.is_array(value):   # None, a Python number, a tuple of axes...
            return value, None
        constant = Tensor._from_array(value, output.device)
        return constant, constant._version[0]

    @property
    def retained_output(self):
        """The output tensor if it called retain_grad() and is still alive, else None (the node holds
        no strong reference to its output; see the class docstring)."""
        return self._grad_kept_by and self._grad_kept_by()

    def keep_grad_of(self, tensor):
        """Let backward fill `tensor.grad` with this node's output gradient (tensor.retain_grad()), or
        stop (None). A weak reference: the graph must not keep the tensor alive."""
        self._grad_kept_by = None if tensor is None else weakref.ref(tensor)

    def free(self):
        """Drop the saved values once backward has used them (backward without retain_graph)."""
        self._saved = None
        self._output = None


_OUTPUT = object()   # marks the output among saved values (kept as its array alone, see Node)


def _source(arg):
    """Where an argument of forward came from, for the graph: its Node, the leaf itself, or None."""
    if isinstance(arg, Tensor) and arg._requires_grad:
        return arg._node or arg
    return None


class Function:
    """Base class of every differentiable operation, built-in or written by a user.

    Subclasses define `forward(ctx, *args)` on arrays and `backward(ctx, grad_output)` on Tensors,
    returning one gradient per argument of forward (None where there is none), and are called as
    `MyOp.apply(*args)`. Tensor arguments arrive in forward as arrays; other arguments as they are.
    `ctx` is the Node recorded for this call (see Node).
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
        """Run forward on the arguments' arrays; record a Node when a gradient will be needed."""
        arrays, needs_input_grad = [], []
        for arg in args:                      # Tensors reach forward as their arrays
            if isinstance(arg, Tensor):
                arrays.append(arg.data)
                needs_input_grad.append(arg._requires_grad)
            else:
                arrays.append(arg)
                needs_input_grad.append(False)
        device = _common_device(cls.__name__, args)
        node = Node(cls, device, tuple(needs_input_grad))
        if device == "cpu":
            output_array = cls.forward(node, *arrays)
        else:
            with backend.on_device(device):     # CuPy computes on its current device: make it this one
                output_array = cls.forward(node, *arrays)
        if isinstance(output_array, Tensor):
            raise TypeError(f"{cls.__name__}.forward returned a Tensor, but forward works on arrays and must "
                            "return one: compute with ctx.xp (numpy or cupy) on the arrays it receives")
        if anomaly.enabled:   # off by default; a debugging mode (tt.detect_anomaly)
            anomaly.watch_forward(node, arrays, output_array)
        output = Tensor._from_array(output_array, device)
        if _grad_enabled and True in needs_input_grad and output.data.dtype.kind == "f":
            node.record(args, output_array, output)
        return output


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


# ----------------------------------------------------------------------------------- broadcasting

def sum_to(grad, shape):
    """Sum `grad` down to `shape`: the inverse of broadcasting `shape` up to grad.shape.

    Broadcasting adds leading axes and stretches size-1 axes. A value used at many positions gets the
    sum of their gradients, so both kinds of axes are summed away. Differentiable (Tensor ops)."""
    shape = tuple(shape)
    lead = grad.ndim - len(shape)
    if lead:
        grad = grad.sum(tuple(range(lead)))                    # the axes broadcasting added in front
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(stretched, keepdims=True)              # the size-1 axes it stretched
    return grad


def _broadcasts_to(shape, target):
    """True when `shape` broadcasts up to `target`, so that sum_to can bring a gradient back down."""
    return len(shape) <= len(target) and all(
        n in (1, m) for n, m in zip(shape[::-1], target[::-1]))


# ----------------------------------------------------------------------------------- the backward walk

def run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=None):
    """Propagate gradients from `outputs` back to every leaf.

    Without `inputs`, each leaf reached accumulates its gradient into `.grad`. With `inputs` (tt.grad),
    their gradients are returned in the same order instead (None where the outputs do not depend on one)
    and no `.grad` changes."""
    pending = {}          # Node or leaf Tensor -> the gradient flowing into it, summed over its users
    roots = _seed(outputs, grad_outputs, pending)
    captured = {} if inputs is None else dict.fromkeys(t._node or t for t in inputs)
    with _GradMode(create_graph):
        for node in _topological_order(roots):
            grad_output = pending.pop(node, None)
            if grad_output is None:
                continue                                       # no gradient flows through this node
            if node in captured:
                captured[node] = grad_output                   # tt.grad asked for this non-leaf tensor
            elif inputs is None:
                _store_retained_grad(node, grad_output, create_graph)
            input_grads = _call_backward(node, grad_output, create_graph)
            for index, source in enumerate(node.inputs):
                grad = input_grads[index]
                if source is None or grad is None:
                    continue
                shape = source.shape if isinstance(source, Tensor) else source.output_shape
                if grad.shape != shape:
                    _check_broadcast(node, index, grad.shape, shape)
                    grad = sum_to(grad, shape)                 # undo broadcasting, in this one place
                pending[source] = pending[source] + grad if source in pending else grad
            if not retain_graph:
                node.free()
    return _deliver(pending, captured, inputs, create_graph)


def _seed(outputs, grad_outputs, pending):
    """Put each output's starting gradient (ones for a scalar) into `pending`; return the output nodes."""
    roots = []
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
                grad = Tensor._from_array(out.xp.ones_like(out.data), out.device)
        elif not isinstance(grad, Tensor):
            grad = Tensor(grad, dtype=out.dtype, device=out.device)
        if grad.shape != out.shape:
            raise RuntimeError(f"backward: the gradient has shape {tuple(grad.shape)} but the output "
                               f"has shape {tuple(out.shape)}")
        source = out._node or out
        pending[source] = pending[source] + grad if source in pending else grad
        if out._node is not None:
            roots.append(out._node)
    return roots


def _topological_order(roots):
    """Nodes reachable from the roots, each after every node that consumes its output.

    Iterative depth-first search (no recursion, so a graph thousands of nodes deep is fine)."""
    order, visited = [], set()
    stack = [(root, False) for root in roots]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for source in node.inputs:
            if isinstance(source, Node) and source not in visited:
                stack.append((source, False))
    order.reverse()
    return order


def _call_backward(node, grad_output, create_graph):
    """The node's Function.backward, checked: one gradient Tensor (or None) per argument of forward."""
    node.check_not_freed()
    if create_graph and not node.fn.differentiable_backward:
        raise RuntimeError(f"{node.name}: its backward is not differentiable, so "
                           "create_graph=True (second derivatives) is not supported through it")
    node.create_graph = create_graph
    with backend.on_device(node.device):        # its array code runs where its data lives
        if anomaly.enabled:   # off by default; a debugging mode (tt.detect_anomaly)
            grads = anomaly.watch_backward(node, grad_output)
        else:
            grads = node.fn.backward(node, grad_output)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(node.inputs):
        raise RuntimeError(f"{node.name}.backward returned {len(grads)} gradients for "
                           f"{len(node.inputs)} arguments of forward")
    # Arrays (and NumPy scalars, which 0-d arithmetic gives) from a backward on arrays become Tensors.
    return [g if g is None or isinstance(g, Tensor) else Tensor._from_array(g, node.device) for g in grads]


def _check_broadcast(node, index, grad_shape, shape):
    """Refuse a gradient whose shape is not the argument's shape broadcast (a bug in the backward)."""
    if not _broadcasts_to(shape, grad_shape):
        raise RuntimeError(
            f"{node.name}.backward returned a gradient of shape {tuple(grad_shape)} for argument "
            f"{index}, which has shape {tuple(shape)}: a gradient must have its argument's shape (only "
            "axes added or stretched by broadcasting may be left for the engine to sum)")


def _store_retained_grad(node, grad, create_graph):
    """Fill `.grad` of the node's output when it asked for it with retain_grad()."""
    output = node.retained_output
    if output is not None:
        output.grad = _accumulated_grad(output.grad, grad, create_graph)


def _accumulated_grad(existing, grad, create_graph):
    """existing + grad for a `.grad` field; a new Tensor each time, never an in-place change."""
    if not create_graph:
        grad = grad.detach()
    return grad if existing is None else existing + grad


def _deliver(pending, captured, inputs, create_graph):
    """The end of the walk: only leaves are left in `pending`. Accumulate them into `.grad`, or, for
    tt.grad, return the gradients of `inputs` in order."""
    if inputs is None:
        for leaf, grad in pending.items():
            leaf.grad = _accumulated_grad(leaf.grad, grad, create_graph)
        return None
    captured.update((leaf, grad) for leaf, grad in pending.items() if leaf in captured)
    return tuple(captured[t._node or t] for t in inputs)


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
