"""Gradients small enough to check with pencil and paper. Each test says how the numbers come about."""
import math

import numpy as np
import pytest

import tinytensor as tt


def test_product_rule(device):
    # z = x * y with x = 3, y = 4:  dz/dx = y = 4,  dz/dy = x = 3.
    x = tt.tensor(3.0, device=device, requires_grad=True)
    y = tt.tensor(4.0, device=device, requires_grad=True)
    z = x * y
    z.backward()
    assert z.item() == 12.0
    assert x.grad.item() == 4.0 and y.grad.item() == 3.0


def test_chain_rule_through_a_sum_of_paths(device):
    # f = x*x + 3x at x = 2: f = 4 + 6 = 10; df/dx = 2x + 3 = 7 (the two uses of x add up).
    x = tt.tensor(2.0, device=device, requires_grad=True)
    f = x * x + 3 * x
    f.backward()
    assert f.item() == 10.0 and x.grad.item() == 7.0


def test_sum_of_matmul(device):
    # L = sum(A @ B) = sum_i sum_k sum_j A[i,k] B[k,j], so
    #   dL/dA[i,k] = sum_j B[k,j]  (row k of B summed):    row 0: 5 + 6 = 11, row 1: 7 + 8 = 15
    #   dL/dB[k,j] = sum_i A[i,k]  (column k of A summed): col 0: 1 + 3 = 4,  col 1: 2 + 4 = 6
    # A @ B = [[1*5 + 2*7, 1*6 + 2*8], [3*5 + 4*7, 3*6 + 4*8]] = [[19, 22], [43, 50]], L = 134.
    a = tt.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    b = tt.tensor([[5.0, 6.0], [7.0, 8.0]], device=device, requires_grad=True)
    product = a @ b
    product.sum().backward()
    assert product.tolist() == [[19.0, 22.0], [43.0, 50.0]]
    assert a.grad.tolist() == [[11.0, 15.0], [11.0, 15.0]]
    assert b.grad.tolist() == [[4.0, 4.0], [6.0, 6.0]]


def test_softmax_jacobian_vector_product(device):
    # x = log([1, 2, 1]), so y = softmax(x) = [1, 2, 1] / 4 = [0.25, 0.5, 0.25].
    # With the upstream gradient g = [1, 0, 0] (we look at dy0 only):
    #   sum(g * y) = 0.25
    #   dx = y * (g - sum(g * y)) = [0.25 * 0.75, 0.5 * (-0.25), 0.25 * (-0.25)] = [0.1875, -0.125, -0.0625]
    # The entries add up to 0: adding a constant to every x does not change the softmax.
    x = tt.tensor(np.log([1.0, 2.0, 1.0]), dtype=tt.float64, device=device, requires_grad=True)
    y = tt.softmax(x)
    y.backward(tt.tensor([1.0, 0.0, 0.0], dtype=tt.float64, device=device))
    np.testing.assert_allclose(y.detach().numpy(), [0.25, 0.5, 0.25], rtol=1e-15)
    np.testing.assert_allclose(x.grad.numpy(), [0.1875, -0.125, -0.0625], rtol=1e-14)


def test_cross_entropy_gradient_is_softmax_minus_onehot(device):
    # loss = -log_softmax(x)[1] with x = log([1, 2, 1]): loss = -log(0.5) = log 2,
    # dloss/dx = softmax(x) - onehot(1) = [0.25, -0.5, 0.25].
    x = tt.tensor(np.log([1.0, 2.0, 1.0]), dtype=tt.float64, device=device, requires_grad=True)
    loss = -tt.log_softmax(x)[1]
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2), rel=1e-14)
    np.testing.assert_allclose(x.grad.numpy(), [0.25, -0.5, 0.25], rtol=1e-14)


def test_broadcast_add_sums_the_gradient(device):
    # a (2, 3) + b (3,): b is reused on both rows, so each b[j] collects 1 + 1 = 2.
    a = tt.ones(2, 3, device=device, requires_grad=True)
    b = tt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (a + b).sum().backward()
    assert b.grad.tolist() == [2.0, 2.0, 2.0] and a.grad.tolist() == [[1.0] * 3] * 2


def test_mean_and_variance(device):
    # x = [1, 2, 3, 6]: mean 3, deviations [-2, -1, 0, 3], population var = (4 + 1 + 0 + 9) / 4 = 3.5,
    # dvar/dx = 2 * deviation / 4 = [-1, -0.5, 0, 1.5]. The default (unbiased) divides by 3: 14 / 3.
    x = tt.tensor([1.0, 2.0, 3.0, 6.0], device=device, requires_grad=True)
    v = x.var(correction=0)
    v.backward()
    assert v.item() == 3.5 and x.grad.tolist() == [-1.0, -0.5, 0.0, 1.5]
    assert x.var().item() == pytest.approx(14 / 3)


def test_max_shares_the_gradient_between_ties(device):
    # max([1, 4, 4]) = 4, reached twice: each 4 gets half of the gradient.
    x = tt.tensor([1.0, 4.0, 4.0], device=device, requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_second_derivative_of_a_cube(device):
    # f = x^3 at x = 2: f' = 3x^2 = 12, f'' = 6x = 12.
    x = tt.tensor(2.0, dtype=tt.float64, device=device, requires_grad=True)
    (first,) = tt.grad(x ** 3, x, create_graph=True)
    (second,) = tt.grad(first, x)
    assert first.item() == pytest.approx(12.0) and second.item() == pytest.approx(12.0)


def test_tanh_and_sigmoid_at_zero(device):
    # tanh'(0) = 1 - tanh(0)^2 = 1;  sigmoid'(0) = s (1 - s) = 0.5 * 0.5 = 0.25.
    x = tt.tensor(0.0, device=device, requires_grad=True)
    (tt.tanh(x) + tt.sigmoid(x)).backward()
    assert x.grad.item() == 1.25
