"""End to end: a small MLP learns a two-class problem, and a run resumed from a checkpoint continues
bit-identically to one that was never interrupted."""
import numpy as np

from tinytensor import nn
import tinytensor as tt
from tinytensor.nn.training import load_checkpoint, save_checkpoint


def two_rings(rng, n=400):
    """Points on an inner ring (class 0) and an outer ring (class 1): not linearly separable."""
    labels = rng.integers(0, 2, n)
    radius = np.where(labels == 1, 2.0, 1.0) + 0.15 * rng.standard_normal(n)
    angle = rng.uniform(0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)
    return tt.tensor(points), tt.tensor(labels)


def make_model():
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))


def test_mlp_learns_two_rings(rng):
    x, y = two_rings(rng)
    model = make_model()
    optimizer = nn.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(150):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_x, test_y = two_rings(np.random.default_rng(1))
    with tt.no_grad():
        predicted = model.eval()(test_x).numpy().argmax(axis=1)
    assert (predicted == test_y.numpy()).mean() > 0.95


def train(model, optimizer, scheduler, batches):
    for x, y in batches:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()


def fresh_run(seed=0):
    tt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    decay = [p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim == 2]
    others = [p for name, p in model.named_parameters() if not (name.endswith("weight") and p.ndim == 2)]
    optimizer = nn.optim.AdamW([{"params": decay}, {"params": others, "weight_decay": 0.0}], lr=0.05)
    scheduler = nn.optim.WarmupCosine(optimizer, warmup_steps=2, total_steps=8, min_lr=0.001)
    return model, optimizer, scheduler


def test_resumed_run_is_bit_identical(rng, tmp_path):
    x, y = two_rings(rng, n=64)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)] * 2     # 8 steps

    model, optimizer, scheduler = fresh_run()
    train(model, optimizer, scheduler, batches)

    model_a, optimizer_a, scheduler_a = fresh_run()
    train(model_a, optimizer_a, scheduler_a, batches[:3])
    # Dropout's random stream is part of the state to resume: save_checkpoint writes it too.
    save_checkpoint(tmp_path / "ckpt.npz", model_a, optimizer_a, scheduler_a, step=3)

    model_b, optimizer_b, scheduler_b = fresh_run(seed=123)      # different init: all must come from disk
    assert load_checkpoint(tmp_path / "ckpt.npz", model_b, optimizer_b, scheduler_b)["step"] == 3
    train(model_b, optimizer_b, scheduler_b, batches[3:])

    assert scheduler_b.get_last_lr() == scheduler.get_last_lr()
    for (name, a), b in zip(model.state_dict().items(), model_b.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
