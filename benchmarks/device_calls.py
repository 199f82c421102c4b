"""Device calls and host syncs per training step on `cuda`, counted by the CuPy stand-in.

    python benchmarks/device_calls.py                 # the MNIST MLP step and the small GPT step
    python benchmarks/device_calls.py --sites         # also where each sync comes from
    python benchmarks/device_calls.py --gpu           # on a GPU: ms per step on real CuPy instead

A device call is one operation that computes or writes device data: a proxy for a kernel launch (a
launch costs ~5-10 us on a GPU whatever its size, so a small model's step is bound by their number).
A host sync is a read of a device value (float(), .item(), .get(), a boolean-mask index...): the CPU
waits until the GPU has run everything queued. Counts come from tinytensor/testing/fake_cupy.py, so
this runs on any machine and gives the same numbers every time (no timing, no noise). On a GPU machine
benchmarks/gpu_check.sh times the same steps on real CuPy.

Models: the MNIST MLP 784-256-256-10, batch 128, Adam (train_mnist.py's step); the small GPT of
models/gpt2.py, preset gpt-nano (2 layers, 4 heads, 128 wide, context 64), vocabulary 512, batch 8,
AdamW and gradient clipping at 1.0 (a GPT training step as train_gpt.py runs it).

Counted on 2026-12-02 (the same on any machine): before the cuda branch, the MLP step made 133 device
calls and 1 host sync, the GPT step 777 calls, 6 syncs and 1 host-to-device copy; after it, 74 and 0,
377 and 0 and 0. The GPT's calls were halved by Adam's foreach path (one flat vector per parameter
group), clip_grad_norm_ on one vector and LayerNorm's backward on arrays; its syncs were value checks and
the clipping norm.
"""
import argparse
import statistics
import time

import tinytensor as tt
from tinytensor import nn
from tinytensor.models.gpt2 import GPT, GPTConfig
from tinytensor.models.mlp import MLP
from tinytensor.testing import fake_cupy


def mlp_step():
    model = MLP((784, 256, 256, 10)).to("cuda")
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = tt.randn(128, 784, device="cuda"), tt.randint(0, 10, (128,), device="cuda")

    def step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return step


def gpt_step(fused=None):
    config = GPTConfig.preset("gpt-nano", vocab_size=512)
    model = (GPT(config) if fused is None else GPT(config, fused=fused)).to("cuda")
    optimizer = model.configure_optimizer(weight_decay=0.1, lr=3e-4)
    idx = tt.randint(0, 512, (8, 64), device="cuda")
    targets = tt.randint(0, 512, (8, 64), device="cuda")

    def step():
        _, loss = model(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss
    return step


def count(step, repeats=3):
    """Counters of one step in the steady state (after a first step that creates optimizer state)."""
    step()
    with fake_cupy.counting() as counts:
        for _ in range(repeats):
            step()
    per_step = {"device calls": counts.device_calls / repeats, "host syncs": counts.total_syncs / repeats,
                "host-to-device copies": counts.host_to_device / repeats}
    return per_step, counts.report()


def milliseconds(step, repeats=7, steps=20):
    """Median ms per step on the GPU: `steps` steps between two synchronizations, `repeats` times."""
    step()
    tt.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        tt.cuda.synchronize()
        times.append((time.perf_counter() - start) / steps * 1000)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", action="store_true", help="list where each host sync comes from")
    parser.add_argument("--gpu", action="store_true", help="time the steps on the GPU (needs CuPy and a GPU)")
    args = parser.parse_args()
    if not args.gpu:
        fake_cupy.install()
    tt.manual_seed(0)
    rows = [("MNIST MLP 784-256-256-10, batch 128, Adam", mlp_step()),
            ("GPT 2 layers, 4 heads, 128 wide, T=64, batch 8, AdamW + clip", gpt_step())]
    if args.gpu:
        print(f"{'training step on ' + tt.cuda.get_device_name():62s} {'median ms':>10s} {'best ms':>8s}")
        for name, step in rows:
            median, best = milliseconds(step)
            print(f"{name:62s} {median:10.2f} {best:8.2f}")
        return
    print(f"{'training step':62s} {'device calls':>12s} {'host syncs':>10s} {'H2D copies':>10s}")
    for name, step in rows:
        per_step, sites = count(step)
        print(f"{name:62s} {per_step['device calls']:12.0f} {per_step['host syncs']:10.1f} "
              f"{per_step['host-to-device copies']:10.1f}")
        if args.sites and sites:
            print(sites)


if __name__ == "__main__":
    main()
