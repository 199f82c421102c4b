"""nn.MultiHeadAttention on the CPU: self-attention over a padded batch, at the translation example's size.

Batch 64, 13 positions, embed_dim 64, 4 heads, a key padding mask (the last 4 positions of half the rows),
float32. Three sides start from the same weights and inputs: tinytensor's module, the same forward written
in raw NumPy (below), and PyTorch's nn.MultiheadAttention(batch_first=True) when it is installed. Table 1
times the forward alone (no graph); table 2 forward and backward (raw NumPy has no backward). The sides
alternate within each repeat (in turn first and last); medians in ms per call, CPU time of the process by
default (steadier on a shared machine, with one BLAS thread), each side's ratio to tinytensor, and the
largest difference of each side's output from tinytensor's.

    python benchmarks/attention.py
    PYTHONPATH=/path/to/torch-site python benchmarks/attention.py     # with the PyTorch column
"""
import argparse

import side_by_side


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    side_by_side.add_arguments(parser, repeats=9)
    parser.add_argument("--calls", type=int, default=20, help="calls per timed block")
    return parser.parse_args()


args = parse_args()
side_by_side.set_blas_threads(args.threads)   # before NumPy is imported

import numpy as np  # noqa: E402

import tinytensor as tt  # noqa: E402
from tinytensor import nn  # noqa: E402

BATCH, LENGTH, EMBED, HEADS = 64, 13, 64, 4


def numpy_forward(x, padding, params):
    """The module's forward by hand: project, split heads, masked softmax, merge, output projection."""
    head = EMBED // HEADS
    q, k, v = np.split(x @ params["in_proj_weight"].T + params["in_proj_bias"], 3, axis=-1)
    q, k, v = (t.reshape(BATCH, LENGTH, HEADS, head).transpose(0, 2, 1, 3) for t in (q, k, v))
    scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head))             # (B, H, L, S)
    scores = np.where(padding[:, None, None, :], np.finfo(np.float32).min, scores)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    weights = scores / scores.sum(-1, keepdims=True)
    merged = (weights @ v).transpose(0, 2, 1, 3).reshape(BATCH, LENGTH, EMBED)
    return merged @ params["out_proj.weight"].T + params["out_proj.bias"]


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, LENGTH, EMBED)).astype(np.float32)
    padding = np.zeros((BATCH, LENGTH), bool)
    padding[::2, -4:] = True
    tt.manual_seed(0)
    module = nn.MultiHeadAttention(EMBED, HEADS)
    params = {name: p.numpy().copy() for name, p in module.state_dict().items()}
    params["in_proj_bias"] = rng.standard_normal(3 * EMBED).astype(np.float32)   # non-zero biases
    params["out_proj.bias"] = rng.standard_normal(EMBED).astype(np.float32)
    module.load_state_dict(params)
    x_tt = tt.tensor(x, requires_grad=True)

    def tinytensor_forward():
        with tt.no_grad():
            return module(x_tt, x_tt, x_tt, key_padding_mask=padding, need_weights=False)[0].numpy()

    def tinytensor_backward():
        out = module(x_tt, x_tt, x_tt, key_padding_mask=padding, need_weights=False)[0]
        out.sum().backward()
        return out.detach().numpy()

    forward = {"tinytensor": tinytensor_forward, "raw NumPy": lambda: numpy_forward(x, padding, params)}
    backward = {"tinytensor": tinytensor_backward}
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: its column is left out")
    else:
        torch.set_num_threads(args.threads)
        reference = torch.nn.MultiheadAttention(EMBED, HEADS, batch_first=True)
        reference.load_state_dict({name: torch.tensor(value) for name, value in params.items()})
        x_torch, padding_torch = torch.tensor(x, requires_grad=True), torch.tensor(padding)

        def torch_forward():
            with torch.no_grad():
                return reference(x_torch, x_torch, x_torch, key_padding_mask=padding_torch,
                                 need_weights=False)[0].numpy()

        def torch_backward():
            out = reference(x_torch, x_torch, x_torch, key_padding_mask=padding_torch, need_weights=False)[0]
            out.sum().backward()
            return out.detach().numpy()

        forward["PyTorch"], backward["PyTorch"] = torch_forward, torch_backward

    tick = side_by_side.clock(args.clock)

    def measure(call):
        start = tick()
        for _ in range(args.calls):
            call()
        return 1000 * (tick() - start) / args.calls

    expected = tinytensor_forward()
    for title, sides in (("forward", forward), ("forward and backward", backward)):
        times = side_by_side.alternate(sides, args.repeats, measure)
        difference = {name: float(np.abs(call() - expected).max()) for name, call in sides.items()}
        print(f"\n{title}: batch {BATCH}, length {LENGTH}, embed_dim {EMBED}, {HEADS} heads, float32, "
              f"{args.threads} BLAS thread(s), {args.clock} time")
        side_by_side.print_table(times, "ms/call", ("max |diff|", difference))


if __name__ == "__main__":
    main()
