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
_cupyx = None         # its companion cupyx (for cupyx.scipy.special)
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
                import cupyx
                use_cupy(cupy, cupyx)
                return cupy
    raise RuntimeError(_cupy_error)


def use_cupy(cupy_module, cupyx_module):
    """Compute "cuda" devices with these modules: CuPy itself, or the test stand-in
    tinytensor.testing.fake_cupy on a machine without a GPU."""
    global _cupy, _cupyx
    _cupy, _cupyx = cupy_module, cupyx_module


def scipy_special():
    """cupyx.scipy.special, for the few functions CuPy keeps there (erf)."""
    _load_cupy()
    return _cupyx.scipy.special


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


_ON_CPU = contextlib.nullcontext()   # one shared do-nothing context: on_device("cpu") stays cheap


def on_device(device):
    """Context manager that makes `device` CuPy's current device, where it computes and allocates
    (does nothing for the CPU)."""
    if device == "cpu":
        return _ON_CPU
    return _load_cupy().cuda.Device(int(device[5:]))


def move(array, device):
    """Copy an array to `device` (returns it unchanged when it is already there)."""
    if device_of(array) == device:
        return array
    if device == "cpu":
        return to_host(array)
    with on_device(device):
        return _load_cupy().asarray(array)


# ----------------------------------------------------------------------------------- checks of values
#
# Some errors depend on values: an embedding id or a class target out of range, a probability outside
# [0, 1]. On the CPU, looking at the values costs nothing, so `check` raises at once and names the
# offending value. On a GPU, looking means waiting for every queued kernel and copying the answer back
# (a host sync), a round trip that would cost every training step. There the check stays on the
# device: it writes the failure into a flag on the device (a few tiny kernels, no wait), and the error
# is raised at the next read of any value from that device (`to_host`: item(), tolist(), numpy(), a
# progress bar reading the loss), which fetches the flag in the same transfer as the value. The error
# then arrives a little after the operation it names, as with PyTorch's device-side asserts.

_failed = {}       # device -> 0-d integer array on it: 0, or the code of a check that failed
_checks = {}       # (exception type, message) -> code (1, 2, ...)


def check(failed, error_type, message, exact_message=None):
    """Raise error_type(message) when the 0-d bool array `failed` is True: at once on the CPU (with
    exact_message(), which may read the offending values, when given), at the next read on a GPU."""
    device = device_of(failed)
    if device == "cpu":
        if failed:
            raise error_type(exact_message() if exact_message else message)
        return
    code = _checks.setdefault((error_type, message), len(_checks) + 1)
    with on_device(device):
        flag = failed * code               # 0, or the code (an integer array: its dtype is read back)
        previous = _failed.get(device)
        _failed[device] = flag if previous is None else _cupy.maximum(previous, flag)


def to_host(array):
    """A device array copied to a NumPy array, with the checks still pending on that device fetched in
    the same transfer (one sync, not two); raises the error of a check that failed."""
    device = device_of(array)
    if device == "cpu":
        return array
    failed = _failed.pop(device, None)
    if failed is None:
        return array.get()
    xp = _cupy
    with on_device(device):   # the value's bytes, then the flag's, in one buffer
        packed = xp.concatenate([xp.ascontiguousarray(array).reshape(-1).view(xp.uint8),
                                 failed.reshape(1).view(xp.uint8)])
    host = packed.get()
    size = failed.dtype.itemsize
    _raise_if_failed(int(host[-size:].view(failed.dtype)[0]), device)
    return host[:-size].view(array.dtype).reshape(array.shape)


def raise_failed_checks(device):
    """Raise the error of a check that failed on `device`; reads its flag (a sync) if one is pending."""
    failed = _failed.pop(device, None)
    if failed is not None:
        _raise_if_failed(int(failed.get()), device)


def _raise_if_failed(code, device):
    if code:
        error_type, message = next(key for key, value in _checks.items() if value == code)
        raise error_type(f"{message} (found by a check on {device}, raised at this read of a value)")
