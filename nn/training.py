"""The classifier training loop shared by the example scripts: epochs, evaluation, early stopping.

    history = fit(model, train_loader, val_loader, optimizer, epochs=10, patience=3)
    test_loss, test_acc = evaluate(model, test_loader)

One step is the four lines every framework has: forward, loss, backward, update
(see `train_epoch`). Everything else here is bookkeeping around them.
"""
import argparse
import copy
import contextlib
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinytensor as tt
from tinytensor import backend
from tinytensor.download import DownloadError

from . import optim
from .datasets import DatasetFileError
from .losses import CrossEntropyLoss


class RunningMetrics:
    """Sums of the loss and of the correct predictions over the batches seen so far.

    The sums stay arrays on the batches' device: adding to them does not wait for a GPU, only reading
    `means()` does (so a training loop syncs when it prints, not at every step)."""

    def __init__(self):
        self.loss_sum = self.correct = 0.0
        self.seen = 0

    def add(self, loss, logits, y):
        """loss: the batch's mean loss (0-d Tensor); logits (N, C); y (N,) class indices."""
        n = len(y)
        with backend.on_device(logits.device):     # the sums of a cuda:1 model stay on cuda:1
            self.loss_sum = self.loss_sum + loss.data.astype("float64") * n
            self.correct = self.correct + (logits.data.argmax(axis=1) == y.data).sum()
        self.seen += n

    def means(self, *also):
        """(mean loss, accuracy) over the samples seen (NaN before any), followed by the values of the
        device arrays `also`, all read from the device in one transfer."""
        loss_sum, correct, *also = read_together(self.loss_sum, self.correct, *also)
        seen = self.seen or float("nan")
        return (float(loss_sum) / seen, float(correct) / seen, *also)


def read_together(*values):
    """Copy numbers and arrays from their device to NumPy in one transfer (one wait for the GPU, not one
    per value); returns them as float64 NumPy arrays of their own shapes."""
    arrays = [value for value in values if backend.is_array(value)]
    device = backend.device_of(arrays[0]) if arrays else "cpu"
    with backend.on_device(device):
        xp = backend.xp_for(device)
        flat = xp.concatenate([xp.asarray(value, dtype=xp.float64).ravel() for value in values])
    flat = backend.move(flat, "cpu")
    sizes = np.cumsum([np.size(value) for value in values])[:-1]
    return [part.reshape(np.shape(value)) for part, value in zip(np.split(flat, sizes), values)]


class NonFiniteError(FloatingPointError):
    """Training met a loss or gradient that is NaN or infinite."""


