"""Byte-level BPE (models/bpe.py) and the character tokenizer: hand-derived merges, round trips,
files, special tokens, GPT-2 ids checked against tiktoken, and the offline download error."""

import base64
import os
import shutil
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytensor.models import bpe
from tinytensor.models.bpe import BPETokenizer, count_chunks, learn_merges, learn_merges_naive
from tinytensor.models.char_tokenizer import CharTokenizer
from tinytensor.download import DownloadError, download, sha256_of

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "models" / "data"
GPT2_FILES = Path(os.environ.get("TINYTENSOR_DATA", ROOT.parent / "shared" / "data")) / "gpt2"
needs_gpt2 = pytest.mark.skipif(
    not (GPT2_FILES / "gpt2.tiktoken").is_file(),
    reason=f"GPT-2 vocabulary files not found in {GPT2_FILES} (set TINYTENSOR_DATA to the folder holding gpt2/)",
)

# Text that stresses the pre-split: accents, CJK, emoji (with joiners and skin tones), contractions,
# digits, punctuation runs, tabs, carriage returns, control characters, runs of spaces and newlines.
MIXED_TEXT = (
    "Ünïcödé naïve café — résumé. Ça va? Ελληνικά, русский, עברית, العربية, हिन्दी.\n"
    "日本語のテキスト、中文文本，한국어 텍스트。\n"
    "Emoji: 🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖\n"
    "She's, they're, I'd, we'll, you've, I'm, it'S, DON'T.\n"
    "Numbers 3.14159, 1,000,000, 2024-01-01, ¹²³ ½ ٣.\n"
    "Punctuation!!! ??? ... --- ;;; (((nested))) [x] {y} <z> @#$%^&*\n"
    "tabs\tand\t\ttabs, CR\r\nLF, \x00\x01\x07 control, \u200b zero width, \u00a0nbsp\n"
    "   leading spaces,   trailing spaces   \n\n\n\n    indented\n \n  \n\t\n"
)

TEXTS = [
    "",
    "hello world",
    "  double  spaces  ",
    "\n\n\n",
    " \n \n ",
    "trailing newline\n",
    "tab\t\t\ttab",
    "\x00\x1f\x7f control",
    "caf\u00e9 cafe\u0301",
    "日本語 中文 한국어",
    "🎉👍🏽👨‍👩‍👧‍👦",
    "'s 't 're 've 'm 'll 'd ''s",
    MIXED_TEXT,
]


# Arbitrary Unicode, with extra weight on what the pre-split treats specially: whitespace runs,
# apostrophes of contractions, digits, letters next to punctuation. (Cs, lone surrogates, is not text.)
ANY_TEXT = st.text(st.one_of(st.sampled_from(" \n\t\r\x0b'sdmtlvreA1.,!é日🎉"), st.characters(exclude_categories=("Cs",))), max_size=60)


@pytest.fixture(scope="module")
def verdict():
    return (CORPORA / "the-verdict.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def trained(verdict):
    return BPETokenizer.train(verdict, vocab_size=512)


@pytest.fixture(scope="module")
def gpt2():
    if not (GPT2_FILES / "gpt2.tiktoken").is_file():
        pytest.skip(f"GPT-2 vocabulary files not found in {GPT2_FILES}")
    return BPETokenizer.from_gpt2(GPT2_FILES / "gpt2.tiktoken")


@pytest.fixture(scope="module")
def tiktoken_gpt2(gpt2):
    """tiktoken's GPT-2 encoding built from the local rank file (its own loader would go online)."""
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {}
    for line in (GPT2_FILES / "gpt2.tiktoken").read_bytes().splitlines():
        token_b64, rank = line.split()
        ranks[base64.b64decode(token_b64)] = int(rank)
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
        explicit_n_vocab=50257,
    )


# ---------------------------------------------------------------- training

