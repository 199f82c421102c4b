"""Losses against NumPy references and known values; gradients by gradcheck in float64."""
import math

import numpy as np
import pytest

import tinytensor as tt
from tests.helpers import check_op

REDUCTIONS = ["mean", "sum", "none"]


def log_softmax_reference(z, axis=1):
    shifted = z - z.max(axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


def cross_entropy_reference(z, t, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """Row by row, as the definition reads: (1-s) w[t] (-log p_t) + s/C sum_c w_c (-log p_c)."""
    log_p = log_softmax_reference(z)
    classes = z.shape[1]
    w = np.ones(classes) if weight is None else weight
    losses, total = [], 0.0
    for row, target in zip(log_p, t):
        if target == ignore_index:
            losses.append(0.0)
            continue
        losses.append(-(1 - smoothing) * w[target] * row[target] - smoothing / classes * (w * row).sum())
        total += w[target]
    losses = np.array(losses)
    return {"none": losses, "sum": losses.sum(), "mean": losses.sum() / total}[reduction]


def reduce_reference(loss, reduction):
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


# ----------------------------------------------------------------------------------- cross entropy

def test_cross_entropy_of_uniform_logits_is_log_classes(device):
    loss = tt.cross_entropy(tt.zeros(5, 7, device=device), tt.tensor([0, 1, 2, 3, 6], device=device))
    assert loss.dtype == tt.float32
    np.testing.assert_allclose(loss.item(), math.log(7), rtol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy(device, rng, reduction, smoothing):
    z, t = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    check_op(lambda z: tt.cross_entropy(z, tt.tensor(t, device=device), reduction=reduction,
                                        label_smoothing=smoothing),
             lambda z: cross_entropy_reference(z, t, reduction=reduction, smoothing=smoothing), z,
             device=device, second_order=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_weight_ignore_index_and_smoothing(device, rng, reduction):
    z, t, w = rng.standard_normal((5, 4)), np.array([3, -1, 0, 3, 1]), rng.random(4) + 0.5
    check_op(lambda z: tt.cross_entropy(z, tt.tensor(t, device=device), tt.tensor(w, device=device), -1,
                                        reduction, 0.1),
             lambda z: cross_entropy_reference(z, t, w, -1, reduction, 0.1), z, device=device)


def test_cross_entropy_spatial_targets(device, rng):
    z, t = rng.standard_normal((2, 3, 2, 2)), rng.integers(0, 3, (2, 2, 2))
    flat_z, flat_t = z.transpose(0, 2, 3, 1).reshape(-1, 3), t.reshape(-1)
    out = check_op(lambda z: tt.cross_entropy(z, tt.tensor(t, device=device), reduction="none"),
                   lambda z: cross_entropy_reference(flat_z, flat_t, reduction="none").reshape(2, 2, 2), z,
                   device=device)
    assert out.shape == (2, 2, 2)


def test_cross_entropy_unbatched(device, rng):
    z = rng.standard_normal(4)
    check_op(lambda z: tt.cross_entropy(z, tt.tensor(2, device=device)),
             lambda z: -log_softmax_reference(z, 0)[2], z, device=device)


def test_cross_entropy_probability_targets(device, rng):
    z, p = rng.standard_normal((3, 4)), rng.dirichlet(np.ones(4), 3)
    check_op(lambda z, p: tt.cross_entropy(z, p, label_smoothing=0.1),
             lambda z, p: -((0.9 * p + 0.025) * log_softmax_reference(z)).sum(1).mean(), z, p, device=device)


def test_cross_entropy_huge_logits_stay_finite(device):
    z = tt.tensor([[1000.0, 0.0, -1000.0]], device=device, requires_grad=True)
    loss = tt.cross_entropy(z, tt.tensor([1], device=device))
    loss.backward()
    np.testing.assert_allclose(loss.item(), 1000.0)
    np.testing.assert_allclose(z.grad.numpy(), [[1.0, -1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("loss_fn", [
    lambda z, t: tt.cross_entropy(z, t),
    lambda z, t: tt.cross_entropy(z, t, weight=tt.tensor([1.0, 2.0, 3.0], dtype=z.dtype, device=z.device), label_smoothing=0.1),
    lambda z, t: tt.ops.loss.cross_entropy_composite(z, t, label_smoothing=0.1),
    lambda z, t: tt.nll_loss(tt.log_softmax(z, 1), t)])
def test_mean_over_no_targets_is_nan_with_a_zero_gradient(device, loss_fn):
    # Every target ignored (a batch of padding): PyTorch's mean is 0 / 0 = NaN, but its gradient is 0, so a
    # step taken anyway leaves the weights as they are instead of filling them with NaN.
    z = tt.tensor(np.arange(6.0).reshape(2, 3), dtype=tt.float64, device=device, requires_grad=True)
    loss = loss_fn(z, tt.tensor([-100, -100], device=device))
    loss.backward()
    assert math.isnan(loss.item()) and z.grad.tolist() == [[0.0] * 3] * 2


def test_cross_entropy_errors():
    z = tt.zeros(3, 4)
    with pytest.raises(ValueError, match=r"target has shape \(2,\) but input of shape \(3, 4\) needs .*\(3,\)"):
        tt.cross_entropy(z, tt.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer class indices, got dtype float32"):
        tt.cross_entropy(z, tt.zeros(3))
    with pytest.raises(IndexError, match=r"target class 4 is out of range for 4 classes"):
        tt.cross_entropy(z, tt.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        tt.cross_entropy(z, tt.tensor([0, 1, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        tt.cross_entropy(z, tt.tensor([0, 1, 1]), weight=tt.ones(3))


# ----------------------------------------------------------------------------------- nll

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(device, rng, reduction):
    x, t, w = rng.standard_normal((4, 3)), np.array([1, 0, 2, 1]), rng.random(3) + 0.5
    check_op(lambda x: tt.nll_loss(x, tt.tensor(t, device=device), tt.tensor(w, device=device),
                                   reduction=reduction),
             lambda x: {"none": -x[range(4), t] * w[t], "sum": (-x[range(4), t] * w[t]).sum(),
                        "mean": (-x[range(4), t] * w[t]).sum() / w[t].sum()}[reduction], x, device=device)


def test_nll_loss_ignore_index(device, rng):
    x, t = rng.standard_normal((3, 3)), np.array([1, 5, 2])
    check_op(lambda x: tt.nll_loss(x, tt.tensor(t, device=device), ignore_index=5),
             lambda x: -(x[0, 1] + x[2, 2]) / 2, x, device=device)


# ----------------------------------------------------------------------------------- mse, bce

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(device, rng, reduction):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    check_op(lambda a, b: tt.mse_loss(a, b, reduction), lambda a, b: reduce_reference((a - b) ** 2, reduction),
             a, b, device=device)


def test_mse_loss_shape_error():
    with pytest.raises(ValueError, match=r"mse_loss: target has shape \(3,\) but input has shape \(3, 1\)"):
        tt.mse_loss(tt.zeros(3, 1), tt.zeros(3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(device, rng, reduction):
    p, t, w = rng.uniform(0.1, 0.9, (3, 4)), rng.random((3, 4)), rng.random(4)
    check_op(lambda p, t: tt.binary_cross_entropy(p, t, tt.tensor(w, device=device), reduction),
             lambda p, t: reduce_reference(-(t * np.log(p) + (1 - t) * np.log(1 - p)) * w, reduction), p, t,
             device=device, second_order=True)


def test_binary_cross_entropy_clamps_log_at_minus_100(device):
    p = tt.tensor([0.0, 1.0, 0.5], device=device, requires_grad=True)
    loss = tt.binary_cross_entropy(p, tt.tensor([1.0, 0.0, 1.0], device=device), reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [100.0, 100.0, math.log(2)], rtol=1e-6)
    loss.sum().backward()
    assert np.isfinite(p.grad.numpy()).all()


def test_binary_cross_entropy_errors():
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\], got values from -1 to 2"):
        tt.binary_cross_entropy(tt.tensor([-1.0, 2.0]), tt.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="target must be a float tensor, got dtype int64"):
        tt.binary_cross_entropy(tt.tensor([0.5]), tt.tensor([1]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(device, rng, reduction):
    z, t = rng.standard_normal((3, 4)) * 3, rng.random((3, 4))
    w, pos = rng.random((3, 4)), rng.random(4) + 0.5
    sig = 1 / (1 + np.exp(-z))

    def reference(z, t):
        return reduce_reference(-(pos * t * np.log(sig) + (1 - t) * np.log(1 - sig)) * w, reduction)
    check_op(lambda z, t: tt.binary_cross_entropy_with_logits(z, t, tt.tensor(w, device=device),
                                                              tt.tensor(pos, device=device), reduction),
             reference, z, t, device=device)


def test_binary_cross_entropy_with_logits_is_stable(device):
    z = tt.tensor([1000.0, -1000.0, 0.0], device=device, requires_grad=True)
    loss = tt.binary_cross_entropy_with_logits(z, tt.tensor([0.0, 1.0, 1.0], device=device), reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [1000.0, 1000.0, math.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [1.0, -1.0, -0.5], atol=1e-6)
