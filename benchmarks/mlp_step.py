"""One training step of a 784-256-256-10 ReLU MLP (forward, cross-entropy, backward, SGD update).

Times tinytensor beside a hand-written raw-NumPy step of the same network, and beside PyTorch on the CPU
when it is installed, in the same process. The sides alternate within each repeat so that machine noise
hits them alike; the table gives medians in ms/step and each side's ratio to tinytensor.

Then the cost of the engine itself: the Python time one `Function.apply` adds around its forward (a
Function whose forward returns its input, applied to a tensor that requires grad, so a graph node is
recorded), minus the time of calling that forward directly; PyTorch's custom-Function apply beside it.

    python benchmarks/mlp_step.py                 # 1 BLAS thread (the fair comparison)
    python benchmarks/mlp_step.py --threads 2
    python benchmarks/mlp_step.py --device cuda   # tinytensor and PyTorch on the GPU (NumPy stays on CPU)
    python benchmarks/mlp_step.py --clock wall    # wall-clock time instead of this process's CPU time

On the CPU the clock is this process's CPU time by default: on a machine shared with other jobs, time
spent waiting for a core is not counted, so the figures (and above all the ratios) stay comparable. The
GPU side always uses the wall clock, since GPU time is not the process's CPU time.
"""
import argparse
import os
import statistics
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for every side")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per side")
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for tinytensor and PyTorch")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="process CPU time (robust on a shared machine) or wall time; cuda uses wall")
    return parser.parse_args()


args = parse_args()
clock = time.process_time if args.clock == "cpu" and args.device == "cpu" else time.perf_counter
for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = str(args.threads)   # must happen before NumPy is imported

import numpy as np  # noqa: E402

import tinytensor as tt  # noqa: E402
from tinytensor import nn  # noqa: E402

SIZES = (784, 256, 256, 10)
LR = 0.01


def make_batch(rng):
    x = rng.standard_normal((args.batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], args.batch)
    return x, y


def tinytensor_step_fn(x, y):
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10)).to(args.device)
    optimizer = nn.optim.SGD(model.parameters(), lr=LR)
    xt, yt = tt.tensor(x, device=args.device), tt.tensor(y, device=args.device)

    def step():
        loss = nn.functional.cross_entropy(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step, tt.cuda.synchronize


def numpy_step_fn(x, y):
    """The same step written by hand: float32, weights (in, out), mean cross-entropy."""
    rng = np.random.default_rng(0)
    weights = [(rng.uniform(-1, 1, (n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
               for n_in, n_out in zip(SIZES[:-1], SIZES[1:])]
    biases = [np.zeros(n_out, np.float32) for n_out in SIZES[1:]]
    rows = np.arange(len(y))

    def step():
        activations = [x]
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = activations[-1] @ w + b
            if i < len(weights) - 1:
                np.maximum(h, 0, out=h)
            activations.append(h)
        logits = activations[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        grad = probs
        grad[rows, y] -= 1
        grad /= len(y)
        for i in reversed(range(len(weights))):
            grad_w = activations[i].T @ grad
            grad_b = grad.sum(axis=0)
            if i > 0:
                grad = grad @ weights[i].T
                grad *= activations[i] > 0
            weights[i] -= LR * grad_w
            biases[i] -= LR * grad_b
    return step, lambda: None


def torch_step_fn(x, y):
    import torch
    torch.set_num_threads(args.threads)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(args.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x).to(args.device), torch.from_numpy(y).to(args.device)
    synchronize = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def step():
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step, synchronize


class Identity(tt.Function):
    """y = x        dy/dx = 1: no work, so timing it times the engine."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


def per_call_us(fn, calls=20000):
    """Median µs per call of fn() over args.repeats blocks."""
    samples = []
    for _ in range(args.repeats):
        start = clock()
        for _ in range(calls):
            fn()
        samples.append((clock() - start) / calls * 1e6)
    return statistics.median(samples)


def apply_overhead_us():
    """{side: µs one apply adds to its forward}; the graph is recorded (the input requires grad)."""
    x = tt.ones(1, requires_grad=True)
    array = x.data
    overheads = {"tinytensor": per_call_us(lambda: Identity.apply(x))
                 - per_call_us(lambda: Identity.forward(None, array))}
    try:
        import torch
    except ImportError:
        return overheads

    class TorchIdentity(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return grad

    t = torch.ones(1, requires_grad=True)
    overheads["PyTorch"] = (per_call_us(lambda: TorchIdentity.apply(t))
                            - per_call_us(lambda: TorchIdentity.forward(None, t)))
    return overheads


def time_block(side):
    """ms per step over one block, waiting for the GPU (if any) before reading the clock."""
    step, synchronize = side
    synchronize()
    start = clock()
    for _ in range(args.steps):
        step()
    synchronize()
    return (clock() - start) / args.steps * 1e3


def main():
    x, y = make_batch(np.random.default_rng(0))
    sides = {"tinytensor": tinytensor_step_fn(x, y), "raw NumPy": numpy_step_fn(x, y)}
    try:
        sides[f"PyTorch ({args.device})"] = torch_step_fn(x, y)
    except ImportError:
        print("PyTorch is not installed: comparing with raw NumPy only")
    for side in sides.values():    # warm up caches and allocators
        time_block(side)
    times = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, side in sides.items():
            times[name].append(time_block(side))
    reference = statistics.median(times["tinytensor"])
    print(f"\nMLP {'-'.join(map(str, SIZES))}, batch {args.batch}, float32, SGD, device {args.device}, "
          f"{args.threads} BLAS thread(s); median of {args.repeats} blocks of {args.steps} steps, "
          f"{'process CPU' if clock is time.process_time else 'wall-clock'} time\n")
    print(f"{'side':<16}{'ms/step':>10}{'vs tinytensor':>16}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<16}{median:>10.3f}{median / reference:>15.2f}x")
    print("\nFunction.apply overhead (forward excluded), median of "
          f"{args.repeats} blocks of 20,000 calls; goal for tinytensor: <= 2 us")
    for name, overhead in apply_overhead_us().items():
        print(f"{name:<16}{overhead:>8.2f} us")


if __name__ == "__main__":
    main()
