"""Making tensors and converting them: dtype inference, constructors, random numbers, conversions, errors."""
import numpy as np
import pytest

import tinytensor as tt


# ----------------------------------------------------------------------------------- tt.tensor

@pytest.mark.parametrize("data, dtype", [
    (1.5, tt.float32), ([1.0, 2.5], tt.float32), ([1, 2.5], tt.float32), (3, tt.int64), ([[1, 2]], tt.int64),
    (True, tt.bool_), ([True, False], tt.bool_),
    (np.ones(2), tt.float64), (np.arange(3, dtype=np.int32), tt.int32), (np.ones(2, np.float16), tt.float16),
    (np.float64(2.0), tt.float64), (np.int32(7), tt.int32),
], ids=repr)
def test_tensor_infers_dtype(data, dtype, device):
    x = tt.tensor(data, device=device)
    assert x.dtype == dtype
    np.testing.assert_array_equal(x.numpy(), np.asarray(data))
    assert x.device == ("cpu" if device == "cpu" else "cuda:0")


def test_tensor_explicit_dtype_and_requires_grad():
    x = tt.tensor([1, 2], dtype=tt.float64, requires_grad=True)
    assert x.dtype == tt.float64 and x.requires_grad and x.is_leaf
    assert tt.tensor([1, 2], dtype="float16").dtype == tt.float16


def test_tensor_copies_its_data():
    source = np.zeros(3, dtype=np.float32)
    x = tt.tensor(source)
    source[0] = 5.0
    assert x.tolist() == [0.0, 0.0, 0.0]
    y = tt.tensor(x)
    y.data[1] = 1.0
    assert x.tolist() == [0.0, 0.0, 0.0]


def test_ragged_lists_are_refused_clearly():
    with pytest.raises(TypeError, match="ragged lists"):
        tt.tensor([[1.0], [2.0, 3.0]])


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="only floating-point tensors can require grad; this one is int64"):
        tt.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="int64"):
        tt.arange(3).requires_grad_()
    with pytest.raises(RuntimeError, match="int32"):
        tt.zeros(2, dtype=tt.int32, requires_grad=True)


# ----------------------------------------------------------------------------------- constructors

@pytest.mark.parametrize("make, expected, dtype", [
    (lambda d: tt.zeros(2, 3, device=d), np.zeros((2, 3)), tt.float32),
    (lambda d: tt.zeros((2, 3), dtype=tt.int64, device=d), np.zeros((2, 3)), tt.int64),
    (lambda d: tt.zeros(device=d), np.zeros(()), tt.float32),
    (lambda d: tt.ones([4], dtype=tt.float64, device=d), np.ones(4), tt.float64),
    (lambda d: tt.full((2, 2), 7.5, device=d), np.full((2, 2), 7.5), tt.float32),
    (lambda d: tt.full(3, 2, dtype=tt.int64, device=d), np.full(3, 2), tt.int64),
    (lambda d: tt.full(3, 2, device=d), np.full(3, 2), tt.int64),                 # the fill value decides,
    (lambda d: tt.full(2, True, device=d), np.full(2, True), tt.bool_),           # as in PyTorch
    (lambda d: tt.full(2, 2, dtype=tt.float64, device=d), np.full(2, 2.0), tt.float64),
    (lambda d: tt.arange(5, device=d), np.arange(5), tt.int64),
    (lambda d: tt.arange(2, 8, 3, device=d), np.arange(2, 8, 3), tt.int64),
    (lambda d: tt.arange(1, 2, 0.25, device=d), np.arange(1, 2, 0.25), tt.float32),
    (lambda d: tt.arange(3.0, device=d), np.arange(3.0), tt.float32),
    (lambda d: tt.arange(3, dtype=tt.float64, device=d), np.arange(3.0), tt.float64),
    (lambda d: tt.linspace(0, 1, 5, device=d), np.linspace(0, 1, 5), tt.float32),
    (lambda d: tt.eye(3, device=d), np.eye(3), tt.float32),
    (lambda d: tt.eye(2, 3, device=d), np.eye(2, 3), tt.float32),
    (lambda d: tt.zeros_like(tt.ones(2, dtype=tt.int64, device=d)), np.zeros(2), tt.int64),
    (lambda d: tt.ones_like(tt.zeros(2, 1, device=d), dtype=tt.float64), np.ones((2, 1)), tt.float64),
    (lambda d: tt.full_like(tt.zeros(3, device=d), -1), np.full(3, -1), tt.float32),
], ids=[f"case{i}" for i in range(20)])
def test_constructors(make, expected, dtype, device):
    x = make(device)
    assert x.dtype == dtype and x.shape == expected.shape and not x.requires_grad
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)


def test_empty_has_shape_and_dtype():
    x = tt.empty(2, 3, dtype=tt.float64)
    assert x.shape == (2, 3) and x.dtype == tt.float64


def test_constructors_can_make_leaves_that_require_grad():
    for x in (tt.zeros(2, requires_grad=True), tt.ones(2, requires_grad=True),
              tt.randn(2, requires_grad=True), tt.full((2,), 1.0, requires_grad=True),
              tt.ones_like(tt.zeros(2), requires_grad=True)):
        assert x.requires_grad and x.is_leaf


# ----------------------------------------------------------------------------------- random

def test_manual_seed_reproduces_every_generator(device):
    def draws():
        return [tt.rand(3, device=device), tt.randn(2, 2, device=device),
                tt.randint(0, 10, (4,), device=device), tt.randperm(5, device=device)]
    tt.manual_seed(123)
    first = draws()
    tt.manual_seed(123)
    second = draws()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    tt.manual_seed(124)
    assert not np.array_equal(tt.rand(3, device=device).numpy(), first[0].numpy())


