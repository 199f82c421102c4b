"""tt.detect_anomaly: the first op that makes a NaN or an inf is named, with the user's line."""
import numpy as np
import pytest

import tinytensor as tt

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # NumPy notes the NaN too


def test_a_forward_nan_names_the_op_the_element_and_the_calling_line():
    x = tt.tensor([[1.0, 2.0], [-3.0, 4.0]], requires_grad=True)
    with tt.detect_anomaly():
        with pytest.raises(RuntimeError) as info:
            x.log()                                                    # the line the error must name
    message = str(info.value)
    assert "Log made nan" in message and "index (1, 0)" in message and "(2, 2)" in message
    assert f"{__file__}:" in message and "x.log()" in message


def test_a_backward_inf_names_the_op_and_where_it_was_made():
    x = tt.tensor([0.0, 1.0], dtype=tt.float64, requires_grad=True)
    with tt.detect_anomaly():
        y = x.sqrt()                                                   # forward is finite: sqrt(0) = 0
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()                                         # d sqrt(x)/dx = inf at 0
    message = str(info.value)
    assert "Sqrt.backward made inf" in message and "index (0,)" in message
    assert "argument 0" in message and "y = x.sqrt()" in message


def test_the_user_line_is_found_through_nn_layers():
    from tinytensor import nn
    layer = nn.Linear(2, 2)
    x = tt.tensor([[1.0, 2.0]])
    layer.weight.data.fill(np.inf)
    with tt.detect_anomaly(), pytest.raises(RuntimeError) as info:
        nn.functional.relu(layer(x) - layer(x))                        # inf - inf
    message = str(info.value)
    assert "Sub made nan" in message and "without nan" in message and "layer(x) - layer(x)" in message


def test_a_nan_already_in_the_inputs_is_not_blamed_on_the_next_op():
    x = tt.tensor([np.nan, 1.0])
    with tt.detect_anomaly():
        y = x * 2
    assert np.isnan(y.numpy()[0])


def test_without_the_mode_nothing_is_checked_or_recorded():
    x = tt.tensor([-1.0], requires_grad=True)
    y = x.log()
    assert np.isnan(y.detach().numpy()[0]) and y.grad_fn.created_at is None
    with tt.detect_anomaly():
        pass
    assert x.exp().grad_fn.created_at is None                         # the mode is off again after the block


def test_detect_anomaly_works_as_a_decorator_and_restores_the_mode():
    @tt.detect_anomaly()
    def risky(x):
        return (x - x) / (x - x)                                       # 0 / 0

    with pytest.raises(RuntimeError, match=r"Div made nan at index \(0,\)"):
        risky(tt.tensor([1.0]))
    assert np.isnan((tt.zeros(1) / tt.zeros(1)).numpy()[0])           # off again: no error
