"""A training step never waits for the GPU: host syncs and copies counted by the CuPy stand-in.

These use the stand-in's counters, so they run where it is installed (everywhere without a GPU);
benchmarks/device_calls.py prints the same counts and the device calls per step."""
import numpy as np
import pytest

import tinytensor as tt
from tinytensor import backend, nn
from tinytensor.models.gpt2 import GPT, GPTConfig
from tinytensor.models.mlp import MLP
from tinytensor.nn.data import DataLoader, TensorDataset
from tinytensor.nn.training import train_epoch
from tinytensor.testing import fake_cupy

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(backend._cupy is not fake_cupy.cupy,
                                                   reason="counts come from the CuPy stand-in")]


def test_mnist_loop_syncs_only_when_the_progress_bar_reads():
    rng = np.random.default_rng(0)
    steps, batch = 45, 8
    images = tt.tensor(rng.random((steps * batch, 784)), device="cuda")
    labels = tt.tensor(rng.integers(0, 10, steps * batch), device="cuda")
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch, shuffle=True, seed=0)
    model = MLP((784, 32, 10), dropout=0.1).to("cuda")
    optimizer = nn.optim.Adam(model.parameters())
    with fake_cupy.counting() as counts:
        loss, accuracy, skipped = train_epoch(model, loader, optimizer, nn.CrossEntropyLoss())
    reads = len(range(0, steps, 20)) + 1          # the bar every 20 steps, and the epoch's result
    assert counts.total_syncs == reads, counts.report()
    assert all("training.py" in site for _, site in counts.syncs)
    assert counts.host_to_device == steps         # only each batch's shuffled indices
    assert np.isfinite(loss) and skipped == 0


def test_gpt_loop_syncs_once_per_read_of_the_loss_and_never_between():
    tt.manual_seed(0)
    model = GPT(GPTConfig.preset("gpt-nano", vocab_size=64, block_size=16)).to("cuda")
    optimizer = model.configure_optimizer(weight_decay=0.1, lr=1e-3)
    data = tt.randint(0, 64, (4, 17), device="cuda")

    def step():
        _, loss = model(data[:, :-1], data[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss
    step()                                         # the first step makes the optimizer's state
    with fake_cupy.counting() as counts:
        for _ in range(3):
            loss = step()
    assert counts.total_syncs == 0 and counts.host_to_device == 0, counts.report()
    with fake_cupy.counting() as counts:
        value = loss.item()
    assert counts.total_syncs == 1 and np.isfinite(value)


def test_batch_norm_with_cumulative_average_does_not_sync():
    bn = nn.BatchNorm1d(3, momentum=None).to("cuda")
    x = tt.randn(8, 3, device="cuda")
    with fake_cupy.counting() as counts:
        for _ in range(3):
            bn(x)
    assert counts.total_syncs == 0
    np.testing.assert_allclose(bn.running_mean.numpy(), x.numpy().mean(axis=0), rtol=1e-5, atol=1e-6)


def test_train_gpt_reads_the_device_once_per_progress_bar_update(tmp_path, monkeypatch):  # and generate.py
    """Two runs of examples/train_gpt.py that differ only by 10 more steps (one more bar update): the
    evaluations, samples and checkpoints are the same, so the difference is the 10 steps' syncs."""
    from tests.examples.test_examples import run_example
    monkeypatch.setenv("TINYTENSOR_CACHE", str(tmp_path / "cache"))
    tiny = ["--device", "cuda", "--data", "shakespeare", "--tokenizer", "char", "--n-layer", 1, "--n-head", 2,
            "--n-embd", 16, "--block-size", 8, "--batch-size", 4, "--dropout", 0.1, "--eval-batches", 1,
            "--eval-interval", 100, "--sample-tokens", 4]
    syncs = []
    for steps in (10, 20):
        with fake_cupy.counting() as counts:
            run_example("train_gpt", *tiny, "--max-iters", steps, "--out-dir", tmp_path / str(steps))
        syncs.append(counts.total_syncs)
    assert syncs[1] - syncs[0] == 1, syncs
    ids, stats = run_example("generate", "--device", "cuda", "--checkpoint", tmp_path / "20" / "ckpt.npz",
                             "--max-new-tokens", 5, "--temperature", 0)   # and its checkpoint samples on cuda
    assert len(ids) == 5 and stats.new_tokens == 5
