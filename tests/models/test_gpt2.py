"""GPT-2 (models/gpt2.py): shapes, causality, the KV cache against full recomputation, the sampling
rules, gradients of attention, and a tiny model learning a short text by heart."""
import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import tinytensor as tt
from tinytensor import nn
from tinytensor.download import DownloadError
from tinytensor.models.gpt2 import (GPT, PRESETS, BlockArrays, CausalSelfAttention, GPTConfig, KVCache,
                                    _choose)


def tiny_config(**changes):
    return GPTConfig(**{**dict(vocab_size=23, block_size=8, n_layer=2, n_head=2, n_embd=16), **changes})


def tiny_gpt(dtype=tt.float64, device="cpu", **changes):
    """The same weights on every device (drawn on the CPU, then moved)."""
    tt.manual_seed(0)
    model = GPT(tiny_config(**changes)).to(dtype)
    # Larger weights than GPT-2's 0.02 so that every token's logits differ clearly (no near ties).
    with tt.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p[...] = tt.randn(*p.shape, dtype=dtype) * 0.3
    return model.to(device)


def ids(shape, vocab=23, seed=1):
    return tt.tensor(np.random.default_rng(seed).integers(0, vocab, shape))


# ----------------------------------------------------------------------------------- config and model

def test_config_presets_and_errors():
    assert GPTConfig() == GPTConfig.preset("gpt2")
    assert GPTConfig.preset("gpt2-xl").n_embd == 1600
    small = GPTConfig.preset("gpt-micro", vocab_size=65)
    assert (small.vocab_size, small.n_layer, small.n_embd) == (65, 4, 128)
    assert set(PRESETS) >= {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"}
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="unknown preset 'gpt3'"):
        GPTConfig.preset("gpt3")
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(dropout=1.0)


def test_gpt2_small_has_124m_parameters_and_tied_head():
    # Counted from the shapes without building the model: 124,439,808 is GPT-2 small's published size.
    c = GPTConfig()
    per_block = 4 * c.n_embd + (3 + 1 + 4 + 4) * c.n_embd ** 2 + (3 + 1 + 4 + 1) * c.n_embd
    assert c.vocab_size * c.n_embd + c.block_size * c.n_embd + c.n_layer * per_block + 2 * c.n_embd == 124_439_808
    model = GPT(tiny_config())
    assert model.lm_head.weight is model.transformer.wte.weight
    c = model.config
    per_block = 4 * c.n_embd + 12 * c.n_embd ** 2 + 9 * c.n_embd
    assert model.num_params() == (c.vocab_size + c.block_size) * c.n_embd + c.n_layer * per_block + 2 * c.n_embd
    assert model.num_params(non_embedding=True) == model.num_params() - c.block_size * c.n_embd
    names = dict(model.named_parameters())
    assert "transformer.h.1.attn.c_attn.weight" in names and "lm_head.weight" not in names   # shared once
    assert "lm_head.weight" in model.state_dict()                                          # as PyTorch


def test_init_follows_gpt2():
    tt.manual_seed(0)
    model = GPT(GPTConfig.preset("gpt-nano", vocab_size=256))
    std = {name: float(p.detach().numpy().std()) for name, p in model.named_parameters()}
    assert std["transformer.h.0.attn.c_attn.weight"] == pytest.approx(0.02, rel=0.05)
    assert std["transformer.h.0.mlp.c_proj.weight"] == pytest.approx(0.02 / 2, rel=0.05)   # 1/sqrt(2*2 layers)
    assert std["transformer.h.0.attn.c_proj.weight"] == pytest.approx(0.02 / 2, rel=0.05)
    assert std["transformer.wte.weight"] == pytest.approx(0.02, rel=0.05)
    assert np.all(model.transformer.h[0].attn.c_attn.bias.detach().numpy() == 0)
    assert np.all(model.transformer.ln_f.weight.detach().numpy() == 1)


