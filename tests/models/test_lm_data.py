"""Language-modelling data (models/lm_data.py): corpora, cached tokenizers, windows, random batches,
evaluation and streaming decode."""
import math

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn
from tinytensor.models import lm_data
from tinytensor.models.bpe import BPETokenizer
from tinytensor.models.char_tokenizer import CharTokenizer
from tinytensor.models.lm_data import (RandomBatches, StreamDecoder, TokenWindows, encode_corpus, estimate_loss,
                                       load_corpus, make_tokenizer, perplexity, split_ids, tokenizer_from_state,
                                       tokenizer_to_state)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTENSOR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_shipped_corpora_and_files(tmp_path):
    assert len(load_corpus("verdict")) == 20479
    assert load_corpus("shakespeare").startswith("First Citizen:")
    path = tmp_path / "mine.txt"
    path.write_text("hello there", encoding="utf-8")
    assert load_corpus(path) == "hello there"
    with pytest.raises(FileNotFoundError, match="no corpus named 'nowhere.txt'.*verdict, shakespeare"):
        load_corpus("nowhere.txt")
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_corpus(path)


def test_bpe_is_trained_once_then_read_from_the_cache(cache, monkeypatch):
    text = load_corpus("verdict")
    first = make_tokenizer("bpe", text, vocab_size=300)
    folders = list((cache / "bpe").iterdir())
    assert len(folders) == 1 and folders[0].name.endswith("-300")
    with monkeypatch.context() as patch:
        patch.setattr(BPETokenizer, "train", None)            # a second training would fail
        again = make_tokenizer("bpe", text, vocab_size=300)
    assert again.ranks == first.ranks and again.encode(text[:500]) == first.encode(text[:500])
    assert again.n_vocab == 300
    make_tokenizer("bpe", text[:5000], vocab_size=300)        # other text: its own entry
    assert len(list((cache / "bpe").iterdir())) == 2


def test_char_tokenizer_and_tokenizer_folders(tmp_path):
    text = "to be or not to be"
    char = make_tokenizer("char", text)
    assert isinstance(char, CharTokenizer) and char.decode(char.encode(text)) == text
    char.save(tmp_path / "char")
    assert make_tokenizer(str(tmp_path / "char")).chars == char.chars
    with pytest.raises(ValueError, match="unknown tokenizer 'wordpiece'"):
        make_tokenizer("wordpiece", text)


def test_gpt2_vocabulary_from_a_local_path(shared_data):
    tok = make_tokenizer(str(shared_data / "gpt2" / "gpt2.tiktoken"))
    assert tok.encode("Hello, world!") == [15496, 11, 995, 0]
    again = tokenizer_from_state(tokenizer_to_state(tok))
    assert again.ranks == tok.ranks and again.eot_token == 50256


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_tokenizer_state_round_trip_through_a_checkpoint(kind, cache, tmp_path):
    text = "The Verdict, by Edith Wharton — a café in Paris. 🎉"
    tok = make_tokenizer(kind, text, vocab_size=270)
    tt.save({"tokenizer": tokenizer_to_state(tok)}, tmp_path / "ckpt.npz")
    back = tokenizer_from_state(tt.load(tmp_path / "ckpt.npz")["tokenizer"])
    assert type(back) is type(tok) and back.encode(text) == tok.encode(text) and back.decode(tok.encode(text)) == text


