"""Train a Transformer to translate a made-up language pair, then look at where it attends.

    python examples/train_translation.py                              # a few minutes on a CPU, >= 99% exact match
    python examples/train_translation.py --epochs 1 --steps 20        # a quick check that everything runs
    python examples/train_translation.py --resume                     # continue an interrupted run exactly

The pair (tinytensor/models/synthetic_translation.py) moves the verb to the end, puts adjectives after
their noun, turns prepositions into postpositions, maps some words to two, and makes determiners and
adjectives agree in number with their noun. Training sentences are drawn fresh at every step; the test
sentences are set aside first and never drawn. Writes <out-dir>/translation_curves.png and
<out-dir>/translation_attention.png (the cross-attention of one test sentence, a panel per head), prints
translations greedy beside beam search, and ends with the exact-match rate on the test sentences.
After every epoch the run's state goes to <out-dir>/checkpoint.npz, which --resume continues from.
"""
import math
import os
import time
from pathlib import Path

# The matrices here are small (64 wide): one BLAS thread beats several, by far on a busy machine where
# the threads wait for each other. Set OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))

from tqdm import tqdm

import tinytensor as tt  # noqa: E402 (after the thread setting)
from tinytensor import nn
from tinytensor.models.synthetic_translation import TranslationTask
from tinytensor.models.transformer import Seq2SeqTransformer, translation_loss
from tinytensor.nn.plot import plot_attention, plot_panels
from tinytensor.nn.training import (NonFiniteGuard, add_checkpoint_args, add_common_args, example_parser, format_table,
                                    friendly_errors, load_checkpoint, parse_example_args, save_checkpoint)


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of --steps batches")
    parser.add_argument("--steps", type=int, default=100, help="training steps (batches) per epoch")
    parser.add_argument("--batch-size", type=int, default=64, help="sentence pairs per step")
    parser.add_argument("--d-model", type=int, default=64, help="width of the model")
    parser.add_argument("--layers", type=int, default=2, help="encoder layers, and as many decoder layers")
    parser.add_argument("--heads", type=int, default=4, help="attention heads")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout in every block")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, after the warm-up")
    parser.add_argument("--warmup", type=int, default=100, help="steps of linear learning-rate warm-up")
    parser.add_argument("--label-smoothing", type=float, default=0.1, help="weight spread over the other words")
    parser.add_argument("--beam", type=int, default=4, help="beam size for the table of translations")
    parser.add_argument("--test-size", type=int, default=1000, help="held-out sentences for the exact match")
    add_checkpoint_args(parser, "after every epoch (weights, optimizer, schedule, random state, sentence sampler)")
    add_common_args(parser, out_dir="runs/translation")
    return parse_example_args(parser, argv)


def translate(model, task, pairs, device, beam=1):
    """The model's translations (word lists) of the source sentences in pairs, greedy or by beam search."""
    src = tt.tensor(task.batch(pairs)[0], device=device)
    max_len = 2 * src.shape[1] + 2
    if beam == 1:
        ids = model.greedy_decode(src, max_len, task.bos_id, task.eos_id)
    else:
        ids = model.beam_search(src, beam, max_len, bos=task.bos_id, eos=task.eos_id)
    return [task.target_vocab.decode(row) for row in ids.to("cpu").numpy().tolist()]


def exact_match(model, task, pairs, device, beam=1, batch_size=250):
    """Fraction of pairs whose whole translation is right, word for word."""
    right = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        right += sum(out == target for out, (_, target) in zip(translate(model, task, chunk, device, beam), chunk))
    return right / len(pairs)


def smoothed_entropy(smoothing, classes):
    """The least label-smoothed cross-entropy a model can reach: that of the smoothed target itself."""
    right = 1 - smoothing + smoothing / classes
    other = smoothing / classes
    return -(right * math.log(right) + (classes - 1) * other * math.log(other)) if smoothing else 0.0


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors():          # errors a user fixes (missing data, ...): a paragraph, not a traceback
        return run(args)


