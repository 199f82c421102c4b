"""One training step of a small GPT (forward, cross-entropy, backward, SGD update) on the CPU.

The model: 2 layers, 4 heads, 128 wide, context 64, vocabulary 256, batch 16 (preset "gpt-nano"), float32.
tinytensor's models/gpt2.py GPT is timed (with its fused attention and GELU, and with the plain ops) beside
the same step written by hand in raw NumPy (below, forward and backward derived on paper) and beside
PyTorch eager when it is installed, all in one process, starting from the same weights. The sides alternate
within each repeat (in turn first and last) so machine noise hits them alike; the table gives medians in
ms/step (CPU time of the process by default: on a shared machine it moves less than elapsed time, as long
as every side runs one thread), each side's ratio to tinytensor (median of the per-repeat ratios), and each
side's loss after the timed steps (every side runs the same arithmetic, so they must agree closely).

    python benchmarks/gpt_train_step.py                   # 1 BLAS thread
    PYTHONPATH=/path/to/torch-site python benchmarks/gpt_train_step.py     # with the PyTorch column
    python benchmarks/gpt_train_step.py --device cuda     # tinytensor and PyTorch on the GPU
"""
import argparse
import math

import side_by_side


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    side_by_side.add_arguments(parser, repeats=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--device", default="cpu",
                        help="cpu or cuda, for tinytensor and PyTorch (NumPy stays on the CPU; cuda times wall)")
    parser.add_argument("--profile", action="store_true", help="profile the tinytensor step instead")
    return parser.parse_args()


args = parse_args()
side_by_side.set_blas_threads(args.threads)   # before NumPy is imported

import numpy as np  # noqa: E402

import tinytensor as tt  # noqa: E402
from tinytensor import nn  # noqa: E402
from tinytensor.models.gpt2 import GPT, GPTConfig  # noqa: E402

CONFIG = GPTConfig.preset("gpt-nano", vocab_size=256)
BATCH = 16
LR = 0.01


def make_batch(rng):
    data = rng.integers(0, CONFIG.vocab_size, (BATCH, CONFIG.block_size + 1))
    return data[:, :-1], data[:, 1:]


def tinytensor_side(model, x, y):
    model.to(args.device)
    optimizer = nn.optim.SGD(model.parameters(), lr=LR)
    xt, yt = tt.tensor(x, device=args.device), tt.tensor(y, device=args.device)

    def step():
        _, loss = model(xt, yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss                      # read once per block, so a GPU is not synchronised every step
    return step, tt.cuda.synchronize


# ----------------------------------------------------------------------------------- raw NumPy

def _layer_norm(x, g, b):
    mean = x.mean(-1, keepdims=True)
    xhat = x - mean
    rstd = 1 / np.sqrt((xhat * xhat).mean(-1, keepdims=True) + 1e-5)
    xhat *= rstd
    return xhat * g + b, (xhat, rstd)


def _layer_norm_backward(dy, g, cache):
    """dx = rstd (h - mean(h) - xhat mean(h xhat)), h = dy g;  dg = sum dy xhat;  db = sum dy"""
    xhat, rstd = cache
    h = dy * g
    dx = rstd * (h - h.mean(-1, keepdims=True) - xhat * (h * xhat).mean(-1, keepdims=True))
    return dx, (dy * xhat).reshape(-1, g.size).sum(0), dy.reshape(-1, g.size).sum(0)


def _gelu(x):
    t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x))
    return 0.5 * x * (1 + t), t


def _gelu_backward(dy, x, t):
    """d/dx of x (1 + t) / 2 = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)"""
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x))


