"""Devices and array modules.

"cpu" computes with NumPy, "cuda" / "cuda:N" with CuPy. Everywhere in the engine `xp` names the array
module that holds a tensor's data, so one line of code runs on both: `xp.exp(x)`.
CuPy is imported the first time a CUDA device is asked for, so NumPy-only installs never touch it.

Public (`tt.backend`): nn and user code that work on raw arrays use these functions to name, create on
and move between devices.
"""
import contextlib

import numpy as np

_cupy = None          # the cupy module, once a CUDA device has been used
_cupy_error = None    # why CuPy could not be used, remembered so the message stays the same


def _load_cupy():
    """Import CuPy and check that a GPU is there; raise an error saying how to fix it if not."""
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    if _cupy_error is None:
        try:
            import cupy
        except ImportError:
            _cupy_error = ('CuPy is not installed: pip install -e ".[cuda]" '
                           "(needs an NVIDIA GPU and CUDA 12)")
        else:
            try:
                count = cupy.cuda.runtime.getDeviceCount()
            except Exception as err:  # the CUDA driver itself is missing or broken
                count, reason = 0, f" ({err})"
            else:
                reason = ""
            if count == 0:
                _cupy_error = f"CuPy is installed but no CUDA GPU is usable{reason}; use device='cpu'"
            else:
                _cupy = cupy
                return cupy
    raise RuntimeError(_cupy_error)


def cuda_unused():
    """True until a CUDA device is first used (so every array is still a NumPy one)."""
    return _cupy is None


def is_available():
    """True when CuPy is installed and at least one CUDA GPU can be used."""
    try:
        _load_cupy()
    except RuntimeError:
        return False
    return True


def parse_device(device):
    """Normalise a device name: None/'cpu' -> 'cpu', 'cuda' -> 'cuda:0', 'cuda:N' stays."""
    if device is None:
        return "cpu"
    name = str(device)
    if name == "cpu":
        return name
    if name == "cuda":
        name = "cuda:0"
    if name.startswith("cuda:") and name[5:].isdigit():
        count = _load_cupy().cuda.runtime.getDeviceCount()
        if int(name[5:]) >= count:
            raise RuntimeError(f"device {name} does not exist: this machine has {count} CUDA GPU(s)")
        return name
    raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")


def xp_for(device):
    """The array module for a (normalised) device name."""
    return np if device == "cpu" else _load_cupy()


def is_array(value):
    """True for a NumPy or CuPy array."""
    return isinstance(value, np.ndarray) or (_cupy is not None and isinstance(value, _cupy.ndarray))


def device_of(array):
    """The device name an array lives on."""
    if isinstance(array, np.ndarray) or _cupy is None or not isinstance(array, _cupy.ndarray):
        return "cpu"
    return f"cuda:{array.device.id}"


def on_device(device):
    """Context manager that makes CuPy allocate on `device` (does nothing for the CPU)."""
    if device == "cpu":
        return contextlib.nullcontext()
    return _load_cupy().cuda.Device(int(device[5:]))


def move(array, device):
    """Copy an array to `device` (returns it unchanged when it is already there)."""
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    with on_device(device):
        return _load_cupy().asarray(array)
