"""An encoder-decoder Transformer for translation, as in "Attention Is All You Need" (post-norm).

Follow one sentence pair through it (B sentences, S source tokens, T target tokens, d = d_model):

  encode     src ids (B, S)
             -> embedding * sqrt(d), plus sinusoidal positions          (B, S, d)
             -> N encoder layers: each source word attends to every source word (padding excluded),
                then a small MLP at each position                       (B, S, d)  = "memory"
  decode     tgt_in ids (B, T) = <bos> y1 ... y(T-1), the target shifted right by one
             -> embedding * sqrt(d), plus positions                     (B, T, d)
             -> N decoder layers: masked self-attention (token t sees tokens 0..t only, never the
                answer it must predict), cross-attention (token t looks at all of memory: this is where
                it finds the source words it translates), then the MLP  (B, T, d)
             -> generator, a Linear to the target vocabulary             logits (B, T, V)
  train      logits at position t predict tgt_out[t] = y(t+1): `translation_loss`, cross-entropy with
             label smoothing and the padding ignored
  translate  `greedy_decode` feeds its own best token back, one step at a time; `beam_search` keeps the
             beam_size most likely prefixes instead of one

Masks: `src_pad_mask` (B, S) and `tgt_pad_mask` (B, T) are True at padding, the nn.MultiHeadAttention
convention (True = may not be attended); `pad_mask(ids)` makes one.
"""
import math

import numpy as np

