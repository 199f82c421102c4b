"""One token per character: the smallest tokenizer, for the smallest experiments.

    tok = CharTokenizer.train(text)       # the vocabulary is the sorted set of characters in text
    tok.decode(tok.encode("to be")) == "to be"

Same interface as models.bpe.BPETokenizer (train, encode, decode, save, load, n_vocab), so a training
script can switch between them. Unlike byte-level BPE it cannot encode a character it never saw.
"""

import json
from pathlib import Path


class CharTokenizer:
    def __init__(self, chars):
        self.chars = list(chars)
        self._ids = {char: i for i, char in enumerate(self.chars)}
        self._chars_by_id = dict(enumerate(self.chars))
        if len(self._ids) != len(self.chars):
            raise ValueError("CharTokenizer: each character may appear only once in the vocabulary")

    @classmethod
    def train(cls, text):
        return cls(sorted(set(text)))

    def encode(self, text):
        try:
            return [self._ids[char] for char in text]
        except KeyError:
            unseen = sorted({char for char in text if char not in self._ids})
            raise ValueError(
                f"CharTokenizer cannot encode {len(unseen)} character(s) absent from its training text: "
                f"{unseen[:10]!r}; train it on text that contains them, or use the byte-level BPETokenizer"
            ) from None

    def encode_batch(self, texts):
        return [self.encode(text) for text in texts]

    def decode(self, ids):
        try:
            return "".join([self._chars_by_id[i] for i in ids])
        except KeyError as err:
            bad = err.args[0]
            raise ValueError(f"token id {bad!r} is not in the vocabulary (ids are 0..{self.n_vocab - 1})") from None

    @property
    def n_vocab(self):
        return len(self.chars)

    def __repr__(self):
        return f"CharTokenizer(n_vocab={self.n_vocab})"

    def save(self, folder):
        """tokenizer.json in `folder`: the characters, in id order."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"kind": "character", "chars": self.chars}
        (folder / "tokenizer.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder):
        meta = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))
        if meta.get("kind") != "character":
            raise ValueError(f"{folder} holds a {meta.get('kind')!r} tokenizer, not a character one")
        return cls(meta["chars"])
