"""What the GPT benchmarks share: one BLAS thread, a clock, and timing sides in alternation.

Import this module before NumPy: set_blas_threads must run before NumPy loads its BLAS."""
import os
import statistics
import time


def add_arguments(parser, repeats):
    """--threads, --repeats and --clock, the same in every benchmark."""
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for every side")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed runs per side")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (steadier on a shared machine, as long as every "
                             "side runs one thread); wall: elapsed time")


def set_blas_threads(threads):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def clock(kind):
    return time.process_time if kind == "cpu" else time.perf_counter


def alternate(sides, repeats, measure):
    """{name: [measure(side) for each repeat]}, the sides taking turns, in turn first and last (ABBA),
    so that a slow moment of the machine does not fall on one side only."""
    samples = {name: [] for name in sides}
    order = list(sides.items())
    for repeat in range(repeats):
        for name, side in order if repeat % 2 == 0 else order[::-1]:
            samples[name].append(measure(side))
    return samples



def print_table(times, unit, extra=None):
    """One row per side: its median, and the median over repeats of its time / tinytensor's in the same
    repeat (paired, so a slow stretch of the machine cancels out); extra = (title, {side: number})."""
    title, values = extra or ("", {})
    print(f"{'side':<16}{unit:>10}{'vs tinytensor':>16}{title:>12}")
    for name, samples in times.items():
        ratio = statistics.median(a / b for a, b in zip(samples, times["tinytensor"]))
        print(f"{name:<16}{statistics.median(samples):>10.3f}{ratio:>15.2f}x" +
              (f"{values[name]:>12.4f}" if name in values else ""))