def run(args):
    task = TranslationTask(seed=args.seed)
    test = task.held_out(args.test_size)                 # never drawn for training from here on
    print(f"vocabularies: {len(task.source_vocab)} source and {len(task.target_vocab)} target words; "
          f"{len(test)} held-out test sentences")

    tt.manual_seed(args.seed)
    model = Seq2SeqTransformer(len(task.source_vocab), len(task.target_vocab), d_model=args.d_model,
                               nhead=args.heads, num_layers=args.layers, dropout=args.dropout,
                               pad_id=task.pad_id).to(args.device)
    print(f"model: {model.num_parameters():,} parameters")
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9)
    total_steps = args.epochs * args.steps
    scheduler = nn.optim.WarmupCosine(optimizer, min(args.warmup, total_steps // 2), total_steps)

    curves = {"step": [], "loss": [], "token accuracy": [], "epoch end": [], "exact match": []}
    start = 0
    if args.resume:        # weights, Adam's moments, the schedule, dropout's generator, the sentence sampler
        state = load_checkpoint(args.checkpoint, model, optimizer, scheduler)
        start, curves = state["epoch"], state["curves"]
        task.rng.bit_generator.state = state["sampler"]
        print(f"resuming from {args.checkpoint} after epoch {start}")
    started = time.perf_counter()
    for epoch in range(start, args.epochs):
        model.train()
        bar = tqdm(range(args.steps), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True)
        guard = NonFiniteGuard(model, where=f"epoch {epoch + 1}", steps=args.steps)   # stops at a NaN or inf
        loss_sum = correct = tokens = window = 0            # over the steps since the bar was last updated
        for step in bar:
            src, tgt_in, tgt_out = (tt.tensor(a, device=args.device)
                                    for a in task.batch([task.sample() for _ in range(args.batch_size)]))
            logits = model(src, tgt_in, model.pad_mask(src), model.pad_mask(tgt_in))   # (B, T, V); True = padding
            loss = translation_loss(logits, tgt_out, task.pad_id, args.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            guard.record(step, loss)                        # finite-checks on the device, read with the sums
            optimizer.step()
            scheduler.step()

            # The sums stay on the device; they are read only every 10 steps, for the bar and the curves.
            real = tgt_out.data != task.pad_id
            loss_sum = loss_sum + loss.data
            correct = correct + ((logits.data.argmax(axis=-1) == tgt_out.data) & real).sum()
            tokens = tokens + real.sum()
            window += 1
            if window == 10 or step == args.steps - 1:
                loss_sum, correct, tokens = guard.checked_read(loss_sum, correct, tokens)   # one transfer
                curves["step"].append(epoch * args.steps + step + 1)
                curves["loss"].append(float(loss_sum) / window)
                curves["token accuracy"].append(float(correct) / float(tokens))
                bar.set_postfix(loss=f"{curves['loss'][-1]:.3f}", token_acc=f"{curves['token accuracy'][-1]:.3f}")
                loss_sum = correct = tokens = window = 0
        curves["epoch end"].append((epoch + 1) * args.steps)
        curves["exact match"].append(exact_match(model, task, test[:200], args.device))
        print(f"epoch {epoch + 1}: loss {curves['loss'][-1]:.3f}, token accuracy {curves['token accuracy'][-1]:.3f}, "
              f"exact match on 200 test sentences {curves['exact match'][-1]:.1%} "
              f"({time.perf_counter() - started:.0f} s)")
        save_checkpoint(args.checkpoint, model, optimizer, scheduler, epoch=epoch + 1, curves=curves,
                        sampler=task.rng.bit_generator.state)

    out_dir = Path(args.out_dir)
    floor = smoothed_entropy(args.label_smoothing, len(task.target_vocab))
    steps = curves["step"]
    loss_curves = {"label-smoothed cross-entropy": (steps, curves["loss"]),
                   "its floor, the entropy of the smoothed target": (steps, [floor] * len(steps))}
    accuracy_curves = {"train, per token (teacher forcing)": (steps, curves["token accuracy"]),
                       "test, whole sentence (greedy)": (curves["epoch end"], curves["exact match"])}
    plot_panels({"training loss (log)": loss_curves, "accuracy": accuracy_curves}, out_dir / "translation_curves.png",
                title="Transformer learning the synthetic translation task (x: training step)")

    # One held-out sentence with a place phrase and an adverb: the longest reordering to see.
    source, target = max(test[:200], key=lambda pair: (len(pair[0]), len(pair[1])))
    output = translate(model, task, [(source, target)], args.device)[0]
    src, tgt_in, _ = (tt.tensor(a, device=args.device) for a in task.batch([(source, output)]))
    layers = model.cross_attention(src, tgt_in)                            # per layer (1, heads, T, S)
    attention_path = plot_attention({f"layer {i + 1}": w[0] for i, w in enumerate(layers)}, source,
                                    output + ["<eos>"], out_dir / "translation_attention.png",
                                    title="cross-attention: the source words (x) each target word (y) looks at "
                                          "while it is produced")

    shown = test[:6]
    greedy = translate(model, task, shown, args.device)
    beamed = translate(model, task, shown, args.device, beam=args.beam)
    rows = [[" ".join(s), " ".join(t), " ".join(g) + ("" if g == t else "  (x)"),
             " ".join(b) + ("" if b == t else "  (x)")] for (s, t), g, b in zip(shown, greedy, beamed)]
    print()
    print(format_table(["source", "reference", "greedy", f"beam {args.beam}"], rows))
    print(f"\nplots: {out_dir / 'translation_curves.png'}, {attention_path}")
    match = exact_match(model, task, test, args.device)
    print(f"{time.perf_counter() - started:.0f} s in all; the exact match is of greedy decoding on the "
          f"{len(test)} held-out sentences")
    print(f"exact match: {100 * match:.1f}%")
    return match


if __name__ == "__main__":
    main()