import tinytensor as tt
from tinytensor import nn


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer: forward(src, tgt_in, src_pad_mask, tgt_pad_mask) -> logits (B, T, V).

    share_embeddings=True uses one table for the source words, the target words and the output layer
    (the paper's weight tying; the two vocabularies must then be one). dim_feedforward defaults to
    4 * d_model. norm_first=True gives pre-norm layers (and a final LayerNorm after each stack)."""

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=64, nhead=4, num_layers=2, dim_feedforward=None,
                 dropout=0.1, pad_id=0, share_embeddings=False, norm_first=False, max_len=512):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"Seq2SeqTransformer: share_embeddings needs one vocabulary for both sides, got "
                             f"{src_vocab_size} source and {tgt_vocab_size} target words")
        self.d_model, self.pad_id = d_model, pad_id
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = self.src_embed if share_embeddings else nn.Embedding(tgt_vocab_size, d_model,
                                                                                padding_idx=pad_id)
        self.positions = nn.SinusoidalPositionalEncoding(d_model, max_len, dropout)
        layer_args = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward or 4 * d_model,
                          dropout=dropout, norm_first=norm_first)
        # Pre-norm layers leave their output unnormalised: then each stack ends with a LayerNorm.
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer_args), num_layers,
                                             nn.LayerNorm(d_model) if norm_first else None)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer_args), num_layers,
                                             nn.LayerNorm(d_model) if norm_first else None)
        self.generator = nn.Linear(d_model, tgt_vocab_size)
        self._reset_parameters(share_embeddings)

    def _reset_parameters(self, share_embeddings):
        # Matrices start Xavier uniform, as nn.Transformer does. Embedding rows start with variance 1/d,
        # so that after the scaling by sqrt(d) they have variance 1, the size of the positional signal.
        for name, parameter in self.named_parameters():
            if parameter.ndim > 1 and "embed" not in name:
                nn.init.xavier_uniform_(parameter)
        for embedding in (self.src_embed,) if share_embeddings else (self.src_embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, std=self.d_model ** -0.5)
            with tt.no_grad():
                embedding.weight[self.pad_id] = 0.0
        if share_embeddings:
            self.generator.weight = self.tgt_embed.weight

    def pad_mask(self, ids):
        """(B, T) bool, True where ids is padding."""
        return tt.as_tensor(ids.data == self.pad_id)

    def encode(self, src, src_pad_mask=None):
        """src ids (B, S) -> memory (B, S, d): what the decoder will look at."""
        x = self.positions(self.src_embed(src) * math.sqrt(self.d_model))                # (B, S, d)
        return self.encoder(x, src_key_padding_mask=src_pad_mask)

    def decode(self, tgt_in, memory, src_pad_mask=None, tgt_pad_mask=None):
        """tgt_in ids (B, T), memory (B, S, d) -> logits (B, T, V) for the token after each position."""
        y = self.positions(self.tgt_embed(tgt_in) * math.sqrt(self.d_model))             # (B, T, d)
        y = self.decoder(y, memory, tgt_key_padding_mask=tgt_pad_mask, memory_key_padding_mask=src_pad_mask,
                         tgt_is_causal=True)                                              # (B, T, d)
        return self.generator(y)                                                          # (B, T, V)

    def forward(self, src, tgt_in, src_pad_mask=None, tgt_pad_mask=None):
        src_pad_mask = self.pad_mask(src) if src_pad_mask is None else src_pad_mask
        tgt_pad_mask = self.pad_mask(tgt_in) if tgt_pad_mask is None else tgt_pad_mask
        return self.decode(tgt_in, self.encode(src, src_pad_mask), src_pad_mask, tgt_pad_mask)

    # ------------------------------------------------------------------ translating
    def greedy_decode(self, src, max_len, bos, eos):
        """The most likely next token at each step, fed back in. src (B, S) -> ids (B, <= max_len): each row
        ends with eos (if reached within max_len) and is padded after it. Eval mode, no gradients."""
        with _inference(self):
            src_pad = self.pad_mask(src)
            memory = self.encode(src, src_pad)
            xp = memory.xp
            batch = src.shape[0]
            out = xp.full((batch, 1), bos, dtype=np.int64)                                # (B, 1): <bos>
            finished = xp.zeros(batch, dtype=bool)
            for _ in range(max_len):
                logits = self.decode(tt.as_tensor(out), memory, src_pad).data[:, -1]
                token = xp.where(finished, self.pad_id, logits.argmax(axis=-1))           # (B,)
                out = xp.concatenate([out, token[:, None]], axis=1)
                finished |= token == eos
                if bool(finished.all()):
                    break
            return tt.as_tensor(out[:, 1:])

    def beam_search(self, src, beam_size, max_len, length_penalty=0.6, *, bos, eos):
        """Keep the beam_size best prefixes by total log-probability; return, per sentence, the finished
        one with the best score / ((5 + length) / 6) ** length_penalty (length_penalty 0: the plain total,
        which favours short outputs). A prefix that ends in eos leaves the beam, which narrows, so beam
        size 1 is exactly greedy_decode. src (B, S) -> ids (B, <= max_len), as greedy_decode returns."""
        if beam_size < 1:
            raise ValueError(f"beam_search: beam_size must be at least 1, got {beam_size}")
        with _inference(self):
            rows = [self._beam_search_one(src[i:i + 1], beam_size, max_len, length_penalty, bos, eos)
                    for i in range(src.shape[0])]
        width = max(len(row) for row in rows)
        out = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return tt.tensor(out, device=src.device)

    def _beam_search_one(self, src, beam_size, max_len, length_penalty, bos, eos):
        """Beam search for one sentence, src (1, S): a list of token ids."""
        src_pad = self.pad_mask(src)
        memory = self.encode(src, src_pad)                                          # (1, S, d)
        prefixes, scores = [[bos]], np.zeros(1)                                     # the live beam
        finished = []                                                               # (score, ids)

        def normalised(total, length):
            return total / ((5 + length) / 6) ** length_penalty

        for _ in range(max_len):
            n = len(prefixes)
            ids = tt.tensor(np.array(prefixes), device=src.device)                  # (n, t)
            logits = self.decode(ids, memory.expand(n, *memory.shape[1:]), src_pad.expand(n, -1))[:, -1]
            total = scores[:, None] + tt.log_softmax(logits, -1).to("cpu").numpy()  # (n, V)
            best = np.argsort(-total, axis=None, kind="stable")[:beam_size - len(finished)]
            next_prefixes, next_scores = [], []
            for row, token in zip(*np.unravel_index(best, total.shape)):
                path = prefixes[row] + [int(token)]
                if token == eos:
                    finished.append((normalised(total[row, token], len(path) - 1), path))
                else:
                    next_prefixes.append(path)
                    next_scores.append(total[row, token])
            prefixes, scores = next_prefixes, np.array(next_scores)
            if not prefixes:
                break
        finished += [(normalised(s, len(p) - 1), p) for p, s in zip(prefixes, scores)]   # cut at max_len
        return max(finished, key=lambda entry: entry[0])[1][1:]                     # without <bos>

    def cross_attention(self, src, tgt_in):
        """The decoder's cross-attention weights, one (B, nhead, T, S) array per layer: row t says where
        in the source target position t looked. Eval mode, no gradients."""
        layers = self.decoder.layers
        with _inference(self):
            for layer in layers:
                layer.keep_attention_weights = True
            try:
                self(src, tgt_in)
                return [layer.cross_attention_weights.to("cpu").numpy() for layer in layers]
            finally:
                for layer in layers:
                    layer.keep_attention_weights, layer.cross_attention_weights = False, None


def translation_loss(logits, tgt_out, pad_id, label_smoothing=0.1):
    """Mean cross-entropy over the target tokens that are not padding, each target the one-hot word mixed
    with label_smoothing of the uniform distribution (PyTorch's definition). logits (B, T, V), tgt_out (B, T)."""
    vocab = logits.shape[-1]
    return tt.cross_entropy(logits.reshape(-1, vocab), tgt_out.reshape(-1), ignore_index=pad_id,
                            label_smoothing=label_smoothing)


class _inference:
    """with _inference(model): eval mode and no gradients, the model's mode restored after."""

    def __init__(self, model):
        self.model, self.no_grad = model, tt.no_grad()

    def __enter__(self):
        self.was_training = self.model.training
        self.model.eval()
        self.no_grad.__enter__()

    def __exit__(self, *exc):
        self.no_grad.__exit__(*exc)
        self.model.train(self.was_training)
