"""GPT-2: a decoder-only transformer language model, OpenAI's pretrained weights, and generation.

    config = GPTConfig.preset("gpt-micro", vocab_size=512)      # or GPTConfig(vocab_size=..., ...)
    model = GPT(config)
    logits, loss = model(idx, targets)                          # idx, targets (B, T) int64
    model = GPT.from_pretrained("gpt2")                         # or a folder: config.json + model.safetensors
    out = model.generate(idx, max_new_tokens=32, temperature=0) # prompt followed by the new ids
    print(model.last_generation_stats)                          # TTFT, TPOT, tokens/s

The path of one batch (B sequences of T token ids, width C = n_embd, H heads of size D = C / H):

    ids (B, T) -> wte[ids] + wpe[0..T-1]                 token and position embeddings   (B, T, C)
    n_layer Blocks, each pre-LayerNorm:
        x = x + attn(ln_1(x))                             causal self-attention
        x = x + mlp(ln_2(x))                              C -> 4C -> GELU (tanh) -> C
    ln_f, then logits = x @ wte^T                         the output head is the token embedding (tied)

Parameter names are those of the Hugging Face GPT-2 checkpoints (transformer.h.0.attn.c_attn.weight, ...),
so loading one is a rename-free copy; only its Conv1D weights, stored (in, out), are transposed into our
Linear's (out, in).
"""
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

import tinytensor as tt
from tinytensor import backend, nn
from tinytensor.download import cache_dir, download
from tinytensor.ops import fast
from tinytensor.ops.nn import causal_attention_probs, gelu_tanh_array

# ----------------------------------------------------------------------------------- configuration

PRESETS = {
    # OpenAI's four GPT-2 sizes (vocabulary 50257, context 1024).
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),           # 124M parameters
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),   # 350M
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),    # 774M
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),       # 1558M
    # Small ones that train on a CPU (give vocab_size=... to match the tokenizer).
    "gpt-nano": dict(n_layer=2, n_head=4, n_embd=128, block_size=64),     # the speed benchmark's model
    "gpt-micro": dict(n_layer=4, n_head=4, n_embd=128, block_size=128),
    "gpt-mini": dict(n_layer=6, n_head=6, n_embd=192, block_size=256),
    # The character-level Shakespeare setting for a GPU: 6 layers, 6 heads, 384 wide, context 256.
    "baby-gpt": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
}


