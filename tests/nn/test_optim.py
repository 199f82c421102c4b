"""Optimizers against their update rules worked by hand for two steps, parameter groups, state dicts,
schedulers, and gradient clipping. One float64 parameter p = 1 with gradients set by hand."""
import math

import numpy as np
import pytest

from tinytensor import nn
import tinytensor as tt


def param(value=1.0, device="cpu"):
    return nn.Parameter(tt.tensor([value], dtype=tt.float64, device=device))


def run(optimizer_class, grads, device="cpu", **settings):
    """p after each step, with p.grad set to each of grads in turn."""
    p = param(device=device)
    optimizer = optimizer_class([p], **settings)
    values = []
    for g in grads:
        p.grad = tt.tensor([g], dtype=tt.float64, device=device)
        optimizer.step()
        values.append(p.item())
    return values


@pytest.mark.parametrize("settings, expected", [
    # p = p - lr g:                       1 - 0.1 * 0.5 = 0.95;  0.95 - 0.05 = 0.90
    (dict(lr=0.1), [0.95, 0.90]),
    # b = g = 0.5, p = 0.95;              b = 0.9 * 0.5 + 0.5 = 0.95, p = 0.95 - 0.095 = 0.855
    (dict(lr=0.1, momentum=0.9), [0.95, 0.855]),
    # first b = g; then b = 0.9 * 0.5 + (1 - 0.5) * 0.5 = 0.7, p = 0.95 - 0.07 = 0.88
    (dict(lr=0.1, momentum=0.9, dampening=0.5), [0.95, 0.88]),
    # b = 0.5, g' = 0.5 + 0.9 * 0.5 = 0.95, p = 0.905;  b = 0.95, g' = 0.5 + 0.855 = 1.355, p = 0.7695
    (dict(lr=0.1, momentum=0.9, nesterov=True), [0.905, 0.7695]),
    # g' = 0.5 + 0.1 * 1 = 0.6, p = 0.94;  g' = 0.5 + 0.1 * 0.94 = 0.594, p = 0.94 - 0.0594 = 0.8806
    (dict(lr=0.1, weight_decay=0.1), [0.94, 0.8806]),
])
def test_sgd_two_steps_by_hand(settings, expected, device):
    np.testing.assert_allclose(run(nn.optim.SGD, [0.5, 0.5], device, **settings), expected, rtol=1e-12)


# Adam, lr 0.1, betas (0.9, 0.999), gradients 0.5 then -1:
#   step 1: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025; m^ = 0.05 / 0.1 = 0.5, v^ = 0.00025 / 0.001
#           = 0.25; p = 1 - 0.1 * 0.5 / (sqrt(0.25) + 1e-8) = 0.900000002
#   step 2: m = 0.9 * 0.05 - 0.1 = -0.055, v = 0.999 * 0.00025 + 0.001 = 0.00124975;
#           m^ = -0.055 / 0.19 = -0.289474, v^ = 0.00124975 / 0.001999 = 0.625188 (sqrt 0.790688);
#           p = 0.9 + 0.1 * 0.289474 / 0.790688 = 0.936610
# With weight_decay 0.1 (Adam, L2): g = 0.5 + 0.1 * 1 = 0.6 on step 1, so m = 0.06, v = 0.00036, p = 0.9
#   again (m^ / sqrt(v^) = 1); step 2: g = -1 + 0.09 = -0.91 -> p = 0.925264
# AdamW, decoupled: p = 1 * (1 - 0.1 * 0.1) = 0.99 first, then the same step: 0.89; step 2: 0.89 * 0.99
#   + 0.036610 = 0.917710
@pytest.mark.parametrize("optimizer_class, settings, expected", [
    (nn.optim.Adam, dict(lr=0.1), [0.900000002, 0.9366103542405654]),
    (nn.optim.Adam, dict(lr=0.1, weight_decay=0.1), [0.9000000016666666, 0.9252635194456061]),
    (nn.optim.AdamW, dict(lr=0.1, weight_decay=0.1), [0.890000002, 0.9177103542205653]),
])
def test_adam_two_steps_by_hand(optimizer_class, settings, expected, device):
    np.testing.assert_allclose(run(optimizer_class, [0.5, -1.0], device, **settings), expected, rtol=1e-12)


def test_amsgrad_uses_the_largest_second_moment():
    # Gradients 1 then 0: v = 0.001, then 0.000999; amsgrad keeps v_max = 0.001 for step 2, so
    # step 2 is 0.1 * (0.09 / 0.19) / (sqrt(0.001 / 0.001999) + 1e-8) = 0.066972 instead of 0.067006.
    plain = run(nn.optim.Adam, [1.0, 0.0], lr=0.1)
    ams = run(nn.optim.Adam, [1.0, 0.0], lr=0.1, amsgrad=True)
    np.testing.assert_allclose(plain, [0.900000001, 0.8329941765341887], rtol=1e-12)
    np.testing.assert_allclose(ams, [0.900000001, 0.8330276878258663], rtol=1e-12)


