"""tt.viz: DOT text of the autograd graph, with shapes, names and gradient norms; a picture via Graphviz."""
import re
import shutil

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import viz


def small_graph():
    w = tt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = tt.tensor([0.5, -0.5], requires_grad=True)
    x = tt.tensor([[1.0, -1.0]])
    h = (x @ w + b).tanh()
    loss = (h * h).sum()          # h is used twice: one node, two edges
    return w, b, loss


def test_dot_has_ops_tensors_shapes_and_names():
    w, b, loss = small_graph()
    dot = tt.viz.to_dot(loss, {"w": w, "b": b}, title="loss")
    assert dot.startswith("digraph")
    for op in ("MatMul", "Add", "Tanh", "Mul", "Sum"):
        assert len(re.findall(rf'label="{op}"', dot)) == 1, op
    assert 'label="w\\nshape (2, 2)"' in dot and 'label="b\\nshape (2,)"' in dot
    assert 'label="loss\\nshape ()"' in dot
    assert "|grad|" not in dot                      # no backward yet
    # edges into ops: matmul 1 (x needs no gradient, so it is not in the graph), add 2, tanh 1, mul 2, sum 1
    assert len(re.findall(r"-> op\d+;", dot)) == 7


def test_gradient_norms_appear_after_backward():
    w, b, loss = small_graph()
    loss.backward()
    dot = tt.viz.to_dot(loss, {"w": w, "b": b})
    norm = np.linalg.norm(w.grad.numpy())
    assert f'label="w\\nshape (2, 2)\\n|grad| = {norm:.4g}"' in dot


def test_same_graph_same_text_and_a_leaf_output():
    assert tt.viz.to_dot(small_graph()[2]) == tt.viz.to_dot(small_graph()[2])
    leaf = tt.tensor([1.0, 2.0])
    assert tt.viz.to_dot(leaf).startswith("digraph") and "op" not in tt.viz.to_dot(leaf)


def test_render_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz.*brew install graphviz"):
        tt.viz.render(small_graph()[2], tmp_path / "graph.png")
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.pdf"):
        tt.viz.render(small_graph()[2], tmp_path / "graph.jpeg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_writes_svg_and_png(tmp_path):
    loss = small_graph()[2]
    svg = tt.viz.render(loss, tmp_path / "graph.svg")
    assert "<svg" in svg.read_text() and "Tanh" in svg.read_text()
    png = tt.viz.render(loss, tmp_path / "graph.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_retained_intermediate_gradient_shows_its_norm():
    x = tt.tensor([1.0, -2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    loss = (h * h).sum()
    loss.backward()
    norm = np.linalg.norm(h.grad.numpy())                 # 2 h = [6, -12]
    assert f'label="shape (2,)\\n|grad| = {norm:.4g}"' in tt.viz.to_dot(loss)
