"""Train a multi-layer perceptron (784-256-256-10) on MNIST; optionally compare dropout rates or optimizers.

    python examples/train_mnist.py                              # 10 epochs of Adam, ~98% test accuracy
    python examples/train_mnist.py --compare-dropout 0,0.3      # two runs, one plot, the train-val gaps
    python examples/train_mnist.py --compare-optimizers sgd,adam   # each with its default learning rate
    python examples/train_mnist.py --limit 512 --epochs 1       # a quick check that everything runs
    python examples/train_mnist.py --resume                     # continue an interrupted run exactly

Writes <out-dir>/mnist_mlp.png (mnist_mlp_optimizers.png when comparing optimizers): loss and accuracy per
epoch, train (solid) and validation (dashed), and <out-dir>/checkpoint.npz after every epoch (one per run
when comparing), which --resume reads.
"""
from pathlib import Path

import tinytensor as tt
from tinytensor import nn
from tinytensor.models.mlp import MLP
from tinytensor.nn.data import DataLoader
from tinytensor.nn.datasets import MNIST
from tinytensor.nn.plot import plot_curves
from tinytensor.nn.training import (DEFAULT_LR, add_training_args, evaluate, example_parser, friendly_errors, fit,
                                    format_table, make_optimizer, parse_example_args)


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--sizes", default="784,256,256,10", help="layer widths, input to output")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout after each hidden layer")
    parser.add_argument("--compare-dropout", default=None, metavar="P,Q,...",
                        help="train once per dropout rate (same seed) and plot them together")
    parser.add_argument("--compare-optimizers", default=None, metavar="NAME,NAME",
                        help="train once per optimizer (sgd, adam; same seed) and plot them together")
    add_training_args(parser, out_dir="runs/mnist_mlp")
    return parse_example_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors():          # errors a user fixes (missing data, ...): a paragraph, not a traceback
        return run(args)


def run(args):
    sizes = tuple(int(s) for s in args.sizes.split(","))
    runs = compared_runs(args)    # (what varies, its value, dropout, optimizer) per run

    # Data: 55,000 training images, 5,000 for validation, the 10,000 test images kept for the end.
    data = {split: MNIST(split, data_dir=args.data_dir, limit=args.limit, device=args.device)
            for split in ("train", "val", "test")}
    print(f"MNIST: {len(data['train'])} train, {len(data['val'])} validation, {len(data['test'])} test images")

    histories, rows = {}, []
    for varied, value, rate, optimizer_name in runs:
        tt.manual_seed(args.seed)                      # same initial weights and batches for every run
        model = MLP(sizes, dropout=rate).to(args.device)
        optimizer = make_optimizer(optimizer_name, model.parameters(), args.lr, args.weight_decay)
        scheduler = nn.optim.CosineAnnealingLR(optimizer, T_max=args.epochs)   # lr decays to 0 by the end
        train_loader = DataLoader(data["train"], batch_size=args.batch_size, shuffle=True, seed=args.seed)
        val_loader = DataLoader(data["val"], batch_size=1000)
        checkpoint = args.checkpoint
        if len(runs) > 1:
            checkpoint = str(Path(checkpoint).with_suffix(f".{varied}{value}.npz"))
        # A comparison interrupted before some run began resumes the others and starts that one.
        resume = args.resume and (len(runs) == 1 or Path(checkpoint).is_file())
        label = f"{varied} {value}"
        history = fit(model, train_loader, val_loader, optimizer, args.epochs, patience=args.patience,
                      scheduler=scheduler, checkpoint=checkpoint, resume=resume, name=label)
        histories[label] = history
        # Final figures in eval mode (dropout off), so train and validation are measured alike.
        train_acc, val_acc, test_acc = (evaluate(model, DataLoader(data[split], batch_size=1000))[1]
                                        for split in ("train", "val", "test"))
        seconds = sum(history["seconds_per_epoch"]) / len(history["seconds_per_epoch"])
        rows.append([f"{value}", train_acc, val_acc, train_acc - val_acc, test_acc, f"{seconds:.1f}"])

    varied = runs[0][0]
    optimizers = args.compare_optimizers or args.optimizer
    filename = "mnist_mlp_optimizers.png" if varied == "optimizer" else "mnist_mlp.png"
    path = plot_curves(histories, Path(args.out_dir) / filename,
                       title=f"MLP {'-'.join(map(str, sizes))} on MNIST, {optimizers}")
    print()
    print(format_table([varied, "train acc", "val acc", "train-val gap", "test acc", "s/epoch"], rows))
    print(f"\nplot: {path}")
    return rows


def compared_runs(args):
    """(what varies, its value, dropout, optimizer) for each run: one per dropout rate of
    --compare-dropout, or one per optimizer of --compare-optimizers, or the single run asked for."""
    if args.compare_dropout and args.compare_optimizers:
        raise SystemExit("give --compare-dropout or --compare-optimizers, not both")
    if args.compare_optimizers:
        names = args.compare_optimizers.split(",")
        unknown = [name for name in names if name not in DEFAULT_LR]
        if unknown:
            raise SystemExit(f"unknown optimizer {unknown[0]!r}: choose from {', '.join(sorted(DEFAULT_LR))}")
        return [("optimizer", name, args.dropout, name) for name in names]
    rates = [float(p) for p in args.compare_dropout.split(",")] if args.compare_dropout else [args.dropout]
    return [("dropout", f"{rate:g}", rate, args.optimizer) for rate in rates]


if __name__ == "__main__":
    main()
