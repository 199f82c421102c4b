"""Multi-head attention, as PyTorch's nn.MultiheadAttention(batch_first=True).

    attention = nn.MultiHeadAttention(embed_dim=64, num_heads=4)
    out, weights = attention(x, x, x, key_padding_mask=pad)     # self-attention
    out, weights = attention(y, memory, memory)                 # cross-attention

One call, step by step (B batch, L queries, S keys, E = embed_dim, H heads of D = E / H features):
  1. project:  q = query W_q^T + b_q (B, L, E),  k = key W_k^T + b_k (B, S, E),  v likewise (B, S, E)
  2. split:    each of q, k, v (B, L, E) -> (B, L, H, D) -> (B, H, L, D): H small attentions side by side
  3. attend:   scaled_dot_product_attention on each head: softmax(q k^T / sqrt(D) + mask) v  (B, H, L, D)
  4. merge:    (B, H, L, D) -> (B, L, H, D) -> (B, L, E), the heads' outputs laid end to end
  5. mix:      out_proj, a Linear(E, E) that combines what the heads found

MASKS: True means "may NOT attend" here, as in PyTorch's MultiheadAttention. A True entry in a boolean
`attn_mask` (L, S) or `key_padding_mask` (B, S) blocks that key. This is the OPPOSITE of
scaled_dot_product_attention's boolean mask, where True means "may attend". A float mask is added to the
scores in both (so -inf blocks). Step 3 turns these masks into the one scaled_dot_product_attention reads.
"""
import tinytensor as tt
from tinytensor import backend

from . import init
from .layers import Linear, _empty_parameter
from .module import Module


def _mask_array(mask, name, like):
    """A mask's array on like's device; bool or float, or a clear error."""
    raw = mask.data if isinstance(mask, tt.Tensor) else mask
    raw = backend.move(raw if hasattr(raw, "dtype") else like.xp.asarray(raw), like.device)
    if raw.dtype != bool and raw.dtype.kind != "f":
        raise TypeError(f"MultiHeadAttention: {name} must be bool (True = may not attend) or float (added "
                        f"to the scores), got dtype {raw.dtype}")
    return raw


def causal_mask(length, device="cpu", keys=None):
    """(length, keys or length) bool, True above the diagonal: query i may not attend to keys after i.

    This is the MultiHeadAttention convention (True = blocked); nn.Transformer.
    generate_square_subsequent_mask gives the same as a float mask (-inf above the diagonal)."""
    xp = backend.xp_for(device)
    with backend.on_device(device):
        return xp.triu(xp.ones((length, length if keys is None else keys), dtype=bool), k=1)


