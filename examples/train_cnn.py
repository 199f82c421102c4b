"""Train LeNet-5 (with batch normalisation) on MNIST or Fashion-MNIST.

    python examples/train_cnn.py                          # MNIST, 10 epochs: 99.2% test accuracy
    python examples/train_cnn.py --dataset fashion        # Fashion-MNIST: 90.1%
    python examples/train_cnn.py --limit 512 --epochs 1   # a quick check that everything runs
    python examples/train_cnn.py --resume                 # continue an interrupted run exactly

Writes <out-dir>/lenet_<dataset>.png: loss and accuracy per epoch, train (solid) and validation (dashed),
and <out-dir>/checkpoint.npz after every epoch, which --resume reads.
"""
import argparse
from pathlib import Path

import tinytensor as tt
from tinytensor import nn
from tinytensor.models.lenet import LeNet
from tinytensor.nn.data import DataLoader
from tinytensor.nn.datasets import DATASETS
from tinytensor.nn.plot import plot_curves
from tinytensor.nn.training import (add_training_args, evaluate, example_parser, friendly_errors, fit, format_table,
                                    make_optimizer, parse_example_args)


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist", help="digits or clothes")
    parser.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                        help="LeNet-5 as first published, without batch normalisation")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="random shifts of up to 2 pixels (default: on for mnist, off for fashion)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout in the classifier")
    add_training_args(parser, out_dir="runs/lenet")
    return parse_example_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors():          # errors a user fixes (missing data, ...): a paragraph, not a traceback
        return run(args)


def run(args):
    tt.manual_seed(args.seed)

    Dataset = DATASETS[args.dataset]
    augment = args.dataset == "mnist" if args.augment is None else args.augment
    train = Dataset("train", data_dir=args.data_dir, limit=args.limit, augment=augment,
                    device=args.device, seed=args.seed)
    val, test = (Dataset(split, data_dir=args.data_dir, limit=args.limit, device=args.device)
                 for split in ("val", "test"))
    print(f"{args.dataset}: {len(train)} train, {len(val)} validation, {len(test)} test images")

    model = LeNet(batch_norm=args.batch_norm, dropout=args.dropout).to(args.device)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    scheduler = nn.optim.CosineAnnealingLR(optimizer, T_max=args.epochs)   # lr decays to 0 by the last epoch
    history = fit(model, DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed),
                  DataLoader(val, batch_size=1000), optimizer, args.epochs, patience=args.patience,
                  scheduler=scheduler, checkpoint=args.checkpoint, resume=args.resume, name="LeNet")
    _, test_acc = evaluate(model, DataLoader(test, batch_size=1000))

    path = plot_curves({"LeNet": history}, Path(args.out_dir) / f"lenet_{args.dataset}.png",
                       title=f"LeNet-5 on {args.dataset}, {args.optimizer}")
    seconds = sum(history["seconds_per_epoch"]) / len(history["seconds_per_epoch"])
    print()
    print(format_table(["dataset", "epochs", "val acc", "test acc", "s/epoch"],
                       [[args.dataset, len(history["val_acc"]), history["val_acc"][-1], test_acc, f"{seconds:.1f}"]]))
    print(f"\nplot: {path}")
    return test_acc


if __name__ == "__main__":
    main()