class NonFiniteGuard:
    """Watches each step's loss and gradients for NaN and inf, without making the GPU wait.

    `record(step, loss)` (after backward) computes on the device one flag per value: is the loss finite,
    is every entry of each gradient finite. Nothing is read then. The flags are read with the running
    loss (`checked_means`), when the loop reads it anyway, and the first bad step is reported there.
    on_nonfinite='raise': NonFiniteError naming the step and the parameters. The updates of the steps
    since the last read have happened by then (at most 20 in train_epoch), so the weights in memory are
    spoiled; the checkpoint of the last finished epoch is not touched.
    on_nonfinite='skip': `record` reads the flags at once (one wait for the GPU per step) and returns
    False for a bad batch, which then gets no update and does not count in the running loss."""

    ADVICE = ("Things to try: a lower learning rate; clipping the gradients (nn.utils.clip_grad_norm_ "
              "before optimizer.step()); checking the inputs for NaN, inf or extreme values. To leave "
              "such batches out instead, pass on_nonfinite='skip'.")

    def __init__(self, model, on_nonfinite="raise", where="", steps=None):
        if on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'skip', got {on_nonfinite!r}")
        self.named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        self.on_nonfinite, self.where, self.steps = on_nonfinite, where, steps
        self.pending = []    # (step, loss array, flags array) of the steps recorded since the last read
        self.skipped = 0

    def record(self, step, loss):
        """Record step `step`; returns whether its update may go ahead (False only for a skipped batch)."""
        xp = backend.xp_for(loss.device)
        with backend.on_device(loss.device):
            finite = [xp.isfinite(loss.data)]
            for _, p in self.named:  # no gradient counts as finite (xp.ones: a copy from the host would wait)
                finite.append(xp.isfinite(p.grad.data).all() if p.grad is not None else xp.ones((), dtype=bool))
            flags = xp.stack(finite)  # (1 + parameters,) bools on the device; nothing is read here
        if self.on_nonfinite == "raise":
            self.pending.append((step, loss.data, flags))
            return True
        if bool(flags.all()):                               # 'skip': one read per step
            return True
        self.skipped += 1
        tqdm.write(f"skipped {self._describe(step, float(loss.data), backend.move(flags, 'cpu'))}")
        return False

    def checked_means(self, metrics):
        """metrics.means(), read in the same transfer as the flags recorded since the last read; raises
        NonFiniteError for the first bad step among them ('raise' mode)."""
        return tuple(self._checked(metrics.means))

    def checked_read(self, *values):
        """The numbers and device arrays `values`, read (as NumPy float64) in the same transfer as the
        flags recorded since the last read, for a loop that keeps its own running loss; raises
        NonFiniteError for the first bad step among them."""
        return self._checked(lambda *pending: read_together(*values, *pending))

    def _checked(self, read):
        """read(*arrays) reads what the caller wants plus `arrays` (the pending losses and flags, when
        there are any) in one transfer and returns them in that order; checks the flags, returns the rest."""
        steps = [step for step, _, _ in self.pending]
        if not steps:
            return list(read())
        device = backend.device_of(self.pending[0][2])
        with backend.on_device(device):
            xp = backend.xp_for(device)
            losses, flags = xp.stack([loss for _, loss, _ in self.pending]), xp.stack([f for _, _, f in self.pending])
        *wanted, losses, flags = read(losses, flags)
        self.pending = []
        bad = np.flatnonzero(~flags.astype(bool).all(axis=1))
        if len(bad):
            first = bad[0]
            raise NonFiniteError(f"training stopped at {self._describe(steps[first], losses[first], flags[first])}. "
                                 + self.ADVICE)
        return wanted

    def _describe(self, step, loss, flags):
        """'epoch 3, step 17 of 430: the loss is nan' or '...: the loss is 2.3 but the gradient of fc.weight
        has NaN or inf entries'."""
        flags = flags.astype(bool)
        where = f"step {step + 1}" + (f" of {self.steps}" if self.steps else "")
        where = f"{self.where}, {where}" if self.where else where
        if not flags[0]:
            return f"{where}: the loss is {loss}"
        names = [name for (name, _), ok in zip(self.named, flags[1:]) if not ok]
        more = f" (and of {', '.join(names[1:])})" if len(names) > 1 else ""
        return f"{where}: the loss is {loss:.6g} but the gradient of {names[0]}{more} has NaN or inf entries"


