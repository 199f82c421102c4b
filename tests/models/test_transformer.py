"""The encoder-decoder translation model, its loss and decoders, and the synthetic language pair."""
import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn
from tinytensor.models.synthetic_translation import MAX_WORDS, NOUNS, VERBS, TranslationTask
from tinytensor.models.transformer import Seq2SeqTransformer, translation_loss

BOS, EOS = 1, 2


def small_model(**kwargs):
    settings = dict(d_model=16, nhead=2, num_layers=2, dropout=0.0)
    settings.update(kwargs)
    return Seq2SeqTransformer(11, 13, **settings)


def test_forward_shape_and_padding_independence(device):
    model = small_model().to(tt.float64).to(device)
    src = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    tgt_in = np.array([[BOS, 5, 6, 0], [BOS, 9, 9, 8]])
    logits = model(tt.tensor(src, device=device), tt.tensor(tgt_in, device=device)).detach().to("cpu").numpy()
    assert logits.shape == (2, 4, 13)
    longer = np.concatenate([src, np.zeros((2, 3), np.int64)], axis=1)    # more padding on the source
    longer_logits = model(tt.tensor(longer, device=device), tt.tensor(tgt_in, device=device))
    np.testing.assert_allclose(longer_logits.detach().to("cpu").numpy(), logits, atol=1e-12)


def test_decoder_is_causal():
    model = small_model().to(tt.float64)
    src = tt.tensor(np.array([[3, 4, 5, 6]]))
    tgt_in = np.array([[BOS, 5, 6, 7, 8]])
    changed = tgt_in.copy()
    changed[0, 3] = 11
    logits = model(src, tt.tensor(tgt_in)).detach().numpy()
    logits_changed = model(src, tt.tensor(changed)).detach().numpy()
    np.testing.assert_allclose(logits_changed[0, :3], logits[0, :3], atol=1e-12)
    assert not np.allclose(logits_changed[0, 3:], logits[0, 3:])


def test_greedy_decode_equals_beam_search_of_width_one(device):
    model = small_model().to(device)
    src = tt.tensor(np.array([[3, 4, 5, 0], [6, 7, 8, 9], [10, 3, 0, 0]]), device=device)
    greedy = model.greedy_decode(src, 9, BOS, EOS).to("cpu").numpy()
    beam = model.beam_search(src, 1, 9, bos=BOS, eos=EOS).to("cpu").numpy()
    np.testing.assert_array_equal(beam, greedy)
    wider = model.beam_search(src, 3, 9, length_penalty=0.0, bos=BOS, eos=EOS).numpy()
    assert wider.shape[0] == 3 and model.training                   # the model's mode is left as it was


def test_beam_search_finds_the_likelier_sentence_that_greedy_misses(monkeypatch):
    """A scripted next-word distribution: greedy takes A (0.6) and ends with P(A ...) <= 0.6 * 0.35,
    beam search keeps B (0.4) and finds B <eos> with 0.4 * 0.9 = 0.36."""
    A, B = 3, 4
    script = {(BOS,): {A: 0.6, B: 0.4}, (BOS, A): {EOS: 0.3, A: 0.35, B: 0.35}, (BOS, B): {EOS: 0.9, A: 0.1}}

    def scripted_decode(tgt_in, memory, src_pad_mask=None, tgt_pad_mask=None):
        rows = []
        for prefix in tgt_in.numpy().tolist():
            probabilities = np.full(13, 1e-9)
            for token, p in script.get(tuple(prefix), {EOS: 1.0}).items():
                probabilities[token] = p
            rows.append(np.log(probabilities))
        return tt.tensor(np.array(rows)[:, None, :].repeat(tgt_in.shape[1], axis=1))

    model = small_model()
    monkeypatch.setattr(model, "decode", scripted_decode)
    src = tt.tensor(np.array([[3, 4]]))
    assert model.greedy_decode(src, 5, BOS, EOS).numpy()[0, 0] == A
    assert model.beam_search(src, 2, 5, length_penalty=0.0, bos=BOS, eos=EOS).numpy()[0].tolist() == [B, EOS]
    assert model.beam_search(src, 1, 5, bos=BOS, eos=EOS).numpy()[0, 0] == A


