"""Byte-level BPE: learn merges from text, encode and decode, read GPT-2's vocabulary.

    tok = BPETokenizer.train(text, vocab_size=1024, verbose=True)   # watch merges being learned
    ids = tok.encode("Hello world")
    tok.decode(ids) == "Hello world"
    gpt2 = BPETokenizer.from_gpt2("path/to/gpt2-files")            # same ids as GPT-2 was trained on

How it works, in three steps (docs/bpe.md derives it on a small example):
1. Text is cut into chunks with GPT-2's regular expression: words with their leading space, numbers,
   punctuation runs, whitespace runs. Tokens never cross a chunk boundary.
2. Each chunk is UTF-8 bytes; the 256 byte values are the base tokens, so any text can be encoded.
3. Training repeatedly joins the most frequent adjacent pair of tokens into a new token. Encoding
   replays those joins: inside a chunk, join the adjacent pair whose joined bytes have the lowest rank.

A vocabulary is stored as `ranks`: token bytes -> token id (a lower id was learned earlier and is
joined first). Merges learned here and GPT-2's published files both reduce to that one table.

Run `python -m tinytensor.models.bpe --help` for the command line (train, encode, decode, visualize).
"""

import argparse
import base64
import heapq
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import regex
from tqdm import tqdm

# GPT-2's pre-split pattern, in the form that uses possessive quantifiers (`++`), which is faster and
# cuts text into exactly the same chunks as GPT-2's original
#     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# (tests/models/test_bpe.py checks that the two agree). `\p{L}` (any letter) needs the `regex` package.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
ENDOFTEXT = "<|endoftext|>"

# GPT-2's vocabulary, as published (r50k_base is GPT-2's encoding under its tiktoken name).
GPT2_RANKS_URL = "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken"
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"

CACHE_LIMIT = 1 << 20  # chunks remembered by encode; beyond this, new chunks are encoded but not stored


