"""examples/train_gpt.py and examples/generate.py end to end with a tiny GPT (a few steps each): checkpoints,
the plot, exact resume, Ctrl-C, the NaN stop, fine-tuning a Hugging Face folder, streaming generation; and
the same on cuda (a GPU, or the CuPy stand-in), where a step must not wait for the device."""
import json
import os
import runpy
import signal
import subprocess
import sys

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import backend
from tinytensor.models import lm_data
from tinytensor.nn.training import NonFiniteError
from tinytensor.testing import fake_cupy

from ..models.test_gpt2 import write_hf_folder
from .test_examples import EXAMPLES, run_example

TINY = ["--n-layer", 1, "--n-head", 2, "--n-embd", 16, "--block-size", 8, "--batch-size", 4,
        "--vocab-size", 270, "--eval-batches", 2, "--dropout", 0.1, "--sample-tokens", 20]


@pytest.fixture(autouse=True, scope="module")
def cache(tmp_path_factory):
    """Tokenizers trained here go to a fresh cache, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYTENSOR_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny GPT trained for 6 steps on The Verdict with our BPE: (out dir, what main returned)."""
    out_dir = tmp_path_factory.mktemp("run")
    return out_dir, run_example("train_gpt", *TINY, "--max-iters", 6, "--eval-interval", 3, "--out-dir", out_dir)


def test_train_gpt_writes_checkpoint_plot_and_sample(trained):
    out_dir, result = trained
    assert result["step"] == 6 and not result["stopped"]
    assert result["history"]["val_step"] == [0, 3, 6] and all(np.isfinite(result["history"]["val"]))
    assert (out_dir / "loss.png").stat().st_size > 10_000
    checkpoint = tt.load(out_dir / "ckpt.npz")
    assert checkpoint["step"] == 6 and checkpoint["config"]["n_embd"] == 16
    assert set(checkpoint) >= {"model", "optimizer", "scheduler", "loaders", "rng", "tokenizer", "settings"}
    assert lm_data.tokenizer_from_state(checkpoint["tokenizer"]).n_vocab == 270


def test_settings_come_from_the_device_defaults_and_presets():
    script = runpy.run_path(str(EXAMPLES / "train_gpt.py"), run_name="example")
    settings = lambda *argv: script["complete"](script["parse_args"](list(argv)))     # parsed, nothing run
    cpu = settings()
    assert (cpu.data, cpu.tokenizer, cpu.vocab_size, cpu.n_layer, cpu.n_embd, cpu.block_size) == \
        ("verdict", "bpe", 512, 4, 128, 64)
    gpu = settings("--device", "cuda")
    assert (gpu.data, gpu.tokenizer, gpu.n_layer, gpu.n_head, gpu.n_embd, gpu.block_size, gpu.dropout) == \
        ("shakespeare", "char", 6, 6, 384, 256, 0.2)
    nano = settings("--preset", "gpt-nano", "--n-layer", "3")
    assert (nano.n_layer, nano.n_head, nano.n_embd, nano.block_size) == (3, 4, 128, 64)
    assert settings("--init-from", "gpt2").tokenizer == "gpt2"
    with pytest.raises(ValueError, match="needs GPT-2's tokenizer"):
        settings("--init-from", "gpt2", "--tokenizer", "char")
    with pytest.raises(ValueError, match="--eval-interval must be at least 1, got 0"):
        settings("--eval-interval", "0")


def test_train_gpt_on_shakespeare_characters(tmp_path, capsys):
    result = run_example("train_gpt", *TINY, "--data", "shakespeare", "--tokenizer", "char", "--max-iters", 2,
                         "--eval-interval", 2, "--grad-accum", 2, "--out-dir", tmp_path)
    checkpoint = tt.load(tmp_path / "ckpt.npz")
    assert checkpoint["config"]["vocab_size"] == 65 and result["step"] == 2
    printed = capsys.readouterr().out
    assert "--- sample:" in printed and "val perplexity" in printed


def test_a_tiny_gpt_learns(tmp_path):
    result = run_example("train_gpt", *TINY, "--n-embd", 32, "--max-iters", 60, "--eval-interval", 60,
                         "--lr", 3e-3, "--out-dir", tmp_path)
    train_losses = result["history"]["train"]
    assert train_losses[-1] < train_losses[0] - 0.5         # from ~ln(270) = 5.6 down


