"""Draw the autograd graph of a two-layer MLP's loss, after backward, with Graphviz.

    python examples/draw_graph.py                      # writes runs/graph/mlp_graph.png and .dot
    python examples/draw_graph.py --format svg

Each layer shows up as its op (Linear, one fused Function; then Relu), then the cross-entropy;
the parameters are labelled with their names and, after backward, the norm of their gradient.
"""
from pathlib import Path

import tinytensor as tt
from tinytensor import nn
from tinytensor.models.mlp import MLP
from tinytensor.nn.training import add_common_args, example_parser


def parse_args(argv=None):
    parser = example_parser(__doc__)
    parser.add_argument("--sizes", default="4,8,3", help="layer widths, input to output (two layers: three widths)")
    parser.add_argument("--batch", type=int, default=16, help="random inputs in the batch")
    parser.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="of the picture")
    add_common_args(parser, out_dir="runs/graph")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tt.manual_seed(args.seed)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    model = MLP(sizes).to(args.device)
    x = tt.randn(args.batch, sizes[0], device=args.device)
    y = tt.randint(0, sizes[-1], size=(args.batch,), device=args.device)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()

    names = dict(model.named_parameters())
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dot_path = out_dir / "mlp_graph.dot"
    dot_path.write_text(tt.viz.to_dot(loss, names, title="loss"))
    print(f"loss {loss.item():.4f}; DOT text: {dot_path}")
    try:
        picture = tt.viz.render(loss, out_dir / f"mlp_graph.{args.format}", names, title="loss")
        print(f"picture: {picture}")
    except RuntimeError as error:   # Graphviz missing: the DOT file is still there
        print(error)
        picture = None
    return dot_path, picture


if __name__ == "__main__":
    main()
