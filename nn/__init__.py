"""nn: layers, losses, initialisation and optimizers on top of tinytensor, shaped like torch.nn.

    from tinytensor import nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
"""

if __name__ != "tinytensor.nn":
    raise ImportError(f"import this package as tinytensor.nn (`from tinytensor import nn`), not as {__name__}: "
                      "one name per module keeps one copy of each class")

from . import functional, init, optim, utils
from . import data, datasets
from .attention import MultiHeadAttention, MultiheadAttention
from .layers import (GELU, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten,
                     Identity, LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool2d, MaxUnpool2d, ReLU,
                     Sigmoid, Softmax, Tanh)
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .transformer import (SinusoidalPositionalEncoding, Transformer, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer)
