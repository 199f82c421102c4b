"""The graph as code can see it: the Node's public surface, create_graph reaching backward, sum_to."""
import inspect

import numpy as np
import pytest

import tinytensor as tt


def test_a_node_names_its_op_and_its_inputs():
    w = tt.tensor(2.0, requires_grad=True)
    x = tt.tensor(3.0, requires_grad=True)
    b = tt.tensor(1.0)
    loss = (w * x + b) ** 2
    pow_node = loss.grad_fn
    assert isinstance(pow_node, tt.Node) and pow_node.name == "Pow"
    add_node, exponent = pow_node.inputs
    assert add_node.name == "Add" and exponent is None           # the constant 2 needs no gradient
    mul_node, b_source = add_node.inputs
    assert b_source is None                                       # b does not require grad
    assert mul_node.inputs[0] is w and mul_node.inputs[1] is x    # leaves appear as themselves
    assert mul_node.output_shape == () and mul_node.needs_input_grad == (True, True)
    assert repr(pow_node) == "<PowBackward>"


def test_a_leaf_and_a_tensor_made_without_gradients_have_no_node():
    x = tt.ones(3, requires_grad=True)
    assert x.grad_fn is None
    with tt.no_grad():
        assert (x * 2).grad_fn is None


def test_every_node_field_is_declared_in_init():
    x = tt.ones(2, 3, requires_grad=True)
    node = x.exp().grad_fn
    fresh = tt.Node(tt.Function, "cpu", (True,))
    for field in tt.Node.__slots__[:-1]:                          # the last is __dict__, for ctx.axes etc.
        getattr(fresh, field)                                     # set by __init__: no AttributeError
    assert vars(node) == {}                                       # apply and record add no field


def test_create_graph_reaches_the_backward():
    seen = []

    class Square(tt.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            seen.append(ctx.create_graph)
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = tt.tensor(3.0, dtype=tt.float64, requires_grad=True)
    Square.apply(x).backward()
    (g,) = tt.grad(Square.apply(x), x, create_graph=True)
    (h,) = tt.grad(g, x)
    assert seen == [False, True] and g.item() == 6 and h.item() == 2   # h: through the recorded 2 * x * grad


def test_sum_to_is_an_engine_function_that_inverts_broadcasting():
    assert inspect.getmodule(tt.sum_to).__name__ == "tinytensor.autograd"
    g = tt.ones(4, 2, 3)
    assert tt.sum_to(g, (2, 1)).shape == (2, 1) and tt.sum_to(g, (2, 1)).numpy().ravel().tolist() == [12, 12]
    assert tt.sum_to(g, (3,)).numpy().tolist() == [8, 8, 8]
    assert g.sum_to((4, 2, 3)) is g


def test_tensor_methods_are_written_out_in_the_class():
    for name in ("exp", "sum", "reshape", "__add__", "__rmul__", "__getitem__", "sum_to"):
        method = inspect.unwrap(tt.Tensor.__dict__[name])   # past @pytorch_keywords, which only renames
        assert method.__name__ == name and method.__code__.co_filename.endswith("tensor.py")


def test_a_traceback_names_the_method_not_a_lambda():
    x = tt.ones(2, 3)
    with pytest.raises(ValueError) as info:
        x @ tt.ones(2, 3)
    names = [entry.name for entry in info.traceback]
    assert "__matmul__" in names and "<lambda>" not in names


def test_as_tensor_shares_memory_and_mark_modified_bumps_the_version():
    array = np.zeros(3, np.float32)
    t = tt.as_tensor(array)
    array[0] = 5
    assert t.numpy()[0] == 5 and t.dtype == tt.float32
    assert tt.as_tensor(array, dtype=tt.float64).numpy() is not array          # a change of dtype copies
    version = t.version
    t.mark_modified()
    assert t.version == version + 1


def _op_whose_backward_returns(make_grad):
    class Custom(tt.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return make_grad(grad)
    return Custom


def test_a_transposed_gradient_is_an_error_naming_the_function_argument_and_shapes():
    Custom = _op_whose_backward_returns(lambda grad: grad.T)
    x = tt.ones(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Custom\.backward returned a gradient of shape \(4, 3\) for "
                                           r"argument 0, which has shape \(3, 4\)"):
        Custom.apply(x).sum().backward()
    assert x.grad is None


def test_a_gradient_of_the_wrong_size_is_the_same_clear_error():
    Custom = _op_whose_backward_returns(lambda grad: tt.ones(5))
    x = tt.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Custom\.backward .* shape \(5,\) for argument 0, which has "
                                           r"shape \(3,\)"):
        Custom.apply(x).sum().backward()


def test_a_gradient_missing_a_size_one_axis_is_refused_not_reshaped():
    Custom = _op_whose_backward_returns(lambda grad: grad.reshape(3))
    x = tt.ones(3, 1, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3,\) for argument 0, which has shape \(3, 1\)"):
        Custom.apply(x).sum().backward()


def test_only_broadcast_axes_are_summed_implicitly():
    Custom = _op_whose_backward_returns(lambda grad: grad * tt.ones(2, 1, 3))   # broadcast up to (2, 4, 3)
    x = tt.ones(4, 1, requires_grad=True)
    Custom.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((4, 1), 6.0))           # 2 * 3 copies summed


@pytest.mark.parametrize("op", ["linear", "relu", "cross_entropy"])
def test_a_backward_on_arrays_agrees_with_the_same_backward_on_tensors(op):
    """backward_operands gives arrays without create_graph, Tensors with it: same formulas, same numbers."""
    rng = np.random.default_rng(0)
    x = tt.tensor(rng.standard_normal((4, 3, 5)), dtype=tt.float64, requires_grad=True)
    w = tt.tensor(rng.standard_normal((2, 5)), dtype=tt.float64, requires_grad=True)
    b = tt.tensor(rng.standard_normal(2), dtype=tt.float64, requires_grad=True)
    target = tt.tensor(rng.integers(0, 5, 4))
    fn = {"linear": lambda: (tt.linear(x, w, b) ** 2).sum(),
          "relu": lambda: (tt.relu(x) * x).sum(),
          "cross_entropy": lambda: tt.cross_entropy(x[:, 0] * 3, target, label_smoothing=0.1)}[op]
    inputs = [x, w, b] if op == "linear" else [x]
    on_arrays = tt.grad(fn(), inputs)
    on_tensors = tt.grad(fn(), inputs, create_graph=True)
    assert all(g.grad_fn is None for g in on_arrays) and on_tensors[0].grad_fn is not None
    for a, t in zip(on_arrays, on_tensors):
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_a_forward_that_returns_a_tensor_is_told_to_return_an_array():
    class Wrong(tt.Function):
        @staticmethod
        def forward(ctx, x):
            return tt.tensor(x) * 2

    with pytest.raises(TypeError, match=r"Wrong\.forward returned a Tensor.*ctx\.xp"):
        Wrong.apply(tt.ones(2, requires_grad=True))
