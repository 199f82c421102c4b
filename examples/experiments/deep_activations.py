"""Why ReLU in deep hidden layers: gradient norm per layer, sigmoid vs ReLU, in a 10-layer MLP on MNIST.

    python examples/experiments/deep_activations.py                  # about a minute on a laptop CPU
    python examples/experiments/deep_activations.py --activations sigmoid,tanh,relu
    python examples/experiments/deep_activations.py --limit 512 --steps 20      # a quick check
    python examples/experiments/deep_activations.py --resume         # skip the activations already done

Each activation gets the initialisation made for it (Xavier for sigmoid and tanh, He for ReLU), the same
seed and the same batches. The script measures the norm of each layer's weight gradient at
initialisation (mean over a few batches), then trains every network with the same SGD settings.
Writes <out-dir>/deep_activations.png: the gradient norm per layer (left, log scale) and the training
loss per step (right), and <out-dir>/checkpoint.npz after each activation: the results so far, which
--resume keeps (each activation starts from the seed, so the others come out the same).
"""
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

import tinytensor as tt
from tinytensor import nn
from tinytensor.nn.data import DataLoader
from tinytensor.nn.datasets import MNIST
from tinytensor.nn.plot import save
from tinytensor.nn.training import (add_checkpoint_args, add_common_args, add_data_dir_arg, evaluate, example_parser,
                                    friendly_errors, format_table, load_checkpoint, parse_example_args,
                                    save_progress)

ACTIVATIONS = {"sigmoid": (nn.Sigmoid, "xavier"), "tanh": (nn.Tanh, "xavier"), "relu": (nn.ReLU, "he")}


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--activations", default="sigmoid,relu", help=f"from {', '.join(ACTIVATIONS)}")
    parser.add_argument("--depth", type=int, default=10, help="hidden layers")
    parser.add_argument("--width", type=int, default=128, help="units per hidden layer")
    parser.add_argument("--steps", type=int, default=600, help="SGD steps of training")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD with momentum 0.9")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step")
    parser.add_argument("--limit", type=int, default=20000, help="training images used")
    add_data_dir_arg(parser)
    add_checkpoint_args(parser, "after each activation (its results; an activation starts from the seed)")
    add_common_args(parser, out_dir="runs/experiments")
    return parse_example_args(parser, argv)


def deep_mlp(activation, depth, width):
    """Flatten, then `depth` x (Linear, activation), then Linear to 10 logits, initialised for the activation."""
    layer, init = ACTIVATIONS[activation]
    sizes = [784] + [width] * depth
    modules = [nn.Flatten()]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        linear = nn.Linear(n_in, n_out)
        if init == "he":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        else:
            nn.init.xavier_normal_(linear.weight, gain=nn.init.calculate_gain(activation))
        nn.init.zeros_(linear.bias)
        modules += [linear, layer()]
    modules.append(nn.Linear(width, 10))
    return nn.Sequential(*modules)


def weight_gradient_norms(model, batches):
    """Mean over the batches of |dL/dW| for each Linear layer, input side first."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    norms = np.zeros(len(linears))
    for x, y in batches:
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        norms += [float((layer.weight.grad * layer.weight.grad).sum()) ** 0.5 for layer in linears]
    return norms / len(batches)


def train(model, loader, steps, lr, label):
    """`steps` steps of SGD (momentum 0.9); the loss of every step."""
    optimizer = nn.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses, bar = [], tqdm(total=steps, desc=label, leave=False)
    while len(losses) < steps:
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if len(losses) == steps:
                break
    bar.close()
    return losses


def plot(norms, losses, path, depth):
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_norm, ax_loss = fig.subplots(1, 2)
    for i, name in enumerate(norms):
        layers = np.arange(1, len(norms[name]) + 1)
        ax_norm.plot(layers, norms[name], marker="o", color=f"C{i}", label=name)
        window = max(1, len(losses[name]) // 30)
        smooth = np.convolve(losses[name], np.ones(window) / window, mode="valid")
        ax_loss.plot(np.arange(window, len(losses[name]) + 1), smooth, color=f"C{i}", label=name)
    ax_norm.set(xlabel="layer (1 = next to the input)", ylabel="|dL/dW| at initialisation", yscale="log",
                title=f"gradient norm per layer, {depth} hidden layers")
    ax_loss.set(xlabel="SGD step", ylabel="training loss (running mean)", yscale="log", title="training")
    for ax in (ax_norm, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    return save(fig, path)


def main(argv=None):
    args = parse_args(argv)
    with friendly_errors():          # errors a user fixes (missing data, ...): a paragraph, not a traceback
        return run(args)


def run(args):
    names = args.activations.split(",")
    unknown = [n for n in names if n not in ACTIVATIONS]
    if unknown:
        raise SystemExit(f"unknown activation {unknown[0]!r}: choose from {', '.join(ACTIVATIONS)}")
    train_set = MNIST("train", data_dir=args.data_dir, limit=args.limit, device=args.device)
    val_set = MNIST("val", data_dir=args.data_dir, limit=args.limit, device=args.device)
    done = load_checkpoint(args.checkpoint)["done"] if args.resume else {}   # {name: (norms, losses, row)}
    for name in names:
        if name in done:
            continue
        tt.manual_seed(args.seed)                    # same batches for every activation
        model = deep_mlp(name, args.depth, args.width).to(args.device)
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)
        batches = [batch for batch, _ in zip(loader, range(5))]
        norms = weight_gradient_norms(model, batches)
        losses = train(model, loader, args.steps, args.lr, name)
        _, val_acc = evaluate(model, DataLoader(val_set, batch_size=1000))
        done[name] = (norms, losses, [name, f"{norms[0]:.2e}", f"{norms[-1]:.2e}", f"{norms[0] / norms[-1]:.2g}",
                                      float(np.mean(losses[-20:])), val_acc])
        save_progress(args.checkpoint, done=done)
    norms, losses = ({name: done[name][i] for name in names} for i in (0, 1))
    rows = [done[name][2] for name in names]
    path = plot(norms, losses, Path(args.out_dir) / "deep_activations.png", args.depth)
    print(format_table(["activation", "|grad| layer 1", "|grad| last layer", "first / last",
                        "final train loss", "val acc"], rows))
    print(f"\nplot: {path}")
    return rows


if __name__ == "__main__":
    main()