def stop_at_step(monkeypatch, step):
    """Deliver a real SIGINT to this process while the given step draws its batch."""
    draw = lm_data.RandomBatches.next
    calls = []

    def next_with_ctrl_c(self):
        calls.append(1)
        if len(calls) == step:
            signal.raise_signal(signal.SIGINT)
        return draw(self)

    monkeypatch.setattr(lm_data.RandomBatches, "next", next_with_ctrl_c)


def test_ctrl_c_then_resume_is_bit_identical(trained, tmp_path, monkeypatch):
    out_dir = trained[0]
    with monkeypatch.context() as patch:
        stop_at_step(patch, 2)
        stopped = run_example("train_gpt", *TINY, "--max-iters", 6, "--eval-interval", 3,
                              "--out-dir", tmp_path / "b")
    assert stopped["stopped"] and stopped["step"] == 2 and tt.load(tmp_path / "b" / "ckpt.npz")["step"] == 2
    resumed = run_example("train_gpt", "--resume", "--out-dir", tmp_path / "b")
    assert resumed["step"] == 6
    full, again = tt.load(out_dir / "ckpt.npz"), tt.load(tmp_path / "b" / "ckpt.npz")
    for name, value in full["model"].items():
        assert np.array_equal(value.numpy(), again["model"][name].numpy()), name
    for index, state in full["optimizer"]["state"].items():
        assert np.array_equal(state["exp_avg_sq"].numpy(), again["optimizer"]["state"][index]["exp_avg_sq"].numpy())
    assert again["history"]["val"][-1] == full["history"]["val"][-1]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_diverging_run_stops_at_the_first_nan(tmp_path):
    with pytest.raises(NonFiniteError, match=r"training stopped at step \d+ of 20: the loss is nan"):
        run_example("train_gpt", *TINY, "--lr", 1e30, "--grad-clip", 0, "--max-iters", 20, "--out-dir", tmp_path)


@pytest.mark.cuda
def test_train_gpt_resumes_exactly_and_generates_on_cuda(tmp_path, monkeypatch):
    full = run_example("train_gpt", *TINY, "--device", "cuda", "--max-iters", 4, "--eval-interval", 2,
                       "--out-dir", tmp_path / "a")
    with monkeypatch.context() as patch:
        stop_at_step(patch, 1)
        run_example("train_gpt", *TINY, "--device", "cuda", "--max-iters", 4, "--eval-interval", 2,
                    "--out-dir", tmp_path / "b")
    resumed = run_example("train_gpt", "--resume", "--device", "cuda", "--out-dir", tmp_path / "b")
    assert resumed["history"]["val"][-1] == full["history"]["val"][-1] and np.isfinite(full["history"]["val"][-1])
    a, b = tt.load(tmp_path / "a" / "ckpt.npz"), tt.load(tmp_path / "b" / "ckpt.npz")
    assert all(np.array_equal(value.numpy(), b["model"][name].numpy()) for name, value in a["model"].items())
    ids, stats = run_example("generate", "--device", "cuda", "--checkpoint", tmp_path / "a" / "ckpt.npz",
                             "--max-new-tokens", 5)
    assert len(ids) == 5 and stats.new_tokens == 5


@pytest.mark.cuda
@pytest.mark.skipif(backend._cupy is not fake_cupy.cupy, reason="counts come from the CuPy stand-in")
def test_train_gpt_on_cuda_waits_for_the_gpu_only_when_it_reads_the_loss(tmp_path):
    def syncs(steps):
        with fake_cupy.counting() as counts:
            run_example("train_gpt", *TINY, "--device", "cuda", "--max-iters", steps, "--eval-interval", 1000,
                        "--out-dir", tmp_path / str(steps))
        return counts.total_syncs, counts.report()
    (short, _), (long, report) = syncs(20), syncs(40)
    # The same start and end (evaluations, checkpoint, sample); 20 more steps add only the two reads of
    # the loss (every 10 steps) and nothing per step.
    assert long - short == 2, report