def train_epoch(model, loader, optimizer, loss_fn, desc="train", on_nonfinite="raise", where=""):
    """One pass over `loader`, updating the model; returns (mean loss, accuracy, batches skipped) over the
    samples seen.

    A tqdm bar shows the running mean loss, read every 20 steps; each read also checks the loss and
    gradients of the steps since the last one for NaN and inf (NonFiniteGuard: `on_nonfinite` says
    whether a bad step raises NonFiniteError or its batch is skipped; `where` names the epoch in the
    message)."""
    model.train()
    metrics = RunningMetrics()
    guard = NonFiniteGuard(model, on_nonfinite, where, steps=len(loader))
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)
    for step, (x, y) in enumerate(bar):
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad()
        loss.backward()
        if guard.record(step, loss):             # False only for a batch skipped for NaN or inf
            optimizer.step()
            metrics.add(loss.detach(), logits.detach(), y)
        if step % 20 == 0:                       # the one read from the device: loss so far and the checks
            bar.set_postfix(loss=f"{guard.checked_means(metrics)[0]:.4f}")
    return (*guard.checked_means(metrics), guard.skipped)


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

    `update(val_loss, model)` returns True when training should stop (and whether this epoch is the best
    so far is `improved`); `restore(model)` loads the best weights seen. patience=None never stops (but
    still remembers the best weights)."""

    def __init__(self, patience=None):
        self.patience, self.best_loss, self.best_epoch, self.best_state = patience, float("inf"), 0, None
        self.epoch, self.improved = 0, False

    def update(self, val_loss, model):
        self.epoch += 1
        self.improved = val_loss < self.best_loss
        if self.improved:
            self.best_loss, self.best_epoch = val_loss, self.epoch
            self.best_state = {name: value.data.copy() for name, value in model.state_dict().items()}
        return self.should_stop()

    def should_stop(self):
        return self.patience is not None and self.epoch - self.best_epoch >= self.patience

    def restore(self, model):
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self):
        """The counts and the best loss (the best weights are saved on their own: best_checkpoint_path)."""
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "epoch": self.epoch}

    def load_state_dict(self, state, best_state=None):
        self.best_loss, self.best_epoch, self.epoch = state["best_loss"], state["best_epoch"], state["epoch"]
        self.best_state = best_state


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, model, optimizer, scheduler=None, loaders=None, **progress):
    """Write everything an exact resume needs to `path` (tt.save: atomic): the model, optimizer and
    scheduler state, tinytensor's random generators (dropout, initialisation: tt.random.state_dict()), the
    position and shuffle state of each loader in `loaders` ({name: DataLoader}), and `progress` (the
    epoch or step, a history: anything tt.save writes). The folder is made when missing."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": tt.random.state_dict(),
             "loaders": {name: loader.state_dict() for name, loader in (loaders or {}).items()}, **progress}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    save_progress(path, **state)


def save_progress(path, **state):
    """tt.save(state, path), making the folder when missing: for runs whose progress is results, not a
    model (an experiment over several settings, each started from the seed)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tt.save(state, path)


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, loaders=None):
    """Put back, in place, what save_checkpoint wrote to `path` into those given; returns the whole saved
    dict, for its progress entries. Tensors go to the model's device."""
    if not Path(path).is_file():
        raise MissingCheckpointError(f"no checkpoint at {path} to resume from: start without resuming (it is "
                                     "written as training goes), or name the file that was written")
    device = next((p.device for p in model.parameters()), "cpu") if model is not None else "cpu"
    state = tt.load(path, map_location=device)
    if model is None:
        return state
    missing = [key for key in ("model", "optimizer", "rng", "loaders") if key not in state]
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)} entries: it was not written by save_checkpoint "
                         "(or by fit before it saved everything an exact resume needs), so it cannot be resumed")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if "scheduler" not in state:
            raise ValueError(f"{path} holds no scheduler state, but a scheduler was given to resume")
        scheduler.load_state_dict(state["scheduler"])
    for name, loader in (loaders or {}).items():
        if name not in state["loaders"]:
            raise ValueError(f"{path} holds no state for the loader {name!r} (it has "
                             f"{sorted(state['loaders']) or 'none'})")
        loader.load_state_dict(state["loaders"][name])
    tt.random.load_state_dict(state["rng"])
    return state