def test_adamw_default_weight_decay():
    p = param()
    assert nn.optim.AdamW([p]).param_groups[0]["weight_decay"] == 0.01
    assert nn.optim.Adam([p]).param_groups[0]["weight_decay"] == 0.0


def test_step_never_touches_gradient_arrays_and_bumps_version():
    for make in (lambda p: nn.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1),
                 lambda p: nn.optim.Adam([p], lr=0.1, weight_decay=0.1)):
        p = param()
        grad = tt.tensor([0.5], dtype=tt.float64)
        p.grad = grad
        version = p.version
        make(p).step()
        assert grad.item() == 0.5 and p.version == version + 1


def test_parameters_without_gradient_are_skipped():
    a, b = param(), param()
    a.grad = tt.tensor([1.0], dtype=tt.float64)
    nn.optim.SGD([a, b], lr=0.5).step()
    assert a.item() == 0.5 and b.item() == 1.0


def test_param_groups_have_their_own_settings():
    decay, no_decay = param(), param()
    optimizer = nn.optim.SGD([{"params": [decay]}, {"params": no_decay, "weight_decay": 0.0, "lr": 0.2}],
                             lr=0.1, weight_decay=0.1)
    assert optimizer.param_groups[0]["weight_decay"] == 0.1 and optimizer.param_groups[1]["lr"] == 0.2
    for p in (decay, no_decay):
        p.grad = tt.tensor([0.5], dtype=tt.float64)
    optimizer.step()
    assert decay.item() == pytest.approx(1 - 0.1 * (0.5 + 0.1))
    assert no_decay.item() == pytest.approx(1 - 0.2 * 0.5)


