"""Shared fixtures: the devices to run on, a seeded generator, and where the shared data lives."""
import os
from pathlib import Path

import numpy as np
import pytest

import tinytensor as tt

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    if tt.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and CuPy: tt.cuda.is_available() is False here")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test once on the CPU and once on the GPU (skipped without one)."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed_and_grad_mode():
    """Each test starts from the same seed with gradients recorded."""
    tt.manual_seed(0)
    with tt.enable_grad():
        yield


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data (or $TINYTENSOR_DATA); tests that need it skip with a reason when it is absent."""
    path = Path(os.environ.get("TINYTENSOR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (set TINYTENSOR_DATA)")
    return path
