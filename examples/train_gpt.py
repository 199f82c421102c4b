"""Train a GPT on text: a small one on the CPU in a minute or two, the baby GPT on tiny Shakespeare on a GPU.

    python examples/train_gpt.py                    # CPU: 4 layers x 128 on The Verdict, our BPE (512 tokens)
    python examples/train_gpt.py --device cuda      # GPU: characters of tiny Shakespeare, 6 layers x 384
    python examples/train_gpt.py --resume           # continue <out-dir>/ckpt.npz exactly where it stopped
    python examples/train_gpt.py --init-from gpt2 --data shakespeare --max-iters 200   # fine-tune GPT-2

Each step: a batch of random windows of the text, forward to the next-token loss, backward, clip the
gradient norm, AdamW, then the learning rate of the schedule (linear warm-up, cosine decay to lr / 10).
Every --eval-interval steps: validation loss and perplexity on held-out text (the last 10%), a checkpoint
<out-dir>/ckpt.npz (model, optimizer, schedule, tokenizer, settings and random state) and the plot
<out-dir>/loss.png. Ctrl-C stops at the end of the current step and saves the checkpoint first.
"""
import argparse
import hashlib
import math
import os
import signal
import time
from pathlib import Path

# Matrices this small run faster on one BLAS thread than split over several (a step of the default model
# took 130 ms on one thread, 400 ms on two, on a 2-core machine). Set OPENBLAS_NUM_THREADS to choose.
# (Before NumPy is imported: it reads them then.)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from tqdm import tqdm  # noqa: E402

import tinytensor as tt  # noqa: E402
from tinytensor import backend, nn
from tinytensor.models.gpt2 import GPT, PRESETS, GPTConfig
from tinytensor.models.lm_data import (CORPORA, RandomBatches, TokenWindows, encode_corpus, estimate_loss,
                                       load_corpus, make_tokenizer, perplexity, split_ids, tokenizer_from_state,
                                       tokenizer_to_state)
from tinytensor.nn.plot import plot_steps
from tinytensor.nn.training import (NonFiniteError, NonFiniteGuard, RunningMetrics, device_arg, example_parser,
                                   format_table, load_checkpoint, save_checkpoint)

# Defaults per device; anything given on the command line wins. The GPU setting is the well-known
# character-level "baby GPT" on tiny Shakespeare.
DEFAULTS = {
    "cpu": dict(data="verdict", tokenizer="bpe", vocab_size=512, n_layer=4, n_head=4, n_embd=128,
                block_size=64, dropout=0.1, batch_size=16, max_iters=300, lr=1e-3, warmup=30,
                eval_interval=50, eval_batches=20, sample_every=0),
    "cuda": dict(data="shakespeare", tokenizer="char", vocab_size=None, n_layer=6, n_head=6, n_embd=384,
                 block_size=256, dropout=0.2, batch_size=64, max_iters=5000, lr=1e-3, warmup=100,
                 eval_interval=250, eval_batches=20, sample_every=1000),
}
MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")
CHECKPOINT = "ckpt.npz"
RESUME_MAY_CHANGE = ("device", "out_dir", "resume", "tf32")   # where a resumed run computes, not what
# Dense float32 / TF32 tensor-core peaks (TFLOP/s; SXM boards) for the model-FLOPs utilisation shown on cuda.
PEAK_TFLOPS = {"H100": (67.0, 495.0), "H200": (67.0, 495.0), "A100": (19.5, 156.0), "L40S": (91.6, 183.0),
               "L4": (30.3, 60.0), "A10": (31.2, 62.5), "V100": (15.7, 15.7), "T4": (8.1, 8.1),
               "4090": (82.6, 82.6), "3090": (35.6, 35.6)}