def test_forward_shapes_loss_and_bad_input():
    model = GPT(tiny_config())
    x = ids((3, 8))
    logits, loss = model(x)
    assert logits.shape == (3, 8, 23) and loss is None
    targets = ids((3, 8), seed=2)
    logits, loss = model(x, targets)
    # At GPT-2's small init the logits are nearly equal: the loss is close to log(vocab).
    assert loss.item() == pytest.approx(np.log(23), abs=0.1)
    expected = tt.cross_entropy(logits.reshape(24, 23), targets.reshape(24))
    assert loss.item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="longer than block_size 8"):
        model(ids((1, 9)))
    with pytest.raises(ValueError, match="2-D integer tensor"):
        model(tt.randn(2, 4))
    with pytest.raises(ValueError, match="targets of shape"):
        model(x, ids((3, 7)))


def test_no_bias_config_has_no_biases():
    model = tiny_gpt(bias=False)
    assert not [name for name, _ in model.named_parameters() if name.endswith(".bias")]
    assert model(ids((1, 4)))[0].shape == (1, 4, 23)
    np.testing.assert_array_equal(model.generate(ids((2, 3)), 9, temperature=0).numpy(),
                                  model.generate(ids((2, 3)), 9, temperature=0, use_cache=False).numpy())


def test_causality_logits_do_not_see_later_tokens():
    model = tiny_gpt()
    x = ids((2, 8)).numpy()
    changed = x.copy()
    changed[:, 5:] = (changed[:, 5:] + 7) % 23
    a = model(tt.tensor(x))[0].detach().numpy()
    b = model(tt.tensor(changed))[0].detach().numpy()
    np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=0, atol=1e-12)
    assert np.abs(a[:, 5:] - b[:, 5:]).max() > 1e-3          # the changed positions do change


@pytest.mark.parametrize("fused", [False, True])
def test_attention_gradcheck_float64(fused):
    tt.manual_seed(0)
    attn = CausalSelfAttention(tiny_config(n_embd=8, n_head=2), fused=fused).to(tt.float64)
    x = tt.randn(2, 3, 8, dtype=tt.float64, requires_grad=True)
    assert tt.gradcheck(attn, (x,))                                   # split, heads, causal softmax, merge
    q, k, v = (tt.randn(2, 2, 3, 4, dtype=tt.float64, requires_grad=True) for _ in range(3))
    assert tt.gradcheck(lambda q, k, v: tt.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v))


def test_fused_model_equals_plain_model():
    fused = tiny_gpt()
    plain = GPT(tiny_config(), fused=False).to(tt.float64)
    plain.load_state_dict(fused.state_dict())
    x, y = ids((2, 8)), ids((2, 8), seed=2)
    results = []
    for model in (fused, plain):
        logits, loss = model(x, y)
        loss.backward()
        results.append([logits.detach().numpy()] + [p.grad.numpy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_fast_disabled_runs_the_plain_ops():
    model = tiny_gpt()
    x, weight = ids((1, 4)), model.transformer.h[0].attn.c_attn.weight
    with pytest.raises(RuntimeError, match="not differentiable"):       # the fused kernels: first order only
        tt.grad(model(x)[0].sum(), weight, create_graph=True)
    with tt.ops.fast.disabled():
        (grad,) = tt.grad(model(x)[0].sum(), weight, create_graph=True)
    assert grad.requires_grad                                           # a graph for second derivatives


def test_configure_optimizer_decays_only_matrices():
    model = GPT(tiny_config())
    opt = model.configure_optimizer(weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95))
    assert isinstance(opt, nn.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["betas"] == (0.9, 0.95) and decay["lr"] == 1e-3


def test_tiny_gpt_overfits_a_short_text():
    text = "to be or not to be, that is the question"
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text])
    tt.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(chars), block_size=len(text) - 1, n_layer=1, n_head=2, n_embd=32))
    x, y = tt.tensor(data[None, :-1]), tt.tensor(data[None, 1:])
    opt = model.configure_optimizer(weight_decay=0.0, lr=1e-2)
    for _ in range(120):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    # It now writes the text back from its first character.
    out = model.generate(x[:, :1], len(text) - 1, temperature=0)
    assert "".join(chars[i] for i in out.numpy()[0]) == text


# ----------------------------------------------------------------------------------- the KV cache

def test_cached_forward_equals_full_forward():
    model = tiny_gpt()
    x = ids((2, 8))
    full = model._hidden(x).detach().numpy()
    caches = [KVCache(2, model.config, "cpu", tt.float64) for _ in model.transformer.h]
    pieces = [model._hidden(x[:, :3], caches), model._hidden(x[:, 3:4], caches), model._hidden(x[:, 4:], caches)]
    np.testing.assert_allclose(np.concatenate([p.detach().numpy() for p in pieces], axis=1), full, atol=1e-12)
    with pytest.raises(ValueError, match="longer than block_size"):
        model._hidden(x[:, :1], caches)


