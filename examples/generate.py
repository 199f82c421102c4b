"""Write text with a GPT, token by token as it is produced: a checkpoint of train_gpt.py, or OpenAI's GPT-2.

    python examples/generate.py --prompt "I had always thought"             # runs/gpt/ckpt.npz
    python examples/generate.py --pretrained gpt2 --prompt "Hello, I'm a language model,"
    python examples/generate.py --pretrained path/to/hf-gpt2-folder --temperature 0     # greedy
    python examples/generate.py --no-cache ...                              # recompute the context every token

After the text: time to first token (TTFT, which includes reading the prompt), time per later output token
(TPOT) and tokens per second. With the KV cache each new token costs one position of the model; with
--no-cache it costs the whole context, so TPOT grows with the length of the text.
"""
import os
import sys
from pathlib import Path

# One BLAS thread unless told otherwise (OPENBLAS_NUM_THREADS=...): a token's matrix-vector products are too
# small to split, and on a busy machine extra threads made the --no-cache path 30 times slower.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import tinytensor as tt  # noqa: E402
from tinytensor.models.gpt2 import GPT, GPTConfig  # noqa: E402
from tinytensor.models.lm_data import StreamDecoder, make_tokenizer, tokenizer_from_state  # noqa: E402
from tinytensor.nn.training import device_arg, example_parser  # noqa: E402


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--checkpoint", default="runs/gpt/ckpt.npz", help="a checkpoint written by train_gpt.py")
    parser.add_argument("--pretrained", default=None, metavar="gpt2|DIR",
                        help="OpenAI's GPT-2 instead (gpt2, gpt2-medium, ... or a Hugging Face folder)")
    parser.add_argument("--tokenizer", default=None,
                        help="GPT-2's vocabulary files for --pretrained (default: the folder's own, else downloaded)")
    parser.add_argument("--prompt", default="", help="text to continue (empty: start from <|endoftext|>, or "
                                                      "a newline for a character model)")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    parser.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    parser.add_argument("--top-p", type=float, default=None,
                        help="sample only among the most likely tokens that together have probability p")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same text")
    parser.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-cache", action="store_true", help="no KV cache: recompute the context each token")
    return parser.parse_args(argv)


def load_model(args):
    """(model, tokenizer) from --pretrained or --checkpoint."""
    if args.pretrained:
        model = GPT.from_pretrained(args.pretrained)
        folder = Path(args.pretrained)
        has_vocabulary = (folder / "vocab.json").is_file() or (folder / "encoder.json").is_file()
        tok = make_tokenizer(args.tokenizer or (str(folder) if has_vocabulary else "gpt2"))
        return model, tok
    path = Path(args.checkpoint)
    if not path.is_file():
        raise SystemExit(f"no checkpoint at {path}: train one with `python examples/train_gpt.py`, give its "
                         "path with --checkpoint, or use --pretrained gpt2")
    checkpoint = tt.load(path, map_location=args.device)
    model = GPT(GPTConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["model"])
    return model, tokenizer_from_state(checkpoint["tokenizer"])


def prompt_ids(tok, prompt):
    """The prompt's ids; an empty prompt starts from the end-of-text token (or a newline)."""
    if prompt:
        return tok.encode(prompt)
    special = getattr(tok, "special_tokens", {})
    return [special["<|endoftext|>"]] if "<|endoftext|>" in special else tok.encode("\n")


def main(argv=None):
    args = parse_args(argv)
    model, tok = load_model(args)
    model.to(args.device)
    ids = prompt_ids(tok, args.prompt)
    eos = getattr(tok, "special_tokens", {}).get("<|endoftext|>")
    stream = StreamDecoder(tok)
    print(args.prompt, end="", flush=True)
    new_ids = []
    idx = tt.tensor([ids], dtype=tt.int64, device=args.device)
    for token in model.generate_tokens(idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                       top_p=args.top_p, eos_token=eos, seed=args.seed,
                                       use_cache=not args.no_cache):
        new_ids.append(int(token[0]))
        if new_ids[-1] != eos:
            print(stream.push(new_ids[-1]), end="", flush=True)
    print(stream.flush())
    stats = model.last_generation_stats
    print(f"\n[{stats.new_tokens} tokens; TTFT {1000 * stats.ttft_s:.1f} ms, TPOT {1000 * stats.tpot_s:.1f} ms, "
          f"{stats.tokens_per_s:.1f} tokens/s; {'no ' if args.no_cache else ''}KV cache, {args.device}]",
          file=sys.stderr)
    return new_ids, stats


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as err:     # offline without the weights, a missing file, a bad option
        raise SystemExit(f"error: {err}") from None
