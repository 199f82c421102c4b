"""The classifier training loop shared by the example scripts: epochs, evaluation, early stopping.

    history = fit(model, train_loader, val_loader, optimizer, epochs=10, patience=3)
    test_loss, test_acc = evaluate(model, test_loader)

One step is the four lines every framework has: forward, loss, backward, update
(see `train_epoch`). Everything else here is bookkeeping around them.
"""
import time
from pathlib import Path

from tqdm import tqdm

import tinytensor as tt
from tinytensor import backend

from . import optim
from .losses import CrossEntropyLoss


class RunningMetrics:
    """Sums of the loss and of the correct predictions over the batches seen so far.

    The sums stay one array on the batches' device: adding to it does not wait for a GPU, and reading
    `means()` copies both sums in one transfer (so a training loop syncs once when it prints, not at
    every step)."""

    def __init__(self):
        self.sums = None        # [sum of loss * batch size, number correct], float64
        self.seen = 0

    def add(self, loss, logits, y):
        """loss: the batch's mean loss (0-d Tensor); logits (N, C); y (N,) class indices."""
        n = len(y)
        xp = logits._xp
        with backend.on_device(logits.device):
            correct = (logits.data.argmax(axis=1) == y.data).sum()
            batch = xp.stack([loss.data.astype(xp.float64) * n, correct.astype(xp.float64)])
            self.sums = batch if self.sums is None else self.sums + batch
        self.seen += n

    def means(self):
        """(mean loss, accuracy) over the samples seen."""
        if self.sums is None:
            return float("nan"), float("nan")
        loss_sum, correct = backend.to_host(self.sums).tolist()
        return loss_sum / self.seen, correct / self.seen


def train_epoch(model, loader, optimizer, loss_fn, desc="train"):
    """One pass over `loader`, updating the model; returns (mean loss, accuracy) over the samples seen.

    A tqdm bar shows the running mean loss (read every 20 steps)."""
    model.train()
    metrics = RunningMetrics()
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)
    for step, (x, y) in enumerate(bar):
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        metrics.add(loss.detach(), logits.detach(), y)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{metrics.means()[0]:.4f}")
    return metrics.means()


@tt.no_grad()
def evaluate(model, loader, loss_fn=None):
    """(mean loss, accuracy) of the model on every batch of `loader`, in eval mode (dropout off,
    BatchNorm on running statistics); the model's mode is restored after."""
    loss_fn = loss_fn or CrossEntropyLoss()
    was_training = model.training
    model.eval()
    metrics = RunningMetrics()
    for x, y in loader:
        logits = model(x)
        metrics.add(loss_fn(logits, y), logits, y)
    model.train(was_training)
    return metrics.means()


class EarlyStopping:
    """Stop when the validation loss has not improved for `patience` epochs; keep the best weights.

    `update(val_loss, model)` returns True when training should stop; `restore(model)` loads the best
    weights seen. patience=None never stops (but still remembers the best weights)."""

    def __init__(self, patience=None):
        self.patience, self.best_loss, self.best_epoch, self.best_state = patience, float("inf"), 0, None
        self.epoch = 0

    def update(self, val_loss, model):
        self.epoch += 1
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch = val_loss, self.epoch
            self.best_state = {name: value.data.copy() for name, value in model.state_dict().items()}
        return self.patience is not None and self.epoch - self.best_epoch >= self.patience

    def restore(self, model):
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def fit(model, train_loader, val_loader, optimizer, epochs, loss_fn=None, patience=None, scheduler=None,
        checkpoint=None, name=""):
    """Train for `epochs` (fewer with early stopping), evaluating on `val_loader` after each epoch.

    Returns the history {'train_loss', 'train_acc', 'val_loss', 'val_acc': one value per epoch,
    'best_epoch', 'seconds_per_epoch'}. With patience, stops after that many epochs without a better
    validation loss and the model gets the weights of its best validation epoch back.
    checkpoint: a path; after every epoch {'model', 'optimizer', 'scheduler' (when given), 'epoch',
    'history'} is written there with tt.save (atomic: an interrupted run leaves the previous checkpoint
    whole)."""
    loss_fn = loss_fn or CrossEntropyLoss()
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [], "seconds_per_epoch": []}
    stopper = EarlyStopping(patience)
    prefix = f"{name} " if name else ""
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, train_loader, optimizer, loss_fn,
                                            desc=f"{prefix}epoch {epoch}/{epochs}")
        history["seconds_per_epoch"].append(time.perf_counter() - start)
        val_loss, val_acc = evaluate(model, val_loader, loss_fn)
        for key, value in zip(("train_loss", "train_acc", "val_loss", "val_acc"),
                              (train_loss, train_acc, val_loss, val_acc)):
            history[key].append(value)
        tqdm.write(f"{prefix}epoch {epoch:2d}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                   f"val loss {val_loss:.4f} acc {val_acc:.4f} | {history['seconds_per_epoch'][-1]:.1f} s")
        if scheduler is not None:
            scheduler.step()
        stop = stopper.update(val_loss, model)
        if checkpoint is not None:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                     "history": history}
            if scheduler is not None:
                state["scheduler"] = scheduler.state_dict()
            tt.save(state, checkpoint)
        if stop:
            tqdm.write(f"{prefix}early stop: no better validation loss since epoch {stopper.best_epoch}")
            break
    if patience is not None:
        stopper.restore(model)
    history["best_epoch"] = stopper.best_epoch
    return history


# ---------------------------------------------------------------------------- for example scripts
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}


def add_training_args(parser, epochs=10, batch_size=128, optimizer="adam", out_dir="runs"):
    """The options every training script shares (argparse), with the given defaults."""
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default=optimizer,
                        help="sgd is SGD with momentum 0.9")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after this many epochs without a better validation loss; keep the best weights")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only N training samples (and at most N validation / test ones): quick runs")
    parser.add_argument("--checkpoint", default=None, help="write model + optimizer state here after each epoch")
    parser.add_argument("--data-dir", default=None, help="folder holding the IDX files (downloaded there if absent)")
    return add_common_args(parser, out_dir)


def add_common_args(parser, out_dir):
    """--device, --seed and --out-dir, which every example script takes."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=out_dir, help="where the PNG goes")
    return parser


def make_optimizer(name, parameters, lr=None, weight_decay=0.0):
    """'adam' -> Adam, 'sgd' -> SGD with momentum 0.9; lr None takes DEFAULT_LR[name]."""
    lr = DEFAULT_LR[name] if lr is None else lr
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=0.9, weight_decay=weight_decay)
    return optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


def format_table(headers, rows):
    """A plain-text table: a header line, a rule, one line per row (floats with 4 decimals)."""
    cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).rjust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