def test_translation_loss_is_label_smoothed_cross_entropy_over_real_tokens(rng):
    logits = rng.standard_normal((2, 3, 5))
    target = np.array([[1, 4, 0], [2, 0, 0]])                     # 0 is padding
    loss = translation_loss(tt.tensor(logits), tt.tensor(target), pad_id=0, label_smoothing=0.2).item()
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = [(0, 0), (0, 1), (1, 0)]
    want = np.mean([-(0.8 * log_p[b, t, target[b, t]] + 0.2 * log_p[b, t].mean()) for b, t in real])
    assert loss == pytest.approx(want, rel=1e-5)
    changed = logits.copy()
    changed[1, 1:] = 50.0                                          # anything at padded positions
    assert translation_loss(tt.tensor(changed), tt.tensor(target), 0, 0.2).item() == pytest.approx(loss, rel=1e-6)


def test_shared_embeddings_are_one_table_for_both_sides_and_the_output():
    model = Seq2SeqTransformer(12, 12, d_model=8, nhead=2, num_layers=1, share_embeddings=True)
    assert model.src_embed is model.tgt_embed and model.generator.weight is model.src_embed.weight
    assert sum(p is model.src_embed.weight for p in model.parameters()) == 1
    assert np.abs(model.src_embed.weight.detach().numpy()[0]).max() == 0    # the padding row
    with pytest.raises(ValueError, match="share_embeddings needs one vocabulary"):
        Seq2SeqTransformer(12, 13, d_model=8, nhead=2, share_embeddings=True)


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_tiny_model_learns_a_handful_of_pairs_by_heart(norm_first):
    pairs = [([3, 4, 5], [6, 5, 4]), ([4, 5, 6, 7], [8, 7, 6, 5]), ([7, 3], [4, 9]), ([5, 5, 3], [3, 6, 6])]
    src = tt.tensor(np.array([s + [0] * (4 - len(s)) for s, _ in pairs]))
    targets = [t + [EOS] for _, t in pairs]
    tgt_out = np.array([t + [0] * (5 - len(t)) for t in targets])
    tgt_in = np.array([[BOS] + t[:-1] + [0] * (5 - len(t)) for t in targets])
    tt.manual_seed(0)
    model = small_model(d_model=32, nhead=4, num_layers=1, norm_first=norm_first)
    optimizer = nn.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):
        loss = translation_loss(model(src, tt.tensor(tgt_in)), tt.tensor(tgt_out), 0, label_smoothing=0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    out = model.greedy_decode(src, 6, BOS, EOS).numpy()
    for row, target in zip(out, targets):
        assert row[:len(target)].tolist() == target


def test_cross_attention_weights_are_distributions_over_real_source_words():
    model = small_model()
    src = tt.tensor(np.array([[3, 4, 5, 0], [6, 7, 8, 9]]))
    layers = model.cross_attention(src, tt.tensor(np.array([[BOS, 5, 6], [BOS, 7, 7]])))
    assert len(layers) == 2 and layers[0].shape == (2, 2, 3, 4)
    np.testing.assert_allclose(layers[1].sum(-1), 1, rtol=1e-5)
    assert (layers[0][0, :, :, 3] == 0).all()                        # the padded source position
    assert all(layer.cross_attention_weights is None for layer in model.decoder.layers)


def test_the_language_pair_follows_its_rules():
    task = TranslationTask(seed=1)
    test = task.held_out(50)
    seen = {tuple(task.sample()[0]) for _ in range(3000)}
    assert not seen & {tuple(source) for source, _ in test}          # held-out sentences are never drawn
    verbs = {source: target for source_forms, target_forms in VERBS.items()
             for source, target in zip(source_forms, target_forms)}
    plurals = {forms[1]: target for forms, target in NOUNS.items()}
    lengths = set()
    for _ in range(500):
        source, target = task.sample()
        lengths.add(len(source))
        verb = next(word for word in source if word in verbs)
        assert target[-1] == verbs[verb]                              # verb last, agreeing with the subject
        assert target.count("ta") == sum(word in plurals for word in source)   # plural -> noun + "ta"
        if "quickly" in source:
            assert target[-3:-1] == ["con", "prisa"]                  # one word to two
        if source[0] == "the":
            subject_is_plural = any(word in plurals for word in source[:source.index(verb)])
            assert target[0] == ("les" if subject_is_plural else "le")    # agrees with a noun further on
    assert min(lengths) >= 3 and max(lengths) == MAX_WORDS
    src, tgt_in, tgt_out = task.batch(test[:3])
    for (source, target), src_row, in_row, out_row in zip(test[:3], src, tgt_in, tgt_out):
        n = len(target)
        assert task.source_vocab.decode(src_row.tolist()) == source
        assert in_row[0] == task.bos_id and out_row[n] == task.eos_id and (in_row[1:n + 1] == out_row[:n]).all()
    assert task.target_vocab.decode(tgt_out[0].tolist()) == test[0][1]