@dataclasses.dataclass
class GPTConfig:
    """The shape of a GPT. The defaults are GPT-2 (124M); `GPTConfig.preset(name, **changes)` gives the
    others (names in PRESETS). dropout applies to the embeddings, the attention weights and each residual
    branch while training; bias=False drops the biases of every Linear and LayerNorm."""
    vocab_size: int = 50257
    block_size: int = 1024          # the longest context: positions 0 .. block_size - 1
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) "
                             "so that every head has the same width")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def preset(cls, name, **changes):
        """A named configuration (see PRESETS), with any field changed: preset("gpt-micro", vocab_size=65)."""
        if name not in PRESETS:
            raise ValueError(f"GPTConfig.preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **changes})

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_hf(cls, hf, dropout=0.0):
        """The config of a Hugging Face GPT-2 `config.json` (a dict); an error for any setting this model
        does not compute the same way (another activation, layer-norm epsilon, MLP width, ...)."""
        honoured = {   # setting: (value this model computes with, default when absent)
            "model_type": ({"gpt2"}, "gpt2"),
            "activation_function": ({"gelu_new", "gelu_pytorch_tanh"}, "gelu_new"),
            "layer_norm_epsilon": ({1e-5}, 1e-5),
            "n_inner": ({None, 4 * hf.get("n_embd", 768)}, None),
            "scale_attn_weights": ({True}, True),
            "scale_attn_by_inverse_layer_idx": ({False}, False),
            "add_cross_attention": ({False}, False),
            "tie_word_embeddings": ({True}, True),
        }
        for key, (accepted, default) in honoured.items():
            value = hf.get(key, default)
            if value not in accepted:
                raise ValueError(f"GPT.from_pretrained: config.json has {key}={value!r}, which this GPT-2 "
                                 f"cannot honour (it computes with {key} in {sorted(accepted, key=repr)})")
        try:
            return cls(vocab_size=hf["vocab_size"], block_size=hf.get("n_positions", hf.get("n_ctx")),
                       n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=dropout,
                       bias=True)
        except KeyError as missing:
            raise ValueError(f"GPT.from_pretrained: config.json has no {missing} (vocab_size, n_positions, "
                             "n_layer, n_head and n_embd are needed)") from None


# Checkpoints downloaded by name: Hugging Face repository, pinned revision, sha256 of model.safetensors.
PRETRAINED = {
    "gpt2": ("openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e",
             "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"),
}

_PICKLE_ADVICE = ("; it has pytorch_model.bin, a PyTorch pickle, which is not read here (unpickling can run "
                  "code, and it needs torch). With transformers installed, GPT2LMHeadModel.from_pretrained(folder)"
                  ".save_pretrained(folder) writes model.safetensors beside it")

# Hugging Face's GPT-2 stores these as Conv1D weights, (in, out); our Linear keeps (out, in).
_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")

# ----------------------------------------------------------------------------------- the model

class KVCache:
    """The keys and values one attention layer has computed so far, so that a new token attends to
    the past without recomputing it. Arrays of (B, H, block_size, D) filled from position 0 on."""

    def __init__(self, batch, config, device, dtype):
        shape = (batch, config.n_head, config.block_size, config.n_embd // config.n_head)
        self.keys = tt.zeros(shape, dtype=dtype, device=device)
        self.values = tt.zeros(shape, dtype=dtype, device=device)
        self.length = 0                 # positions filled

    def append(self, k, v):
        """Store k, v (B, H, T, D) after the filled positions; return all keys and values so far."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.keys.shape[2]:
            raise ValueError(f"KVCache: {end} positions do not fit in a cache of block_size "
                             f"{self.keys.shape[2]}; start a new cache for the last block_size tokens")
        with tt.no_grad():
            self.keys[:, :, start:end] = k
            self.values[:, :, start:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class CausalSelfAttention(nn.Module):
    """Each position mixes the values of itself and the positions before it, per head:
    q, k, v = split(x @ W_qkv) into H heads;  y = softmax(q k^T / sqrt(D), causal) v;  out = y @ W_proj.
    fused=True computes the attention with tt.causal_attention_fused (same numbers, faster; no second
    derivatives) whenever there is no attention dropout."""

    def __init__(self, config, fused=False):
        super().__init__()
        self.n_head, self.dropout, self.fused = config.n_head, config.dropout, fused
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)   # q | k | v, fused
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None):
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).reshape(B, T, 3, H, D).permute(2, 0, 3, 1, 4)   # each (B, H, T, D)
        if cache is not None:
            k, v = cache.append(k, v)                          # (B, H, S, D): S - T cached positions first
        S = k.shape[2]
        dropout_p = self.dropout if self.training else 0.0
        if self.fused and fast.enabled() and dropout_p == 0:   # the T queries are the last T of S positions
            y = tt.causal_attention_fused(q, k, v)
        elif S == T:
            y = tt.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
        else:                                                  # query i sits at position S - T + i
            rows = tt.arange(S - T, S, device=x.device).reshape(T, 1)
            allowed = tt.arange(S, device=x.device).reshape(1, S) <= rows
            y = tt.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p)
        y = y.transpose(0, 2, 1, 3).reshape(B, T, C)                          # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """C -> 4C -> GELU (tanh approximation, as GPT-2) -> C; fused=True uses tt.gelu_tanh_fused."""

    def __init__(self, config, fused=False):
        super().__init__()
        self.fused = fused
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        h = self.c_fc(x)
        h = tt.gelu_tanh_fused(h) if self.fused and fast.enabled() else tt.gelu(h, approximate="tanh")
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """One transformer layer, pre-LayerNorm: x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, config, fused=False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, fused)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config, fused)

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


@dataclasses.dataclass
class GenerationStats:
    """Timings of one generate() call. TTFT: from the call to the first new token (it includes reading
    the whole prompt); TPOT: the mean time of each later token; tokens_per_s: new tokens of all rows
    per second of the whole call."""
    batch_size: int
    prompt_tokens: int
    new_tokens: int
    ttft_s: float
    tpot_s: float
    total_s: float
    tokens_per_s: float

    def __str__(self):
        return (f"TTFT {1000 * self.ttft_s:.1f} ms, TPOT {1000 * self.tpot_s:.1f} ms, "
                f"{self.tokens_per_s:.1f} tokens/s ({self.batch_size} x {self.new_tokens} new tokens after "
                f"a {self.prompt_tokens}-token prompt, {self.total_s:.2f} s)")


