"""Universal approximation: one hidden layer of tanh units fits a 1-D curve, better as it gets wider.

    python examples/universal_approximation.py --widths 1,2,4,8,32
    python examples/universal_approximation.py --widths 1,2,4,8,32 --resume   # skip the widths done

Each network is x -> Linear(1, width) -> tanh -> Linear(width, 1), trained with Adam on the whole set
of points at once to fit y = sin(3x) + 0.3 x^2 on [-2, 2]. Writes <out-dir>/universal_approximation.png:
the target and one fitted curve per width, and <out-dir>/checkpoint.npz after each width: the results
so far, which --resume keeps (each width starts from the seed, so the others come out the same).
"""
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinytensor as tt
from tinytensor import nn
from tinytensor.nn.plot import plot_fits
from tinytensor.nn.training import (add_checkpoint_args, add_common_args, example_parser, friendly_errors,
                                    format_table, load_checkpoint, parse_example_args, save_progress)


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--widths", default="1,2,4,8,32", help="hidden widths to try")
    parser.add_argument("--steps", type=int, default=3000, help="full-batch Adam steps per width")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate")
    parser.add_argument("--points", type=int, default=256, help="evenly spaced points on [-2, 2]")
    add_checkpoint_args(parser, "after each width (the curves so far; a width starts from the seed)")
    add_common_args(parser, out_dir="runs/universal_approximation")
    return parse_example_args(parser, argv)


def target(x):
    return np.sin(3 * x) + 0.3 * x ** 2


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors():          # errors a user fixes (missing data, ...): a paragraph, not a traceback
        return run(args)


def run(args):
    xs = np.linspace(-2, 2, args.points, dtype=np.float32)[:, None]           # (points, 1)
    x, y = tt.tensor(xs, device=args.device), tt.tensor(target(xs), device=args.device)

    widths = [int(w) for w in args.widths.split(",")]
    done = load_checkpoint(args.checkpoint)["done"] if args.resume else {}   # {width: (label, curve, row)}
    for width in widths:
        if width in done:
            continue
        tt.manual_seed(args.seed)
        model = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 1)).to(args.device)
        optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
        loss_fn = nn.MSELoss()
        bar = tqdm(range(args.steps), desc=f"width {width}", leave=False)
        for step in bar:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 100 == 0:
                bar.set_postfix(mse=f"{loss.item():.5f}")
        with tt.no_grad():
            fitted = model(x)
            mse = loss_fn(fitted, y).item()
        done[width] = (f"width {width} (mse {mse:.1e})", fitted.numpy()[:, 0],
                       [width, sum(p.size for p in model.parameters()), f"{mse:.2e}"])
        save_progress(args.checkpoint, done=done)

    fits = {done[w][0]: done[w][1] for w in widths}
    rows = [done[w][2] for w in widths]

    path = plot_fits(xs[:, 0], target(xs[:, 0]), fits, Path(args.out_dir) / "universal_approximation.png",
                     title="one hidden tanh layer fitting sin(3x) + 0.3 x^2")
    print()
    print(format_table(["width", "parameters", "final mse"], rows))
    print(f"\nplot: {path}")
    return rows


if __name__ == "__main__":
    main()
