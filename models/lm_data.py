"""Text for language modelling: a corpus, a tokenizer, and windows of token ids cut into batches.

    text = load_corpus("verdict")                          # or "shakespeare", or the path of a text file
    tok = make_tokenizer("bpe", text, vocab_size=512)      # trained on the text once, then read from the cache
    ids = encode_corpus(tok, text)                         # (N,) int64 NumPy array
    train_ids, val_ids = split_ids(ids, val_fraction=0.1)  # the last 10% of the text is for validation
    train = TokenWindows(train_ids, block_size=64)         # every window of 64 tokens (stride 1)
    batches = RandomBatches(train, batch_size=16, seed=0)
    x, y = batches.next()                                  # (16, 64) int64 Tensors; y[:, t] == x[:, t + 1]

A language model learns to predict each next token, so one window of block_size + 1 ids gives block_size
examples at once: input ids[s : s + T], target ids[s + 1 : s + T + 1]. Windows start every `stride` ids:
stride 1 uses every position (training), stride T gives non-overlapping windows (evaluation).

On a GPU the ids live on the device; a batch is drawn as start positions on the host (a seeded NumPy
generator, so nothing waits for the GPU) and gathered on the device with one fancy index.
"""
import base64
import codecs
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

import tinytensor as tt
from tinytensor import backend
from tinytensor.download import cache_dir
from tinytensor.nn.data import Dataset

from .bpe import BPETokenizer, read_tiktoken_ranks
from .char_tokenizer import CharTokenizer

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPORA = {"verdict": "the-verdict.txt", "shakespeare": "tinyshakespeare.txt"}   # public domain, shipped
TOKENIZERS = ("bpe", "char", "gpt2")


# ---------------------------------------------------------------------------------------- corpora

def load_corpus(name_or_path):
    """The text of a shipped corpus ('verdict', 'shakespeare') or of a UTF-8 text file."""
    name = str(name_or_path)
    path = DATA_DIR / CORPORA[name] if name in CORPORA else Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no corpus named {name!r} and no file at {path}: use one of "
                                f"{', '.join(CORPORA)} or the path of a UTF-8 text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err}); convert it, e.g. iconv -t utf-8") from None
    if not text:
        raise ValueError(f"{path} is empty: a language model needs text to learn from")
    return text


# ------------------------------------------------------------------------------------- tokenizers

def make_tokenizer(kind, text=None, vocab_size=512):
    """A tokenizer for `text`:

    'bpe'   byte-level BPE with vocab_size tokens, trained on text; kept in the cache folder
            (<cache>/bpe/<sha256 of text>-<vocab_size>/), so the next run with the same text reads it back;
    'char'  one token per distinct character of text;
    'gpt2'  GPT-2's vocabulary (50,257 tokens), downloaded once into the cache;
    a path  a folder written by a tokenizer's save(), or GPT-2's vocabulary files (a file or a folder)."""
    if kind == "char":
        return CharTokenizer.train(text)
    if kind == "bpe":
        return _cached_bpe(text, vocab_size)
    if kind == "gpt2":
        return BPETokenizer.from_gpt2()
    if not Path(kind).exists():
        raise ValueError(f"unknown tokenizer {kind!r}: use one of {', '.join(TOKENIZERS)}, a folder written "
                         "by a tokenizer's save(), or GPT-2's vocabulary files")
    return load_tokenizer(kind)


def _cached_bpe(text, vocab_size):
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    folder = cache_dir() / "bpe" / f"{digest}-{vocab_size}"
    if (folder / "tokenizer.json").is_file():
        return BPETokenizer.load(folder)
    tok = BPETokenizer.train(text, vocab_size)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    except OSError:           # a read-only cache: the tokenizer is trained again next time
        return tok
    try:                      # written beside its final place, then renamed: no reader sees half of it
        tok.save(partial)
        os.replace(partial, folder)
    except OSError:           # another run saved the same tokenizer first
        shutil.rmtree(partial, ignore_errors=True)
    return tok


def load_tokenizer(path):
    """A tokenizer from files: a folder written by a tokenizer's save() (byte-level BPE or character, as
    its tokenizer.json says), or GPT-2's vocabulary (a .tiktoken file, or a folder holding encoder.json +
    vocab.bpe or vocab.json + merges.txt, as a Hugging Face GPT-2 folder does)."""
    meta_path = Path(path) / "tokenizer.json"
    kind = json.loads(meta_path.read_text(encoding="utf-8")).get("kind") if meta_path.is_file() else None
    if kind == "character":
        return CharTokenizer.load(path)
    if kind == "byte-level BPE":
        return BPETokenizer.load(path)
    return BPETokenizer.from_gpt2(path)      # (a Hugging Face tokenizer.json has no "kind")


def tokenizer_to_state(tok):
    """A tokenizer as plain strings and numbers, to keep inside a checkpoint. A BPE vocabulary is kept
    as its ranks in the .tiktoken form (one `base64(token) id` line per token): GPT-2's 50,257 tokens
    take 0.8 MB and read back in a fraction of a second."""
    if isinstance(tok, CharTokenizer):
        return {"kind": "character", "chars": list(tok.chars)}
    by_id = sorted(tok.ranks.items(), key=lambda item: item[1])
    ranks = "\n".join(f"{base64.b64encode(token).decode('ascii')} {rank}" for token, rank in by_id)
    return {"kind": "byte-level BPE", "ranks": ranks, "special_tokens": dict(tok.special_tokens),
            "pattern": tok.pattern}