def parse_args(argv=None):
    parser = example_parser(__doc__, epilog="Unset options take the cpu or cuda defaults:\n" + "\n".join(
        f"  {device}: " + ", ".join(f"{k}={v}" for k, v in values.items()) for device, values in DEFAULTS.items()))
    add = parser.add_argument
    add("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N")
    add("--data", help=f"{', '.join(CORPORA)} or the path of a UTF-8 text file")
    add("--tokenizer", help="bpe (trained on the text, cached), char, gpt2, or a tokenizer folder / GPT-2 files")
    add("--vocab-size", type=int, help="BPE vocabulary size")
    add("--preset", choices=sorted(PRESETS), help="a model shape from models/gpt2.py; the options below change it")
    add("--n-layer", type=int)
    add("--n-head", type=int)
    add("--n-embd", type=int)
    add("--block-size", type=int, help="context length in tokens")
    add("--dropout", type=float)
    add("--batch-size", type=int)
    add("--grad-accum", type=int, default=1, help="micro-batches summed into one step (default: %(default)s)")
    add("--max-iters", type=int, help="optimizer steps")
    add("--lr", type=float, help="peak learning rate, reached after --warmup steps, then cosine decay to lr/10")
    add("--warmup", type=int, help="steps of linear warm-up")
    add("--weight-decay", type=float, default=0.1, help="AdamW decay of the matrices (default: %(default)s)")
    add("--grad-clip", type=float, default=1.0, help="clip the gradient norm to this; 0 turns it off "
                                                       "(default: %(default)s)")
    add("--eval-interval", type=int, help="steps between validation loss, checkpoint and plot")
    add("--eval-batches", type=int, help="at most this many validation batches per evaluation")
    add("--sample-every", type=int, help="print a sample every N steps (0: only at the end)")
    add("--sample-tokens", type=int, default=200, help="length of each sample (default: %(default)s)")
    add("--prompt", default=None, help="start of the samples (default: the first words of the validation text)")
    add("--out-dir", default="runs/gpt", help="checkpoint and plot folder (default: %(default)s)")
    add("--resume", action="store_true",
        help="continue from <out-dir>/ckpt.npz with its settings (only --device and --tf32 may change)")
    add("--seed", type=int, default=0, help="(default: %(default)s)")
    add("--tf32", action="store_true", help="on cuda: float32 matmuls on TF32 tensor cores (faster, 10-bit mantissa)")
    add("--init-from", default=None, metavar="gpt2|DIR",
        help="start from OpenAI's weights (gpt2, gpt2-medium, ... or a Hugging Face folder) and fine-tune")
    return parser.parse_args(argv)