def test_fused_decoding_step_equals_plain_blocks():
    fused = tiny_gpt()
    plain = GPT(tiny_config(), fused=False).to(tt.float64).eval()
    plain.load_state_dict(fused.state_dict())
    fused.eval()
    x = ids((2, 8)).numpy()
    results = []
    with tt.no_grad():
        for arrays in ([BlockArrays(block) for block in fused.transformer.h], None):
            caches = [KVCache(2, fused.config, "cpu", tt.float64) for _ in fused.transformer.h]
            model = fused if arrays else plain
            results.append([model._last_logits(x[:, :3], caches, arrays), model._last_logits(x[:, 3:4], caches, arrays),
                            model._last_logits(x[:, 4:], caches, arrays), caches[1].keys.numpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    prompt = ids((2, 3))
    np.testing.assert_array_equal(fused.generate(prompt, 12, seed=1).numpy(),
                                  plain.generate(prompt, 12, seed=1).numpy())
    with pytest.raises(ValueError, match="outside the vocabulary"):
        fused.generate(tt.tensor([[1, 23]]), 2)


@pytest.mark.parametrize("sampling", [dict(temperature=0), dict(temperature=1.0, seed=3),
                                      dict(temperature=0.8, top_k=5, seed=4), dict(top_p=0.7, seed=5)])
def test_cache_equals_no_cache_also_past_block_size(sampling):
    model = tiny_gpt()
    prompt = ids((3, 5))
    cached = model.generate(prompt, 12, use_cache=True, **sampling).numpy()   # 5 + 12 > block_size 8
    uncached = model.generate(prompt, 12, use_cache=False, **sampling).numpy()
    assert cached.shape == (3, 17)
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached[:, :5], prompt.numpy())


@pytest.mark.parametrize("prompt_length", [6, 11])      # block_size 8: crossed while generating, or at once
def test_greedy_past_block_size_is_forward_on_the_last_block(prompt_length):
    model = tiny_gpt()
    out = model.generate(ids((2, prompt_length)), 10, temperature=0).numpy()
    np.testing.assert_array_equal(out, model.generate(ids((2, prompt_length)), 10, temperature=0,
                                                      use_cache=False).numpy())
    for t in range(prompt_length, prompt_length + 10):
        context = out[:, max(0, t - 8):t]                  # at most the last block_size tokens, positions from 0
        logits = model(tt.tensor(context))[0].detach().numpy()[:, -1]
        np.testing.assert_array_equal(out[:, t], logits.argmax(axis=1))


def test_seed_repeats_and_eos_stops_each_row():
    model = tiny_gpt()
    prompt = ids((2, 3))
    a = model.generate(prompt, 10, seed=7).numpy()
    assert np.array_equal(a, model.generate(prompt, 10, seed=7).numpy())
    assert not np.array_equal(a, model.generate(prompt, 10, seed=8).numpy())
    tt.manual_seed(11)
    b = model.generate(prompt, 10).numpy()
    tt.manual_seed(11)
    assert np.array_equal(b, model.generate(prompt, 10).numpy())
    # eos: the first row's first new token becomes the eos; that row is then filled with it.
    greedy = model.generate(prompt, 10, temperature=0).numpy()
    eos = int(greedy[0, 3])
    stopped = model.generate(prompt, 10, temperature=0, eos_token=eos).numpy()
    assert np.all(stopped[0, 3:] == eos)
    row = greedy[1, 3:]
    end = 3 + (int(np.argmax(row == eos)) + 1 if (row == eos).any() else 10)
    assert stopped.shape[1] == end                            # stops when the last row is finished
    np.testing.assert_array_equal(stopped[1, :end], greedy[1, :end])


def test_generation_stats_and_argument_errors():
    model = tiny_gpt()
    model.train()
    out = model.generate(ids((1, 4)), 5, temperature=0)
    assert model.training                                     # mode restored
    stats = model.last_generation_stats
    assert out.shape == (1, 9) and out.dtype == tt.int64
    assert (stats.new_tokens, stats.prompt_tokens, stats.batch_size) == (5, 4, 1)
    assert stats.ttft_s > 0 and stats.tpot_s > 0 and stats.tokens_per_s == pytest.approx(5 / stats.total_s)
    assert "TTFT" in str(stats) and "tokens/s" in str(stats)
    for bad, message in [(dict(temperature=-1), "temperature"), (dict(top_k=0), "top_k"),
                         (dict(top_p=0.0), "top_p"), (dict(eos_token=23), "eos_token")]:
        with pytest.raises(ValueError, match=message):
            model.generate(ids((1, 4)), 3, **bad)


def test_choose_top_k_and_top_p_keep_the_right_ids():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    draws = lambda **kw: {int(_choose(logits, 1.0, rng=rng, **kw)[0]) for _ in range(300)}
    assert draws(top_k=None, top_p=None) == {0, 1, 2, 3}
    assert draws(top_k=2, top_p=None) == {0, 1}
    assert draws(top_k=None, top_p=0.75) == {0, 1}            # 0.5 + 0.3 passes 0.75
    assert draws(top_k=None, top_p=0.81) == {0, 1, 2}
    assert draws(top_k=1, top_p=None) == {0}
    assert int(_choose(logits, 0, None, None, rng)[0]) == 0


# ----------------------------------------------------------------------------------- pretrained weights

HF_CONFIG = dict(model_type="gpt2", vocab_size=23, n_positions=8, n_layer=2, n_head=2, n_embd=16,
                 activation_function="gelu_new", layer_norm_epsilon=1e-05)


def write_hf_folder(folder, tensors, config=HF_CONFIG):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(folder / "model.safetensors"))
    return folder


