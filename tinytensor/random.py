"""Random numbers. One generator per device, all seeded together by manual_seed.

The same seed gives the same numbers on the same device (CPU and GPU generators differ from each other).
get_rng_state() / set_rng_state(state) save and restore where every generator is, so a training run
resumed from a checkpoint draws the same dropout masks and shuffles as one that never stopped."""
import numpy as np

from . import backend
from .creation import _filled
from .tensor import int64

_seed = 0
_generators = {}   # device name -> NumPy or CuPy Generator
_restored = {}     # device name -> state from set_rng_state, applied when that device's generator is made
_gpu_restarts = 0  # how many times get_rng_state restarted the GPU generators (see there)


def manual_seed(seed):
    """Reseed the generators of every device (including ones first used later)."""
    global _seed, _gpu_restarts
    _seed, _gpu_restarts = int(seed), 0
    _generators.clear()
    _restored.clear()


def generator(device="cpu"):
    """The random generator of a device: a NumPy `Generator`, or CuPy's on a GPU."""
    device = backend.parse_device(device)
    if device not in _generators:
        _generators[device] = _new_generator(device, _restored.pop(device, None))
    return _generators[device]


def _new_generator(device, state=None):
    """A generator for `device`, at `state` (from get_rng_state) or fresh from the seed."""
    xp = backend.xp_for(device)
    with backend.on_device(device):
        if state is None:
            return xp.random.default_rng(_seed)
        if "restart" in state:                  # a GPU generator, restarted from a recorded seed
            return xp.random.default_rng([_seed, state["restart"]])
        rng = xp.random.default_rng(_seed)
        rng.bit_generator.state = state
        return rng


def get_rng_state():
    """Where every device's generator is, as plain numbers and strings (tt.save writes it as it is).

    A NumPy generator's state is read as it is. A CuPy generator keeps its state on the GPU with no way
    to read it, so it is restarted here from a new seed made of (manual seed, restart count), and that is
    what gets recorded: its numbers then depend on where states were taken, which is the same for a
    run and for the resumption of it."""
    global _gpu_restarts
    states = {}
    for device, rng in _generators.items():
        if isinstance(rng, np.random.Generator):
            states[device] = rng.bit_generator.state
        else:
            _gpu_restarts += 1
            states[device] = {"restart": _gpu_restarts}
            _generators[device] = _new_generator(device, states[device])
    return {"seed": _seed, "gpu_restarts": _gpu_restarts, "generators": states}


def set_rng_state(state):
    """Put every generator back where get_rng_state found it. Devices the state names are restored when
    first used, so a state saved on a GPU machine loads on one without a GPU."""
    global _seed, _gpu_restarts
    if not isinstance(state, dict) or not {"seed", "generators"} <= set(state):
        raise ValueError("set_rng_state: expected the dict get_rng_state returns, with 'seed' and "
                         f"'generators', got {type(state).__name__} "
                         f"{sorted(state) if isinstance(state, dict) else ''}".rstrip())
    _seed, _gpu_restarts = int(state["seed"]), int(state.get("gpu_restarts", 0))
    _generators.clear()
    _restored.clear()
    _restored.update(state["generators"])


def _sample(draw, shape, dtype, below=None):
    """draw(shape, dtype) in float32 or float64; other dtypes (float16) are cast from float32, then
    kept under `below` where rounding could reach it."""
    if dtype in (np.float32, np.float64):
        return draw(shape, dtype=dtype)
    sample = draw(shape, dtype=np.float32).astype(dtype)
    if below is not None:
        sample = sample.clip(None, np.nextafter(dtype.type(below), dtype.type(0)))
    return sample


def rand(*shape, dtype=None, device="cpu", requires_grad=False):
    """Uniform on [0, 1)."""
    return _filled(lambda xp, s, d: _sample(generator(device).random, s, d, below=1), shape, dtype,
                   device, requires_grad)


def randn(*shape, dtype=None, device="cpu", requires_grad=False):
    """Standard normal."""
    return _filled(lambda xp, s, d: _sample(generator(device).standard_normal, s, d), shape, dtype,
                   device, requires_grad)


def randint(low, high=None, size=(), dtype=None, device="cpu"):
    """Integers in [low, high) (or [0, low) when high is omitted), int64 by default."""
    if high is None:
        low, high = 0, low
    size = (size,) if isinstance(size, int) else tuple(size)
    return _filled(lambda xp, s, d: generator(device).integers(low, high, s).astype(d), (size,),
                   dtype or int64, device, False)


def randperm(n, device="cpu"):
    """A random permutation of 0..n-1 (int64)."""
    def draw(xp, shape, dtype):
        rng = generator(device)
        if hasattr(rng, "permutation"):
            return rng.permutation(n).astype(dtype)
        return rng.random(n).argsort().astype(dtype)   # CuPy's Generator has no permutation: sort random keys
    return _filled(draw, (), int64, device, False)