# Hand derivation for "low lower lowest low". Bytes: ' '=32 e=101 l=108 o=111 r=114 s=115 t=116 w=119.
# Pre-split chunks, each once:  "low", " lower", " lowest", " low".
#   pair counts: l-o 4, o-w 4, ' '-l 3, w-e 2, e-r 1, e-s 1, s-t 1
#   1. l-o and o-w tie at 4; the smaller ids (108, 111) win          -> 256 'lo'        (count 4)
#      now lo-w 4, ' '-lo 3, w-e 2, e-r 1, e-s 1, s-t 1
#   2. (256, 119)                                                    -> 257 'low'       (count 4)
#      now ' '-low 3, low-e 2, e-r 1, e-s 1, s-t 1
#   3. (32, 257)                                                     -> 258 ' low'      (count 3)
#   4. (258, 101): " lower" and " lowest"                            -> 259 ' lowe'     (count 2)
#      now ' lowe'-r 1, ' lowe'-s 1, s-t 1: a three-way tie; (115, 116) is the smallest
#   5. (115, 116)                                                    -> 260 'st'        (count 1)
#   6. ' lowe'-r (259, 114) and ' lowe'-st (259, 260) tie; 114 < 260  -> 261 ' lower'    (count 1)
#   7. (259, 260)                                                    -> 262 ' lowest'   (count 1)
#   Then every chunk is one token and training stops, whatever vocab_size asked for.
HAND_CORPUS = "low lower lowest low"
HAND_MERGES = [
    (108, 111, 4),
    (256, 119, 4),
    (32, 257, 3),
    (258, 101, 2),
    (115, 116, 1),
    (259, 114, 1),
    (259, 260, 1),
]


def test_training_gives_the_hand_derived_merges():
    words, freqs = count_chunks(HAND_CORPUS)
    assert list(learn_merges(words, freqs, 100)) == HAND_MERGES
    assert list(learn_merges_naive(words, freqs, 100)) == HAND_MERGES

    tok = BPETokenizer.train(HAND_CORPUS, vocab_size=300)
    assert [left + right for left, right in tok.merges] == [b"lo", b"low", b" low", b" lowe", b"st", b" lower", b" lowest"]
    assert tok.n_vocab == 256 + 7 + 1 and tok.eot_token == 263  # stopped early; the special token follows
    # 'lowest' without its space: lo, low, then only s-t is a token ('lowe' is not; ' lowe' is).
    assert tok.encode("lowest") == [257, 101, 260]
    assert tok.encode(" lowest low") == [262, 258]


def test_incremental_training_matches_recounting_every_merge(verdict):
    words, freqs = count_chunks(verdict)
    assert list(learn_merges(words, freqs, 150)) == list(learn_merges_naive(words, freqs, 150))


def test_training_ids_and_limits(trained):
    assert trained.n_vocab == 512 and trained.eot_token == 511
    assert len(trained.merges) == 512 - 256 - 1
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train("abc", vocab_size=200)


def test_special_tokens_in_training_text_are_boundaries_not_learned():
    tok = BPETokenizer.train("ab<|endoftext|>ab<|endoftext|>ab", vocab_size=300)
    assert all(b"<|" not in left + right for left, right in tok.merges)
    assert tok.encode("ab<|endoftext|>", allowed_special="all") == [256, tok.eot_token]


def test_verbose_training_shows_merges(capsys):
    BPETokenizer.train(HAND_CORPUS, vocab_size=260, verbose=True)
    shown = capsys.readouterr()
    assert "merge     1: 'l' + 'o' -> 'lo'  (count 4)" in shown.out + shown.err
    assert "' ' + 'low' -> ' low'" in shown.out + shown.err


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_examples(trained, text):
    assert trained.decode(trained.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_round_trip_any_text(trained, text):
    ids = trained.encode(text, disallowed_special=())   # hypothesis can write "<|endoftext|>" itself
    assert all(0 <= i < trained.n_vocab for i in ids)
    assert trained.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 511)))
def test_any_ids_decode(trained, ids):
    assert isinstance(trained.decode(ids), str)


def test_decode_rejects_unknown_ids(trained):
    with pytest.raises(ValueError, match="token id 512 is not in the vocabulary"):
        trained.decode([1, 512])
    with pytest.raises(ValueError, match="token id -1"):
        trained.decode_single_token_bytes(-1)


def test_decode_replaces_broken_utf8(trained):
    ids = trained.encode("é")  # two bytes, two tokens at this vocabulary size
    assert trained.decode(ids[:1]) == "\ufffd"
    assert b"".join(trained.decode_single_token_bytes(i) for i in ids) == "é".encode()


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_fast_pattern_splits_like_gpt2s_original(text):
    original = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    assert regex.findall(bpe.GPT2_PATTERN, text) == regex.findall(original, text)


# ---------------------------------------------------------------- special tokens