def hf_tensors(model, prefix="transformer."):
    """The model's weights as a Hugging Face GPT-2 checkpoint stores them: Conv1D weights (in, out),
    no lm_head (tied), the causal-mask buffers it also saves."""
    out = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        array = value.numpy().astype(np.float32)
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            array = array.T
        out[prefix + name[len("transformer."):]] = array
    for i in range(model.config.n_layer):
        out[f"{prefix}h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 8, 8), dtype=np.float32))
    return out


@pytest.mark.parametrize("prefix", ["transformer.", ""])
def test_from_pretrained_reads_a_hugging_face_folder(tmp_path, prefix):
    source = tiny_gpt(dtype=tt.float32)
    loaded = GPT.from_pretrained(write_hf_folder(tmp_path / "hf", hf_tensors(source, prefix)))
    assert loaded.config == tiny_config()
    x = ids((2, 8))
    np.testing.assert_array_equal(loaded(x)[0].detach().numpy(), source(x)[0].detach().numpy())
    assert loaded.lm_head.weight is loaded.transformer.wte.weight


def test_from_pretrained_refuses_checkpoints_that_do_not_fit(tmp_path):
    good = hf_tensors(tiny_gpt(dtype=tt.float32))
    wrong_shape = dict(good, **{"transformer.h.0.attn.c_attn.weight": np.zeros((16, 40), np.float32)})
    with pytest.raises(ValueError, match=r"transformer.h.0.attn.c_attn.weight: the checkpoint has shape "
                                         r"\(16, 40\), the model needs \(16, 48\)"):
        GPT.from_pretrained(write_hf_folder(tmp_path / "shape", wrong_shape))
    missing = {k: v for k, v in good.items() if k != "transformer.h.1.mlp.c_fc.bias"}
    with pytest.raises(ValueError, match=r"missing tensor transformer.h.1.mlp.c_fc.bias of shape \(64,\)"):
        GPT.from_pretrained(write_hf_folder(tmp_path / "missing", missing))
    extra = dict(good, **{"transformer.h.2.ln_1.weight": np.ones(16, np.float32)})
    with pytest.raises(ValueError, match=r"unexpected tensor transformer.h.2.ln_1.weight of shape \(16,\)"):
        GPT.from_pretrained(write_hf_folder(tmp_path / "extra", extra))
    untied = dict(good, **{"lm_head.weight": np.zeros((23, 16), np.float32)})
    with pytest.raises(ValueError, match="ties them"):
        GPT.from_pretrained(write_hf_folder(tmp_path / "untied", untied))
    relu = dict(HF_CONFIG, activation_function="relu")
    with pytest.raises(ValueError, match="activation_function='relu'"):
        GPT.from_pretrained(write_hf_folder(tmp_path / "relu", good, relu))
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text("{}")
        GPT.from_pretrained(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="neither a folder nor a known name"):
        GPT.from_pretrained("gpt5")
    with pytest.raises(FileNotFoundError, match="huggingface.co/openai-community/gpt2-xl into a folder"):
        GPT.from_pretrained("gpt2-xl")


def test_from_pretrained_explains_pickled_and_bfloat16_checkpoints(tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps(HF_CONFIG))
    (pickled / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match=r"has no model.safetensors .*it has pytorch_model.bin, a PyTorch "
                                                r"pickle, which is not read here.*save_pretrained\(folder\)"):
        GPT.from_pretrained(pickled)
    # A safetensors file of bfloat16 (which NumPy cannot hold), written by hand: header length, header, data.
    header = json.dumps({"transformer.wte.weight": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})
    folder = tmp_path / "bf16"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_CONFIG))
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header.encode() + bytes(4))
    with pytest.raises(ValueError, match=r"cannot be read with NumPy .*bfloat16.*save the checkpoint in float32"):
        GPT.from_pretrained(folder)


