"""Logistic regression: one neuron, p = sigmoid(w . x + b), trained with binary cross-entropy.

    python examples/logistic_regression.py
    python examples/logistic_regression.py --epochs 100 --resume    # train 50 epochs more

Two Gaussian clouds of 2-D points, one per class. The learned boundary is the line w . x + b = 0,
where p = 0.5. Writes <out-dir>/logistic_regression.png: the points over the map of p, and
<out-dir>/checkpoint.npz after every epoch, which --resume reads.
"""
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinytensor as tt
from tinytensor import nn
from tinytensor.nn.data import DataLoader, TensorDataset
from tinytensor.nn.plot import plot_decision_boundary
from tinytensor.nn.training import (add_checkpoint_args, add_common_args, example_parser, friendly_errors,
                                    format_table, load_checkpoint, parse_example_args, save_checkpoint)


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--samples", type=int, default=400, help="points per class")
    parser.add_argument("--epochs", type=int, default=50, help="passes over the points")
    parser.add_argument("--lr", type=float, default=0.1, help="SGD's learning rate")
    parser.add_argument("--batch-size", type=int, default=32, help="points per step")
    add_checkpoint_args(parser)
    add_common_args(parser, out_dir="runs/logistic_regression")
    return parse_example_args(parser, argv)


def two_gaussians(n, rng):
    """n points around (-1, -1) labelled 0 and n around (1.5, 1) labelled 1, overlapping a little."""
    points = np.concatenate([rng.normal((-1.0, -1.0), 1.0, (n, 2)), rng.normal((1.5, 1.0), 1.0, (n, 2))])
    labels = np.repeat([0.0, 1.0], n)
    return points.astype(np.float32), labels.astype(np.float32)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors():          # errors a user fixes (missing data, ...): a paragraph, not a traceback
        return run(args)


def run(args):
    tt.manual_seed(args.seed)
    points, labels = two_gaussians(args.samples, np.random.default_rng(args.seed))
    loader = DataLoader(TensorDataset(points, labels[:, None]), batch_size=args.batch_size, shuffle=True,
                        seed=args.seed, device=args.device)

    model = nn.Linear(2, 1).to(args.device)                 # the one neuron: z = w . x + b
    loss_fn = nn.BCEWithLogitsLoss()                         # sigmoid and cross-entropy in one stable step
    optimizer = nn.optim.SGD(model.parameters(), lr=args.lr)
    start, mean_loss = 0, float("nan")
    if args.resume:                                          # weights, random state, data order
        state = load_checkpoint(args.checkpoint, model, optimizer, loaders={"train": loader})
        start, mean_loss = state["epoch"], state["loss"]
    bar = tqdm(range(start + 1, args.epochs + 1), desc="epochs", initial=start, total=args.epochs)
    for epoch in bar:
        total = 0.0
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        mean_loss = total / len(points)
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        save_checkpoint(args.checkpoint, model, optimizer, loaders={"train": loader}, epoch=epoch, loss=mean_loss)

    def probability(grid):
        with tt.no_grad():
            return model(tt.tensor(grid, device=args.device)).sigmoid().numpy()[:, 0]

    accuracy = float(((probability(points) > 0.5) == (labels == 1)).mean())
    (w1, w2), b = model.weight.detach().numpy()[0], float(model.bias.detach().numpy()[0])
    path = plot_decision_boundary(probability, points, labels, Path(args.out_dir) / "logistic_regression.png",
                                  title=f"p = sigmoid({w1:.2f} x1 {w2:+.2f} x2 {b:+.2f})")
    print()
    print(format_table(["final loss", "accuracy", "w1", "w2", "b"], [[mean_loss, accuracy, float(w1), float(w2), b]]))
    print(f"\nplot: {path}")
    return accuracy


if __name__ == "__main__":
    main()
