"""The pieces of the Transformer of "Attention Is All You Need", with PyTorch's names (batch first).

    layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=256, batch_first=True)
    encoder = nn.TransformerEncoder(layer, num_layers=2)        # two copies of the layer
    memory = encoder(x, src_key_padding_mask=pad)               # x (B, S, d_model)

An encoder layer is two sub-layers, each wrapped in "add & norm":
    x = norm1(x + self_attention(x))        every source position looks at every other one
    x = norm2(x + feed_forward(x))          the same small MLP at each position
A decoder layer has three: masked self-attention over the target so far, cross-attention from each
target position to the encoder's output (the "memory"), and the feed-forward. That is post-norm, as in
the paper; with norm_first=True (pre-norm) each becomes x = x + sublayer(norm(x)), which trains more
easily when deep.

Masks follow nn.MultiHeadAttention: True (or -inf) marks a key that may NOT be attended.
"""
import copy
import math

import numpy as np

import tinytensor as tt

from . import init
from .attention import MultiHeadAttention, causal_mask
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList

_ACTIVATIONS = {"relu": tt.relu, "gelu": tt.gelu}


class SinusoidalPositionalEncoding(Module):
    """y = dropout(x + PE[:length]),  PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(same)

    x (B, length, d_model). Each position gets a fixed pattern of sines and cosines of geometrically
    spaced wavelengths (2 pi to 10000 * 2 pi), so nearby positions look alike and PE[pos + k] is a
    linear function of PE[pos]. The table is a buffer (moved by `to()`, not trained), and is not saved
    in state_dict because the formula rebuilds it."""

    def __init__(self, d_model, max_len=5000, dropout=0.0, device=None, dtype=None):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        position = np.arange(max_len)[:, None]                                      # (max_len, 1)
        frequency = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))   # 1 / 10000^(2i/d)
        angle = position * frequency                                                # (max_len, ceil(d/2))
        table = np.zeros((max_len, d_model))
        table[:, 0::2] = np.sin(angle)
        table[:, 1::2] = np.cos(angle[:, :d_model // 2])                            # odd d: one cosine fewer
        self.register_buffer("pe", tt.tensor(table, dtype=dtype or tt.default_dtype, device=device or "cpu"),
                             persistent=False)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model or x.shape[1] > self.max_len:
            raise ValueError(f"SinusoidalPositionalEncoding(d_model={self.d_model}, max_len={self.max_len}): "
                             f"expected input (batch, length <= {self.max_len}, {self.d_model}), got shape "
                             f"{tuple(x.shape)}")
        return self.dropout(x + self.pe[:x.shape[1]])

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class _TransformerLayer(Module):
    """What encoder and decoder layers share: building the sub-layers (in PyTorch's order, so the state
    dict keys come out the same), the feed-forward and the add & norm."""

    def __init__(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                 norm_first, bias, device, dtype, cross_attention):
        super().__init__()
        if isinstance(activation, str) and activation not in _ACTIVATIONS:
            raise ValueError(f"{type(self).__name__}: activation must be one of {sorted(_ACTIVATIONS)} or a "
                             f"callable, got {activation!r}")
        settings = dict(bias=bias, device=device, dtype=dtype)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, **settings)
        if cross_attention:
            self.multihead_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, **settings)
        self.linear1 = Linear(d_model, dim_feedforward, **settings)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, **settings)
        self.norm_first = norm_first
        sublayers = 3 if cross_attention else 2
        for i in range(1, sublayers + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, **settings))
        for i in range(1, sublayers + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _ACTIVATIONS[activation] if isinstance(activation, str) else activation
        self.batch_first = True

    def _ff_block(self, x, dropout):
        """The position-wise feed-forward: linear2(activation(linear1(x))), (B, T, d_model) -> same."""
        return dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        """Self-attention: queries, keys and values are all x."""
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=bool(is_causal))[0]
        return self.dropout1(x)

    def _add_and_norm(self, x, norm, sublayer):
        """Post-norm: norm(x + sublayer(x)) as in the paper; pre-norm: x + sublayer(norm(x))."""
        return x + sublayer(norm(x)) if self.norm_first else norm(x + sublayer(x))


