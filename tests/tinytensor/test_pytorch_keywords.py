"""PyTorch's keyword spellings (dim=, keepdim=, correction=, unbiased=, start_dim=, end_dim=) give the
same results as NumPy's; both spellings of one argument at once is a TypeError; PyTorch's Tensor names."""
import inspect

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn

X = [[1.0, 2.0, 3.0], [4.0, 6.0, 11.0]]

# name: (the NumPy spelling, the PyTorch spelling) of the same call on x, a (2, 3) tensor
SPELLINGS = {
    "sum": (lambda x: x.sum(axis=1, keepdims=True), lambda x: x.sum(dim=1, keepdim=True)),
    "tt.sum": (lambda x: tt.sum(x, axis=0), lambda x: tt.sum(x, dim=0)),
    "mean": (lambda x: x.mean(axis=-1), lambda x: x.mean(dim=-1)),
    "tt.mean": (lambda x: tt.mean(x, axis=0, keepdims=True), lambda x: tt.mean(x, dim=0, keepdim=True)),
    "var": (lambda x: x.var(axis=1, ddof=0), lambda x: x.var(dim=1, correction=0)),
    "tt.var": (lambda x: tt.var(x, axis=1, ddof=1), lambda x: tt.var(x, dim=1, unbiased=True)),
    "std": (lambda x: x.std(axis=0, keepdims=True, ddof=0), lambda x: x.std(dim=0, keepdim=True, unbiased=False)),
    "tt.std": (lambda x: tt.std(x, axis=1), lambda x: tt.std(x, dim=1, correction=1)),
    # with dim= max and min return (values, indices) as PyTorch does (tests/tinytensor/test_reduce.py)
    "max": (lambda x: x.max(axis=1), lambda x: x.max(dim=1).values),
    "tt.max": (lambda x: tt.max(x, axis=0, keepdims=True), lambda x: tt.max(x, dim=0, keepdim=True).values),
    "max keepdim with axis": (lambda x: x.max(axis=1, keepdims=True), lambda x: x.max(axis=1, keepdim=True)),
    "min": (lambda x: x.min(axis=1), lambda x: x.min(dim=1).values),
    "tt.min": (lambda x: tt.min(x, axis=0), lambda x: tt.min(x, dim=0)[0]),
    "logsumexp": (lambda x: x.logsumexp(axis=1), lambda x: x.logsumexp(dim=1)),
    "argmax": (lambda x: x.argmax(axis=1, keepdims=True), lambda x: x.argmax(dim=1, keepdim=True)),
    "tt.argmin": (lambda x: tt.argmin(x, axis=0), lambda x: tt.argmin(x, dim=0)),
    "softmax": (lambda x: x.softmax(axis=0), lambda x: x.softmax(dim=0)),
    "tt.log_softmax": (lambda x: tt.log_softmax(x, axis=0), lambda x: tt.log_softmax(x, dim=0)),
    "F.softmax": (lambda x: nn.functional.softmax(x, axis=0), lambda x: nn.functional.softmax(x, dim=0)),
    "F.log_softmax": (lambda x: nn.functional.log_softmax(x, 0), lambda x: nn.functional.log_softmax(x, dim=0)),
    "cat": (lambda x: tt.cat([x, x], axis=1), lambda x: tt.cat([x, x], dim=1)),
    "stack": (lambda x: tt.stack([x, x], axis=-1), lambda x: tt.stack([x, x], dim=-1)),
    "squeeze": (lambda x: x[:1].squeeze(axis=0), lambda x: x[:1].squeeze(dim=0)),
    "unsqueeze": (lambda x: x.unsqueeze(axis=1), lambda x: x.unsqueeze(dim=1)),
    "tt.unsqueeze": (lambda x: tt.unsqueeze(x, axis=2), lambda x: tt.unsqueeze(x, dim=2)),
    "flatten": (lambda x: x[None].flatten(start_axis=1, end_axis=2),
                lambda x: x[None].flatten(start_dim=1, end_dim=2)),
    "split": (lambda x: x.split(2, axis=1)[1], lambda x: x.split(2, dim=1)[1]),
    "tt.chunk": (lambda x: tt.chunk(x, 3, axis=1)[2], lambda x: tt.chunk(x, 3, dim=1)[2]),
}


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_pytorch_spelling_gives_the_numpy_result(name, device):
    numpy_spelling, pytorch_spelling = SPELLINGS[name]
    x = tt.tensor(X, dtype=tt.float64, device=device)
    expected, got = numpy_spelling(x), pytorch_spelling(x)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_hand_computed_values_with_pytorch_keywords():
    x = tt.tensor(X)
    assert x.sum(dim=1, keepdim=True).tolist() == [[6.0], [21.0]]
    assert x.max(dim=0).values.tolist() == [4.0, 6.0, 11.0] and x.max(axis=0).tolist() == [4.0, 6.0, 11.0]
    assert x.argmax(dim=1).tolist() == [2, 2]
    # row 1 = [4, 6, 11]: mean 7, squared deviations 9 + 1 + 16 = 26; / 2 unbiased, / 3 population
    np.testing.assert_allclose(x.var(dim=1).numpy(), [1.0, 13.0])
    np.testing.assert_allclose(x.var(dim=1, unbiased=False).numpy(), [2 / 3, 26 / 3], rtol=1e-6)


