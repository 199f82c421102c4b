"""The CuPy stand-in is as strict as CuPy where it matters, and counts what it is asked."""
import numpy as np
import pytest

from tinytensor.testing import cupy_names
from tinytensor.testing.fake_cupy import Device, counting, cupy as cp, cupyx


def test_its_array_is_not_a_numpy_array_and_cannot_become_one_implicitly():
    x = cp.arange(6, dtype=cp.float32).reshape(2, 3)
    assert not isinstance(x, np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    np.testing.assert_array_equal(x.get(), np.arange(6, dtype=np.float32).reshape(2, 3))
    assert type(cp.asnumpy(x)) is np.ndarray


@pytest.mark.parametrize("host", [np.ones(3, dtype=np.float32), [1.0, 2.0, 3.0]])
def test_mixing_with_host_arrays_or_lists_raises_type_error(host):
    x = cp.ones(3, dtype=cp.float32)
    for attempt in (lambda: x + host, lambda: host * x, lambda: cp.maximum(x, host)):
        with pytest.raises(TypeError, match="Unsupported type"):
            attempt()
    with pytest.raises(TypeError, match="Unsupported type"):
        x += host


def test_a_host_array_cannot_fill_a_basic_slice_but_can_be_scattered():
    x = cp.zeros((2, 3))
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        x[0] = np.ones(3)
    x[cp.asarray([1])] = np.ones(3)
    x[0, 1:] = 2.0
    np.testing.assert_array_equal(x.get(), [[0, 2, 2], [1, 1, 1]])


def test_reductions_and_scalar_indexing_give_0d_arrays():
    x = cp.arange(4.0)
    for value in (x.sum(), cp.max(x), x[1], x.mean()):
        assert isinstance(value, cp.ndarray) and value.ndim == 0


def test_only_names_cupy_has():
    assert not hasattr(cp, "errstate")
    rng = cp.random.default_rng(0)
    for missing in ("permutation", "choice", "normal", "shuffle"):
        assert not hasattr(rng, missing)
    assert hasattr(rng, "standard_normal") and hasattr(cp, "add")
    with pytest.raises(AttributeError, match="names CuPy has"):
        cp.seterr
    assert set(dir(np.ndarray)) - set(dir(cp.ndarray)) >= {"resize", "byteswap", "setflags"}
    assert {n for n in dir(cp.ndarray) if not n.startswith("_")} <= cupy_names.NDARRAY
    assert {n for n in dir(cp) if not n.startswith("_")} <= cupy_names.MODULE
    assert {n for n in dir(rng) if not n.startswith("_")} <= cupy_names.GENERATOR
    assert cupy_names.SNAPSHOT.startswith("CuPy 13")


def test_cupy_quirks_ufunc_at_dtypes_erf_table_and_generator_dtypes():
    with pytest.raises(TypeError, match="add.at only supports"):
        cp.add.at(cp.zeros(3, dtype=cp.int64), cp.asarray([0, 0]), cp.ones(2, dtype=cp.int64))
    target = cp.zeros(3, dtype=cp.float16)
    cp.add.at(target, cp.asarray([0, 0]), cp.ones(2, dtype=cp.float16))
    assert target.get()[0] == 2
    erf = cupyx.scipy.special.erf
    assert erf(cp.ones(2, dtype=cp.float16)).dtype == np.float64
    assert erf(cp.ones(2, dtype=cp.float32)).dtype == np.float32
    assert abs(float(erf(cp.asarray(0.5))) - 0.5204998778130465) < 1e-15
    rng = cp.random.default_rng(0)
    assert rng.random(3, dtype=cp.float16).dtype == np.float16
    with pytest.raises(TypeError, match="Unsupported dtype"):
        rng.standard_normal(3, dtype=cp.float16)


def test_an_array_of_another_device_is_refused_without_peer_access():
    with Device(1):
        x = cp.ones(3)
        assert x.device.id == 1 and (x + x).device.id == 1
    assert cp.ones(1).device.id == 0
    with pytest.raises(ValueError, match="resides \\(1\\).*current device \\(0\\)"):
        x + 1
    rng = cp.random.default_rng(0)              # a generator's state lives on its device
    with pytest.raises(RuntimeError, match="allocated in a different device"):
        with Device(1):
            rng.random(2)


def test_counters_name_each_sync_by_kind_and_call_site():
    x = cp.arange(3.0)
    with counting() as counts:
        y = cp.exp(x) + 1                       # two device calls
        z = x.reshape(3, 1)                     # a view: no call
        float(y.sum()), bool((y > 0).all()), y.get(), y.tolist(), x[x > 1]
        cp.asarray(np.ones(2))
    assert counts.device_calls == 2 + 2 + 2 + 1 and z.shape == (3, 1)
    assert counts.host_to_device == 1
    kinds = sorted(kind for kind, _ in counts.syncs)
    assert kinds == ["bool", "float", "get", "mask", "tolist"]
    assert all("test_fake_cupy.py" in site for _, site in counts.syncs)
    assert counts.total_syncs == 5 and "float" in counts.report()
