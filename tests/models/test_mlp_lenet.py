"""MLP and LeNet: output shapes, layer layout, and that one optimizer step lowers the loss."""
import numpy as np
import pytest

from tinytensor import nn
import tinytensor as tt
from tinytensor.models.lenet import LeNet
from tinytensor.models.mlp import MLP


def one_step_lowers_the_loss(model, x, y, lr):
    optimizer = nn.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.eval()                                   # dropout / batch statistics off: the same function twice
    before = loss_fn(model(x), y)
    optimizer.zero_grad()
    before.backward()
    assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0 for p in model.parameters())
    optimizer.step()
    after = loss_fn(model(x), y)
    assert after.item() < before.item() - 1e-4


def test_mlp_layout_and_shapes(device):
    model = MLP((784, 32, 16, 10), dropout=0.5).to(device)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 32), (32, 16), (16, 10)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in MLP((4, 8, 2)).modules())
    assert model(tt.randn(5, 1, 28, 28, device=device)).shape == (5, 10)   # images are flattened
    assert model(tt.randn(3, 784, device=device)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"at least an input and an output width, got \(784,\)"):
        MLP((784,))


def test_mlp_one_step_lowers_the_loss(rng):
    x, y = tt.tensor(rng.standard_normal((16, 20)).astype(np.float32)), tt.tensor(rng.integers(0, 3, 16))
    one_step_lowers_the_loss(MLP((20, 16, 3), dropout=0.2), x, y, lr=0.1)


def test_mlp_dropout_only_in_training():
    model, x = MLP((10, 64, 2), dropout=0.5), tt.randn(4, 10)
    model.eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), model(x).detach().numpy())
    model.train()
    assert not np.allclose(model(x).detach().numpy(), model(x).detach().numpy())


@pytest.mark.parametrize("batch_norm", [False, True])
def test_lenet_shapes_and_one_step(batch_norm, rng):
    model = LeNet(batch_norm=batch_norm, dropout=0.1)
    x = tt.tensor(rng.standard_normal((6, 1, 28, 28)).astype(np.float32))
    assert model(x).shape == (6, 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 6), (6, 16)]
    assert all((c.bias is None) == batch_norm for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == (2 if batch_norm else 0)
    model.train()
    model(x)                                        # fill BatchNorm's running statistics once
    one_step_lowers_the_loss(model, x, tt.tensor(rng.integers(0, 10, 6)), lr=0.05)


def test_lenet_rejects_other_image_sizes():
    with pytest.raises(ValueError, match=r"expected images of shape \(N, C, 28, 28\), got \(2, 1, 32, 32\)"):
        LeNet()(tt.randn(2, 1, 32, 32))


def test_lenet_on_the_device(device):
    model = LeNet(channels=(4, 8)).to(device)
    assert model(tt.randn(2, 1, 28, 28, device=device)).device.startswith(device)
