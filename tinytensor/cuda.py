"""`tt.cuda`: is a GPU usable, how many, and waiting for it."""
from . import backend


def is_available():
    """True when CuPy is installed and a CUDA GPU can be used."""
    return backend.is_available()


def device_count():
    return backend._load_cupy().cuda.runtime.getDeviceCount() if is_available() else 0


def synchronize():
    """Wait until the current GPU has finished all queued work (for timing); raise the error of a
    value check that failed on it meanwhile (see backend.check)."""
    if backend._cupy is not None:
        device = backend._cupy.cuda.Device()
        device.synchronize()
        backend.raise_failed_checks(f"cuda:{device.id}")


def get_device_name(index=0):
    """The GPU's name, e.g. 'NVIDIA H200'."""
    name = backend._load_cupy().cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else name
