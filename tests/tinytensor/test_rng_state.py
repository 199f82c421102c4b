"""tt.get_rng_state / tt.set_rng_state: a saved generator state continues the same random numbers."""
import numpy as np

import tinytensor as tt


def test_saved_state_repeats_the_next_numbers(device, tmp_path):
    tt.manual_seed(5)
    tt.rand(3, device=device)
    state = tt.get_rng_state(device)
    tt.save({"random": state}, tmp_path / "rng.npz")
    expected = tt.rand(4, device=device).numpy()
    tt.rand(10, device=device)                                   # move on, then go back
    tt.set_rng_state(tt.load(tmp_path / "rng.npz")["random"], device)
    assert np.array_equal(tt.rand(4, device=device).numpy(), expected)


def test_dropout_masks_repeat_after_set_rng_state():
    x = tt.ones(50)
    state = tt.get_rng_state()
    first = tt.dropout(x, 0.5).numpy()
    tt.set_rng_state(state)
    assert np.array_equal(tt.dropout(x, 0.5).numpy(), first)
    assert not np.array_equal(tt.dropout(x, 0.5).numpy(), first)