class GPT(nn.Module):
    """GPT-2 built from its config: embeddings, n_layer pre-LayerNorm Blocks, a final LayerNorm and an
    output head tied to the token embedding. Initialised as GPT-2: every weight N(0, 0.02), biases zero,
    and the two projections that end a residual branch (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2 n_layer))
    so the residual stream's variance does not grow with depth.

    fused=True (the default) runs attention and GELU as the fused kernels of tinytensor/ops/nn.py, and
    the KV-cache steps of generate() as _decode_block (below): the same numbers, faster, but without second
    derivatives; GPT(config, fused=False), or any model inside `with tt.ops.fast.disabled():`, uses the
    plain ops everywhere."""

    def __init__(self, config, fused=True):
        super().__init__()
        self.config, self.fused = config, fused
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, fused) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight          # tied: one matrix, two uses
        self.last_generation_stats = None
        self._init_weights(config)

    def _init_weights(self, config):
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, 0.0, residual_std)
            elif name.endswith(".weight") and param.ndim == 2:      # Linear and Embedding matrices
                nn.init.normal_(param, 0.0, 0.02)
            elif name.endswith(".bias"):
                nn.init.zeros_(param)
            # LayerNorm weights stay at one

    def num_params(self, non_embedding=False):
        """How many numbers the model holds (the tied head counted once); non_embedding=True leaves out
        the position embedding (the token embedding is used as the head, so it stays in)."""
        n = self.num_parameters()
        return n - self.transformer.wpe.weight.size if non_embedding else n

    # ------------------------------------------------------------------ forward
    def _check_ids(self, idx, name="idx"):
        if not isinstance(idx, tt.Tensor):
            idx = tt.tensor(np.asarray(idx), device=self.transformer.wte.weight.device)
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(f"GPT: {name} must be a 2-D integer tensor (batch, time), got shape "
                             f"{tuple(idx.shape)} and dtype {idx.dtype}")
        return idx

    def _hidden(self, idx, caches=None):
        """The final hidden states (B, T, C), after ln_f. With caches (one KVCache per block), idx are
        the tokens after those the caches hold, and their positions continue from there."""
        B, T = idx.shape
        start = caches[0].length if caches else 0
        if start + T > self.config.block_size:
            raise ValueError(f"GPT: a sequence of {start + T} tokens is longer than block_size "
                             f"{self.config.block_size}; give at most the last {self.config.block_size}")
        positions = tt.arange(start, start + T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(positions))
        for i, block in enumerate(self.transformer.h):
            x = block(x, caches[i] if caches else None)
        return self.transformer.ln_f(x)

    def forward(self, idx, targets=None):
        """Logits (B, T, vocab_size) for the next token at every position, and the mean cross-entropy
        against targets (B, T) when given (positions whose target is -100 are left out, as PyTorch)."""
        idx = self._check_ids(idx)
        logits = self.lm_head(self._hidden(idx))
        if targets is None:
            return logits, None
        targets = self._check_ids(targets, "targets")
        if tuple(targets.shape) != tuple(idx.shape):
            raise ValueError(f"GPT: targets of shape {tuple(targets.shape)} must match idx of shape "
                             f"{tuple(idx.shape)}")
        B, T = idx.shape
        loss = tt.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss

    # ------------------------------------------------------------------ pretrained weights
    @classmethod
    def from_pretrained(cls, name_or_dir, dropout=0.0):
        """GPT-2 with the weights of a Hugging Face checkpoint: a folder holding config.json and
        model.safetensors, or a name in PRETRAINED ('gpt2'; the larger sizes have no pinned checksum yet,
        so they are read from a folder), downloaded once into the cache folder
        ($TINYTENSOR_CACHE, default ~/.cache/tinytensor) and checked by sha256. Reads with NumPy and the
        safetensors package only. A checkpoint that does not fit (a missing or unexpected tensor, a
        wrong shape, a config.json setting this model cannot honour) is refused, naming what differs."""
        from safetensors.numpy import load_file    # imported here: only this path needs it
        folder = Path(name_or_dir)
        if folder.is_dir():
            config_path, weights_path = folder / "config.json", folder / "model.safetensors"
            for path in (config_path, weights_path):
                if not path.is_file():
                    pickled = path == weights_path and (folder / "pytorch_model.bin").is_file()
                    raise FileNotFoundError(
                        f"GPT.from_pretrained: {folder} has no {path.name} (a Hugging Face GPT-2 folder holds "
                        "config.json and model.safetensors)" + _PICKLE_ADVICE * pickled)
            config = GPTConfig.from_hf(json.loads(config_path.read_text()), dropout)
        elif str(name_or_dir) in PRETRAINED:
            repo, revision, sha256 = PRETRAINED[str(name_or_dir)]
            weights_path = download(f"https://huggingface.co/{repo}/resolve/{revision}/model.safetensors",
                                    "model.safetensors", sha256, cache_subdir=f"{name_or_dir}-{revision[:8]}")
            config = GPTConfig.preset(str(name_or_dir), dropout=dropout)
        elif str(name_or_dir) in PRESETS and str(name_or_dir).startswith("gpt2"):
            raise FileNotFoundError(
                f"GPT.from_pretrained: no pinned checksum for {name_or_dir} yet, so it is not downloaded "
                f"automatically; download config.json and model.safetensors from "
                f"https://huggingface.co/openai-community/{name_or_dir} into a folder and pass the folder")
        else:
            raise FileNotFoundError(
                f"GPT.from_pretrained: {name_or_dir!r} is neither a folder nor a known name "
                f"({', '.join(PRETRAINED)}); for another checkpoint put its config.json and model.safetensors "
                f"in a folder and pass the folder (downloads are kept in {cache_dir()})")
        try:
            tensors = load_file(str(weights_path))
        except TypeError as err:             # NumPy has no bfloat16
            raise ValueError(f"GPT.from_pretrained: {weights_path} cannot be read with NumPy ({err}); save the "
                             "checkpoint in float32 (with transformers: model.float().save_pretrained(folder)) "
                             "and load that") from None
        model = cls(config)
        model.load_state_dict(_from_hf_names(tensors, model))
        return model

    # ------------------------------------------------------------------ optimizer
    def configure_optimizer(self, weight_decay, lr, betas=(0.9, 0.95)):
        """AdamW that decays only the matrices (Linear weights, embeddings); biases and LayerNorm gains
        are not decayed."""
        params = list(self.parameters())
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return nn.optim.AdamW(groups, lr=lr, betas=betas)

    # ------------------------------------------------------------------ generation
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, eos_token=None,
                 seed=None, use_cache=True):
        """The prompt idx (B, T) followed by up to max_new_tokens new ids, as an int64 tensor.

        temperature=0 is greedy; otherwise logits / temperature, then top_k keeps the k most likely ids and
        top_p the fewest most likely ids whose probability adds up to at least top_p, and one id is drawn.
        seed makes the draw repeatable (without it, tt.manual_seed does). Once prompt + output are longer
        than block_size, each token is predicted from the last block_size tokens, positions from 0, as
        forward() on idx[:, -block_size:] would. With eos_token, a row that produced it is finished: its
        later positions are filled with eos_token, and generation stops when every row is finished.
        use_cache=False recomputes the whole context for every token (same tokens, slower).
        Timings are left in self.last_generation_stats (a GenerationStats)."""
        idx = self._check_ids(idx)
        prompt = idx.numpy()
        new = list(self.generate_tokens(idx, max_new_tokens, temperature, top_k, top_p, eos_token, seed,
                                        use_cache))
        ids = np.concatenate([prompt] + [token[:, None] for token in new], axis=1)
        return tt.tensor(ids, dtype=tt.int64, device=idx.device)

    def generate_tokens(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, eos_token=None,
                        seed=None, use_cache=True):
        """generate() one step at a time: yields each step's new ids as a NumPy int64 array (B,), for
        printing text while it is produced. Same arguments and tokens as generate()."""
        idx = self._check_ids(idx)
        _check_sampling(max_new_tokens, temperature, top_k, top_p, eos_token, self.config.vocab_size)
        rng = np.random.default_rng(seed) if seed is not None else tt.random.generator("cpu")
        tokens = idx.numpy()
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(f"generate: the prompt holds id {tokens.min() if tokens.min() < 0 else tokens.max()}, "
                             f"outside the vocabulary (0 to {self.config.vocab_size - 1})")
        batch, prompt_length = tokens.shape
        block = self.config.block_size
        finished = np.zeros(batch, dtype=bool)
        was_training = self.training
        self.eval()
        caches, window_start = None, 0      # the caches hold tokens[:, window_start:] but the newest
        fused = self.fused and fast.enabled() and use_cache
        arrays = [BlockArrays(block) for block in self.transformer.h] if fused else None
        start = first = now = time.perf_counter()
        made = 0
        try:
            with tt.no_grad():
                for step in range(max_new_tokens):
                    length = tokens.shape[1]
                    if not use_cache:
                        logits = self._last_logits(tokens[:, -block:], None)
                    elif caches is None or length - window_start > block:
                        # (Re)start: the context slid past block_size, so every position changes.
                        window_start = max(0, length - block)
                        if caches is None:
                            caches = [KVCache(batch, self.config, idx.device, self.transformer.wte.weight.dtype)
                                      for _ in self.transformer.h]
                        for cache in caches:
                            cache.length = 0        # refilled from position 0 (the arrays are reused)
                        logits = self._last_logits(tokens[:, window_start:], caches, arrays)
                    else:
                        logits = self._last_logits(tokens[:, -1:], caches, arrays)
                    token = _choose(logits, temperature, top_k, top_p, rng)
                    if eos_token is not None:
                        token[finished] = eos_token
                        finished |= token == eos_token
                    tokens = np.concatenate([tokens, token[:, None]], axis=1)
                    made += 1
                    now = time.perf_counter()
                    if step == 0:
                        first = now
                    yield token
                    if eos_token is not None and finished.all():
                        break
        finally:
            self.train(was_training)
            total = now - start
            self.last_generation_stats = GenerationStats(
                batch_size=batch, prompt_tokens=prompt_length, new_tokens=made, ttft_s=first - start,
                tpot_s=(now - first) / (made - 1) if made > 1 else 0.0, total_s=total,
                tokens_per_s=batch * made / total if total > 0 else 0.0)

    def _last_logits(self, context, caches, arrays=None):
        """Logits of the next token after `context` (B, T) host ids: (B, vocab) float64 on the host.
        Only the last position goes through the head, the biggest matrix of the model. With arrays
        (one BlockArrays per block), the whole step runs on arrays, the blocks as _decode_block."""
        wte = self.transformer.wte.weight
        if arrays is None:
            hidden = self._hidden(tt.tensor(context, dtype=tt.int64, device=wte.device), caches)
            return self.lm_head(hidden[:, -1]).numpy().astype(np.float64)
        start, end = caches[0].length, caches[0].length + context.shape[1]
        x = wte.data[backend.move(context, wte.device)] + self.transformer.wpe.weight.data[start:end]
        for block_arrays, cache in zip(arrays, caches):
            x = _decode_block(block_arrays, x, cache)
        last = _layer_norm_array(x[:, -1], _norm_arrays(self.transformer.ln_f))
        return backend.move(last @ wte.data.T, "cpu").astype(np.float64)


