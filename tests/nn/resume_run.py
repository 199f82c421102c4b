"""A tiny training run that tests/nn/test_resume.py starts in processes of its own:

    python tests/nn/resume_run.py OUT [--resume] [--die-at-call N]

Dropout, BatchNorm, random shifts of the inputs, a shuffled loader seeded from the global generator,
Adam and a cosine schedule: every kind of state a resume must carry. --die-at-call N kills the process
(SIGKILL, as an out-of-memory killer or a lost machine would) at the N-th call of the loss. At the end
the weights and the history go to OUT/final.npz.
"""
import argparse
import os
import signal
from pathlib import Path

import numpy as np

import tinytensor as tt
from tinytensor import nn
from tinytensor.nn.data import DataLoader, TensorDataset
from tinytensor.nn.datasets import RandomShift
from tinytensor.nn.training import fit

EPOCHS = 4

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--resume", action="store_true")
parser.add_argument("--die-at-call", type=int, default=None)
args = parser.parse_args()

tt.manual_seed(0)
rng = np.random.default_rng(0)
images = rng.standard_normal((96, 1, 6, 6)).astype(np.float32)
labels = (images[:, 0, 2:4, 2:4].mean(axis=(1, 2)) > 0).astype(np.int64)
train = DataLoader(TensorDataset(images[:64], labels[:64], transform=RandomShift(1)), batch_size=16, shuffle=True)
val = DataLoader(TensorDataset(images[64:], labels[64:]), batch_size=32)
model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                      nn.Linear(16, 2))
optimizer = nn.optim.Adam(model.parameters(), lr=0.01)
scheduler = nn.optim.CosineAnnealingLR(optimizer, T_max=EPOCHS)
cross_entropy = nn.CrossEntropyLoss()
calls = 0


def loss_fn(logits, y):
    global calls
    calls += 1
    if calls == args.die_at_call:
        os.kill(os.getpid(), signal.SIGKILL)
    return cross_entropy(logits, y)


history = fit(model, train, val, optimizer, EPOCHS, loss_fn=loss_fn, scheduler=scheduler,
              checkpoint=args.out / "ckpt.npz", resume=args.resume)
tt.save({"model": model.state_dict(),
         "history": {key: history[key] for key in ("train_loss", "train_acc", "val_loss", "val_acc")}},
        args.out / "final.npz")