def test_special_tokens_are_refused_unless_allowed(trained):
    text = "end<|endoftext|>start"
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>'.*allowed_special=\{'<\|endoftext\|>'\}.*encode_ordinary"):
        trained.encode(text)
    ids = trained.encode(text, allowed_special="all")
    assert ids == trained.encode(text, allowed_special={"<|endoftext|>"})
    assert ids == trained.encode("end") + [trained.eot_token] + trained.encode("start")
    assert trained.eot_token not in trained.encode_ordinary(text)
    assert trained.decode(ids) == trained.decode(trained.encode_ordinary(text)) == text
    with pytest.raises(ValueError, match="does not have"):
        trained.encode(text, allowed_special={"<|im_start|>"})
    assert trained.encode_batch(["a", text], allowed_special="all") == [trained.encode("a"), ids]


def test_disallowed_special_as_tiktoken(trained):
    # tiktoken's encode(text, disallowed_special=()) encodes a special token's text as ordinary text.
    text = "end<|endoftext|>start"
    assert trained.encode(text, disallowed_special=()) == trained.encode_ordinary(text)
    assert trained.encode(text, allowed_special="all", disallowed_special=()) == trained.encode(text, allowed_special="all")
    with pytest.raises(ValueError, match="not allowed"):
        trained.encode(text, disallowed_special={"<|endoftext|>"})
    assert trained.encode_batch([text], disallowed_special=()) == [trained.encode_ordinary(text)]


def test_eot_token_missing_is_explained():
    tok = BPETokenizer.train("abc", vocab_size=256, special_tokens=())
    with pytest.raises(ValueError, match="no '<\\|endoftext\\|>' token"):
        tok.eot_token


# ---------------------------------------------------------------- files


def assert_same_tokenizer(a, b):
    assert a.ranks == b.ranks
    assert a.special_tokens == b.special_tokens
    assert a.pattern == b.pattern
    assert a.encode(MIXED_TEXT) == b.encode(MIXED_TEXT)