class BPETokenizer:
    def __init__(self, ranks, special_tokens=None, pattern=GPT2_PATTERN, merges=None):
        """`ranks`: token bytes -> id, all 256 single bytes included. `special_tokens`: text -> id.
        `merges`: the (left bytes, right bytes) pairs in rank order, when known (else derived on save)."""
        missing = [b for b in range(256) if bytes([b]) not in ranks]
        if missing:
            raise ValueError(f"a byte-level vocabulary needs all 256 single bytes; missing {len(missing)}, e.g. byte {missing[0]}")
        self.ranks = dict(ranks)
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self.merges = merges
        self._chunker = regex.compile(pattern)
        self._decoder = {rank: token for token, rank in self.ranks.items()}
        self._decoder.update({rank: text.encode("utf-8") for text, rank in self.special_tokens.items()})
        if len(self._decoder) != len(self.ranks) + len(self.special_tokens):
            raise ValueError("two tokens share one id; every token (special ones included) needs its own id")
        self._cache = {}  # chunk text -> its ids; most text is made of chunks seen before

    # ---------------------------------------------------------------- training

    @classmethod
    def train(cls, text, vocab_size, special_tokens=(ENDOFTEXT,), verbose=False, pattern=GPT2_PATTERN):
        """Learn `vocab_size - 256 - len(special_tokens)` merges from `text`; returns a tokenizer.

        Ids: 0..255 are the bytes, then one id per merge in the order learned, then the special
        tokens. Stops early (with a smaller vocabulary) if the text runs out of pairs to merge.
        """
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(
                f"vocab_size {vocab_size} is too small: it must hold the 256 byte tokens and "
                f"{len(special_tokens)} special tokens, so at least {256 + len(special_tokens)}"
            )
        words, freqs = count_chunks(text, pattern, special_tokens)
        token_bytes = [bytes([b]) for b in range(256)]  # id -> bytes, grows with each merge
        progress = tqdm(total=n_merges, desc="learning merges", unit="merge", disable=not verbose)
        merges = []
        for left, right, count in learn_merges(words, freqs, n_merges):
            merges.append((token_bytes[left], token_bytes[right]))
            token_bytes.append(token_bytes[left] + token_bytes[right])
            if verbose:
                progress.write(
                    f"merge {len(merges):5d}: {show(token_bytes[left])} + {show(token_bytes[right])}"
                    f" -> {show(token_bytes[-1])}  (count {count})"
                )
            progress.update()
        progress.close()
        ranks = {token: rank for rank, token in enumerate(token_bytes)}
        specials = {token: len(token_bytes) + k for k, token in enumerate(special_tokens)}
        return cls(ranks, specials, pattern, merges)

    # ---------------------------------------------------------------- encoding

    def encode_ordinary(self, text):
        """Encode `text`, treating special-token text such as '<|endoftext|>' as ordinary text. A lone
        surrogate (half of a UTF-16 pair, e.g. from a broken JSON escape) has no UTF-8 bytes: it is
        encoded as U+FFFD, the replacement character, as tiktoken does."""
        try:
            return self._encode_ordinary(text)
        except UnicodeEncodeError:
            return self._encode_ordinary(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))

    def _encode_ordinary(self, text):
        cache = self._cache
        ids = []
        for chunk in self._chunker.findall(text):
            chunk_ids = cache.get(chunk)  # fast path: one dictionary look-up per chunk seen before
            if chunk_ids is None:
                chunk_ids = self._encode_chunk(chunk)
            ids += chunk_ids
        return ids

    def encode(self, text, allowed_special="none_raise", disallowed_special="all"):
        """Encode `text`, as tiktoken does. `allowed_special`: "none_raise" (or an empty set), "all", or a set
        of the special tokens to encode as such. The others are refused when they are in
        `disallowed_special` ("all" of them by default); pass disallowed_special=() to encode their text
        as ordinary text instead."""
        allowed = self._allowed_specials(allowed_special)
        refused = self.special_tokens.keys() - allowed
        if disallowed_special != "all":
            refused &= set(disallowed_special)
        for token in refused:
            if token in text:
                raise ValueError(
                    f"text contains the special token {token!r} (at character {text.index(token)}), which is not "
                    f"allowed: pass allowed_special={{{token!r}}} or allowed_special='all' to encode it as token "
                    f"{self.special_tokens[token]}, or use encode_ordinary() to encode it as plain text"
                )
        if not allowed:
            return self.encode_ordinary(text)
        # Split around the allowed special tokens, longest first so that one which contains another wins.
        specials_first = sorted(allowed, key=len, reverse=True)
        splitter = regex.compile("(" + "|".join(regex.escape(token) for token in specials_first) + ")")
        ids = []
        for k, part in enumerate(splitter.split(text)):
            if k % 2:  # split() puts the matched separators at odd positions
                ids.append(self.special_tokens[part])
            else:
                ids += self.encode_ordinary(part)
        return ids

    def encode_batch(self, texts, allowed_special="none_raise", disallowed_special="all"):
        return [self.encode(text, allowed_special, disallowed_special) for text in texts]

    def _allowed_specials(self, allowed_special):
        if allowed_special == "none_raise":
            return set()
        if allowed_special == "all":
            return set(self.special_tokens)
        allowed = set(allowed_special)
        unknown = allowed - self.special_tokens.keys()
        if unknown:
            raise ValueError(f"allowed_special names tokens this tokenizer does not have: {sorted(unknown)}; it has {sorted(self.special_tokens)}")
        return allowed

    def _encode_chunk(self, chunk):
        piece = chunk.encode("utf-8")
        rank = self.ranks.get(piece)
        ids = [rank] if rank is not None else [self.ranks[part] for part in self._merge_parts(piece)]
        if len(self._cache) < CACHE_LIMIT:
            self._cache[chunk] = ids
        return ids

    def _merge_parts(self, piece, rank_limit=sys.maxsize):
        """Split `piece` into single bytes, then keep joining the adjacent pair whose joined bytes
        have the lowest rank (below `rank_limit`), leftmost first, until no pair is a token.
        Quadratic in the chunk length, which is fine: chunks are words, a few bytes long."""
        ranks = self.ranks
        parts = [piece[i : i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best_rank, best_at = rank_limit, -1
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and rank < best_rank:
                    best_rank, best_at = rank, i
            if best_at < 0:
                break
            parts[best_at : best_at + 2] = [parts[best_at] + parts[best_at + 1]]
        return parts

    # ---------------------------------------------------------------- decoding

    def decode_single_token_bytes(self, token_id):
        try:
            return self._decoder[token_id]
        except KeyError:
            raise ValueError(f"token id {token_id!r} is not in the vocabulary (ids are 0..{self.n_vocab - 1})") from None

    def decode_bytes(self, ids):
        decoder = self._decoder
        try:
            return b"".join([decoder[i] for i in ids])
        except KeyError:
            bad = next(i for i in ids if i not in decoder)
            raise ValueError(f"token id {bad!r} is not in the vocabulary (ids are 0..{self.n_vocab - 1})") from None

    def decode(self, ids):
        """Ids -> text. A token can hold part of a UTF-8 character, so a slice of ids may not be valid
        UTF-8 on its own; broken bytes become U+FFFD, so any sequence of ids decodes."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    @property
    def n_vocab(self):
        return max(self._decoder) + 1

    @property
    def eot_token(self):
        if ENDOFTEXT not in self.special_tokens:
            raise ValueError(f"this tokenizer has no {ENDOFTEXT!r} token; its special tokens are {sorted(self.special_tokens)}")
        return self.special_tokens[ENDOFTEXT]

    def __repr__(self):
        return f"BPETokenizer(n_vocab={self.n_vocab}, special_tokens={self.special_tokens})"

    # ---------------------------------------------------------------- files

    def save(self, folder):
        """Write three readable files into `folder`: merges.txt (one merge per line, in the order
        learned), vocab.json (token -> id) and tokenizer.json (pattern, special tokens).
        Tokens are written in GPT-2's byte-to-unicode alphabet, so GPT-2 tools can read them too."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        to_text = bytes_to_text
        merges = self.merges if self.merges is not None else self._derive_merges()
        lines = ["#version: 0.2"] + [f"{to_text(left)} {to_text(right)}" for left, right in merges]
        (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        vocab = {to_text(token): rank for token, rank in sorted(self.ranks.items(), key=lambda item: item[1])}
        vocab.update(self.special_tokens)
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        meta = {"kind": "byte-level BPE", "pattern": self.pattern, "special_tokens": self.special_tokens, "n_vocab": self.n_vocab}
        (folder / "tokenizer.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder):
        """Read a folder written by save()."""
        folder = Path(folder)
        meta_path = folder / "tokenizer.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: load() reads a folder written by BPETokenizer.save() (for GPT-2's files use from_gpt2)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("kind") != "byte-level BPE":
            raise ValueError(f"{folder} holds a {meta.get('kind')!r} tokenizer, not a byte-level BPE one")
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        ranks, specials, merges = read_vocab_and_merges(vocab, folder / "merges.txt")
        if specials.keys() != meta["special_tokens"].keys():
            raise ValueError(f"{folder}: vocab.json has extra tokens {sorted(specials)} but tokenizer.json lists {sorted(meta['special_tokens'])}")
        return cls(ranks, specials, meta["pattern"], merges)

    def _derive_merges(self):
        """Recover the merge list of a vocabulary given only as ranks (a .tiktoken file): the token of
        rank r is the join of the two parts that BPE makes of its bytes using only tokens below r."""
        merges = []
        for token, rank in sorted(self.ranks.items(), key=lambda item: item[1]):
            if len(token) > 1:
                parts = self._merge_parts(token, rank_limit=rank)
                if len(parts) != 2:
                    raise ValueError(f"token {show(token)} (id {rank}) is not the join of two earlier tokens; cannot write it as a merge")
                merges.append(tuple(parts))
        return merges

    @classmethod
    def from_gpt2(cls, path_or_dir=None):
        """GPT-2's tokenizer, from any of its usual files:
        a `.tiktoken` rank file, `encoder.json` + `vocab.bpe`, or `vocab.json` + `merges.txt`
        (pass a file or the folder holding them). With no path, the rank file is downloaded once into
        the cache folder ($TINYTENSOR_CACHE, default ~/.cache/tinytensor) and checked by sha256."""
        if path_or_dir is None:
            from tinytensor.download import DownloadError, download  # imported here: only this path needs it

            try:
                path_or_dir = download(GPT2_RANKS_URL, "r50k_base.tiktoken", GPT2_RANKS_SHA256, cache_subdir="gpt2")
            except DownloadError as err:
                raise DownloadError(
                    f"GPT-2's vocabulary is not available offline.\n{err}\n"
                    "Or load files you already have: BPETokenizer.from_gpt2('/path/to/gpt2.tiktoken') "
                    "or BPETokenizer.from_gpt2('/folder/with/encoder.json-and-vocab.bpe')"
                ) from err
        path = Path(path_or_dir)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: pass GPT-2's vocabulary file or the folder holding it, or nothing to download it")
        folder = path if path.is_dir() else path.parent
        rank_files = sorted(path.glob("*.tiktoken")) if path.is_dir() else [path] if path.suffix == ".tiktoken" else []
        if rank_files:
            ranks = read_tiktoken_ranks(rank_files[0])
            # GPT-2's only special token comes right after its 50,256 byte and merge tokens.
            return cls(ranks, {ENDOFTEXT: len(ranks)}, GPT2_PATTERN)
        for vocab_name, merges_name in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
            if (folder / vocab_name).is_file() and (folder / merges_name).is_file():
                vocab = json.loads((folder / vocab_name).read_text(encoding="utf-8"))
                ranks, specials, merges = read_vocab_and_merges(vocab, folder / merges_name)
                return cls(ranks, specials, GPT2_PATTERN, merges)
        raise FileNotFoundError(
            f"no GPT-2 vocabulary found at {path}: expected a .tiktoken rank file, or encoder.json + vocab.bpe, "
            "or vocab.json + merges.txt (pass the file or the folder holding them, or nothing to download it)"
        )


# ---------------------------------------------------------------- learning merges


def count_chunks(text, pattern=GPT2_PATTERN, special_tokens=()):
    """Pre-split `text` and count each distinct chunk once: ' the' seen 5,000 times becomes one
    word with frequency 5,000, so training works on ~15k words instead of ~300k for 1 MB of English.
    Special tokens are chunk boundaries and are not learned from.
    Returns (words, freqs): each word a list of byte values, and how often it occurs."""
    chunker = regex.compile(pattern)
    segments = [text]
    if special_tokens:
        segments = regex.split("|".join(regex.escape(token) for token in special_tokens), text)
    counts = Counter(chunk for segment in segments for chunk in chunker.findall(segment))
    return [list(chunk.encode("utf-8")) for chunk in counts], list(counts.values())


def merge_pair(word, pair, new_id):
    """Replace each occurrence of `pair` in `word`, left to right, by `new_id`:
    merge_pair([1, 1, 1, 2], (1, 1), 9) == [9, 1, 2]."""
    merged, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return merged


def learn_merges(words, freqs, n_merges):
    """Greedy BPE, incrementally. Yields (left id, right id, count) for each merge; the k-th merge
    makes token 256 + k. The most frequent pair wins; ties go to the smallest (left, right) ids.

    The plain way (learn_merges_naive) recounts every pair of every word after each merge:
    n_merges x (size of the corpus). But a merge of (a, b) changes only the words that contain
    a-b, and in those only the pairs that touch it. So we keep
        pair_counts[pair] = sum of freq over the words that hold it,
        pair_words[pair]  = the words that hold it,
    and after a merge we re-count only the words in pair_words[(a, b)]: subtract their old pairs,
    add their new ones. Late merges touch a handful of rare words, so a merge costs little.
    The best pair comes from a heap of (-count, pair). Instead of updating entries in place, a
    changed count is pushed again; an entry whose count no longer matches is stale and skipped.
    """
    words = [list(word) for word in words]
    pair_counts = defaultdict(int)
    pair_words = defaultdict(set)
    for w, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            pair_words[pair].add(w)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    for new_id in range(256, 256 + n_merges):
        while heap and pair_counts.get(heap[0][1]) != -heap[0][0]:
            heapq.heappop(heap)  # stale entry: that pair's count has changed since it was pushed
        if not heap:
            return  # every word is a single token: nothing left to merge
        count, pair = -heap[0][0], heap[0][1]
        yield pair[0], pair[1], count

        change = defaultdict(int)  # pair -> change of its count caused by this merge
        # pair_words may still list words that lost the pair to an earlier merge (we never remove
        # them): merging leaves such a word unchanged, so it adds nothing to `change`.
        for w in pair_words.pop(pair):
            old, freq = words[w], freqs[w]
            new = merge_pair(old, pair, new_id)
            if len(new) == len(old):
                continue
            for old_pair in zip(old, old[1:]):
                change[old_pair] -= freq
            for new_pair in zip(new, new[1:]):
                change[new_pair] += freq
                pair_words[new_pair].add(w)
            words[w] = new
        for changed_pair, delta in change.items():
            if delta:
                pair_counts[changed_pair] += delta
                if pair_counts[changed_pair]:
                    heapq.heappush(heap, (-pair_counts[changed_pair], changed_pair))
                else:
                    del pair_counts[changed_pair]


def learn_merges_naive(words, freqs, n_merges):
    """The textbook version of learn_merges, for checking it and timing it: recount all pairs
    after every merge. Same yields, same tie rule."""
    words = [list(word) for word in words]
    for new_id in range(256, 256 + n_merges):
        pair_counts = defaultdict(int)
        for word, freq in zip(words, freqs):
            for pair in zip(word, word[1:]):
                pair_counts[pair] += freq
        if not pair_counts:
            return
        pair = min(pair_counts, key=lambda p: (-pair_counts[p], p))
        yield pair[0], pair[1], pair_counts[pair]
        words = [merge_pair(word, pair, new_id) for word in words]


# ---------------------------------------------------------------- GPT-2's file formats


def bytes_to_unicode():
    """GPT-2's table byte -> printable character, used to write byte tokens as text in its files.
    Bytes that are printable Latin-1 characters ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves;
    the other 68 (controls, space, ...) get the characters 256, 257, ... in byte order, so the
    space byte 32 is written 'Ġ' (chr(288)) and newline 10 is 'Ċ' (chr(266))."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    for n, b in enumerate(b for b in range(256) if b not in table):
        table[b] = chr(256 + n)
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {char: b for b, char in BYTE_TO_CHAR.items()}


def bytes_to_text(token):
    return "".join(BYTE_TO_CHAR[b] for b in token)


def text_to_bytes(token_text):
    return bytes(CHAR_TO_BYTE[char] for char in token_text)


def read_tiktoken_ranks(path):
    """A .tiktoken file: one line per token, `base64(token bytes) rank`."""
    ranks = {}
    for line_number, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if line.strip():
            try:
                token_b64, rank = line.split()
                ranks[base64.b64decode(token_b64, validate=True)] = int(rank)
            except ValueError as err:
                raise ValueError(f"{path}, line {line_number}: expected 'base64-token rank', got {line[:60]!r} ({err})") from None
    return ranks


def read_vocab_and_merges(vocab, merges_path):
    """GPT-2's `encoder.json` (token text -> id) with `vocab.bpe` (merges, one 'left right' per line).
    Byte tokens and merge results become ranks (rank = the id of the joined token); any other
    vocabulary entry, such as '<|endoftext|>', is a special token.
    Returns (ranks, special tokens, merges)."""
    lines = Path(merges_path).read_text(encoding="utf-8").splitlines()
    merges = []
    for line_number, line in enumerate(lines, 1):
        if line.startswith("#version") or not line.strip():
            continue
        try:
            left, right = line.split(" ")
            merges.append((text_to_bytes(left), text_to_bytes(right)))
        except (ValueError, KeyError):
            raise ValueError(f"{merges_path}, line {line_number}: expected two tokens in GPT-2's byte alphabet, got {line!r}") from None
    mergeable = {BYTE_TO_CHAR[b] for b in range(256)} | {bytes_to_text(left + right) for left, right in merges}
    missing = mergeable - vocab.keys()
    if missing:
        raise ValueError(f"{merges_path}: {len(missing)} tokens made by the merges are missing from the vocabulary, e.g. {sorted(missing)[0]!r}")
    ranks = {text_to_bytes(token): vocab[token] for token in mergeable}
    specials = {token: rank for token, rank in vocab.items() if token not in mergeable}
    return ranks, specials, merges


def show(token):
    """Token bytes, readable: ' the', '\\n\\n', or '\\xe2' for a piece of a UTF-8 character."""
    return repr(token.decode("utf-8", errors="backslashreplace"))


# ---------------------------------------------------------------- command line


def load_any(name):
    """'gpt2' (download), a folder written by save(), or GPT-2's files (a file or a folder)."""
    if name == "gpt2":
        return BPETokenizer.from_gpt2()
    if (Path(name) / "tokenizer.json").is_file():
        return BPETokenizer.load(name)
    return BPETokenizer.from_gpt2(name)


def read_input(file):
    return sys.stdin.read() if file in (None, "-") else Path(file).read_text(encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinytensor.models.bpe", description="Byte-level BPE tokenizer.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="learn a vocabulary from a text file")
    train.add_argument("file")
    train.add_argument("--vocab-size", type=int, default=1024)
    train.add_argument("--out", required=True, help="folder to save the tokenizer in")
    train.add_argument("--quiet", action="store_true", help="do not print each merge")
    for name, help_text in (("encode", "text -> ids"), ("decode", "ids -> text"), ("visualize", "show token boundaries")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("file", nargs="?", help="input file (default: standard input)")
        command.add_argument("--tokenizer", default="gpt2", help="folder from `train`, GPT-2 file(s), or 'gpt2' (default)")
        command.add_argument("--text", help="use this text instead of a file")
    args = parser.parse_args(argv)

    if args.command == "train":
        text = read_input(args.file)
        tok = BPETokenizer.train(text, args.vocab_size, verbose=not args.quiet)
        tok.save(args.out)
        print(f"saved {tok} to {args.out}")
        return
    tok = load_any(args.tokenizer)
    data = args.text if args.text is not None else read_input(args.file)
    if args.command == "encode":
        print(" ".join(map(str, tok.encode(data, allowed_special="all"))))
    elif args.command == "decode":
        print(tok.decode([int(token) for token in data.split()]), end="")
    else:
        # Each token between bars; a token that is only part of a UTF-8 character shows as \xNN.
        ids = tok.encode(data, allowed_special="all")
        pieces = [tok.decode_single_token_bytes(i).decode("utf-8", errors="backslashreplace") for i in ids]
        print("|" + "|".join(pieces) + "|")
        print(f"{len(data)} characters, {len(data.encode('utf-8'))} bytes, {len(ids)} tokens")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as err:  # missing files, offline, bad ids: the message says how to fix it
        raise SystemExit(f"error: {err}") from None
