"""An MNIST autoencoder: squeeze each 784-pixel image through a small bottleneck and rebuild it.

    python examples/autoencoder.py --bottleneck 32
    python examples/autoencoder.py --bottleneck 32 --resume     # continue an interrupted run exactly

encoder 784 -> 256 -> bottleneck (ReLU), decoder bottleneck -> 256 -> 784 (sigmoid: pixels in [0, 1]),
trained to minimise the mean squared error between input and output. No labels are used.
Writes <out-dir>/autoencoder.png: test images (top row) and their reconstructions (bottom row), and
<out-dir>/checkpoint.npz after every epoch, which --resume reads.
"""
from pathlib import Path

from tqdm import tqdm

import tinytensor as tt
from tinytensor import nn
from tinytensor.nn.data import DataLoader
from tinytensor.nn.datasets import MNIST
from tinytensor.nn.plot import plot_image_rows
from tinytensor.nn.training import (NonFiniteGuard, add_checkpoint_args, add_common_args, add_data_dir_arg,
                                    example_parser, format_table, friendly_errors, load_checkpoint,
                                    parse_example_args, save_checkpoint)


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--bottleneck", type=int, default=32, help="width of the code in the middle")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training images")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--limit", type=int, default=None, help="use only N training (and test) images (default: all)")
    add_data_dir_arg(parser)
    add_checkpoint_args(parser)
    add_common_args(parser, out_dir="runs/autoencoder")
    return parse_example_args(parser, argv)


@tt.no_grad()
def mean_error(model, loader, loss_fn):
    model.eval()
    total = sum(loss_fn(model(x), x.flatten(1)).item() * len(x) for x, _ in loader)
    return total / len(loader.dataset)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors():          # errors a user fixes (missing data, ...): a paragraph, not a traceback
        return run(args)


def run(args):
    tt.manual_seed(args.seed)
    # Pixels in [0, 1] (no normalisation), so the sigmoid output can match them.
    train, test = (MNIST(split, data_dir=args.data_dir, val_size=0, normalize=False, limit=args.limit,
                         device=args.device) for split in ("train", "test"))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)

    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, args.bottleneck),
                            nn.ReLU())
    decoder = nn.Sequential(nn.Linear(args.bottleneck, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid())
    model = nn.Sequential(encoder, decoder).to(args.device)
    optimizer = nn.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.MSELoss()

    start = 0
    if args.resume:                                    # weights, Adam's moments, random state, data order
        start = load_checkpoint(args.checkpoint, model, optimizer, loaders={"train": loader})["epoch"]
        tqdm.write(f"resuming from {args.checkpoint} after epoch {start}")
    for epoch in range(start + 1, args.epochs + 1):
        model.train()
        guard = NonFiniteGuard(model, where=f"epoch {epoch}", steps=len(loader))   # stops at a NaN or inf
        bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", leave=False)
        for step, (x, _) in enumerate(bar):            # the labels are not used
            loss = loss_fn(model(x), x.flatten(1))     # the target is the input itself
            optimizer.zero_grad()
            loss.backward()
            guard.record(step, loss)                   # finite-checks on the device, read with the loss
            optimizer.step()
            if step % 20 == 0:
                mse, = guard.checked_read(loss.data)
                bar.set_postfix(mse=f"{float(mse):.4f}")
        guard.checked_read()                           # the steps since the last read
        tqdm.write(f"epoch {epoch}: train mse {mean_error(model, DataLoader(train, 1000), loss_fn):.4f}")
        save_checkpoint(args.checkpoint, model, optimizer, loaders={"train": loader}, epoch=epoch)

    train_mse, test_mse = (mean_error(model, DataLoader(ds, 1000), loss_fn) for ds in (train, test))
    images = tt.tensor(test[:10][0], device=args.device)   # (10, 1, 28, 28), beside the model
    with tt.no_grad():
        rebuilt = model(images).numpy().reshape(-1, 28, 28)
    path = plot_image_rows({"original": images.numpy()[:, 0], "rebuilt": rebuilt},
                           Path(args.out_dir) / "autoencoder.png",
                           title=f"autoencoder, bottleneck {args.bottleneck} (784 -> {args.bottleneck} -> 784)")
    print()
    print(format_table(["bottleneck", "compression", "train mse", "test mse"],
                       [[args.bottleneck, f"{784 / args.bottleneck:.1f}x", train_mse, test_mse]]))
    print(f"\nplot: {path}")
    return test_mse


if __name__ == "__main__":
    main()
