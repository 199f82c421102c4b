"""How fast is models/bpe.py? Encoding throughput beside tiktoken, and training time beside the naive trainer.

    python -m benchmarks.tokenizer                  # from the repository root
    python -m benchmarks.tokenizer --gpt2 PATH      # GPT-2's files elsewhere (default: $TINYTENSOR_DATA/gpt2)

Encoding: GPT-2's vocabulary on tiny Shakespeare (1.1 MB), one thread. Our encoder and tiktoken run in
turn, `--repeats` times each; the table shows medians. "cold" is the first call of a fresh tokenizer (every
distinct chunk goes through BPE once); later calls find every chunk in the cache.
Training: a 4,096-token vocabulary on tiny Shakespeare. The naive trainer, which recounts every pair after
every merge, is run for fewer merges and its per-merge time extrapolated linearly to the same count.
Prints figures only; nothing is asserted.
"""

import argparse
import os
import statistics
import time
from pathlib import Path

from tinytensor.models.bpe import BPETokenizer, count_chunks, learn_merges_naive

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT / "models" / "data" / "tinyshakespeare.txt"


def seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def tiktoken_like(tok):
    """tiktoken's encoder built from our tokenizer's own ranks and pattern (tiktoken's loader would go online)."""
    import tiktoken

    return tiktoken.Encoding(name="gpt2", pat_str=tok.pattern, mergeable_ranks=tok.ranks, special_tokens=tok.special_tokens)


def encoding_rows(gpt2_path, text, repeats):
    megabytes = len(text.encode("utf-8")) / 1e6
    tok = BPETokenizer.from_gpt2(gpt2_path)
    cold = seconds(lambda: tok.encode_ordinary(text))
    reference = tiktoken_like(tok)
    if tok.encode_ordinary(text) != reference.encode_ordinary(text):
        raise RuntimeError("our ids differ from tiktoken's: run tests/models/test_bpe.py")
    ours, theirs = [], []
    for _ in range(repeats):  # alternate, so that both see the same machine load
        ours.append(seconds(lambda: tok.encode_ordinary(text)))
        theirs.append(seconds(lambda: reference.encode_ordinary(text)))
    ours_mb_s, theirs_mb_s = megabytes / statistics.median(ours), megabytes / statistics.median(theirs)
    return [
        ("encode, models.bpe, cold cache (first call)", f"{megabytes / cold:.2f} MB/s"),
        (f"encode, models.bpe, median of {repeats}", f"{ours_mb_s:.2f} MB/s"),
        (f"encode, tiktoken, median of {repeats}", f"{theirs_mb_s:.2f} MB/s"),
        ("models.bpe / tiktoken", f"{ours_mb_s / theirs_mb_s:.2f}"),
    ]


def training_rows(text, vocab_size, naive_vocab_size):
    n_merges = vocab_size - 257  # 256 bytes and <|endoftext|>
    n_naive = naive_vocab_size - 257
    incremental = seconds(lambda: BPETokenizer.train(text, vocab_size))
    naive_counting = seconds(lambda: count_chunks(text))
    words, freqs = count_chunks(text)
    naive_merging = seconds(lambda: list(learn_merges_naive(words, freqs, n_naive)))
    extrapolated = naive_counting + naive_merging / n_naive * n_merges
    return [
        (f"train {vocab_size} tokens, incremental counts", f"{incremental:.2f} s"),
        (f"train {naive_vocab_size} tokens, naive recount (measured)", f"{naive_counting + naive_merging:.2f} s"),
        (f"train {vocab_size} tokens, naive recount (extrapolated x{n_merges / n_naive:.1f})", f"{extrapolated:.0f} s"),
        ("naive / incremental", f"{extrapolated / incremental:.0f}x"),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_gpt2 = Path(os.environ.get("TINYTENSOR_DATA", ROOT.parent / "shared" / "data")) / "gpt2" / "gpt2.tiktoken"
    parser.add_argument("--gpt2", default=default_gpt2, help="GPT-2's vocabulary: a .tiktoken file or a folder")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--naive-vocab-size", type=int, default=512)
    args = parser.parse_args()

    text = SHAKESPEARE.read_text(encoding="utf-8")
    gpt2_path = args.gpt2 if Path(args.gpt2).exists() else None  # None: download (or explain how)
    rows = encoding_rows(gpt2_path, text, args.repeats) + training_rows(text, args.vocab_size, args.naive_vocab_size)
    width = max(len(name) for name, _ in rows)
    print(f"tiny Shakespeare, {len(text.encode('utf-8')) / 1e6:.2f} MB, {os.cpu_count()} CPUs, one thread")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")


if __name__ == "__main__":
    main()