def _from_hf_names(tensors, model):
    """A state dict for `model` from a Hugging Face GPT-2 checkpoint's tensors: names with the
    'transformer.' prefix (some checkpoints leave it out), Conv1D weights transposed, float32, the
    attention-mask buffers dropped. Refuses a missing, unexpected or wrongly shaped tensor, giving
    shapes as the checkpoint stores them."""
    needed = {}     # our name -> the shape the checkpoint must store it in
    for name, param in model.state_dict().items():
        if name != "lm_head.weight":
            needed[name] = tuple(param.shape)[::-1] if name.endswith(_TRANSPOSED) else tuple(param.shape)
    state, problems, seen = {}, [], set()
    for name, array in tensors.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):     # the causal mask, a constant buffer
            continue
        if name == "lm_head.weight":        # stored by some checkpoints; ours is the token embedding
            wte = tensors.get("transformer.wte.weight", tensors.get("wte.weight"))
            if wte is None or not np.array_equal(array, wte):
                problems.append("lm_head.weight differs from the token embedding (wte), but this GPT-2 ties them")
            continue
        ours = name if name.startswith("transformer.") else "transformer." + name
        seen.add(ours)
        if ours not in needed:
            problems.append(f"unexpected tensor {name} of shape {tuple(array.shape)}")
        elif tuple(array.shape) != needed[ours]:
            problems.append(f"{name}: the checkpoint has shape {tuple(array.shape)}, the model needs {needed[ours]}")
        else:
            state[ours] = np.ascontiguousarray(array.T if ours.endswith(_TRANSPOSED) else array, dtype=np.float32)
    problems += [f"missing tensor {name} of shape {shape}" for name, shape in needed.items() if name not in seen]
    if problems:
        raise ValueError(f"GPT.from_pretrained: the checkpoint does not fit {model.config}: " + "; ".join(problems))
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