def best_checkpoint_path(checkpoint):
    """Where fit keeps the best epoch's weights beside `checkpoint`: run/ckpt.npz -> run/ckpt.best.npz."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.best{checkpoint.suffix}")


def fit(model, train_loader, val_loader, optimizer, epochs, loss_fn=None, patience=None, scheduler=None,
        checkpoint=None, resume=False, on_nonfinite="raise", name=""):
    """Train for `epochs` (fewer with early stopping), evaluating on `val_loader` after each epoch.

    Returns the history {'train_loss', 'train_acc', 'val_loss', 'val_acc', 'seconds_per_epoch',
    'skipped_batches': one value per epoch, 'best_epoch'}. With patience, stops after that many epochs
    without a better validation loss and the model gets the weights of its best validation epoch back.

    checkpoint: a path. After every epoch, save_checkpoint writes there the model, optimizer, scheduler,
    the random generators, both loaders' state, the epoch, the history and the early-stopping counts;
    the weights of the best validation epoch so far go beside it (best_checkpoint_path: ckpt.best.npz).
    resume: True continues the run saved in `checkpoint` (a path: the run saved there), from the epoch
    after the saved one up to `epochs`; the result is bit-identical to a run that never stopped.
    on_nonfinite: 'raise' stops at the first NaN or inf loss or gradient with NonFiniteError, leaving the
    checkpoint of the last finished epoch as it was; 'skip' leaves such batches out (see NonFiniteGuard)."""
    loss_fn = loss_fn or CrossEntropyLoss()
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [], "seconds_per_epoch": [],
               "skipped_batches": []}
    stopper = EarlyStopping(patience)
    loaders = {"train": train_loader, "val": val_loader}
    prefix = f"{name} " if name else ""
    start = 0
    if resume:
        if resume is True and checkpoint is None:
            raise ValueError("fit(resume=True) continues from `checkpoint`, but no checkpoint path was given")
        source = checkpoint if resume is True else resume
        state = load_checkpoint(source, model, optimizer, scheduler, loaders)
        start, history = state["epoch"], state["history"]
        best = best_checkpoint_path(source)
        best_state = tt.load(best, map_location="cpu")["model"] if best.is_file() else None   # restore() moves it
        stopper.load_state_dict(state["early_stopping"], best_state)
        if state.get("epochs", epochs) != epochs:
            tqdm.write(f"{prefix}note: the checkpoint's run was planned for {state['epochs']} epochs, this one "
                       f"for {epochs}; a scheduler keeps the plan it was saved with")
        tqdm.write(f"{prefix}resuming from {source} after epoch {start}")
    for epoch in range(start + 1, epochs + 1):
        if stopper.should_stop():             # a resumed run that had already stopped early
            break
        begin = time.perf_counter()
        try:
            train_loss, train_acc, skipped = train_epoch(model, train_loader, optimizer, loss_fn,
                                                         desc=f"{prefix}epoch {epoch}/{epochs}",
                                                         on_nonfinite=on_nonfinite, where=f"epoch {epoch}")
        except NonFiniteError as err:
            kept = (f" The checkpoint {checkpoint} (epoch {epoch - 1}) is left as it was."
                    if checkpoint is not None and epoch > 1 else "")
            raise NonFiniteError(f"{prefix}{err}{kept}") from None
        history["seconds_per_epoch"].append(time.perf_counter() - begin)
        val_loss, val_acc = evaluate(model, val_loader, loss_fn)
        for key, value in zip(("train_loss", "train_acc", "val_loss", "val_acc", "skipped_batches"),
                              (train_loss, train_acc, val_loss, val_acc, skipped)):
            history[key].append(value)
        skipped_note = f" | {skipped} batches skipped" if skipped else ""
        tqdm.write(f"{prefix}epoch {epoch:2d}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                   f"val loss {val_loss:.4f} acc {val_acc:.4f} | {history['seconds_per_epoch'][-1]:.1f} s"
                   + skipped_note)
        if scheduler is not None:
            scheduler.step()
        stop = stopper.update(val_loss, model)
        if checkpoint is not None:
            if stopper.improved:
                save_progress(best_checkpoint_path(checkpoint), model=model.state_dict(), epoch=epoch,
                              val_loss=val_loss)
            save_checkpoint(checkpoint, model, optimizer, scheduler, loaders, epoch=epoch, epochs=epochs,
                            history=history, early_stopping=stopper.state_dict())
        if stop:
            tqdm.write(f"{prefix}early stop: no better validation loss since epoch {stopper.best_epoch}")
            break
    if patience is not None:
        stopper.restore(model)
    history["best_epoch"] = stopper.best_epoch
    return history


# ---------------------------------------------------------------------------- for example scripts
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, also for an option without a help text, except a default of
    None or "", whose meaning the help text gives, and the off state of a flag. An epilog keeps its line
    breaks."""

    def _format_action(self, action):
        if not action.help and not self._default_hidden(action):   # argparse skips an empty help entirely
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action):
        if self._default_hidden(action):
            return action.help          # a flag's help says what it switches; "default: False" adds nothing
        return super()._get_help_string(action)

    @staticmethod
    def _default_hidden(action):
        default = action.default
        return default is None or default == "" or (action.nargs == 0 and isinstance(default, bool))