def test_split_is_contiguous():
    ids = np.arange(100)
    train, val = split_ids(ids, 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_ids(ids, 1.0)


def test_windows_targets_are_inputs_shifted_by_one():
    ids = np.arange(20) * 10
    windows = TokenWindows(ids, block_size=4, stride=3)
    assert len(windows) == 6                     # starts 0, 3, ..., 15; the last needs ids[15:20]
    x, y = windows[1]
    assert x.tolist() == [30, 40, 50, 60] and y.tolist() == [40, 50, 60, 70]
    xb, yb = windows[np.array([0, 5])]
    assert xb.tolist() == [[0, 10, 20, 30], [150, 160, 170, 180]]
    assert yb[:, :-1].tolist() == xb[:, 1:].tolist() and yb[1, -1] == 190
    with pytest.raises(IndexError, match="out of range 0..5"):
        windows[6]
    every = TokenWindows(ids, block_size=4)
    assert len(every) == 16 and every[15][1][-1] == 190


def test_windows_refuse_text_shorter_than_a_window():
    with pytest.raises(ValueError, match="5 tokens are too few for one window of block_size 8"):
        TokenWindows(np.arange(5), block_size=8)


def test_evaluation_batches_cover_all_or_spread_evenly():
    windows = TokenWindows(np.arange(50), block_size=4, stride=4)      # 12 windows
    starts = [int(x.data[i, 0]) for x, _ in windows.batches(5) for i in range(len(x))]
    assert starts == list(range(0, 48, 4))
    capped = [int(x.data[i, 0]) for x, _ in windows.batches(2, max_batches=2) for i in range(len(x))]
    assert capped[0] == 0 and capped[-1] == 44 and len(capped) == 4


def test_random_batches_are_seeded_and_resume_exactly():
    windows = TokenWindows(np.arange(1000), block_size=8)
    a, b = RandomBatches(windows, 4, seed=1), RandomBatches(windows, 4, seed=1)
    first = [a.next()[0].numpy() for _ in range(3)]
    assert all(np.array_equal(f, b.next()[0].numpy()) for f in first)
    assert not np.array_equal(first[0], RandomBatches(windows, 4, seed=2).next()[0].numpy())
    state = a.state_dict()
    expected = [a.next()[0].numpy() for _ in range(2)]
    resumed = RandomBatches(windows, 4, seed=99)
    resumed.load_state_dict(state)
    assert all(np.array_equal(e, resumed.next()[0].numpy()) for e in expected)
    x, y = a.next()
    assert x.shape == (4, 8) and x.dtype == np.int64 and np.array_equal(y.numpy()[:, :-1], x.numpy()[:, 1:])


def test_random_batch_state_survives_a_checkpoint_file(tmp_path):
    windows = TokenWindows(np.arange(1000), block_size=8)
    a = RandomBatches(windows, 4, seed=3)
    tt.save({"batches": a.state_dict()}, tmp_path / "state.npz")
    expected = a.next()[0].numpy()
    b = RandomBatches(windows, 4, seed=0)
    b.load_state_dict(tt.load(tmp_path / "state.npz")["batches"])
    assert np.array_equal(b.next()[0].numpy(), expected)


class Bigram(nn.Module):
    """Next-token logits from the current token alone: the smallest model with GPT's (logits, loss)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.table(idx)
        loss = None if targets is None else nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def test_estimate_loss_of_a_uniform_model_is_log_vocab():
    model = Bigram(7)
    model.table.weight.data[...] = 0            # every token equally likely: loss log 7, perplexity 7
    windows = TokenWindows(np.arange(40) % 7, block_size=5, stride=5)
    model.train()
    loss = estimate_loss(model, windows, batch_size=3)
    assert loss == pytest.approx(math.log(7), rel=1e-6) and perplexity(loss) == pytest.approx(7)
    assert model.training


def test_estimate_loss_equals_the_mean_over_windows():
    model = Bigram(5)
    windows = TokenWindows(np.random.default_rng(0).integers(0, 5, 60), block_size=6, stride=6)
    by_window = [model(*[tt.as_tensor(a[None]) for a in windows[i]])[1].item()
                 for i in range(len(windows))]
    assert estimate_loss(model, windows, batch_size=4) == pytest.approx(np.mean(by_window), rel=1e-5)


def test_stream_decoder_holds_partial_utf8_until_the_character_is_whole():
    text = "Emoji 🎉 and café, done."
    tok = BPETokenizer.train("plain ascii text only", 260)     # too few merges to join the emoji's bytes
    ids = tok.encode(text)
    stream = StreamDecoder(tok)
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)
    emoji_bytes = len("🎉".encode())
    assert pieces.count("") >= emoji_bytes - 1                    # nothing shown for the emoji's first bytes


def test_stream_decoder_with_characters_and_broken_bytes():
    char = CharTokenizer.train("abc")
    stream = StreamDecoder(char)
    assert [stream.push(i) for i in char.encode("cab")] == ["c", "a", "b"]
    tok = BPETokenizer.train("x", 256 + 1)
    stream = StreamDecoder(tok)
    assert stream.push(0xE2) == "" and stream.flush() == "\ufffd"   # a lone lead byte: one replacement mark


def test_encode_corpus_keeps_special_token_text_as_text(cache):
    tok = make_tokenizer("bpe", "a <|endoftext|> b", vocab_size=260)
    ids = encode_corpus(tok, "a <|endoftext|> b")
    assert ids.dtype == np.int64 and tok.eot_token not in ids.tolist()
    assert tok.decode(ids.tolist()) == "a <|endoftext|> b"


def test_module_lists_what_it_offers():
    assert lm_data.TOKENIZERS == ("bpe", "char", "gpt2") and set(lm_data.CORPORA) == {"verdict", "shakespeare"}