class TransformerEncoderLayer(_TransformerLayer):
    """x = norm1(x + self_attn(x)); x = norm2(x + linear2(activation(linear1(x))))  (post-norm), or
    x = x + self_attn(norm1(x)); x = x + feed_forward(norm2(x))  with norm_first=True.

    src (B, S, d_model) -> (B, S, d_model). Arguments, defaults and parameter names are PyTorch's;
    only batch_first=True is supported (and is the default here)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=True, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                         norm_first, bias, device, dtype, cross_attention=False)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = self._add_and_norm(src, self.norm1,
                               lambda y: self._sa_block(y, src_mask, src_key_padding_mask, is_causal))
        return self._add_and_norm(x, self.norm2, lambda y: self._ff_block(y, self.dropout2))


class TransformerDecoderLayer(_TransformerLayer):
    """x = norm1(x + self_attn(x, causal)); x = norm2(x + multihead_attn(x, memory)); x = norm3(x + ff(x))
    (post-norm), or x = x + sublayer(norm(x)) for each with norm_first=True.

    tgt (B, T, d_model), memory (B, S, d_model) -> (B, T, d_model). In the cross-attention the queries
    come from the target and the keys and values from the encoder's output. Arguments, defaults and
    parameter names are PyTorch's (batch first). Set `keep_attention_weights = True` to keep each
    forward's cross-attention weights per head, (B, nhead, T, S), in `cross_attention_weights`."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=True, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                         norm_first, bias, device, dtype, cross_attention=True)
        self.keep_attention_weights = False
        self.cross_attention_weights = None

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        """Cross-attention: queries from the target x (B, T, d), keys and values from memory (B, S, d)."""
        x, weights = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                         need_weights=self.keep_attention_weights, average_attn_weights=False,
                                         is_causal=bool(is_causal))
        if self.keep_attention_weights:
            self.cross_attention_weights = weights.detach()
        return self.dropout2(x)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = self._add_and_norm(tgt, self.norm1,
                               lambda y: self._sa_block(y, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self._add_and_norm(x, self.norm2, lambda y: self._mha_block(y, memory, memory_mask,
                                                                        memory_key_padding_mask, memory_is_causal))
        return self._add_and_norm(x, self.norm3, lambda y: self._ff_block(y, self.dropout3))


def _clones(layer, num_layers):
    """num_layers deep copies of `layer` (so they start with equal weights, as in PyTorch)."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}")
    return ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer applied in turn, then `norm` if given (needed with pre-norm
    layers, whose output is not normalised). src (B, S, d_model) -> (B, S, d_model)."""

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """num_layers copies of decoder_layer applied in turn, each attending to the same memory, then
    `norm` if given. tgt (B, T, d_model), memory (B, S, d_model) -> (B, T, d_model)."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """The whole encoder-decoder stack of PyTorch's nn.Transformer (batch first), without embeddings or
    output layer: forward(src (B, S, d), tgt (B, T, d), masks...) -> (B, T, d). Both stacks end with a
    LayerNorm, and every weight matrix starts Xavier uniform, as in PyTorch. models/transformer.py
    builds a translation model from the encoder and decoder directly."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=True, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        layer_args = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward, dropout=dropout,
                          activation=activation, layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                          norm_first=norm_first, bias=bias, device=device, dtype=dtype)
        norm_args = dict(eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.encoder = custom_encoder or TransformerEncoder(TransformerEncoderLayer(**layer_args),
                                                            num_encoder_layers, LayerNorm(d_model, **norm_args))
        self.decoder = custom_decoder or TransformerDecoder(TransformerDecoderLayer(**layer_args),
                                                            num_decoder_layers, LayerNorm(d_model, **norm_args))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, True
        for parameter in self.parameters():
            if parameter.ndim > 1:
                init.xavier_uniform_(parameter)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """(sz, sz) float mask, -inf above the diagonal and 0 elsewhere, as PyTorch's: added to the
        scores, it stops position i from attending to positions after i."""
        zeros = tt.zeros(sz, sz, dtype=dtype, device=device or "cpu")
        return tt.where(causal_mask(sz, zeros.device), -math.inf, zeros)