def test_the_gradient_is_the_same_whatever_the_spelling(rng):
    x = tt.tensor(rng.standard_normal((3, 4)), dtype=tt.float64, requires_grad=True)
    (numpy_grad,) = tt.grad(x.std(axis=1, ddof=0).sum(), x)
    (pytorch_grad,) = tt.grad(x.std(dim=1, correction=0).sum(), x)
    np.testing.assert_array_equal(numpy_grad.numpy(), pytorch_grad.numpy())
    tt.gradcheck(lambda x: x.var(dim=0, keepdim=True, unbiased=False), (x,))


@pytest.mark.parametrize("call, given", [
    (lambda x: x.sum(1, dim=0), r"axis \(given by position\) and dim="),
    (lambda x: tt.sum(x, axis=1, dim=0), "axis= and dim="),
    (lambda x: x.mean(keepdims=True, keepdim=True), "keepdims= and keepdim="),
    (lambda x: x.var(ddof=0, correction=0), "ddof= and correction="),
    (lambda x: tt.std(x, 1, False, 0, unbiased=False), r"ddof \(given by position\) and unbiased="),
    (lambda x: x.std(correction=1, unbiased=True), "correction= and unbiased="),
    (lambda x: tt.cat([x, x], 0, dim=0), r"axis \(given by position\) and dim="),
    (lambda x: x.flatten(start_axis=0, start_dim=0), "start_axis= and start_dim="),
    (lambda x: x.max(1, dim=0), "axis and dim="),
    (lambda x: tt.min(x, axis=1, dim=0), "axis and dim="),
    (lambda x: x.max(dim=0, keepdims=True, keepdim=True), "keepdims= and keepdim="),
])
def test_both_spellings_of_one_argument_is_a_type_error(call, given):
    with pytest.raises(TypeError, match=f"got both {given}, two spellings of the same argument"):
        call(tt.tensor(X))


def test_a_pytorch_keyword_the_op_does_not_have_is_a_type_error():
    with pytest.raises(TypeError, match="sum\\(\\) got an unexpected keyword argument 'unbiased'"):
        tt.tensor(X).sum(unbiased=True)
    with pytest.raises(TypeError, match="softmax\\(\\) got an unexpected keyword argument 'keepdim'"):
        tt.softmax(tt.tensor(X), dim=0, keepdim=True)


def test_help_shows_both_spellings():
    assert str(inspect.signature(tt.var)) == ("(x, axis=None, keepdims=False, ddof=1, *, dim=None, "
                                              "keepdim=None, correction=None, unbiased=None)")
    assert str(inspect.signature(tt.Tensor.softmax)) == "(self, axis=-1, *, dim=None)"
    # max names dim itself (it returns the indices too); the decorator adds only keepdim
    assert str(inspect.signature(tt.max)) == "(x, axis=None, keepdims=False, *, dim=None, keepdim=None)"
    assert "def sum(self, axis=None, keepdims=False):" in inspect.getsource(tt.Tensor.sum)   # the method


def test_softmax_modules_take_one_spelling():
    assert nn.Softmax().dim == -1 and nn.Softmax(dim=0).dim == 0 and nn.LogSoftmax(axis=1).dim == 1
    with pytest.raises(TypeError, match="LogSoftmax: got both dim=0 and axis=1, two spellings"):
        nn.LogSoftmax(dim=0, axis=1)


def test_dim_and_numel():
    x = tt.zeros(2, 3, 4)
    assert x.dim() == 3 and tt.tensor(5.0).dim() == 0
    assert x.numel() == 24 and tt.zeros(0, 3).numel() == 0


def test_multihead_attention_has_pytorch_spelling_too():
    assert nn.MultiheadAttention is nn.MultiHeadAttention
    attention = nn.MultiheadAttention(8, 2)
    assert isinstance(attention, nn.MultiHeadAttention) and attention.num_heads == 2
