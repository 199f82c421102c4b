"""The engine itself: the backward walk, grad modes, tt.grad, higher order, in-place safety, custom ops."""
import numpy as np
import pytest

import tinytensor as tt


def test_gradients_accumulate_across_backward_calls():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_a_tensor_used_twice_gets_both_contributions():
    x = tt.tensor(2.0, requires_grad=True)
    y = x * x + x           # dy/dx = 2x + 1 = 5
    y.backward()
    assert x.grad.item() == 5.0


def test_leaf_grads_are_separate_tensors():
    a, b = tt.ones(3, requires_grad=True), tt.ones(3, requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    (a * 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [3, 3, 3])
    np.testing.assert_allclose(b.grad.numpy(), [1, 1, 1])


def test_non_scalar_backward_needs_a_gradient():
    x = tt.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar output.*\(2, 3\)"):
        (x * 2).backward()
    (x * 2).backward(tt.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 3)))


def test_gradient_of_wrong_shape_is_refused():
    x = tt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(tt.ones(3))


def test_second_backward_through_a_freed_graph_is_an_error():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4, 8])


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = tt.tensor(1.0, dtype=tt.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 5000)


def test_backward_of_a_tensor_without_graph_says_why():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (tt.ones(2) * 2).sum().backward()


def test_no_grad_records_nothing_as_context_and_decorator():
    x = tt.ones(2, requires_grad=True)
    with tt.no_grad():
        assert not tt.is_grad_enabled()
        assert not (x * 2).requires_grad
        with tt.enable_grad():
            assert (x * 2).requires_grad
    assert tt.is_grad_enabled()

    @tt.no_grad
    def plain(t):
        return t * 2

    @tt.no_grad()
    def called(t):
        return t * 2

    assert not plain(x).requires_grad and not called(x).requires_grad
    assert tt.is_grad_enabled()


def test_grad_returns_gradients_without_touching_dot_grad():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    w = tt.tensor([3.0, 4.0], requires_grad=True)
    h = x * w
    gx, gh = tt.grad(h.sum() * 2, [x, h])
    np.testing.assert_allclose(gx.numpy(), [6, 8])
    np.testing.assert_allclose(gh.numpy(), [2, 2])
    assert x.grad is None and w.grad is None


def test_grad_of_an_unused_input():
    x, unused = tt.ones(2, requires_grad=True), tt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1.*allow_unused"):
        tt.grad((x * 2).sum(), [x, unused])
    _, g = tt.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert g is None


def test_hessian_vector_product_with_create_graph():
    # f(x) = sum(x^3): gradient 3x^2, Hessian diag(6x), so H v = 6 x v.
    x = tt.tensor([1.0, 2.0, 3.0], dtype=tt.float64, requires_grad=True)
    v = tt.tensor([1.0, -1.0, 0.5], dtype=tt.float64)
    (g,) = tt.grad((x ** 3).sum(), x, create_graph=True)
    (hv,) = tt.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.numpy(), 6 * np.array([1, 2, 3]) * [1, -1, 0.5])


def test_gradient_penalty_trains_through_the_gradient():
    # penalty = |d(w.x)/dx|^2 = |w|^2, whose gradient with respect to w is 2w.
    w = tt.tensor([0.5, -1.5], requires_grad=True)
    x = tt.tensor([2.0, 3.0], requires_grad=True)
    (gx,) = tt.grad((w * x).sum(), x, create_graph=True)
    (gx * gx).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, -3.0])


def test_backward_with_create_graph_keeps_the_graph_of_dot_grad():
    x = tt.tensor(3.0, dtype=tt.float64, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    g = x.grad                      # 3 x^2 = 27, itself differentiable: 6 x = 18
    assert g.item() == 27.0 and g.requires_grad
    x.grad = None
    g.backward()
    assert x.grad.item() == 18.0


def test_modifying_a_saved_tensor_in_place_is_caught():
    w = tt.randn(4, 3, requires_grad=True)
    a = tt.randn(3)
    y = (w * a).sum()
    a += 1                       # Mul saved a for dy/dw
    with pytest.raises(RuntimeError) as info:
        y.backward()
    message = str(info.value)
    assert "Mul" in message and "(3,)" in message and "version 1" in message and "version 0" in message


def test_saved_output_changed_in_place_is_caught():
    x = tt.randn(3, requires_grad=True)
    y = x.exp()
    y += 1                       # Exp saved its output
    with pytest.raises(RuntimeError, match="Exp.*in-place"):
        y.sum().backward()


def test_in_place_change_of_a_leaf_that_requires_grad_is_refused():
    w = tt.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf.*no_grad"):
        w += 1
    with pytest.raises(RuntimeError, match="leaf.*no_grad"):
        w[0] = 5.0


def test_optimizer_style_updates_between_steps_are_fine():
    w = tt.tensor([1.0, -2.0], requires_grad=True)
    x = tt.tensor([3.0, 4.0])
    for _ in range(3):
        loss = (w * x).sum()
        loss.backward()
        with tt.no_grad():
            w -= 0.1 * w.grad
        w.grad = None
    np.testing.assert_allclose(w.numpy() if not w.requires_grad else w.detach().numpy(),
                               [1.0 - 3 * 0.3, -2.0 - 3 * 0.4], rtol=1e-6)
    assert w._version[0] == 3


def test_in_place_result_that_does_not_fit_the_dtype_is_a_clear_error(device):
    # PyTorch refuses ints += 0.5 too ("result type Float can't be cast to Long"); say so without NumPy's words.
    counts = tt.tensor([1, 2], device=device)
    with pytest.raises(TypeError, match=r"add \(in place\): the result does not fit this int64 tensor"):
        counts += 0.5
    with pytest.raises(TypeError, match=r"div \(in place\).*\.float\(\)"):
        counts /= 2
    counts += 1
    assert counts.tolist() == [2, 3]


def test_in_place_ops_on_intermediates_are_differentiated():
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    h += x                       # h = 3x
    h *= h                       # h = 9x^2
    h[0] = 0.0                   # first element no longer depends on x
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 18 * 2, 18 * 3])


