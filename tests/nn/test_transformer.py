"""Positional encoding, encoder and decoder layers and stacks: formulas, wiring, PyTorch's names,
padding that changes nothing, causality, gradients."""
import math

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn


def test_sinusoidal_table_is_the_formula_and_a_buffer():
    encoding = nn.SinusoidalPositionalEncoding(6, max_len=50)
    pe = encoding.pe.detach().numpy()
    for pos, i in ((0, 0), (7, 1), (49, 2)):
        angle = pos / 10000 ** (2 * i / 6)
        assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    assert list(encoding.parameters()) == [] and [name for name, _ in encoding.named_buffers()] == ["pe"]
    assert list(encoding.state_dict()) == []                           # rebuilt from the formula, not saved
    x = tt.ones(2, 5, 6)
    np.testing.assert_allclose(encoding(x).detach().numpy(), 1 + np.broadcast_to(pe[:5], (2, 5, 6)))
    assert encoding.to(tt.float64).pe.dtype == tt.float64
    assert nn.SinusoidalPositionalEncoding(5, max_len=3).pe.shape == (3, 5)   # odd width: one cosine fewer
    with pytest.raises(ValueError, match=r"expected input \(batch, length <= 50, 6\), got shape \(2, 51, 6\)"):
        encoding(tt.zeros(2, 51, 6))


ENCODER_KEYS = ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]
DECODER_KEYS = ENCODER_KEYS[:4] + [k.replace("self_attn", "multihead_attn") for k in ENCODER_KEYS[:4]] + \
    ENCODER_KEYS[4:] + ["norm3.weight", "norm3.bias"]


def test_state_dict_keys_are_pytorchs():
    assert list(nn.TransformerEncoderLayer(8, 2, 16).state_dict()) == ENCODER_KEYS
    assert list(nn.TransformerDecoderLayer(8, 2, 16).state_dict()) == DECODER_KEYS
    stack = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8))
    assert list(stack.state_dict()) == ([f"layers.0.{k}" for k in ENCODER_KEYS] +
                                        [f"layers.1.{k}" for k in ENCODER_KEYS] + ["norm.weight", "norm.bias"])
    model = nn.Transformer(8, 2, 1, 1, 16)
    assert list(model.state_dict())[-2:] == ["decoder.norm.weight", "decoder.norm.bias"]


def _double(module, rng):
    module = module.to(tt.float64)
    with tt.no_grad():                     # LayerNorm and biases start at 1 and 0: make them count
        for p in module.parameters():
            if p.ndim == 1:
                p.data[...] = rng.standard_normal(p.shape)
    return module.eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_is_add_and_norm_around_each_sublayer(rng, norm_first):
    layer = _double(nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", norm_first=norm_first), rng)
    x = tt.tensor(rng.standard_normal((2, 3, 8)))
    padding = np.array([[False, False, True], [False] * 3])

    def attend(y):
        return layer.self_attn(y, y, y, key_padding_mask=padding)[0]

    def feed_forward(y):
        return layer.linear2(tt.gelu(layer.linear1(y)))

    if norm_first:
        y = x + attend(layer.norm1(x))
        want = y + feed_forward(layer.norm2(y))
    else:
        y = layer.norm1(x + attend(x))
        want = layer.norm2(y + feed_forward(y))
    got = layer(x, src_key_padding_mask=padding)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_is_masked_self_attention_cross_attention_feed_forward(rng, norm_first):
    layer = _double(nn.TransformerDecoderLayer(8, 2, 16, norm_first=norm_first), rng)
    x, memory = tt.tensor(rng.standard_normal((2, 3, 8))), tt.tensor(rng.standard_normal((2, 4, 8)))
    memory_padding = np.array([[False] * 4, [False, False, True, True]])

    sublayers = [lambda y: layer.self_attn(y, y, y, is_causal=True)[0],
                 lambda y: layer.multihead_attn(y, memory, memory, key_padding_mask=memory_padding)[0],
                 lambda y: layer.linear2(tt.relu(layer.linear1(y)))]
    want = x
    for norm, sublayer in zip((layer.norm1, layer.norm2, layer.norm3), sublayers):
        want = want + sublayer(norm(want)) if norm_first else norm(want + sublayer(want))
    got = layer(x, memory, tgt_is_causal=True, memory_key_padding_mask=memory_padding)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-12)


def test_layers_gradcheck(rng):
    encoder = _double(nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), rng).train()
    decoder = _double(nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, norm_first=True), rng).train()
    x, memory = (tt.tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((2, 3, 4), (2, 2, 4)))
    padding = np.array([[False, True], [False, False]])
    assert tt.gradcheck(lambda x: encoder(x, src_key_padding_mask=np.array([[False] * 3, [False, False, True]])),
                        [x])
    assert tt.gradcheck(lambda x, m: decoder(x, m, tgt_is_causal=True, memory_key_padding_mask=padding),
                        [x, memory])


def test_encoder_output_does_not_depend_on_padded_positions(rng):
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2).to(tt.float64)
    x = rng.standard_normal((2, 5, 8))
    padding = np.array([[False, False, False, True, True], [False] * 5])
    changed = x.copy()
    changed[0, 3:] = 100 * rng.standard_normal((2, 8))              # other values at the padded positions
    out = encoder(tt.tensor(x), src_key_padding_mask=padding).detach().numpy()
    out_changed = encoder(tt.tensor(changed), src_key_padding_mask=padding).detach().numpy()
    np.testing.assert_allclose(out_changed[0, :3], out[0, :3], atol=1e-12)
    np.testing.assert_allclose(out_changed[1], out[1], atol=1e-12)
    assert not np.allclose(out_changed[0, 3:], out[0, 3:])            # the padded rows themselves do change


def test_decoder_is_causal(rng):
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2).to(tt.float64)
    tgt, memory = rng.standard_normal((1, 6, 8)), tt.tensor(rng.standard_normal((1, 4, 8)))
    changed = tgt.copy()
    changed[0, 4] += 1.0                                              # change position 4 only
    mask = nn.Transformer.generate_square_subsequent_mask(6, dtype=tt.float64)
    out = decoder(tt.tensor(tgt), memory, tgt_mask=mask).detach().numpy()
    out_changed = decoder(tt.tensor(changed), memory, tgt_mask=mask).detach().numpy()
    np.testing.assert_allclose(out_changed[0, :4], out[0, :4], atol=1e-12)   # earlier positions: unchanged
    assert not np.allclose(out_changed[0, 4:], out[0, 4:])
    unmasked = decoder(tt.tensor(changed), memory).detach().numpy()
    assert not np.allclose(unmasked[0, :4], out[0, :4])               # without the mask the past sees it


def test_square_subsequent_mask_and_stack_copies():
    mask = nn.Transformer.generate_square_subsequent_mask(3).detach().numpy()
    np.testing.assert_array_equal(mask, [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)
    first, second = encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight
    assert first is not second and np.array_equal(first.detach().numpy(), second.detach().numpy())  # as PyTorch
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
    with pytest.raises(ValueError, match="num_layers must be at least 1"):
        nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2), 0)


def test_transformer_initialises_matrices_xavier_uniform():
    model = nn.Transformer(16, 2, 1, 1, 32)
    weight = model.encoder.layers[0].linear1.weight.detach().numpy()         # (32, 16)
    bound = math.sqrt(6 / (16 + 32))
    assert bound * 0.9 < np.abs(weight).max() <= bound
