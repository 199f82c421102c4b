"""nn.training: metrics of a pass, evaluation mode, early stopping with the best weights restored,
checkpoints, and the helpers the example scripts share."""
import argparse
import math

import numpy as np
import pytest

from tinytensor import nn
import tinytensor as tt
from tinytensor.nn.data import DataLoader, TensorDataset
from tinytensor.nn import training
from tinytensor.nn.training import (EarlyStopping, NonFiniteError, RunningMetrics, add_training_args, evaluate, fit,
                                    format_table, make_optimizer, read_together)


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
    assert saved["early_stopping"] == {"best_loss": history["val_loss"][0], "best_epoch": 1, "epoch": 3}
    best = tt.load(tmp_path / "run" / "ckpt.best.npz")      # the best epoch's weights, beside the last ones
    assert best["epoch"] == 1 and best["val_loss"] == history["val_loss"][0]
    np.testing.assert_array_equal(best["model"]["weight"].numpy(), model.weight.detach().numpy())
    assert not np.array_equal(saved["model"]["weight"].numpy(), model.weight.detach().numpy())


def toy_run(seed=0):
    """A linear classifier on 64 points in 4 batches of 16, and its validation loader."""
    tt.manual_seed(seed)
    x = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x, y), batch_size=64)
    model = nn.Linear(2, 2)
    return model, train, val, nn.optim.SGD(model.parameters(), lr=0.1)


def test_a_resumed_run_continues_the_epoch_count_and_a_finished_one_trains_no_more(tmp_path, capsys):
    model, train, val, optimizer = toy_run()
    fit(model, train, val, optimizer, epochs=2, checkpoint=tmp_path / "ckpt.npz")
    model, train, val, optimizer = toy_run(seed=1)
    history = fit(model, train, val, optimizer, epochs=3, checkpoint=tmp_path / "ckpt.npz", resume=True)
    out = capsys.readouterr().out
    assert "after epoch 2" in out and "epoch  3:" in out and "epoch  1:" not in out.split("resuming")[1]
    assert "planned for 2 epochs, this one for 3" in out
    assert len(history["train_loss"]) == 3 and tt.load(tmp_path / "ckpt.npz")["epoch"] == 3
    again = fit(model, train, val, optimizer, epochs=3, checkpoint=tmp_path / "ckpt.npz", resume=True)
    assert again["train_loss"] == history["train_loss"]


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    model, train, val, optimizer = toy_run()
    with pytest.raises(ValueError, match="continues from `checkpoint`, but no checkpoint path was given"):
        fit(model, train, val, optimizer, epochs=1, resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.npz to resume from"):
        fit(model, train, val, optimizer, epochs=1, checkpoint=tmp_path / "missing.npz", resume=True)
    tt.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1}, tmp_path / "old.npz")
    with pytest.raises(ValueError, match="old.npz has no rng, loaders entries: it was not written by save_checkpoint"):
        fit(model, train, val, optimizer, epochs=1, checkpoint=tmp_path / "old.npz", resume=True)


class Poisoned:
    """Cross-entropy, except that at call `at` the loss is multiplied by inf (kind 'loss') or a term with
    a NaN gradient and a value of 0 is added (kind 'gradient': 0 * sqrt(0 * bias))."""

    def __init__(self, model, at, kind):
        self.model, self.at, self.kind, self.calls = model, at, kind, 0

    def __call__(self, logits, y):
        self.calls += 1
        loss = nn.functional.cross_entropy(logits, y)
        if self.calls == self.at and self.kind == "loss":
            return loss * float("inf")
        if self.calls == self.at and self.kind == "gradient":
            return loss + 0 * (0 * self.model.bias).sum().sqrt()
        return loss