def test_resume_refuses_a_missing_checkpoint_or_changed_text(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint at .*ckpt.npz"):
        run_example("train_gpt", "--resume", "--out-dir", tmp_path)
    text = tmp_path / "text.txt"
    text.write_text(lm_data.load_corpus("verdict")[:3000], encoding="utf-8")
    run_example("train_gpt", *TINY, "--data", text, "--max-iters", 2, "--eval-interval", 1, "--out-dir", tmp_path)
    text.write_text(lm_data.load_corpus("verdict")[3000:6000], encoding="utf-8")
    with pytest.raises(ValueError, match="is not the one this run was trained on"):
        run_example("train_gpt", "--resume", "--out-dir", tmp_path)


def test_ctrl_c_in_a_subprocess_saves_and_exits_cleanly(tmp_path):
    command = [sys.executable, str(EXAMPLES / "train_gpt.py"), *map(str, TINY), "--max-iters", "100000",
               "--eval-interval", "100000", "--out-dir", str(tmp_path)]
    env = {**os.environ, "TINYTENSOR_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in child.stdout:              # the GPT line is printed once Ctrl-C is handled
            if line.startswith("GPT:"):
                break
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err[-2000:]
    assert "stopped at step" in out and "Traceback" not in err
    step = tt.load(tmp_path / "ckpt.npz")["step"]
    assert 1 <= step < 100000


def test_generate_streams_text_and_timings(trained, capsys):
    out_dir = trained[0]
    ids, stats = run_example("generate", "--checkpoint", out_dir / "ckpt.npz", "--prompt", "I had",
                             "--max-new-tokens", 12, "--temperature", 0)
    printed = capsys.readouterr()
    assert len(ids) == 12 and stats.new_tokens == 12 and stats.ttft_s > 0
    assert printed.out.startswith("I had") and "TTFT" in printed.err and "tokens/s" in printed.err
    no_cache, _ = run_example("generate", "--checkpoint", out_dir / "ckpt.npz", "--prompt", "I had",
                              "--max-new-tokens", 12, "--temperature", 0, "--no-cache")
    assert no_cache == ids
    sampled = [run_example("generate", "--checkpoint", out_dir / "ckpt.npz", "--max-new-tokens", 8,
                           "--top-k", 20, "--top-p", 0.9, "--seed", 3)[0] for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_generate_without_a_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(SystemExit, match="train one with `python examples/train_gpt.py`"):
        run_example("generate", "--checkpoint", tmp_path / "none.npz")


@pytest.fixture
def hf_folder(shared_data, tmp_path):
    """A Hugging Face GPT-2 folder (config.json, model.safetensors) holding the shared tiny random GPT-2
    (GPT-2's vocabulary, 2 layers of 16)."""
    reference = np.load(shared_data / "gpt2" / "tiny-random-gpt2-reference.npz")
    config = {**json.loads(str(reference["config_json"])), "model_type": "gpt2"}
    tensors = {name[2:]: reference[name] for name in reference.files if name.startswith("w/")}
    return write_hf_folder(tmp_path / "hf", tensors, config)


def test_fine_tune_from_a_hugging_face_folder_then_generate(hf_folder, shared_data, tmp_path, capsys):
    vocabulary = shared_data / "gpt2" / "gpt2.tiktoken"
    result = run_example("train_gpt", "--init-from", hf_folder, "--tokenizer", vocabulary, "--block-size", 16,
                         "--batch-size", 2, "--max-iters", 2, "--eval-interval", 2, "--eval-batches", 1,
                         "--sample-tokens", 4, "--out-dir", tmp_path / "ft")
    checkpoint = tt.load(tmp_path / "ft" / "ckpt.npz")
    assert checkpoint["config"]["vocab_size"] == 50257 and checkpoint["config"]["block_size"] == 64
    assert 9 < result["history"]["val"][-1] < 12                  # a random GPT-2: about ln(50257) = 10.8
    capsys.readouterr()
    ids, _ = run_example("generate", "--pretrained", hf_folder, "--tokenizer", vocabulary, "--prompt",
                         "Hello, world", "--max-new-tokens", 5, "--seed", 1)
    assert len(ids) == 5 and capsys.readouterr().out.startswith("Hello, world")
