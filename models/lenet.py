"""LeNet-5 (LeCun et al. 1998) with today's habits: ReLU, max pooling, optional batch normalisation.

    model = LeNet(batch_norm=True)
    logits = model(images)                   # images (N, 1, 28, 28) -> (N, 10)

Shapes through the network for a 28x28 image (channels = (6, 16)):
    conv 5x5 pad 2 -> (N, 6, 28, 28) -> pool 2 -> (N, 6, 14, 14)
    conv 5x5       -> (N, 16, 10, 10) -> pool 2 -> (N, 16, 5, 5) -> flatten (N, 400)
    linear 400->120 -> linear 120->84 -> linear 84->10
"""
from tinytensor import nn


class LeNet(nn.Module):
    """Two conv blocks (conv -> [BatchNorm] -> ReLU -> 2x2 max pool), then three Linear layers.

    channels: output channels of the two convolutions; dropout: before each of the last two Linear."""

    def __init__(self, in_channels=1, num_classes=10, channels=(6, 16), batch_norm=False, dropout=0.0):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            *self._block(in_channels, c1, padding=2, batch_norm=batch_norm),   # 28x28 -> 14x14
            *self._block(c1, c2, padding=0, batch_norm=batch_norm),            # 14x14 -> 5x5
        )

        def drop():
            return [nn.Dropout(dropout)] if dropout > 0 else []

        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 5 * 5, 120), nn.ReLU(), *drop(),
            nn.Linear(120, 84), nn.ReLU(), *drop(),
            nn.Linear(84, num_classes),
        )

    @staticmethod
    def _block(n_in, n_out, padding, batch_norm):
        # A conv followed by BatchNorm needs no bias: the norm's own shift replaces it.
        layers = [nn.Conv2d(n_in, n_out, 5, padding=padding, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(n_out))
        return layers + [nn.ReLU(), nn.MaxPool2d(2)]

    def forward(self, x):
        if x.ndim != 4 or x.shape[-2:] != (28, 28):
            raise ValueError(f"LeNet: expected images of shape (N, C, 28, 28), got {tuple(x.shape)}")
        return self.classifier(self.features(x))