def test_save_load_identity(trained, tmp_path):
    trained.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merges.txt", "tokenizer.json", "vocab.json"]
    assert (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()[1] == "Ġ t"  # ' t': GPT-2's alphabet
    loaded = BPETokenizer.load(tmp_path)
    assert_same_tokenizer(trained, loaded)
    assert loaded.merges == trained.merges
    # The saved files are in GPT-2's vocab.json + merges.txt form, so that loader reads them too.
    assert BPETokenizer.from_gpt2(tmp_path / "vocab.json").ranks == trained.ranks


def test_load_explains_a_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        BPETokenizer.load(tmp_path)
    CharTokenizer.train("abc").save(tmp_path)
    with pytest.raises(ValueError, match="'character' tokenizer"):
        BPETokenizer.load(tmp_path)


# ---------------------------------------------------------------- GPT-2


def test_byte_to_unicode_table():
    table = bpe.bytes_to_unicode()
    assert len(set(table.values())) == 256
    # 68 bytes are moved: 0..32 -> 256..288, 127..160 -> 289..322, 173 -> 323.
    assert table[ord("A")] == "A" and table[255] == "ÿ"
    assert [table[b] for b in (0, 10, 32, 127, 160, 173)] == [chr(256), "Ċ", "Ġ", chr(289), chr(322), chr(323)]


@needs_gpt2
def test_gpt2_files_in_every_form_agree(gpt2, tmp_path):
    from_merges = BPETokenizer.from_gpt2(GPT2_FILES / "encoder.json")
    assert from_merges.merges is not None and len(from_merges.merges) == 50_000
    assert_same_tokenizer(gpt2, from_merges)
    for name, renamed in (("encoder.json", "vocab.json"), ("vocab.bpe", "merges.txt")):
        shutil.copy(GPT2_FILES / name, tmp_path / renamed)
    assert_same_tokenizer(gpt2, BPETokenizer.from_gpt2(tmp_path))
    assert gpt2.n_vocab == 50257 and gpt2.eot_token == 50256


@needs_gpt2
def test_gpt2_save_load_derives_the_published_merges(gpt2, tmp_path):
    gpt2.save(tmp_path)  # a rank file has no merge list: save() derives it
    assert (tmp_path / "merges.txt").read_bytes() == (GPT2_FILES / "vocab.bpe").read_bytes()
    assert_same_tokenizer(gpt2, BPETokenizer.load(tmp_path))


@needs_gpt2
def test_gpt2_ids_match_tiktoken_on_100kb(gpt2, tiktoken_gpt2, verdict):
    shakespeare = (CORPORA / "tinyshakespeare.txt").read_text(encoding="utf-8")[:100_000]
    text = shakespeare + verdict + MIXED_TEXT * 20
    assert len(text.encode("utf-8")) > 100_000
    assert gpt2.encode(text) == tiktoken_gpt2.encode(text)
    assert gpt2.decode(gpt2.encode(text)) == text
    assert gpt2.encode("Hello, world!") == [15496, 11, 995, 0]
    special = "hi<|endoftext|>there"
    assert gpt2.encode(special, allowed_special="all") == tiktoken_gpt2.encode(special, allowed_special="all") == [5303, 50256, 8117]
    assert gpt2.encode_ordinary(special) == tiktoken_gpt2.encode_ordinary(special)


@needs_gpt2
@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_gpt2_ids_match_tiktoken_on_any_text(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(gpt2.encode_ordinary(text)) == text


def test_lone_surrogates_encode_as_the_replacement_character(trained):
    # Half a UTF-16 pair has no UTF-8 bytes; tiktoken encodes it as U+FFFD instead of raising.
    assert trained.encode("a\ud800b") == trained.encode("a\ufffdb")
    assert trained.encode("\ud83c\udf89") == trained.encode("🎉")     # a whole pair is the character


@needs_gpt2
def test_gpt2_lone_surrogate_ids_are_tiktokens(gpt2):
    assert gpt2.encode("a\ud800b") == [64, 4210, 65]      # tiktoken 0.14's ids; 4210 is U+FFFD's bytes


def test_from_gpt2_offline_explains_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTENSOR_CACHE", str(tmp_path))
    monkeypatch.setattr(bpe, "GPT2_RANKS_URL", "http://127.0.0.1:9/r50k_base.tiktoken")  # nothing listens there
    with pytest.raises(FileNotFoundError) as caught:
        BPETokenizer.from_gpt2()
    message = str(caught.value)
    assert isinstance(caught.value, DownloadError)
    assert "r50k_base.tiktoken" in message and "127.0.0.1:9" in message
    assert str(tmp_path / "gpt2" / "r50k_base.tiktoken") in message and "from_gpt2('/path/to" in message
    assert list((tmp_path / "gpt2").iterdir()) == []  # no half-written file left behind


def test_from_gpt2_explains_a_folder_without_vocabulary(tmp_path):
    with pytest.raises(FileNotFoundError, match="encoder.json \\+ vocab.bpe"):
        BPETokenizer.from_gpt2(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BPETokenizer.from_gpt2(tmp_path / "gpt2.tiktoken")


def test_download_uses_the_cache_and_checks_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTENSOR_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "source.txt"
    source.write_text("tiny data")
    digest = sha256_of(source)
    cached = download(source.as_uri(), "data.txt", digest, cache_subdir="sub")
    assert cached == tmp_path / "cache" / "sub" / "data.txt" and cached.read_text() == "tiny data"
    source.unlink()  # a second call must not need the source any more
    assert download(source.as_uri(), "data.txt", digest, cache_subdir="sub") == cached
    with pytest.raises(DownloadError, match="sha256 is .* expected 0000"):
        download(source.as_uri(), "other.txt", "0" * 64, local_path=cached)


# ---------------------------------------------------------------- character tokenizer and CLI


def test_char_tokenizer(tmp_path, verdict):
    tok = CharTokenizer.train(verdict)
    assert tok.decode(tok.encode(verdict)) == verdict
    assert tok.encode_batch(["a", "ab"]) == [tok.encode("a"), tok.encode("ab")]
    assert tok.n_vocab == len(set(verdict))
    tok.save(tmp_path)
    assert CharTokenizer.load(tmp_path).chars == tok.chars
    with pytest.raises(ValueError, match="'🎉'"):
        tok.encode("🎉")
    with pytest.raises(ValueError, match=f"token id {tok.n_vocab} is not"):
        tok.decode([tok.n_vocab])


def test_cli_train_encode_decode_visualize(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(HAND_CORPUS * 3, encoding="utf-8")
    bpe.main(["train", str(corpus), "--vocab-size", "264", "--out", str(tmp_path / "tok"), "--quiet"])
    assert "n_vocab=264" in capsys.readouterr().out
    bpe.main(["encode", "--tokenizer", str(tmp_path / "tok"), "--text", " lowest low"])
    assert capsys.readouterr().out.split() == ["262", "258"]
    bpe.main(["decode", "--tokenizer", str(tmp_path / "tok"), "--text", "262 258"])
    assert capsys.readouterr().out == " lowest low"
    bpe.main(["visualize", "--tokenizer", str(tmp_path / "tok"), "--text", "lowest low"])
    assert capsys.readouterr().out.splitlines()[0] == "|low|e|st| low|"
