"""A multi-layer perceptron: Linear layers with ReLU between them (and optional dropout).

    model = MLP((784, 256, 256, 10), dropout=0.3)     # 784 inputs, two hidden layers of 256, 10 logits
    logits = model(images)                            # images (N, 784) or (N, 1, 28, 28) -> (N, 10)
"""
from tinytensor import nn


class MLP(nn.Module):
    """Linear -> ReLU (-> Dropout) for each hidden layer, then a last Linear giving raw scores (logits).

    sizes: widths from the input to the output; inputs are flattened after the batch axis first."""

    def __init__(self, sizes=(784, 256, 256, 10), dropout=0.0):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output width, got {tuple(sizes)}")
        self.sizes, self.dropout = tuple(sizes), dropout
        layers = [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)

    def extra_repr(self):
        return f"sizes={self.sizes}, dropout={self.dropout}"
