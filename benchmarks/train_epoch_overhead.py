"""What nn.training.train_epoch adds to the bare training step: the running metrics, the tqdm bar and the
NaN/inf guard (one finite-check per gradient per step, read with the loss every 20 steps).

Both sides train the same 784-256-256-10 MLP with Adam on the same batches, alternating within each
repeat; the table gives the median ms per step of this process's CPU time (on a shared machine wall
time also counts the other processes' work; with one BLAS thread the two agree on a quiet one). The
guard's own share is timed on its own too.

    python benchmarks/train_epoch_overhead.py                  # 1 BLAS thread, 100 steps of batch 128
    python benchmarks/train_epoch_overhead.py --steps 400 --repeats 7
"""
import argparse
import os
import statistics
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument("--steps", type=int, default=100, help="steps per timed epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per side")
    return parser.parse_args()


args = parse_args()
for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = str(args.threads)   # must happen before NumPy is imported

import numpy as np  # noqa: E402

import tinytensor as tt  # noqa: E402
from tinytensor import nn  # noqa: E402
from tinytensor.models.mlp import MLP  # noqa: E402
from tinytensor.nn.data import DataLoader, TensorDataset  # noqa: E402
from tinytensor.nn.training import NonFiniteGuard, format_table, train_epoch  # noqa: E402


def bare_epoch(model, loader, optimizer, loss_fn):
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main():
    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size
    x, y = rng.standard_normal((n, 784), dtype=np.float32), rng.integers(0, 10, n)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True, seed=0)
    model = MLP((784, 256, 256, 10))
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    sides = {"bare step": lambda: bare_epoch(model, loader, optimizer, loss_fn),
             "train_epoch": lambda: train_epoch(model, loader, optimizer, loss_fn)}
    times = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, epoch in sides.items():
            start = time.process_time()
            epoch()
            times[name].append((time.process_time() - start) / args.steps * 1e3)

    guard = NonFiniteGuard(model)                       # the guard's record() alone, on the last gradients
    loss = loss_fn(model(tt.tensor(x[:args.batch_size])), tt.tensor(y[:args.batch_size]))
    record = []
    for _ in range(args.repeats):
        start = time.process_time()
        for step in range(args.steps):
            guard.record(step, loss)
        guard.pending.clear()
        record.append((time.process_time() - start) / args.steps * 1e3)

    bare = statistics.median(times["bare step"])
    print(f"\nMLP 784-256-256-10, Adam, batch {args.batch_size}, {args.steps} steps per epoch, "
          f"{args.threads} BLAS thread(s); median of {args.repeats}\n")
    rows = [[name, f"{statistics.median(t):.3f}", f"{statistics.median(t) / bare:.3f}x"] for name, t in times.items()]
    rows.append(["guard.record alone", f"{statistics.median(record):.3f}", f"{statistics.median(record) / bare:.3f}x"])
    print(format_table(["side", "ms/step", "vs bare step"], rows))


if __name__ == "__main__":
    main()
