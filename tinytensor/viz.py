"""Drawing the autograd graph: Graphviz DOT text, and a picture when Graphviz is installed.

    loss = tt.cross_entropy(model(x), y)
    loss.backward()
    print(tt.viz.to_dot(loss, dict(model.named_parameters())))   # text; no Python dependency
    tt.viz.render(loss, "graph.png", dict(model.named_parameters()))

Ops are boxes, tensors ellipses with their shape; leaves that require grad are filled, and a tensor
that has a `.grad` (leaves after backward, or any tensor after `retain_grad()`) shows its norm. Data
flows down the page from the leaves to the output. Tensors that need no gradient (the data, the labels)
are not part of the graph, so they are not drawn.
"""
import shutil
import subprocess
from pathlib import Path

from .tensor import Tensor


def graph_of(tensor):
    """The ops that made `tensor`, outputs first: (op, op name, output shape, output Tensor or None,
    inputs), each input an op or a leaf Tensor. The one function that reads the engine's graph nodes."""
    ops, seen, stack = [], set(), [tensor.grad_fn] if tensor.grad_fn is not None else []
    while stack:
        op = stack.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        output = tensor if op is tensor.grad_fn else op.retained_output   # only these can have a .grad
        inputs = [parent for parent in op.inputs if parent is not None]
        ops.append((op, op.name, tuple(op.output_shape), output, inputs))
        stack.extend(parent for parent in inputs if not isinstance(parent, Tensor))
    return ops


def _label(*lines):
    return "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)


def _tensor_label(name, shape, tensor):
    lines = ([name] if name else []) + [f"shape {shape}"]
    if tensor is not None and tensor.grad is not None:
        grad = tensor.grad.detach().numpy()
        lines.append(f"|grad| = {float((grad * grad).sum()) ** 0.5:.4g}")
    return _label(*lines)


def to_dot(tensor, names=None, title=None):
    """Graphviz DOT text (starting `digraph`) of the graph that computed `tensor`.

    names: {name: Tensor} for the leaves to label, e.g. dict(model.named_parameters()); other leaves are
    labelled 'input'. The output is labelled `title` (default 'output')."""
    names = {id(t): name for name, t in (names or {}).items()}
    numbers = {}      # id of an op or tensor -> a small number, so the same graph gives the same text

    def key(prefix, thing):
        return f"{prefix}{numbers.setdefault(id(thing), len(numbers))}"

    output_label = _tensor_label(title or "output", tuple(tensor.shape), tensor)
    lines = ["digraph autograd {", '  node [fontname="Helvetica", fontsize=10];',
             f'  {key("t", tensor)} [label="{output_label}", shape=ellipse, style=bold];']
    declared = set()
    for op, name, shape, output, inputs in graph_of(tensor):
        out = key("t", tensor) if op is tensor.grad_fn else key("t", op) + "_out"
        lines.append(f'  {key("op", op)} [label="{_label(name)}", shape=box, style=filled, fillcolor="#fde9c9"];')
        if op is not tensor.grad_fn:
            lines.append(f'  {out} [label="{_tensor_label("", shape, output)}", shape=ellipse];')
        lines.append(f"  {key('op', op)} -> {out};")
        for parent in inputs:
            if not isinstance(parent, Tensor):          # another op: its output tensor feeds this op
                lines.append(f"  {key('t', parent)}_out -> {key('op', op)};")
                continue
            if id(parent) not in declared:
                declared.add(id(parent))
                label = _tensor_label(names.get(id(parent), "input"), tuple(parent.shape), parent)
                lines.append(f'  {key("t", parent)} [label="{label}", shape=ellipse, style=filled, '
                             'fillcolor="#d7e8fa"];')
            lines.append(f"  {key('t', parent)} -> {key('op', op)};")
    return "\n".join(lines + ["}"]) + "\n"


def render(tensor, path, names=None, title=None):
    """Write the graph as a picture (the format from the suffix: .svg, .png or .pdf) with Graphviz's
    `dot` program; return the path."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"render: cannot tell the format from {path.name!r}; end the path with .svg, "
                         ".png or .pdf")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("render needs Graphviz's `dot` program, which is not on PATH: install Graphviz "
                           "(apt-get install graphviz, or brew install graphviz on macOS), or save "
                           "tt.viz.to_dot(...) to a .dot file and render it elsewhere")
    path.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=to_dot(tensor, names, title),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"render: dot failed writing {path}: {result.stderr.strip()}")
    return path
