"""Shared fixtures: the devices to run on, a seeded generator, and where the shared data lives."""
import os
from pathlib import Path

import numpy as np
import pytest

import tinytensor as tt
from tinytensor.testing import fake_cupy

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

# The cuda tests run on a GPU with CuPy when there is one, and everywhere else on the strict CuPy
# stand-in (tinytensor/testing/fake_cupy.py), so every commit runs them.
REAL_GPU = tt.cuda.is_available()
if not REAL_GPU:
    fake_cupy.install()


def pytest_report_header(config):
    return "cuda tests: " + ("CuPy on a GPU" if REAL_GPU else "the CuPy stand-in tinytensor.testing.fake_cupy")


@pytest.fixture
def without_cupy(monkeypatch):
    """As on a machine where CuPy is not installed (or has no GPU): the stand-in switched off."""
    if REAL_GPU:
        pytest.skip("a GPU is present, so cuda works")
    monkeypatch.setattr(tt.backend, "_cupy", None)


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test once on the CPU and once on the GPU (skipped without one)."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed_and_grad_mode():
    """Each test starts from the same seed with gradients recorded, and no failed GPU value check left
    pending by an earlier test (see backend.check)."""
    tt.manual_seed(0)
    tt.backend._failed.clear()
    with tt.enable_grad():
        yield


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data (or $TINYTENSOR_DATA); tests that need it skip with a reason when it is absent."""
    path = Path(os.environ.get("TINYTENSOR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (set TINYTENSOR_DATA)")
    return path