# ----------------------------------------------------------------------------------- fused decoding
#
# A decoding step feeds one token through every block: about twenty ops per block, each on a vector of
# n_embd numbers, so creating their Tensors costs more than their arithmetic. With fused=True,
# generate() runs its KV-cache steps on arrays instead (GPT._last_logits), each block as _decode_block:
# Block.forward's arithmetic, in place where nothing else holds the values (tests/models/test_gpt2.py
# checks it against the plain model). The weights are read out of the modules once per generate() call.

class BlockArrays:
    """One Block's weights as arrays, for _decode_block: (weight, bias, eps) of each LayerNorm and
    (weight transposed to (in, out), bias) of each Linear."""

    def __init__(self, block):
        self.xp = backend.xp_for(block.ln_1.weight.device)
        self.n_head = block.attn.n_head
        self.ln_1, self.ln_2 = (_norm_arrays(norm) for norm in (block.ln_1, block.ln_2))
        self.c_attn, self.attn_proj, self.c_fc, self.mlp_proj = (
            _linear_arrays(linear) for linear in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc,
                                                  block.mlp.c_proj))


def _norm_arrays(norm):
    return norm.weight.data, None if norm.bias is None else norm.bias.data, norm.eps


def _linear_arrays(linear):
    return linear.weight.data.T, None if linear.bias is None else linear.bias.data