class MultiHeadAttention(Module):
    """out = concat(head_1, ..., head_H) W_o^T + b_o,  head_h = softmax(q_h k_h^T / sqrt(D) + mask) v_h

    query (B, L, E), key (B, S, kdim), value (B, S, vdim) -> out (B, L, E) and the attention weights
    (B, L, S) averaged over the heads, or (B, H, L, S) with average_attn_weights=False. Unbatched
    inputs (L, E) work too. Parameters and initialisation are PyTorch's: `in_proj_weight` (3E, E) holds
    W_q, W_k, W_v one above the other (Xavier uniform), or `q_proj_weight`, `k_proj_weight`,
    `v_proj_weight` when kdim or vdim differ from E; `in_proj_bias` (3E,) and `out_proj.bias` start at
    zero; `out_proj.weight` keeps Linear's default.

    Masks, as in PyTorch's MultiheadAttention: a True entry in a bool `attn_mask` ((L, S), or
    (B*H, L, S) one per head) or `key_padding_mask` (B, S) means the query may NOT attend to that key.
    This is the opposite of scaled_dot_product_attention's bool mask (True = may attend). A float mask
    is added to the scores (use -inf to block). A query that may attend to nothing gets all-zero
    weights, so its output is out_proj's bias, not NaN. `is_causal=True` with no attn_mask blocks the
    keys after each query (PyTorch insists on an attn_mask too and treats the flag as a hint; here the
    attn_mask, when given, wins). `dropout` applies to the attention weights in training.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, kdim=None, vdim=None, batch_first=True,
                 device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads}), each head gets embed_dim / num_heads features")
        if not batch_first:
            raise ValueError("MultiHeadAttention: only batch_first=True is supported: inputs are "
                             "(batch, length, embed_dim); move the batch axis first with .transpose(1, 0, 2)")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.batch_first = True
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _empty_parameter(3 * embed_dim, embed_dim, device=device, dtype=dtype)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            for name, width in (("q_proj_weight", embed_dim), ("k_proj_weight", self.kdim),
                                ("v_proj_weight", self.vdim)):
                setattr(self, name, _empty_parameter(embed_dim, width, device=device, dtype=dtype))
        if bias:
            self.in_proj_bias = _empty_parameter(3 * embed_dim, device=device, dtype=dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        weights = ([self.in_proj_weight] if self._qkv_same_embed_dim else
                   [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight])
        for weight in weights:
            init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    # ------------------------------------------------------------------ the five steps
    def _project(self, query, key, value):
        """Step 1: q (B, L, E), k (B, S, E), v (B, S, E)."""
        e, bias = self.embed_dim, self.in_proj_bias
        if self._qkv_same_embed_dim and query is key is value:   # self-attention: one matmul makes all three
            return tt.linear(query, self.in_proj_weight, bias).chunk(3, axis=-1)
        if self._qkv_same_embed_dim:
            weights = (self.in_proj_weight[:e], self.in_proj_weight[e:2 * e], self.in_proj_weight[2 * e:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        biases = (None,) * 3 if bias is None else (bias[:e], bias[e:2 * e], bias[2 * e:])
        return [tt.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases)]

    def _split_heads(self, x):
        """Step 2: (B, T, E) -> (B, H, T, D)."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def _merge_heads(self, x):
        """Step 4: (B, H, T, D) -> (B, T, E)."""
        batch, _, length, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(batch, length, self.embed_dim)

    def _attention_mask(self, attn_mask, key_padding_mask, is_causal, batch, length, source, like):
        """PyTorch's masks (True = blocked, or float added) as one mask for scaled_dot_product_attention
        (True = ALLOWED, or float added), broadcastable to (B, H, L, S); None when nothing is masked."""
        masks = []
        if attn_mask is not None:
            raw = _mask_array(attn_mask, "attn_mask", like)
            per_head = (batch * self.num_heads, length, source)
            if tuple(raw.shape) == per_head:
                raw = raw.reshape(batch, self.num_heads, length, source)
            elif tuple(raw.shape) != (length, source):
                raise ValueError(f"MultiHeadAttention: attn_mask has shape {tuple(raw.shape)}, expected "
                                 f"(L, S) = {(length, source)} or (B*H, L, S) = {per_head}")
            masks.append(raw)
        elif is_causal:
            masks.append(causal_mask(length, like.device, keys=source))
        if key_padding_mask is not None:
            raw = _mask_array(key_padding_mask, "key_padding_mask", like)
            if tuple(raw.shape) != (batch, source):
                raise ValueError(f"MultiHeadAttention: key_padding_mask has shape {tuple(raw.shape)}, "
                                 f"expected (B, S) = {(batch, source)}, True at the padded keys")
            masks.append(raw.reshape(batch, 1, 1, source))
        if not masks:
            return None
        xp = like.xp
        if all(m.dtype == bool for m in masks):
            blocked = masks[0] if len(masks) == 1 else xp.logical_or(*masks)
            return ~blocked
        # Some mask is float: add them all, a blocked bool entry counting as -inf.
        added = sum(xp.where(m, -xp.inf, 0.0) if m.dtype == bool else m for m in masks)
        return added.astype(like.dtype, copy=False)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        unbatched = query.ndim == 2
        if unbatched:   # (L, E): add a batch axis of 1, removed again at the end
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = _mask_array(key_padding_mask, "key_padding_mask", query).reshape(1, -1)
        self._check_inputs(query, key, value)
        batch, length, source = query.shape[0], query.shape[1], key.shape[1]

        q, k, v = (self._split_heads(x) for x in self._project(query, key, value))   # (B, H, T, D) each
        mask = self._attention_mask(attn_mask, key_padding_mask, is_causal, batch, length, source, q)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            # softmax(..) @ [v | I] = [softmax(..) @ v | softmax(..)]: one call gives the heads' outputs and
            # their weights (after dropout, as PyTorch returns them), with the very same masking.
            identity = tt.eye(source, dtype=v.dtype, device=v.device).broadcast_to(v.shape[:2] + (source, source))
            both = tt.scaled_dot_product_attention(q, k, tt.cat([v, identity], axis=-1), mask, dropout_p=dropout_p)
            heads, weights = both[..., :self.head_dim], both[..., self.head_dim:]     # (B, H, L, D), (B, H, L, S)
            if average_attn_weights:
                weights = weights.mean(axis=1)                                      # (B, L, S)
        else:
            heads, weights = tt.scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p), None
        out = self.out_proj(self._merge_heads(heads))                               # (B, L, E)

        if unbatched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        return out, weights

    def _check_inputs(self, query, key, value):
        shapes = f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
        if not query.ndim == key.ndim == value.ndim == 3:
            raise ValueError(f"MultiHeadAttention: expected (batch, length, features) inputs (or all "
                             f"unbatched (length, features)), got {shapes}")
        expected = (self.embed_dim, self.kdim, self.vdim)
        if (query.shape[-1], key.shape[-1], value.shape[-1]) != expected:
            raise ValueError(f"MultiHeadAttention: got {shapes}; their last axes must be embed_dim, kdim, "
                             f"vdim = {expected}")
        if not (query.shape[0] == key.shape[0] == value.shape[0] and key.shape[1] == value.shape[1]):
            raise ValueError(f"MultiHeadAttention: got {shapes}; the batch sizes must agree, and key and "
                             "value must have the same length")

    def extra_repr(self):
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            text += f", kdim={self.kdim}, vdim={self.vdim}"
        return text + ("" if self.in_proj_bias is not None else ", bias=False")


MultiheadAttention = MultiHeadAttention   # PyTorch's spelling of the same class