def test_from_pretrained_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTENSOR_CACHE", str(tmp_path))
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    with pytest.raises(DownloadError, match=r"put it at .*gpt2-607a30d7.model\.safetensors"):
        GPT.from_pretrained("gpt2")


def _offline(*args, **kwargs):
    import urllib.error
    raise urllib.error.URLError("no network (test)")


def test_from_pretrained_matches_the_reference_implementation(shared_data, tmp_path):
    """tiny-random-gpt2-reference.npz: random GPT-2 weights with the logits, hidden states and loss that
    the reference implementation computed on them (see shared/data/README.md)."""
    ref = np.load(shared_data / "gpt2" / "tiny-random-gpt2-reference.npz")
    tensors = {k[2:]: ref[k] for k in ref.files if k.startswith("w/")}
    model = GPT.from_pretrained(write_hf_folder(tmp_path / "ref", tensors, json.loads(str(ref["config_json"]))))
    assert model.config.n_embd == 16 and model.config.block_size == 64
    x, y = tt.tensor(ref["input_ids"]), tt.tensor(ref["targets"])
    with tt.no_grad():
        logits, loss = model(x, y)
        h = model.transformer
        embedded = h.wte(x) + h.wpe(tt.arange(16))
        after_block0 = h.h[0](embedded)
        final = model._hidden(x)
    np.testing.assert_allclose(embedded.numpy(), ref["hidden_states"][0], atol=1e-4)
    np.testing.assert_allclose(after_block0.numpy(), ref["hidden_states"][1], atol=1e-4)
    np.testing.assert_allclose(final.numpy(), ref["hidden_states"][2], atol=1e-4)
    np.testing.assert_allclose(logits.numpy()[:, -1], ref["logits_last"], atol=1e-4)
    np.testing.assert_allclose(logits.numpy()[:, :, :8], ref["logits_first8"], atol=1e-4)
    assert loss.item() == pytest.approx(float(ref["loss"]), abs=1e-4)


# ----------------------------------------------------------------------------------- cuda

@pytest.mark.cuda
def test_cache_equals_no_cache_on_cuda():
    model = tiny_gpt(device="cuda")
    prompt = ids((2, 5)).to("cuda")
    cached = model.generate(prompt, 10, temperature=0).numpy()
    np.testing.assert_array_equal(cached, model.generate(prompt, 10, temperature=0, use_cache=False).numpy())
    cpu = tiny_gpt().generate(ids((2, 5)), 10, temperature=0).numpy()
    np.testing.assert_array_equal(cached, cpu)


@pytest.mark.cuda
def test_training_step_on_cuda_matches_cpu():
    losses = []
    for device in ("cpu", "cuda"):
        model = tiny_gpt(dtype=tt.float32, device=device)
        x, y = ids((2, 8)).to(device), ids((2, 8), seed=2).to(device)
        _, loss = model(x, y)
        loss.backward()
        losses.append((loss.item(), model.transformer.wte.weight.grad.numpy()))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
    np.testing.assert_allclose(losses[0][1], losses[1][1], atol=1e-5)