def test_item_assignment_of_a_tensor_that_requires_grad():
    base = tt.zeros(4)
    value = tt.tensor([1.0, 2.0], requires_grad=True)
    base[1:3] = value
    (base * tt.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_allclose(value.grad.numpy(), [2, 3])


def test_in_place_without_autograd_writes_into_the_same_array():
    x = tt.zeros(3)
    array = x.data
    x += 2
    x[0] = 7
    assert x.data is array
    np.testing.assert_allclose(array, [7, 2, 2])


def test_retain_grad_keeps_an_intermediate_gradient():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6, 12])
    assert not h.is_leaf and x.is_leaf and h.grad_fn is not None


def test_detach_cuts_the_graph_and_shares_data():
    x = tt.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * 2)
    assert y.detach().data is y.data


class Cube(tt.Function):
    """y = x^3 * scale        dy/dx = 3 x^2 * scale"""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x ** 3 * scale

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x * ctx.scale, None


def test_custom_function_pytorch_style():
    x = tt.tensor([1.0, 2.0], dtype=tt.float64, requires_grad=True)
    y = Cube.apply(x, 2.0)
    np.testing.assert_allclose(y.detach().numpy(), [2, 16])
    assert y.grad_fn.needs_input_grad == (True, False)
    assert tt.gradcheck(lambda t: Cube.apply(t, 2.0), (x,))
    assert tt.gradgradcheck(lambda t: Cube.apply(t, 2.0), (x,))


def test_function_whose_backward_is_not_differentiable_says_so():
    class Fused(tt.Function):
        differentiable_backward = False

        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = tt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Fused.*not differentiable"):
        tt.grad(Fused.apply(x).sum(), x, create_graph=True)


def test_backward_returning_the_wrong_number_of_gradients():
    class Broken(tt.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(RuntimeError, match="Broken.backward returned 1 gradients for 2"):
        Broken.apply(tt.ones(2, requires_grad=True), tt.ones(2)).sum().backward()


def test_gradcheck_names_the_input_and_element_of_a_wrong_gradient():
    class WrongSquare(tt.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x          # should be 2x

    x = tt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with pytest.raises(tt.GradcheckError, match=r"input 0.*index \(.*analytic.*numeric.*relative"):
        tt.gradcheck(WrongSquare.apply, (x,))
    with pytest.raises(tt.GradcheckError, match="one random direction"):
        tt.gradcheck(WrongSquare.apply, (x,), fast=True)


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point.*int64"):
        tt.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        tt.arange(3).requires_grad_()


def test_operations_on_integers_record_no_graph():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    index = tt.tensor([0, 1]) * 1
    assert not index.requires_grad
    assert (x * 2).requires_grad


def test_python_scalars_and_numpy_arrays_mix_in_as_constants():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = 2 * x + np.array([1.0, 1.0]) - 1
    assert y.dtype == tt.float32                  # a float64 constant does not upcast float32
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])
    np.testing.assert_allclose((np.ones(2) * x).detach().numpy(), [1, 2])


@pytest.mark.cuda
def test_mixing_devices_in_one_op_is_an_error():
    with pytest.raises(RuntimeError, match="device mismatch.*cpu.*cuda:0.*to"):
        tt.ones(2) + tt.ones(2, device="cuda")


@pytest.mark.cuda
def test_the_same_graph_runs_on_the_gpu():
    x = tt.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.device == "cuda:0"
    np.testing.assert_allclose(x.grad.numpy(), [2, 4])
    y = x.detach().cpu().requires_grad_()
    (y.cuda() * 3).sum().backward()               # the gradient comes back to the CPU leaf
    np.testing.assert_allclose(y.grad.numpy(), [3, 3])


def test_gradgradcheck_of_a_linear_op_checks_a_zero_hessian():
    x = tt.randn(2, 3, dtype=tt.float64, requires_grad=True)
    assert tt.gradgradcheck(lambda t: t.reshape(3, 2) * 2, (x,))


def test_gradcheck_runs_on_the_device_of_its_inputs(device):
    """The float64 copies gradcheck makes stay where the inputs are, so the cuda suite tests the GPU."""
    seen = []

    def square(t):
        seen.append((t.device, t.dtype))
        return t * t

    x = tt.tensor([1.0, -2.0], device=device, requires_grad=True)   # float32: upcast, not moved
    assert tt.gradcheck(square, (x,)) and tt.gradgradcheck(square, (x,))
    assert set(seen) == {(tt.tensor(0.0, device=device).device, tt.float64)}
