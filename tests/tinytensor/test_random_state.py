"""tt.random.state_dict / load_state_dict: a saved state, written to disk and read back, continues every
generator exactly where it was."""
import numpy as np
import pytest

import tinytensor as tt


def test_state_round_trips_through_a_checkpoint_and_repeats_the_draws(tmp_path):
    tt.manual_seed(5)
    tt.rand(3)                                          # move the generator along
    tt.save({"rng": tt.random.state_dict()}, tmp_path / "rng.npz")
    expected = [tt.rand(4).numpy(), tt.randn(2, 2).numpy(), tt.randint(0, 100, size=5).numpy()]

    tt.manual_seed(99)                                  # somewhere else entirely
    tt.rand(7)
    tt.random.load_state_dict(tt.load(tmp_path / "rng.npz")["rng"])
    again = [tt.rand(4).numpy(), tt.randn(2, 2).numpy(), tt.randint(0, 100, size=5).numpy()]
    for a, b in zip(expected, again):
        np.testing.assert_array_equal(a, b)


def test_getting_the_state_does_not_move_the_cpu_generator():
    tt.manual_seed(1)
    first = tt.rand(3).numpy()
    tt.manual_seed(1)
    tt.random.state_dict()
    np.testing.assert_array_equal(tt.rand(3).numpy(), first)


def test_a_device_first_used_after_the_state_was_taken_starts_from_the_seed():
    tt.manual_seed(4)
    state = tt.random.state_dict()                          # no generator made yet: only the seed
    tt.manual_seed(0)
    tt.random.load_state_dict(state)
    resumed = tt.rand(3).numpy()
    tt.manual_seed(4)
    np.testing.assert_array_equal(resumed, tt.rand(3).numpy())


def test_a_wrong_state_is_named():
    with pytest.raises(ValueError, match=r"expected what tt.random.state_dict\(\) returns.*got list"):
        tt.random.load_state_dict([1, 2])


@pytest.mark.cuda
def test_gpu_generator_resumes_from_its_recorded_restart():
    tt.manual_seed(2)
    tt.rand(3, device="cuda")
    state = tt.random.state_dict()
    expected = tt.rand(5, device="cuda").numpy()
    tt.manual_seed(8)
    tt.rand(2, device="cuda")
    tt.random.load_state_dict(state)
    np.testing.assert_array_equal(tt.rand(5, device="cuda").numpy(), expected)