def numpy_side(model, x, y):
    """The same step by hand. Weights as (in, out) matrices, y = x @ W + b; names as in models/gpt2.py."""
    P = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}
    for name in P:
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            P[name] = np.ascontiguousarray(P[name].T)
    B, T, C, H = BATCH, CONFIG.block_size, CONFIG.n_embd, CONFIG.n_head
    D = C // H
    mask = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, 0).astype(np.float32)  # key after query
    rows = np.arange(B * T)
    targets = y.reshape(-1)

    def step():
        g = {}                                                  # gradients by parameter name
        x0 = P["transformer.wte.weight"][x] + P["transformer.wpe.weight"][:T]
        h, caches = x0, []
        for i in range(CONFIG.n_layer):
            p = f"transformer.h.{i}."
            a, ln1 = _layer_norm(h, P[p + "ln_1.weight"], P[p + "ln_1.bias"])
            qkv = a.reshape(-1, C) @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
            q, k, v = qkv.reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)           # (B, H, T, D) each
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            att = s / s.sum(-1, keepdims=True)
            yh = (att @ v).transpose(0, 2, 1, 3).reshape(-1, C)
            h = h + (yh @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]).reshape(B, T, C)
            m, ln2 = _layer_norm(h, P[p + "ln_2.weight"], P[p + "ln_2.bias"])
            f = m.reshape(-1, C) @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"]
            gf, t = _gelu(f)
            h = h + (gf @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]).reshape(B, T, C)
            caches.append((a, ln1, q, k, v, att, yh, m, ln2, f, gf, t))
        z, lnf = _layer_norm(h, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"])
        z = z.reshape(-1, C)
        logits = z @ P["transformer.wte.weight"].T
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        loss = -np.log(probs[rows, targets]).mean()
        # backward: dlogits = (softmax - onehot) / rows
        dlogits = probs
        dlogits[rows, targets] -= 1
        dlogits /= B * T
        g["transformer.wte.weight"] = dlogits.T @ z
        dz = (dlogits @ P["transformer.wte.weight"]).reshape(B, T, C)
        dh, g["transformer.ln_f.weight"], g["transformer.ln_f.bias"] = _layer_norm_backward(
            dz, P["transformer.ln_f.weight"], lnf)
        for i in reversed(range(CONFIG.n_layer)):
            p = f"transformer.h.{i}."
            a, ln1, q, k, v, att, yh, m, ln2, f, gf, t = caches[i]
            d = dh.reshape(-1, C)                                   # MLP branch
            g[p + "mlp.c_proj.weight"], g[p + "mlp.c_proj.bias"] = gf.T @ d, d.sum(0)
            df = _gelu_backward(d @ P[p + "mlp.c_proj.weight"].T, f, t)
            g[p + "mlp.c_fc.weight"], g[p + "mlp.c_fc.bias"] = m.reshape(-1, C).T @ df, df.sum(0)
            dm = (df @ P[p + "mlp.c_fc.weight"].T).reshape(B, T, C)
            dx, g[p + "ln_2.weight"], g[p + "ln_2.bias"] = _layer_norm_backward(dm, P[p + "ln_2.weight"], ln2)
            dh = dh + dx
            d = dh.reshape(-1, C)                                   # attention branch
            g[p + "attn.c_proj.weight"], g[p + "attn.c_proj.bias"] = yh.T @ d, d.sum(0)
            dy = (d @ P[p + "attn.c_proj.weight"].T).reshape(B, T, H, D).transpose(0, 2, 1, 3)
            datt = dy @ v.transpose(0, 1, 3, 2)
            dv = att.transpose(0, 1, 3, 2) @ dy
            ds = att * (datt - (datt * att).sum(-1, keepdims=True)) / math.sqrt(D)   # softmax backward
            dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
            dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(-1, 3 * C)
            g[p + "attn.c_attn.weight"] = a.reshape(-1, C).T @ dqkv
            g[p + "attn.c_attn.bias"] = dqkv.sum(0)
            da = (dqkv @ P[p + "attn.c_attn.weight"].T).reshape(B, T, C)
            dx, g[p + "ln_1.weight"], g[p + "ln_1.bias"] = _layer_norm_backward(da, P[p + "ln_1.weight"], ln1)
            dh = dh + dx
        dx0 = dh.reshape(-1, C)
        g["transformer.wpe.weight"] = dh.sum(0)
        np.add.at(g["transformer.wte.weight"], x.reshape(-1), dx0)
        for name, grad in g.items():
            P[name] -= LR * grad
        return float(loss)
    return step, lambda: None


# ----------------------------------------------------------------------------------- PyTorch eager

def torch_side(model, x, y):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    P = {name: torch.tensor(p.detach().numpy(), requires_grad=True, device=args.device)
         for name, p in model.named_parameters()}
    xt, yt = torch.from_numpy(x).to(args.device), torch.from_numpy(y).to(args.device)
    B, T, C, H = BATCH, CONFIG.block_size, CONFIG.n_embd, CONFIG.n_head
    optimizer = torch.optim.SGD(P.values(), lr=LR)
    positions = torch.arange(T, device=args.device)
    synchronize = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def linear(h, name):
        return F.linear(h, P[name + ".weight"], P[name + ".bias"])

    def step():
        h = P["transformer.wte.weight"][xt] + P["transformer.wpe.weight"][positions]
        for i in range(CONFIG.n_layer):
            p = f"transformer.h.{i}."
            a = F.layer_norm(h, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"])
            q, k, v = linear(a, p + "attn.c_attn").split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = h + linear(att.transpose(1, 2).reshape(B, T, C), p + "attn.c_proj")
            m = F.layer_norm(h, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"])
            h = h + linear(F.gelu(linear(m, p + "mlp.c_fc"), approximate="tanh"), p + "mlp.c_proj")
        z = F.layer_norm(h, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"])
        loss = F.cross_entropy((z @ P["transformer.wte.weight"].T).view(B * T, -1), yt.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()   # float() of a tensor that requires grad makes PyTorch warn
    return step, synchronize


# ----------------------------------------------------------------------------------- timing

def time_block(side):
    """(ms per step over one block, the last loss), waiting for the GPU (if any) before reading the clock."""
    step, synchronize = side
    clock = side_by_side.clock(args.clock if args.device == "cpu" else "wall")
    synchronize()
    start = clock()
    for _ in range(args.steps):
        loss = step()
    synchronize()
    return (clock() - start) / args.steps * 1e3, float(loss)


def main():
    x, y = make_batch(np.random.default_rng(0))
    tt.manual_seed(0)
    model = GPT(CONFIG)
    sides = {"raw NumPy": numpy_side(model, x, y)}
    try:
        sides["PyTorch eager"] = torch_side(model, x, y)
    except ImportError:
        print("PyTorch is not installed: comparing with raw NumPy only")
    plain = GPT(CONFIG, fused=False)
    plain.load_state_dict(model.state_dict())
    sides = {"tinytensor": tinytensor_side(model, x, y), "tt plain ops": tinytensor_side(plain, x, y), **sides}
    if args.profile:
        import cProfile
        import pstats
        cProfile.runctx("for _ in range(20): step()", {"step": sides["tinytensor"][0]}, {}, "/tmp/gpt_step.prof")
        pstats.Stats("/tmp/gpt_step.prof").sort_stats("tottime").print_stats(25)
        return
    for side in sides.values():    # warm up caches and allocators
        time_block(side)
    losses = {}

    def measure(side):
        ms, losses[side] = time_block(side)
        return ms

    times = side_by_side.alternate(sides, args.repeats, measure)
    print(f"\nGPT {CONFIG.n_layer} layers, {CONFIG.n_head} heads, {CONFIG.n_embd} wide, context "
          f"{CONFIG.block_size}, vocab {CONFIG.vocab_size}, batch {BATCH}, float32, SGD; {args.threads} BLAS "
          f"thread(s), device {args.device}; median of {args.repeats} blocks of {args.steps} steps, "
          f"{args.clock if args.device == 'cpu' else 'wall'} time\n")
    side_by_side.print_table(times, "ms/step", ("loss after", {name: losses[side] for name, side in sides.items()}))

if __name__ == "__main__":
    main()
