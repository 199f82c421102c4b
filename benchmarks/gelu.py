"""Exact (erf) GELU beside its tanh form on the CPU, forward only, with exp as the unit of cost.

    python benchmarks/gelu.py                     # 1 thread, 64 x 3072 elements, float32 and float64
    python benchmarks/gelu.py --size 1048576 --repeats 21

Each row is one function on the same random normal input, by default 64 rows of GPT-2 small's 3072-wide
MLP activation. "plain formulas" is the forward as written, without its in-place twin from
tinytensor/ops/fast.py. The sides run in turn within every repeat so that machine noise hits them alike;
the table gives medians and ratios to the tanh form. Time is this process's CPU time: everything runs
on one thread, so on an idle machine it equals wall time, and on a shared one the time spent waiting
for a core does not count (it would inflate the longer calls most). PyTorch's two GELUs are added when
PyTorch is importable. Prints figures only; nothing is asserted.
"""
import argparse
import os
import statistics
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", type=int, default=64 * 3072, help="elements in the input")
    parser.add_argument("--repeats", type=int, default=51, help="timed calls per side")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (and PyTorch's)")
    return parser.parse_args()


args = parse_args()
for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = str(args.threads)   # must happen before NumPy is imported

import numpy as np  # noqa: E402

import tinytensor as tt  # noqa: E402


def sides(dtype):
    """name -> a function of no arguments, all on the same input."""
    x = np.random.default_rng(0).standard_normal(args.size).astype(dtype)
    t = tt.tensor(x)
    result = {
        "tinytensor gelu, tanh form": lambda: tt.gelu(t, approximate="tanh"),
        "tinytensor gelu, exact (erf)": lambda: tt.gelu(t),
        "  the same, plain formulas": plain(lambda: tt.gelu(t)),
        "tinytensor erf": lambda: tt.erf(t),
        "NumPy exp": lambda: np.exp(x),
    }
    try:
        import torch
    except ImportError:
        return result
    torch.set_num_threads(args.threads)
    xt = torch.from_numpy(x)
    result["PyTorch gelu, tanh form"] = lambda: torch.nn.functional.gelu(xt, approximate="tanh")
    result["PyTorch gelu, exact (erf)"] = lambda: torch.nn.functional.gelu(xt)
    return result


def plain(fn):
    """fn run with the in-place twins of tinytensor/ops/fast.py switched off."""
    def run():
        with tt.ops.fast.disabled():
            return fn()
    return run


def milliseconds(fn):
    """CPU time of one call (one thread: see the module docstring)."""
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1e3


def main():
    print(f"\nGELU forward on {args.size:,} normal samples, {args.threads} thread(s), CPU time; median of "
          f"{args.repeats} calls per side, sides alternating\n")
    for dtype in ("float32", "float64"):
        functions = sides(dtype)
        for fn in functions.values():        # warm up caches and allocators
            fn()
        times = {name: [] for name in functions}
        for _ in range(args.repeats):
            for name, fn in functions.items():
                times[name].append(milliseconds(fn))
        reference = statistics.median(times["tinytensor gelu, tanh form"])
        print(f"{dtype:<32}{'ms':>9}{'vs tinytensor tanh form':>26}")
        for name, samples in times.items():
            median = statistics.median(samples)
            print(f"  {name:<30}{median:>9.3f}{median / reference:>25.2f}x")
        print()


if __name__ == "__main__":
    main()