def complete(args):
    """Fill the options left unset from the device's defaults (and the preset, when one is named)."""
    if args.init_from:                 # OpenAI's weights read GPT-2's token ids
        if args.tokenizer in ("bpe", "char"):
            raise ValueError(f"--init-from {args.init_from} needs GPT-2's tokenizer: leave out --tokenizer "
                             f"{args.tokenizer} (or give GPT-2's vocabulary files)")
        args.tokenizer = args.tokenizer or "gpt2"
    defaults = dict(DEFAULTS["cpu" if args.device == "cpu" else "cuda"])
    if args.preset:
        preset = GPTConfig.preset(args.preset).to_dict()
        defaults.update({name: preset[name] for name in MODEL_FIELDS})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("max_iters", "batch_size", "grad_accum", "eval_interval", "eval_batches", "sample_tokens"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.sample_every < 0 or args.warmup < 0:
        raise ValueError(f"--sample-every ({args.sample_every}) and --warmup ({args.warmup}) cannot be negative")
    return args


# ------------------------------------------------------------------------------------------ set-up

def build(args, checkpoint=None):
    """Tokenizer, train and validation windows, model, optimizer and schedule for these settings."""
    text = load_corpus(args.data)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if checkpoint is not None and digest != args.text_sha256:
        raise ValueError(f"--resume: the text of {args.data} is not the one this run was trained on (its "
                         "sha256 differs); resuming on other text would not continue the same run")
    args.text_sha256 = digest                          # saved with the settings, checked on resume
    if checkpoint is not None:
        tok = tokenizer_from_state(checkpoint["tokenizer"])
    elif args.init_from and args.tokenizer == "gpt2" and (Path(args.init_from) / "vocab.json").is_file():
        tok = make_tokenizer(args.init_from)           # a Hugging Face folder ships GPT-2's vocabulary files
    else:
        tok = make_tokenizer(args.tokenizer, text, args.vocab_size)
    train_ids, val_ids = split_ids(encode_corpus(tok, text), val_fraction=0.1)

    if args.init_from and checkpoint is None:
        model = GPT.from_pretrained(args.init_from, dropout=args.dropout)
    else:
        config = GPTConfig(**checkpoint["config"]) if checkpoint else GPTConfig(
            vocab_size=tok.n_vocab, **{name: getattr(args, name) for name in MODEL_FIELDS})
        model = GPT(config)
    config = model.config
    if tok.n_vocab > config.vocab_size:
        raise ValueError(f"the tokenizer has {tok.n_vocab} tokens but the model only {config.vocab_size}")
    block_size = min(args.block_size, config.block_size)   # a pretrained model may take longer contexts
    model.to(args.device)
    train = TokenWindows(train_ids, block_size, stride=1, device=args.device)
    val = TokenWindows(val_ids, block_size, stride=block_size, device=args.device)
    optimizer = model.configure_optimizer(args.weight_decay, args.lr, betas=(0.9, 0.99))
    warmup = min(args.warmup, args.max_iters - 1)
    scheduler = nn.optim.WarmupCosine(optimizer, warmup, args.max_iters, min_lr=args.lr / 10)
    return tok, train, val, model, optimizer, scheduler


def flops_per_token(config, block_size):
    """Forward + backward FLOPs of one token: 6 per weight (2 forward, 4 backward) plus the attention
    scores and weighted sums, 12 * n_layer * n_embd * T (T = context length)."""
    weights = config.n_layer * 12 * config.n_embd ** 2 + config.vocab_size * config.n_embd
    return 6 * weights + 12 * config.n_layer * config.n_embd * block_size


def peak_flops(device, tf32):
    """The GPU's dense float32 (or TF32) peak in FLOP/s, or None for a CPU or an unknown GPU."""
    if device == "cpu":
        return None
    name = tt.cuda.get_device_name(int(device[5:]) if ":" in device else 0)
    for key, (fp32, tensor_core) in PEAK_TFLOPS.items():
        if key in name:
            return 1e12 * (tensor_core if tf32 else fp32)
    return None


# ------------------------------------------------------------------------------------------ Ctrl-C

class StopOnCtrlC:
    """While active, the first Ctrl-C only asks the loop to stop after the current step (so the
    checkpoint it saves is a consistent one); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to quit now)")

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)


# ------------------------------------------------------------------------------------------ training

def sample(model, tok, prompt_ids, device, seed, max_new_tokens):
    """Text the model writes after the prompt (temperature 0.8, top-k 50, a fixed seed)."""
    idx = tt.tensor([prompt_ids], dtype=tt.int64, device=device)
    out = model.generate(idx, max_new_tokens, temperature=0.8, top_k=50, seed=seed)
    return tok.decode(out.numpy()[0].tolist())


def resume_settings(args):
    """With --resume: the checkpoint in --out-dir, and the settings it was trained with (only --device and
    --tf32 may differ; any other option given with another value is an error). Without: None and the
    settings given."""
    if not args.resume:
        return None, args
    path = Path(args.out_dir) / CHECKPOINT
    if not path.is_file():
        raise SystemExit(f"--resume: no checkpoint at {path} (train first, or give the --out-dir it is in)")
    checkpoint = tt.load(path, map_location="cpu")
    saved = argparse.Namespace(**checkpoint["settings"])
    defaults = vars(parse_args([]))
    changed = [f"--{name.replace('_', '-')} {value} (the run has {getattr(saved, name, None)})"
               for name, value in vars(args).items()
               if name not in RESUME_MAY_CHANGE and value != defaults[name] and value != getattr(saved, name, None)]
    if changed:   # refused, not ignored: the run would silently go on with its own values
        raise SystemExit(f"--resume continues the run in {path} with its own settings, so {', '.join(changed)} "
                         "cannot be applied: leave it out, or start a new run in another --out-dir")
    saved.device, saved.out_dir, saved.resume, saved.tf32 = args.device, args.out_dir, True, args.tf32
    return checkpoint, saved


def main(argv=None):
    checkpoint, args = resume_settings(parse_args(argv))
    complete(args)
    if args.tf32 and args.device != "cpu":
        os.environ["CUPY_TF32"] = "1"          # read by CuPy at its first float32 matmul
    tt.manual_seed(args.seed)
    tok, train, val, model, optimizer, scheduler = build(args, checkpoint)
    batches = RandomBatches(train, args.batch_size, seed=args.seed)
    history = {"step": [], "train": [], "val_step": [], "val": []}
    step = 0
    if checkpoint is not None:        # weights, optimizer, schedule, batch sampler and dropout's generator
        load_checkpoint(Path(args.out_dir) / CHECKPOINT, model, optimizer, scheduler, {"train": batches})
        history, step = checkpoint["history"], checkpoint["step"]

    config, out_dir = model.config, Path(args.out_dir)
    path, plot_path = out_dir / CHECKPOINT, out_dir / "loss.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens_per_step = args.batch_size * args.grad_accum * train.block_size
    peak = peak_flops(args.device, args.tf32)
    step_flops = flops_per_token(config, train.block_size) * tokens_per_step
    tokenizer_state = tokenizer_to_state(tok)
    prompt_ids = tok.encode(args.prompt) if args.prompt else backend.move(val.ids[:8], "cpu").tolist()
    log_every = max(1, min(10, args.eval_interval))
    metrics = RunningMetrics()              # loss and next-token accuracy, summed on the device
    guard = NonFiniteGuard(model, steps=args.max_iters)   # NaN/inf checks, read together with the loss
    began = time.perf_counter()
    interval_start, interval_step = began, step

    with StopOnCtrlC() as stop:
        print(f"{args.data}: {len(train.ids):,} training and {len(val.ids):,} validation tokens ({tok!r})")
        print(f"GPT: {config.n_layer} layers, {config.n_head} heads, {config.n_embd} wide, context "
              f"{train.block_size}, {model.num_params():,} parameters; {tokens_per_step:,} tokens per step on "
              f"{args.device}" + (f"; resuming at step {step}" if step else ""), flush=True)
        if step == 0:       # where training starts from: about ln(vocab_size) for a fresh model
            history["val_step"].append(0)
            history["val"].append(estimate_loss(model, val, args.batch_size, args.eval_batches))
            print(f"step 0: val loss {history['val'][0]:.4f} (ln {config.vocab_size} = "
                  f"{math.log(config.vocab_size):.4f} is a uniform guess)")
        bar = tqdm(total=args.max_iters, initial=step, desc="train", dynamic_ncols=True)
        model.train()
        while step < args.max_iters:
            for _ in range(args.grad_accum):
                x, y = batches.next()
                logits, loss = model(x, y)
                (loss / args.grad_accum).backward()          # gradients add up over the micro-batches
                metrics.add(loss.detach(), logits.detach().reshape(-1, config.vocab_size), y.reshape(-1))
            guard.record(step, loss)                        # flags on the device; nothing is read here
            if args.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            optimizer.zero_grad()                           # frees the gradients until the next backward
            scheduler.step()
            step += 1
            bar.update()

            if step % log_every == 0 or step == args.max_iters or stop.requested:
                train_loss, accuracy = guard.checked_means(metrics)   # the one read of the device per log
                now = time.perf_counter()
                rate = tokens_per_step * (step - interval_step) / (now - interval_start)
                shown = dict(loss=f"{train_loss:.3f}", acc=f"{accuracy:.3f}",
                             lr=f"{scheduler.get_last_lr()[0]:.1e}", tok_s=f"{rate:,.0f}")
                if peak:
                    shown["mfu"] = f"{100 * rate / tokens_per_step * step_flops / peak:.1f}%"
                bar.set_postfix(shown)
                history["step"].append(step)
                history["train"].append(train_loss)
                metrics, interval_start, interval_step = RunningMetrics(), now, step

            if step % args.eval_interval == 0 or step == args.max_iters or stop.requested:
                val_loss = estimate_loss(model, val, args.batch_size, args.eval_batches)
                history["val_step"].append(step)
                history["val"].append(val_loss)
                tqdm.write(f"step {step}: train loss {history['train'][-1]:.4f} | val loss {val_loss:.4f}, "
                           f"perplexity {perplexity(val_loss):.1f}")
                save_checkpoint(path, model, optimizer, scheduler, {"train": batches}, step=step, history=history,
                                settings=vars(args), config=config.to_dict(), tokenizer=tokenizer_state)
                plot_steps({f"train (mean of {log_every} steps, dropout on)": (history["step"], history["train"]),
                            "validation": (history["val_step"], history["val"])}, plot_path,
                           title=f"GPT {config.n_layer}x{config.n_embd} on {Path(args.data).name}")
            if args.sample_every and step % args.sample_every == 0 and step < args.max_iters:
                text = sample(model, tok, prompt_ids, args.device, args.seed, args.sample_tokens)
                tqdm.write(f"--- sample at step {step}:\n{text}\n---")
            if stop.requested:
                break
        bar.close()
    seconds = time.perf_counter() - began
    if stop.requested:
        print(f"stopped at step {step}; checkpoint saved to {path}; continue with --resume --out-dir {out_dir}")
    else:
        print(f"--- sample:\n{sample(model, tok, prompt_ids, args.device, args.seed, args.sample_tokens)}\n---")
    print(format_table(["step", "train loss", "val loss", "val perplexity", "seconds"],
                       [[step, history["train"][-1], history["val"][-1], perplexity(history["val"][-1]),
                         f"{seconds:.0f}"]]))
    print(f"checkpoint: {path}\nplot: {plot_path}")
    return dict(step=step, history=history, seconds=seconds, stopped=stop.requested)


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, NonFiniteError) as err:   # missing files, offline, bad settings, NaN loss
        raise SystemExit(f"error: {err}") from None
