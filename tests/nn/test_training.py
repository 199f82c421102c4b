"""nn.training: metrics of a pass, evaluation mode, early stopping with the best weights restored,
checkpoints, and the helpers the example scripts share."""
import argparse
import math

import numpy as np
import pytest

from tinytensor import nn
import tinytensor as tt
from tinytensor.nn.data import DataLoader, TensorDataset
from tinytensor.nn.training import (EarlyStopping, RunningMetrics, add_training_args, evaluate, fit, format_table,
                         make_optimizer)


def test_running_metrics_weights_each_batch_by_its_size():
    metrics = RunningMetrics()
    logits = tt.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    metrics.add(tt.tensor(0.5), logits, tt.tensor([0, 0, 0]))       # 2 of 3 right
    metrics.add(tt.tensor(2.0), logits[:1], tt.tensor([1]))          # 0 of 1 right
    loss, accuracy = metrics.means()
    assert loss == pytest.approx((0.5 * 3 + 2.0 * 1) / 4)
    assert accuracy == 2 / 4


def test_evaluate_uses_eval_mode_and_restores_the_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.9))
    x = tt.tensor(np.eye(2, dtype=np.float32))
    y = tt.tensor([0, 1])
    with tt.no_grad():
        model[0].weight[...] = tt.tensor([[1.0, 0.0], [0.0, 1.0]])
        model[0].bias[...] = 0.0
    loss, accuracy = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=1))
    assert accuracy == 1.0                                   # dropout off: the identity map is right
    assert loss == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    assert model.training
    model.eval()
    evaluate(model, DataLoader(TensorDataset(x, y), batch_size=2))
    assert not model.training


def test_early_stopping_counts_epochs_without_improvement_and_restores_the_best():
    layer = nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    stops = []
    for epoch, val_loss in enumerate([1.0, 0.5, 0.7, 0.6], start=1):
        with tt.no_grad():
            layer.weight[...] = float(epoch)
        stops.append(stopper.update(val_loss, layer))
    assert stops == [False, False, False, True] and stopper.best_epoch == 2
    stopper.restore(layer)
    assert layer.weight.item() == 2.0                        # the weights of epoch 2, not a view of today's
    assert not EarlyStopping(patience=None).update(1.0, layer)


def test_fit_stops_early_restores_the_best_weights_and_checkpoints(tmp_path):
    """Validation labels are the opposite of the training ones, so validation gets worse every epoch:
    the best epoch is the first, training stops `patience` epochs later and returns to epoch 1."""
    tt.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    train = DataLoader(TensorDataset(x, (x[:, 0] > 0).astype(np.int64)), batch_size=16, shuffle=True, seed=0)
    val = DataLoader(TensorDataset(x, (x[:, 0] <= 0).astype(np.int64)), batch_size=64)
    model = nn.Linear(2, 2)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.5)
    scheduler = nn.optim.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, train, val, optimizer, epochs=10, patience=2, scheduler=scheduler,
                  checkpoint=tmp_path / "run" / "ckpt.npz")
    assert len(history["val_loss"]) == 3 and history["best_epoch"] == 1
    assert history["val_loss"][0] < history["val_loss"][1] < history["val_loss"][2]
    assert evaluate(model, val)[0] == pytest.approx(history["val_loss"][0])   # epoch 1's weights are back
    saved = tt.load(tmp_path / "run" / "ckpt.npz")
    assert saved["epoch"] == 3 and saved["scheduler"]["last_epoch"] == 3
    assert saved["history"]["val_loss"] == history["val_loss"]
    assert set(saved["model"]) == {"weight", "bias"} and saved["optimizer"]["param_groups"][0]["lr"] == 0.5 * 0.5 ** 3


def test_example_helpers():
    args = add_training_args(argparse.ArgumentParser()).parse_args(["--optimizer", "sgd"])
    assert (args.epochs, args.batch_size, args.lr, args.device, args.seed) == (10, 128, None, "cpu", 0)
    p = nn.Parameter(tt.zeros(1))
    sgd = make_optimizer("sgd", [p], weight_decay=0.1)
    assert isinstance(sgd, nn.optim.SGD) and sgd.defaults["momentum"] == 0.9 and sgd.defaults["lr"] == 0.05
    assert make_optimizer("adam", [nn.Parameter(tt.zeros(1))], lr=0.01).defaults["lr"] == 0.01
    assert format_table(["name", "acc"], [["a", 0.5], ["bb", 1]]).splitlines() == [
        "name     acc", "----  ------", "   a  0.5000", "  bb       1"]
