"""Seconds per training epoch of the 784-256-256-10 MLP on MNIST (CPU), beside raw NumPy and PyTorch.

Each side does the same work: shuffle the 55,000 training images, cut batches of 128, and for each batch
forward, mean cross-entropy, backward and an optimizer step (SGD with momentum 0.9, or Adam), in
float32. The raw-NumPy side is the same epoch written by hand (no autograd, no framework), the floor
that tinytensor's overhead is measured against. PyTorch runs when it is installed. Sides alternate
within each repeat so machine noise hits them alike; the table gives the median epoch time.

    python benchmarks/mnist_epoch.py                         # 1 BLAS thread, SGD, 3 repeats
    python benchmarks/mnist_epoch.py --optimizer adam --threads 2
    python benchmarks/mnist_epoch.py --clock wall            # wall-clock instead of process CPU time

The clock is this process's CPU time by default, so that on a machine shared with other jobs the time
spent waiting for a core is not counted and the ratios stay comparable.

Uses the real MNIST images when they are found locally (see nn/datasets.py), random ones otherwise
(the timing does not depend on the pixel values).
"""
import argparse
import os
import statistics
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for every side")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per side")
    parser.add_argument("--limit", type=int, default=None, help="images per epoch (default: all 55,000)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="process CPU time (robust on a shared machine) or wall time")
    return parser.parse_args()


args = parse_args()
clock = time.process_time if args.clock == "cpu" else time.perf_counter
for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = str(args.threads)   # must happen before NumPy is imported

import numpy as np  # noqa: E402

import tinytensor as tt  # noqa: E402
from tinytensor import nn  # noqa: E402
from tinytensor.models.mlp import MLP  # noqa: E402
from tinytensor.nn.data import DataLoader, TensorDataset  # noqa: E402
from tinytensor.nn.datasets import MNIST  # noqa: E402
from tinytensor.nn.training import format_table, make_optimizer  # noqa: E402

SIZES = (784, 256, 256, 10)
LR = {"sgd": 0.05, "adam": 1e-3}[args.optimizer]


def load_images():
    try:
        train = MNIST("train", limit=args.limit, download=False)
        return train.arrays[0].reshape(len(train), -1), train.arrays[1], "MNIST"
    except FileNotFoundError:
        n = args.limit or 55000
        rng = np.random.default_rng(0)
        return rng.standard_normal((n, 784), dtype=np.float32), rng.integers(0, 10, n), "random images"


def tinytensor_epoch_fn(x, y):
    model = MLP(SIZES)
    optimizer = make_optimizer(args.optimizer, model.parameters(), LR)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True, seed=0)

    def epoch():
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epoch


class NumpyMLP:
    """The same network and update by hand. Weights (in, out) so that forward is x @ W."""

    def __init__(self, rng):
        self.params = []
        for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
            bound = 1 / np.sqrt(n_in)
            self.params += [rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32),
                            np.zeros(n_out, np.float32)]
        self.slots = [[np.zeros_like(p), np.zeros_like(p)] for p in self.params]   # momentum / Adam moments
        self.t = 0

    def gradients(self, x, y):
        """Forward, softmax cross-entropy and backward; the gradient of each parameter, in order."""
        inputs, h = [], x
        for i in range(0, len(self.params), 2):
            inputs.append(h)
            h = h @ self.params[i] + self.params[i + 1]
            if i + 2 < len(self.params):
                np.maximum(h, 0, out=h)
        dz = np.exp(h - h.max(axis=1, keepdims=True))
        dz /= dz.sum(axis=1, keepdims=True)          # softmax
        dz[np.arange(len(y)), y] -= 1                 # d(mean cross-entropy)/d(logits), times N
        dz /= len(y)
        grads = [None] * len(self.params)
        for i in reversed(range(0, len(self.params), 2)):
            grads[i], grads[i + 1] = inputs[i // 2].T @ dz, dz.sum(axis=0)
            if i:
                dz = (dz @ self.params[i].T) * (inputs[i // 2] > 0)
        return grads

    def update(self, grads):
        self.t += 1
        for p, g, (m, v) in zip(self.params, grads, self.slots):
            if args.optimizer == "sgd":
                m *= 0.9
                m += g
                p -= LR * m
            else:
                m += 0.1 * (g - m)
                v += 0.001 * (g * g - v)
                p -= LR * (m / (1 - 0.9 ** self.t)) / (np.sqrt(v / (1 - 0.999 ** self.t)) + 1e-8)


def numpy_epoch_fn(x, y):
    rng = np.random.default_rng(0)
    net = NumpyMLP(rng)

    def epoch():
        order = rng.permutation(len(x))
        for start in range(0, len(x), args.batch_size):
            batch = order[start:start + args.batch_size]
            net.update(net.gradients(x[batch], y[batch]))
    return epoch


def torch_epoch_fn(x, y):
    import torch
    torch.set_num_threads(args.threads)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = (torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9) if args.optimizer == "sgd"
                 else torch.optim.Adam(model.parameters(), lr=LR))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=args.batch_size, shuffle=True)

    def epoch():
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epoch


def main():
    x, y, source = load_images()
    y = y.astype(np.int64)
    sides = {"tinytensor": tinytensor_epoch_fn(x, y), "raw NumPy": numpy_epoch_fn(x, y)}
    try:
        sides["PyTorch (CPU)"] = torch_epoch_fn(x, y)
    except ImportError:
        print("PyTorch not installed: comparing with raw NumPy only")
    times = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, epoch in sides.items():
            start = clock()
            epoch()
            times[name].append(clock() - start)
    reference = statistics.median(times["tinytensor"])
    print(f"\nMLP {'-'.join(map(str, SIZES))} on {len(x)} {source}, batch {args.batch_size}, float32, "
          f"{args.optimizer} (lr {LR}), {args.threads} BLAS thread(s); median of {args.repeats} epochs, "
          f"{'process CPU' if args.clock == 'cpu' else 'wall-clock'} time\n")
    rows = [[name, f"{statistics.median(t):.2f}", f"{statistics.median(t) / reference:.2f}x"]
            for name, t in times.items()]
    print(format_table(["side", "s/epoch", "vs tinytensor"], rows))


if __name__ == "__main__":
    main()