@pytest.mark.parametrize("kind, problem", [
    ("loss", "the loss is inf"),
    ("gradient", r"the loss is 0\.[0-9]+ but the gradient of bias has NaN or inf entries"),
])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # NumPy warns as NaN flows through the ops
def test_a_non_finite_step_stops_training_and_names_the_step(tmp_path, kind, problem):
    model, train, val, optimizer = toy_run()
    loss_fn = Poisoned(model, at=8, kind=kind)   # 4 training + 1 validation batch per epoch: epoch 2, step 3
    with pytest.raises(NonFiniteError, match=f"stopped at epoch 2, step 3 of 4: {problem}") as caught:
        fit(model, train, val, optimizer, epochs=3, loss_fn=loss_fn, checkpoint=tmp_path / "ckpt.npz")
    message = str(caught.value)
    assert "a lower learning rate" in message and "clip_grad_norm_" in message and "on_nonfinite='skip'" in message
    assert f"The checkpoint {tmp_path / 'ckpt.npz'} (epoch 1) is left as it was" in message
    saved = tt.load(tmp_path / "ckpt.npz")
    assert saved["epoch"] == 1 and np.isfinite(saved["model"]["weight"].numpy()).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_skip_leaves_the_bad_batch_out_and_counts_it():
    model, train, val, optimizer = toy_run()
    history = fit(model, train, val, optimizer, epochs=2, loss_fn=Poisoned(model, at=7, kind="gradient"),
                  on_nonfinite="skip")
    assert history["skipped_batches"] == [0, 1]
    assert np.isfinite(model.weight.detach().numpy()).all() and np.isfinite(history["train_loss"]).all()
    with pytest.raises(ValueError, match="on_nonfinite must be 'raise' or 'skip', got 'ignore'"):
        fit(model, train, val, optimizer, epochs=1, on_nonfinite="ignore")


def test_the_guard_reads_the_device_only_with_the_running_loss(monkeypatch):
    """45 steps: the loss is read at steps 0, 20 and 40 and at the end, and each read is one transfer
    that carries the finite-checks of the steps since the last one."""
    reads = []
    monkeypatch.setattr(training, "read_together", lambda *values: reads.append(len(values)) or read_together(*values))
    x = np.random.default_rng(0).standard_normal((45, 2)).astype(np.float32)
    model = nn.Linear(2, 2)
    loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).astype(np.int64)), batch_size=1)
    training.train_epoch(model, loader, nn.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())
    assert reads == [4, 4, 4, 4]          # loss sum, correct count, and the steps' losses and flags


def test_read_together_returns_each_value_in_its_shape():
    scalar, matrix, flags = read_together(2.5, np.arange(6).reshape(2, 3), np.array([True, False]))
    assert scalar.shape == () and scalar == 2.5
    np.testing.assert_array_equal(matrix, np.arange(6).reshape(2, 3))
    assert flags.tolist() == [1.0, 0.0]


def test_example_helpers():
    args = add_training_args(argparse.ArgumentParser()).parse_args(["--optimizer", "sgd"])
    assert (args.epochs, args.batch_size, args.lr, args.device, args.seed) == (10, 128, None, "cpu", 0)
    p = nn.Parameter(tt.zeros(1))
    sgd = make_optimizer("sgd", [p], weight_decay=0.1)
    assert isinstance(sgd, nn.optim.SGD) and sgd.defaults["momentum"] == 0.9 and sgd.defaults["lr"] == 0.05
    assert make_optimizer("adam", [nn.Parameter(tt.zeros(1))], lr=0.01).defaults["lr"] == 0.01
    assert format_table(["name", "acc"], [["a", 0.5], ["bb", 1]]).splitlines() == [
        "name     acc", "----  ------", "   a  0.5000", "  bb       1"]


def test_example_help_shows_defaults_even_without_help_text_but_not_none_empty_or_off():
    parser = training.example_parser("A script.\n\nMore.", epilog="line one\n  line two")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: per device)")
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument("--fast", action="store_true", help="go fast")
    text = " ".join(parser.format_help().split())
    assert "--steps STEPS (default: 300)" in text
    assert "peak learning rate (default: per device) --prompt" in text       # nothing added after it
    assert "text to continue --fast" in text and "go fast line one" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "line one\n  line two" in parser.format_help()                   # the epilog keeps its breaks