def test_random_ranges_and_dtypes(device):
    u = tt.rand(1000, device=device)
    assert u.dtype == tt.float32 and 0 <= u.numpy().min() and u.numpy().max() < 1
    n = tt.randn((100, 10), dtype=tt.float64, device=device)
    assert n.dtype == tt.float64 and n.shape == (100, 10) and abs(n.numpy().mean()) < 0.1
    ints = tt.randint(3, 6, size=500, device=device)
    assert ints.dtype == tt.int64 and set(ints.tolist()) == {3, 4, 5}
    assert tt.randint(4, size=(2, 2), device=device).numpy().max() < 4
    assert sorted(tt.randperm(6, device=device).tolist()) == list(range(6))


def test_half_precision_random_numbers():
    u = tt.rand(20000, dtype=tt.float16)
    assert u.dtype == tt.float16 and u.numpy().max() < 1     # rounding up to 1.0 must not happen
    assert tt.randn(3, dtype=tt.float16).dtype == tt.float16


# ----------------------------------------------------------------------------------- conversion

def test_numpy_item_tolist():
    x = tt.tensor([[1.0, 2.0]])
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().shape == (1, 2)
    assert x.tolist() == [[1.0, 2.0]]
    assert tt.tensor(3).item() == 3 and isinstance(tt.tensor(3).item(), int)
    assert tt.ones(1, 1).item() == 1.0
    assert tt.tensor(2.5).tolist() == 2.5


def test_item_on_many_elements_names_the_shape():
    with pytest.raises(ValueError, match=r"one element.*shape \(2, 3\)"):
        tt.ones(2, 3).item()


def test_numpy_of_tensor_requiring_grad_points_to_detach():
    with pytest.raises(RuntimeError, match="detach"):
        tt.ones(2, requires_grad=True).numpy()


def test_detach_shares_data_and_cuts_the_graph():
    x = tt.ones(3, requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.data is y.data


@pytest.mark.parametrize("convert, dtype", [
    (lambda x: x.float(), tt.float32), (lambda x: x.double(), tt.float64), (lambda x: x.half(), tt.float16),
    (lambda x: x.long(), tt.int64), (lambda x: x.int(), tt.int32), (lambda x: x.to(tt.float64), tt.float64),
    (lambda x: x.to("float16"), tt.float16), (lambda x: x.to(dtype=tt.float64), tt.float64),
    (lambda x: x.to("cpu", tt.float64), tt.float64),
    (lambda x: x.to(tt.zeros(1, dtype=tt.float64)), tt.float64),
])
def test_dtype_conversions(convert, dtype):
    x = tt.tensor([1.5, -2.0], dtype=tt.float32)
    y = convert(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.numpy(), np.array([1.5, -2.0]).astype(dtype))


def test_to_same_dtype_and_device_is_self():
    x = tt.ones(2)
    assert x.to(tt.float32) is x and x.to("cpu") is x and x.float() is x and x.to(device="cpu") is x


def test_float_conversions_keep_the_gradient():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * tt.tensor([3.0, 4.0], dtype=tt.float64)).sum().backward()
    assert x.grad.dtype == tt.float32 and x.grad.tolist() == [3.0, 4.0]


def test_requires_grad_and_zero_grad():
    x = tt.ones(2)
    assert x.requires_grad_() is x and x.requires_grad
    (x * 3.0).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x.zero_grad()
    assert x.grad is None
    x.requires_grad_(False)
    assert not x.requires_grad


def test_requires_grad_cannot_be_switched_off_inside_a_graph():
    y = tt.ones(2, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


# ----------------------------------------------------------------------------------- devices

@pytest.mark.parametrize("make", [lambda: tt.ones(2, device="tpu"), lambda: tt.tensor([1.0], device="gpu"),
                                  lambda: tt.ones(2).to("cuda:x")])
def test_unknown_device_is_named(make):
    with pytest.raises(ValueError, match=r"unknown device '(tpu|gpu|cuda:x)'"):
        make()


def test_to_with_neither_device_nor_dtype_says_so():
    with pytest.raises(ValueError, match=r"'tpu' is neither a device.*nor a dtype"):
        tt.ones(2).to("tpu")


@pytest.mark.parametrize("make", [lambda: tt.ones(2, device="cuda"),
                                  lambda: tt.tensor([1.0], device="cuda:0"),
                                  lambda: tt.ones(2).to("cuda"), lambda: tt.ones(2).cuda()])
def test_cuda_without_a_gpu_says_how_to_fix(make, without_cupy):
    with pytest.raises(RuntimeError, match=r"CuPy is not installed: pip install|no CUDA GPU is usable"):
        make()


@pytest.mark.cuda
def test_round_trip_to_the_gpu_keeps_values_and_gradient():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda:0"
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    assert y.cpu().tolist() == [1.0, 2.0]


def test_randperm_without_a_permutation_method(monkeypatch):
    """CuPy's Generator has no permutation(); randperm then sorts random keys, still seeded."""
    from tinytensor import random as tt_random

    class OnlyRandom:
        def __init__(self, rng):
            self.random = rng.random

    plain = tt_random.generator
    monkeypatch.setattr(tt_random, "generator", lambda device="cpu": OnlyRandom(plain(device)))
    tt.manual_seed(5)
    first = tt.randperm(50)
    tt.manual_seed(5)
    assert first.dtype == tt.int64 and sorted(first.tolist()) == list(range(50))
    assert tt.randperm(50).tolist() == first.tolist()