def test_add_param_group_and_errors():
    a, b = param(), param()
    optimizer = nn.optim.Adam([a], lr=0.1)
    optimizer.add_param_group({"params": [b], "lr": 0.01})
    assert optimizer.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="empty"):
        nn.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="leaf tensors that require grad"):
        nn.optim.SGD([tt.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        nn.optim.SGD([a], lr=0.1, nesterov=True)


def test_zero_grad():
    p = param()
    grad = tt.tensor([2.0], dtype=tt.float64)
    p.grad = grad
    optimizer = nn.optim.SGD([p], lr=0.1)
    optimizer.zero_grad(set_to_none=False)
    assert p.grad.item() == 0 and grad.item() == 2.0
    optimizer.zero_grad()
    assert p.grad is None


def two_groups(first, second):
    """A group with the optimizer's defaults and one with its own settings (as for "no decay on biases")."""
    return [{"params": [first]}, {"params": [second], "lr": 0.05, "weight_decay": 0.0}]


@pytest.mark.parametrize("make", [
    lambda ps: nn.optim.SGD(two_groups(*ps), lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: nn.optim.SGD(two_groups(*ps), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: nn.optim.Adam(two_groups(*ps), lr=0.1, amsgrad=True, weight_decay=0.01),
    lambda ps: nn.optim.AdamW(two_groups(*ps), lr=0.1),
    lambda ps: nn.optim.Adam(two_groups(*ps), lr=0.1, amsgrad=True, weight_decay=0.01, foreach=True),
], ids=["sgd-momentum", "sgd-nesterov", "adam-amsgrad", "adamw", "adam-foreach"])
def test_state_dict_resume_is_bit_identical(make, tmp_path, rng):
    """Three steps straight, or one step, a save to disk, a fresh optimizer loading it, two more steps."""
    starts = [rng.standard_normal(shape).astype(np.float32) for shape in ((3, 2), (2,))]
    grads = [[rng.standard_normal(s.shape).astype(np.float32) for s in starts] for _ in range(3)]

    def steps(ps, optimizer, gs):
        for step_grads in gs:
            for p, g in zip(ps, step_grads):
                p.grad = tt.tensor(g)
            optimizer.step()

    straight = [nn.Parameter(tt.tensor(s)) for s in starts]
    steps(straight, make(straight), grads)

    first_half = [nn.Parameter(tt.tensor(s)) for s in starts]
    first = make(first_half)
    steps(first_half, first, grads[:1])
    tt.save({"optimizer": first.state_dict(), "params": [p.detach() for p in first_half]}, tmp_path / "ckpt.npz")
    saved = tt.load(tmp_path / "ckpt.npz")
    resumed = [nn.Parameter(p) for p in saved["params"]]
    second = make(resumed)
    second.param_groups[1]["lr"] = 123.0                                 # the file's settings must win
    second.load_state_dict(saved["optimizer"])
    assert second.param_groups[1]["lr"] == 0.05
    steps(resumed, second, grads[1:])
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("optimizer_class, settings", [
    (nn.optim.Adam, dict(lr=0.1, amsgrad=True, weight_decay=0.01)), (nn.optim.AdamW, dict(lr=0.1)),
])
def test_adam_foreach_gives_the_per_parameter_numbers(optimizer_class, settings, rng):
    """foreach (one flat vector per group, the GPU default) against the per-parameter loop."""
    starts = [rng.standard_normal(shape) for shape in ((3, 2), (2,), (4,))]
    grads = [[rng.standard_normal(s.shape) for s in starts] for _ in range(3)]
    results = []
    for foreach in (False, True):
        ps = [nn.Parameter(tt.tensor(s, dtype=tt.float64)) for s in starts]
        optimizer = optimizer_class([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.05}], foreach=foreach,
                                    **settings)
        for step_grads in grads:
            for p, g in zip(ps, step_grads):
                p.grad = tt.tensor(g, dtype=tt.float64)
            optimizer.step()
        results.append([p.detach().numpy() for p in ps])
        states = [optimizer.state[p]["exp_avg"] for p in ps]
        assert all(state.shape == p.shape for state, p in zip(states, ps))
        assert (states[0].base is not None and states[0].base is states[1].base) == foreach   # one vector
    for per_parameter, flat in zip(*results):
        np.testing.assert_allclose(flat, per_parameter, rtol=1e-13)
    p = nn.Parameter(tt.ones(2))
    p.grad = tt.ones(2)
    optimizer = optimizer_class([p], foreach=True, **settings)
    with tt.ops.fast.disabled():                 # the plain per-parameter formula, as for every step
        optimizer.step()
    assert optimizer.state[p]["exp_avg"].base is None


def test_load_state_dict_checks_groups_and_copies():
    a = param()
    optimizer = nn.optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = tt.tensor([1.0], dtype=tt.float64)
    optimizer.step()
    other = nn.optim.SGD([param()], lr=0.5, momentum=0.9)
    other.load_state_dict(optimizer.state_dict())
    assert other.param_groups[0]["lr"] == 0.1
    (buffer,) = other.state.values()
    assert buffer["momentum_buffer"] is not optimizer.state[a]["momentum_buffer"]
    with pytest.raises(ValueError, match="1 parameter group.*has 2"):
        nn.optim.SGD([{"params": [param()]}, {"params": [param()]}], lr=0.1).load_state_dict(
            optimizer.state_dict())
    with pytest.raises(ValueError, match="group 0 has 1 parameter.*and 2 in the optimizer"):
        nn.optim.SGD([param(), param()], lr=0.1).load_state_dict(optimizer.state_dict())


# ------------------------------------------------------------------ schedulers

def lrs(scheduler, steps):
    values = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        values.append(scheduler.get_last_lr()[0])
    return values


def test_step_lr():
    optimizer = nn.optim.SGD([param()], lr=1.0)
    scheduler = nn.optim.StepLR(optimizer, step_size=2, gamma=0.5)
    assert lrs(scheduler, 5) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert optimizer.param_groups[0]["lr"] == 0.25


def test_cosine_annealing():
    scheduler = nn.optim.CosineAnnealingLR(nn.optim.SGD([param()], lr=1.0), T_max=4, eta_min=0.2)
    # 0.2 + 0.8 * (1 + cos(pi t / 4)) / 2 for t = 0..4
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(lrs(scheduler, 4), expected)
    assert expected[2] == pytest.approx(0.6)


def test_schedules_give_the_numbers_pytorch_gives():
    """Written out from the closed forms, for lr 0.1: StepLR(step_size=2, gamma=0.1) and
    CosineAnnealingLR(T_max=10): 0.05 (1 + cos(pi t / 10)); past T_max the cosine turns back up, as in PyTorch."""
    step = nn.optim.StepLR(nn.optim.SGD([param()], lr=0.1), step_size=2, gamma=0.1)
    np.testing.assert_allclose(lrs(step, 4), [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-12)
    cosine = nn.optim.CosineAnnealingLR(nn.optim.SGD([param()], lr=0.1), T_max=10)
    values = lrs(cosine, 11)
    np.testing.assert_allclose(values[:4], [0.1, 0.09755282581475769, 0.09045084971874738,
                                            0.07938926261462367], rtol=1e-12)
    assert values[5] == pytest.approx(0.05) and values[10] == pytest.approx(0.0, abs=1e-17)
    assert values[11] == pytest.approx(values[9])


def test_schedule_settings_are_checked():
    optimizer = nn.optim.SGD([param()], lr=1.0)
    with pytest.raises(ValueError, match="step_size must be a positive int, got 0"):
        nn.optim.StepLR(optimizer, step_size=0)
    with pytest.raises(ValueError, match="T_max .* must be > 0, got 0"):
        nn.optim.CosineAnnealingLR(optimizer, T_max=0)
    with pytest.raises(ValueError, match="warmup_steps < total_steps, got 5 and 5"):
        nn.optim.WarmupCosine(optimizer, warmup_steps=5, total_steps=5)


def test_warmup_cosine():
    scheduler = nn.optim.WarmupCosine(nn.optim.SGD([param()], lr=1.0), warmup_steps=2, total_steps=6,
                                      min_lr=0.1)
    # warm-up 1/2, 2/2; then cosine over 4 steps from 1 to 0.1; then it stays at 0.1
    cosine = [0.1 + 0.9 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(5)]
    np.testing.assert_allclose(lrs(scheduler, 7), [0.5, 1.0] + cosine + [0.1])


def test_scheduler_scales_each_group_and_resumes():
    optimizer = nn.optim.SGD([{"params": [param()], "lr": 1.0}, {"params": [param()], "lr": 0.1}], lr=1.0)
    scheduler = nn.optim.StepLR(optimizer, step_size=1, gamma=0.5)
    scheduler.step()
    assert scheduler.get_last_lr() == [0.5, 0.05]
    state = scheduler.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 1
    fresh_optimizer = nn.optim.SGD([{"params": [param()], "lr": 1.0}, {"params": [param()], "lr": 0.1}], lr=1)
    fresh = nn.optim.StepLR(fresh_optimizer, step_size=1, gamma=0.5)
    fresh.load_state_dict(state)
    fresh.step()
    assert fresh.get_last_lr() == [0.25, 0.025] == [g["lr"] for g in fresh_optimizer.param_groups]


# ------------------------------------------------------------------ clipping

def test_clip_grad_norm_scales_together_with_new_tensors():
    a, b = param(), nn.Parameter(tt.zeros(2, dtype=tt.float64))
    grad_a, grad_b = tt.tensor([3.0], dtype=tt.float64), tt.tensor([0.0, 4.0], dtype=tt.float64)
    a.grad, b.grad = grad_a, grad_b
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert float(total) == pytest.approx(5.0)                     # sqrt(3^2 + 4^2)
    np.testing.assert_allclose(a.grad.numpy(), [0.6], rtol=1e-5)     # 3 / 5
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.8], rtol=1e-5)
    assert grad_a.item() == 3.0 and a.grad is not grad_a            # old gradient arrays untouched


def test_clip_grad_norm_leaves_small_gradients_and_other_norms():
    a = param()
    a.grad = tt.tensor([0.5], dtype=tt.float64)
    assert float(nn.utils.clip_grad_norm_([a], max_norm=1.0)) == pytest.approx(0.5)
    assert a.grad.item() == 0.5
    b = nn.Parameter(tt.zeros(2, dtype=tt.float64))
    b.grad = tt.tensor([-3.0, 2.0], dtype=tt.float64)
    assert float(nn.utils.clip_grad_norm_(b, max_norm=10, norm_type="inf")) == 3.0
    assert float(nn.utils.clip_grad_norm_(b, max_norm=10, norm_type=1)) == pytest.approx(5.0)
    b.grad = tt.tensor([math.inf, 1.0], dtype=tt.float64)
    with pytest.raises(RuntimeError, match="inf"):
        nn.utils.clip_grad_norm_(b, max_norm=1.0, error_if_nonfinite=True)


def test_clip_grad_norm_returns_the_gradients_dtype_and_spreads_a_nan_as_pytorch():
    a = nn.Parameter(tt.zeros(2, dtype=tt.float64))
    a.grad = tt.tensor([0.1, 0.2], dtype=tt.float64)
    total = nn.utils.clip_grad_norm_(a, max_norm=1.0)
    assert total.dtype == tt.float64 and total.item() == math.sqrt(0.1 ** 2 + 0.2 ** 2)   # no float32 rounding
    a.grad = tt.tensor([math.nan, 1.0], dtype=tt.float64)
    assert math.isnan(nn.utils.clip_grad_norm_(a, max_norm=1.0).item())
    assert np.isnan(a.grad.numpy()).all()          # PyTorch scales by max_norm / NaN as well