def example_parser(doc, epilog=None):
    """An argparse parser for an example script: its docstring's first line, defaults shown in --help."""
    return argparse.ArgumentParser(description=doc.splitlines()[0], epilog=epilog, formatter_class=HelpFormatter)


def device_arg(name):
    """argparse type of --device: a usable device name, else a one-line error (no CuPy, no such GPU)."""
    try:
        backend.parse_device(name)
    except (ValueError, RuntimeError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


def int_at_least(minimum):
    """argparse type of a count: an integer >= minimum, else a one-line error naming the option."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def add_training_args(parser, epochs=10, batch_size=128, optimizer="adam", out_dir="runs"):
    """The options every classifier training script shares (argparse), with the given defaults."""
    parser.add_argument("--epochs", type=int_at_least(1), default=epochs, help="passes over the training set")
    parser.add_argument("--batch-size", type=int_at_least(1), default=batch_size, help="samples per step")
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default=optimizer,
                        help="sgd is SGD with momentum 0.9")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items()) + ")")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty on the weights")
    parser.add_argument("--patience", type=int_at_least(1), default=None,
                        help="stop after this many epochs without a better validation loss and keep the best "
                             "weights (default: train every epoch)")
    parser.add_argument("--limit", type=int_at_least(1), default=None,
                        help="use only N training samples (and at most N validation / test ones): quick runs "
                             "(default: all)")
    add_data_dir_arg(parser)
    add_checkpoint_args(parser, "after every epoch (weights, optimizer, schedule, random state, data order), with "
                                "the best epoch's weights beside it as <name>.best.npz")
    return add_common_args(parser, out_dir)


def add_data_dir_arg(parser):
    parser.add_argument("--data-dir", default=None,
                        help="the folder holding the four MNIST files, or the one holding mnist/ (and fashion-mnist/); "
                             "downloaded there if absent (default: $TINYTENSOR_DATA/mnist, ../shared/data/mnist, "
                             "then the download cache ~/.cache/tinytensor/mnist)")
    return parser


def add_checkpoint_args(parser, written="after every epoch (weights, optimizer, random state, data order)"):
    """--checkpoint and --resume: one file, written as training goes (`written` says when), that --resume
    continues from."""
    parser.add_argument("--checkpoint", default=None,
                        help=f"where the run's state is written {written} (default: <out-dir>/checkpoint.npz)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in --checkpoint where it stopped; the result is the same, "
                             "bit for bit, as a run that never stopped (give the same options as the first time)")
    return parser


def add_common_args(parser, out_dir):
    """--device, --seed and --out-dir, which every example script takes."""
    parser.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights, the data order and dropout")
    parser.add_argument("--out-dir", default=out_dir, help="where the PNG (and the checkpoint) go")
    return parser


def parse_example_args(parser, argv=None):
    """parser.parse_args(argv), with --checkpoint (when the script has it) defaulting to
    <out-dir>/checkpoint.npz."""
    args = parser.parse_args(argv)
    if "checkpoint" in args and args.checkpoint is None:
        args.checkpoint = str(Path(args.out_dir) / "checkpoint.npz")
    return args


class MissingCheckpointError(FileNotFoundError):
    """load_checkpoint was asked to resume from a file that is not there."""


@contextlib.contextmanager
def friendly_errors():
    """For example scripts: the errors a user fixes without reading code (missing or damaged data files,
    a missing checkpoint to resume from, a loss or gradient that turned NaN) end the script with their
    one-paragraph message (and exit status 1), not a traceback."""
    try:
        yield
    except (DownloadError, DatasetFileError, MissingCheckpointError, NonFiniteError) as err:
        raise SystemExit(f"error: {err}") from None


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