def _decode_block(w, x, cache):
    """Block.forward(x, cache) on arrays, with no graph: x (B, T, C) after the cache's positions;
    w: the block's BlockArrays."""
    B, T, C = x.shape
    H, D = w.n_head, C // w.n_head
    qkv = _linear_array(_layer_norm_array(x, w.ln_1), w.c_attn)
    q, k, v = qkv.reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)           # each (B, H, T, D)
    start, end = cache.length, cache.length + T
    keys, values = cache.keys.data, cache.values.data                       # (B, H, block_size, D)
    keys[:, :, start:end], values[:, :, start:end] = k, v
    cache.length = end
    probs = causal_attention_probs(w.xp, q, keys[:, :, :end], 1 / math.sqrt(D))
    y = (probs @ values[:, :, :end]).transpose(0, 2, 1, 3).reshape(B, T, C)
    x = x + _linear_array(y, w.attn_proj)
    h, _ = gelu_tanh_array(w.xp, _linear_array(_layer_norm_array(x, w.ln_2), w.c_fc))
    x += _linear_array(h, w.mlp_proj)
    return x


def _layer_norm_array(x, norm):
    """LayerNorm over the last axis on an array: (x - mean) / sqrt(var + eps) * weight + bias."""
    weight, bias, eps = norm
    y = x - x.sum(axis=-1, keepdims=True) * (1 / x.shape[-1])
    y /= ((y * y).sum(axis=-1, keepdims=True) * (1 / x.shape[-1]) + eps) ** 0.5
    y *= weight
    if bias is not None:
        y += bias
    return y


def _linear_array(x, linear):
    """x @ weight.T + bias on an array (..., in) -> (..., out): one 2-D BLAS product, bias in place."""
    weight_t, bias = linear
    y = x.reshape(-1, x.shape[-1]) @ weight_t
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (y.shape[-1],))


def _check_sampling(max_new_tokens, temperature, top_k, top_p, eos_token, vocab_size):
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"generate: top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"generate: top_p must be in (0, 1] or None, got {top_p}")
    if eos_token is not None and not 0 <= eos_token < vocab_size:
        raise ValueError(f"generate: eos_token {eos_token} is not an id of the vocabulary (0 to {vocab_size - 1})")


def _choose(logits, temperature, top_k, top_p, rng):
    """One next id per row of logits (B, V): the argmax when temperature is 0, else a draw from
    softmax(logits / temperature) restricted to the top_k ids and then to the top_p nucleus."""
    if temperature == 0:
        return logits.argmax(axis=1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[1]:
        kth_largest = np.partition(logits, -top_k, axis=1)[:, -top_k, None]
        logits = np.where(logits < kth_largest, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, axis=1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=1)
        before = np.cumsum(sorted_probs, axis=1) - sorted_probs      # mass of the more likely ids
        keep_sorted = before < top_p                                 # the most likely id is always kept
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        probs = np.where(keep, probs, 0.0)
    # Inverse CDF: the first id whose cumulative mass passes u * total.
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), probs.shape[1] - 1).astype(np.int64)
