"""Greedy generation with a KV cache on the CPU: GPT-2 124M shapes, batch 1, a 16-token prompt, 32 new tokens.

tinytensor's GPT.generate (models/gpt2.py) is timed beside a decoder written by hand in raw NumPy with its
own KV cache (below), all on the same random weights (they cost the same time as OpenAI's and need no
download), in one process. "raw NumPy" keeps the weights (in, out), as the checkpoint stores them; "NumPy
(out,in)" reads tinytensor's own (out, in) arrays, the layout PyTorch keeps too. The sides alternate within
each repeat, in turn first and last; the table gives the median CPU time of a whole call (prompt + 32
tokens) and each side's ratio to tinytensor (median of the per-repeat ratios), then tinytensor's own TTFT /
TPOT / tokens/s. All sides must produce the same tokens; the script checks it.

    python benchmarks/gpt_generate.py            # 1 BLAS thread
"""
import argparse
import math

import side_by_side


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    side_by_side.add_arguments(parser, repeats=5)
    parser.add_argument("--prompt", type=int, default=16, help="prompt length")
    parser.add_argument("--new", type=int, default=32, help="new tokens")
    parser.add_argument("--profile", action="store_true", help="profile tinytensor's generate instead")
    return parser.parse_args()


args = parse_args()
side_by_side.set_blas_threads(args.threads)   # before NumPy is imported

import numpy as np  # noqa: E402

import tinytensor as tt  # noqa: E402
from tinytensor.models.gpt2 import GPT, GPTConfig  # noqa: E402

CONFIG = GPTConfig.preset("gpt2")


class NumpyDecoder:
    """GPT-2 inference by hand: weights as (in, out) matrices (y = x @ W + b), one sequence, a KV cache of
    (heads, block_size, head width) per layer filled position by position.

    copy=True stores each matrix (in, out) in its own contiguous array, as the Hugging Face checkpoint
    does; copy=False reads the model's (out, in) arrays through transposed views (no copy), the layout
    tinytensor and PyTorch keep. The same arithmetic; OpenBLAS is a few per cent faster on the first."""

    def __init__(self, model, copy=True):
        self.P = {}
        for name, p in model.state_dict().items():
            array = p.numpy()
            if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
                array = array.T
            self.P[name.replace("transformer.", "")] = np.ascontiguousarray(array) if copy else array

    def layer_norm(self, x, name):
        x = x - x.mean(-1, keepdims=True)
        x /= np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5)
        return x * self.P[name + ".weight"] + self.P[name + ".bias"]

    def linear(self, x, name):
        return x @ self.P[name + ".weight"] + self.P[name + ".bias"]

    def forward(self, ids, start, keys, values):
        """Logits after ids (T,) placed at positions start.. start+T-1, the cache holding 0..start-1."""
        T, C, H = len(ids), CONFIG.n_embd, CONFIG.n_head
        D, end = C // H, start + len(ids)
        x = self.P["wte.weight"][ids] + self.P["wpe.weight"][start:end]                 # (T, C)
        mask = np.triu(np.full((T, end), -np.inf, dtype=np.float32), start + 1)        # key j > query
        for i in range(CONFIG.n_layer):
            p = f"h.{i}."
            qkv = self.linear(self.layer_norm(x, p + "ln_1"), p + "attn.c_attn")
            q, k, v = qkv.reshape(T, 3, H, D).transpose(1, 2, 0, 3)                  # (H, T, D) each
            keys[i][:, start:end], values[i][:, start:end] = k, v
            scores = q @ keys[i][:, :end].transpose(0, 2, 1) / math.sqrt(D) + mask    # (H, T, end)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            y = (scores @ values[i][:, :end]).transpose(1, 0, 2).reshape(T, C)
            x = x + self.linear(y, p + "attn.c_proj")
            f = self.linear(self.layer_norm(x, p + "ln_2"), p + "mlp.c_fc")
            f = 0.5 * f * (1 + np.tanh(math.sqrt(2 / math.pi) * (f + 0.044715 * f * f * f)))
            x = x + self.linear(f, p + "mlp.c_proj")
        return self.P["wte.weight"] @ self.layer_norm(x[-1], "ln_f")                   # (V,)

    def generate(self, prompt, new_tokens):
        shape = (CONFIG.n_head, CONFIG.block_size, CONFIG.n_embd // CONFIG.n_head)
        keys = [np.zeros(shape, np.float32) for _ in range(CONFIG.n_layer)]
        values = [np.zeros(shape, np.float32) for _ in range(CONFIG.n_layer)]
        tokens = list(prompt)
        logits = self.forward(np.array(tokens), 0, keys, values)
        for _ in range(new_tokens):
            tokens.append(int(logits.argmax()))
            if len(tokens) < len(prompt) + new_tokens:
                logits = self.forward(np.array(tokens[-1:]), len(tokens) - 1, keys, values)
        return tokens


def main():
    tt.manual_seed(0)
    model = GPT(CONFIG).eval()
    prompt = np.random.default_rng(0).integers(0, CONFIG.vocab_size, args.prompt)
    idx = tt.tensor(prompt[None])
    decoders = NumpyDecoder(model), NumpyDecoder(model, copy=False)
    sides = {"tinytensor": lambda: model.generate(idx, args.new, temperature=0).numpy()[0].tolist(),
             "raw NumPy": lambda: decoders[0].generate(prompt, args.new),
             "NumPy (out,in)": lambda: decoders[1].generate(prompt, args.new)}
    if args.profile:
        import cProfile
        import pstats
        cProfile.runctx("call()", {"call": sides["tinytensor"]}, {}, "/tmp/gpt_generate.prof")
        pstats.Stats("/tmp/gpt_generate.prof").sort_stats("tottime").print_stats(20)
        return
    tokens = {name: call() for name, call in sides.items()}       # warm-up, and the tokens to compare
    if not tokens["tinytensor"] == tokens["raw NumPy"] == tokens["NumPy (out,in)"]:
        raise SystemExit(f"the sides disagree: {tokens}")
    stats = []

    def measure(call):
        start = side_by_side.clock(args.clock)()
        call()
        if call is sides["tinytensor"]:
            stats.append(model.last_generation_stats)
        return side_by_side.clock(args.clock)() - start

    times = side_by_side.alternate(sides, args.repeats, measure)
    print(f"\nGPT-2 124M shapes (random weights), batch 1, greedy, {args.prompt}-token prompt, {args.new} new "
          f"tokens, float32, KV cache; {args.threads} BLAS thread(s); median of {args.repeats} calls, "
          f"{args.clock} time; same tokens on every side: yes\n")
    side_by_side.print_table(times, "s/call")
    typical = sorted(stats, key=lambda s: s.total_s)[len(stats) // 2]
    print(f"\ntinytensor's own stats (median call, elapsed time): {typical}")


if __name__ == "__main__":
    main()