def tokenizer_from_state(state):
    """The tokenizer that tokenizer_to_state() described."""
    if state["kind"] == "character":
        return CharTokenizer(state["chars"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ranks.tiktoken"
        path.write_text(state["ranks"], encoding="ascii")
        return BPETokenizer(read_tiktoken_ranks(path), state["special_tokens"], state["pattern"])


def encode_corpus(tok, text):
    """All of text as one (N,) int64 array of token ids (special-token text is encoded as plain text)."""
    encode = getattr(tok, "encode_ordinary", tok.encode)
    return np.asarray(encode(text), dtype=np.int64)


def split_ids(ids, val_fraction=0.1):
    """(train, validation): the first 1 - val_fraction of the ids and the rest, in order. A contiguous
    split keeps validation text unseen: random windows would overlap the training ones."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    cut = int(round(len(ids) * (1 - val_fraction)))
    return ids[:cut], ids[cut:]


# ------------------------------------------------------------------------------------- windows

class TokenWindows(Dataset):
    """Windows of token ids: item i is (x, y) with x = ids[s : s + T] and y = ids[s + 1 : s + T + 1],
    s = i * stride, T = block_size. An integer array of items gathers a batch at once: x, y (B, T).

    The ids are kept on `device` (a 1-D int64 array), and so are the batches."""

    def __init__(self, ids, block_size, stride=1, device="cpu"):
        if block_size < 1 or stride < 1:
            raise ValueError(f"TokenWindows: block_size ({block_size}) and stride ({stride}) must be >= 1")
        if len(ids) < block_size + 1:
            raise ValueError(f"TokenWindows: {len(ids)} tokens are too few for one window of block_size "
                             f"{block_size} (it needs block_size + 1 = {block_size + 1}); use a smaller "
                             "--block-size, a longer text, or a larger validation fraction")
        self.block_size, self.stride, self.device = block_size, stride, backend.parse_device(device)
        host_ids = backend.move(ids.detach().data if isinstance(ids, tt.Tensor) else np.asarray(ids), "cpu")
        self.ids = backend.move(host_ids.astype(np.int64), self.device)
        self._offsets = backend.move(np.arange(block_size + 1), self.device)   # 0..T, added to each start

    def __len__(self):
        return (len(self.ids) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, index):
        """(x, y) arrays: (T,) each for an int index, (B, T) for an integer array (on the host) of them."""
        starts = np.asarray(index) * self.stride
        if np.any(starts < 0) or np.any(starts > len(self.ids) - self.block_size - 1):
            raise IndexError(f"TokenWindows: window index out of range 0..{len(self) - 1}")
        return self.gather(starts)

    def gather(self, starts):
        """The windows starting at host positions `starts` (int or (B,) array), gathered on the device."""
        starts = backend.move(np.asarray(starts, dtype=np.int64), self.device)
        windows = self.ids[starts[..., None] + self._offsets]            # (..., T + 1)
        return windows[..., :-1], windows[..., 1:]

    def batches(self, batch_size, max_batches=None):
        """(x, y) Tensors of consecutive windows, batch_size at a time (for evaluation); with max_batches,
        windows spread evenly over the whole set, so a capped evaluation still sees all of the text."""
        count = len(self)
        if max_batches is not None and count > batch_size * max_batches:
            order = np.linspace(0, count - 1, batch_size * max_batches).round().astype(np.int64)
        else:
            order = np.arange(count)
        for first in range(0, len(order), batch_size):
            x, y = self[order[first:first + batch_size]]
            yield tt.as_tensor(x), tt.as_tensor(y)       # the gathered arrays, not copied


class RandomBatches:
    """Endless random batches of windows, drawn with replacement from a TokenWindows.

    The draw uses its own NumPy generator, seeded once: the same seed gives the same batches, and
    state_dict() / load_state_dict() continue the sequence exactly after a resume."""

    def __init__(self, windows, batch_size, seed=0):
        if batch_size < 1:
            raise ValueError(f"RandomBatches: batch_size must be >= 1, got {batch_size}")
        self.windows, self.batch_size = windows, batch_size
        self.rng = np.random.default_rng(seed)

    def next(self):
        """(x, y): (batch_size, block_size) int64 Tensors on the windows' device."""
        index = self.rng.integers(0, len(self.windows), size=self.batch_size)   # on the host: no GPU wait
        x, y = self.windows[index]
        return tt.as_tensor(x), tt.as_tensor(y)        # on the windows' device, not copied

    def state_dict(self):
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["bit_generator"]


# ------------------------------------------------------------------------------------- evaluation

@tt.no_grad()
def estimate_loss(model, windows, batch_size, max_batches=None):
    """Mean next-token cross-entropy of `model` over `windows` (model(x, y) -> (logits, loss)), in eval
    mode; the mode is restored after. Returns a float (one read from the device at the end)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in windows.batches(batch_size, max_batches):
        _, loss = model(x, y)
        total = total + loss.data * len(x)          # stays on the device until the float() below
        count += len(x)
    model.train(was_training)
    return float(total) / count


def perplexity(loss):
    """exp(loss): the number of equally likely tokens that would leave the model as unsure as it is."""
    return math.exp(loss) if loss < 709 else math.inf    # exp overflows float64 beyond ~709.78


# ------------------------------------------------------------------------------------- streaming

class StreamDecoder:
    """Turns token ids, one at a time, into text as soon as it is whole.

    A byte-level token can hold part of a UTF-8 character (an emoji spans several tokens); such bytes are
    kept until the character completes. push(id) returns the new text (possibly ''), flush() the rest."""

    def __init__(self, tok):
        self._token_bytes = getattr(tok, "decode_single_token_bytes", None) or (
            lambda token_id: tok.decode([token_id]).encode("utf-8"))
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id):
        return self._utf8.decode(self._token_bytes(int(token_id)))

    def flush(self):
        return self._utf8.decode(b"", final=True)
