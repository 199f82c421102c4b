"""gradcheck's report: the failing element chosen by relative error, and the derivative a learner writes
on paper (d out[k] / d x[j], no hidden weighting) where the check needed one, said so where it does."""
import re
import sys

import numpy as np
import pytest

import tinytensor as tt

gradcheck_module = sys.modules["tinytensor.gradcheck"]     # tt.gradcheck is the function


class SoftsignMissingSquare(tt.Function):
    """y = x / (1 + |x|), with the backward's square dropped: 1 / (1 + |x|) instead of 1 / (1 + |x|)^2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + ctx.xp.abs(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1 + x.abs())


def failure(fn, *inputs, **settings):
    with pytest.raises(tt.GradcheckError) as caught:
        tt.gradcheck(fn, inputs, **settings)
    message = str(caught.value)
    assert "\n" not in message                                   # one paragraph
    return message


def test_softsign_at_one_reports_the_derivative_on_paper():
    """dy/dx at x = 1 is 1/4 by hand; the broken backward gives 1/2. No random weights in sight."""
    message = failure(SoftsignMissingSquare.apply, tt.tensor([1.0], dtype=tt.float64, requires_grad=True))
    assert re.search(r"d out\[0\] / d x\[0\] is 0\.5 from backward \(analytic\) but 0\.25 by central "
                     r"differences \(numeric\), relative error 1 ", message)
    assert "x[0] = 1:" in message and "only output element that depends on x[0]" in message
    assert "random" not in message


def test_the_worst_element_is_the_one_with_the_largest_relative_error():
    """Without the square the relative error is |x|, largest at x = -3; the absolute error
    |x| / (1 + |x|)^2 is largest at x = 1 instead, so choosing by it would name another element."""
    x = tt.tensor([0.5, 1.0, -3.0, 2.0], dtype=tt.float64, requires_grad=True)
    message = failure(SoftsignMissingSquare.apply, x)
    assert "at index (2,), where x[2] = -3:" in message
    assert "d out[2] / d x[2] is 0.25 from backward" in message and "but 0.0625 by central" in message
    assert "relative error 3 " in message


def test_an_op_mixing_elements_names_the_output_element_and_the_others():
    class SoftmaxWithoutTheSum(tt.Function):
        @staticmethod
        def forward(ctx, x):
            e = np.exp(x - x.max())
            y = e / e.sum()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return y * grad                       # forgot "- sum(grad * y)": off-diagonal terms are lost

    x = tt.tensor([0.1, 0.5, -0.3], dtype=tt.float64, requires_grad=True)
    message = failure(SoftmaxWithoutTheSum.apply, x)
    match = re.search(r"d out\[(\d)\] / d x\[(\d)\] is (\S+) from backward .* but (\S+) by central", message)
    k, j, analytic, numeric = int(match[1]), int(match[2]), float(match[3]), float(match[4])
    y = np.exp(x.detach().numpy()) / np.exp(x.detach().numpy()).sum()
    jacobian = np.diag(y) - np.outer(y, y)                      # d y_k / d x_j
    assert analytic == pytest.approx(y[k] if k == j else 0.0, abs=1e-7)
    assert numeric == pytest.approx(jacobian[k, j], rel=1e-5)
    assert f"x[{j}] moves 2 other output element(s)" in message


def test_several_inputs_and_outputs_are_named():
    def fn(a, b):
        return a * b, SoftsignMissingSquare.apply(b)

    a = tt.tensor([2.0, 3.0], dtype=tt.float64, requires_grad=True)
    b = tt.tensor([1.0, -1.0], dtype=tt.float64, requires_grad=True)
    message = failure(fn, a, b)
    assert message.startswith("gradcheck failed for input 1 (shape (2,))")
    assert re.search(r"d out1\[\d\] / d x1\[\d\] is 0\.5 from backward", message)
    assert "moves 1 other output element(s); 0 of them disagree" in message


def test_too_many_outputs_fall_back_to_the_weighted_sum_and_say_so(monkeypatch):
    monkeypatch.setattr(gradcheck_module, "_MAX_OUTPUTS_FOR_JACOBIAN", 2)
    x = tt.tensor([0.5, 1.0, -3.0], dtype=tt.float64, requires_grad=True)
    message = failure(SoftsignMissingSquare.apply, x)
    assert "too many to differentiate one by one" in message
    assert "L = sum(w * out), with w fixed random weights" in message and "d L / d x[2]" in message


def test_fast_mode_says_it_checks_a_weighted_direction():
    x = tt.tensor([0.5, 1.0, -3.0], dtype=tt.float64, requires_grad=True)
    message = failure(SoftsignMissingSquare.apply, x, fast=True)
    assert "one random direction u" in message and "sum(w * out)" in message
    assert "Run without fast=True" in message


def test_gradgradcheck_names_the_first_derivative_and_its_weighting():
    class SinWithConstantSlope(tt.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.slope = np.cos(x)                # kept as a constant: the second derivative is lost
            return np.sin(x)

        @staticmethod
        def backward(ctx, grad):
            return grad * tt.tensor(ctx.slope, dtype=grad.dtype)

    x = tt.tensor([0.1, 0.5], dtype=tt.float64, requires_grad=True)
    assert tt.gradcheck(SinWithConstantSlope.apply, (x,))
    with pytest.raises(tt.GradcheckError, match=r"d grad\[\d\] / d x\[\d\] is 0 from backward.*Here grad "
                                                r"is fn's first derivative d L / d x for L = sum\(w \* out\)"):
        tt.gradgradcheck(SinWithConstantSlope.apply, (x,))
