"""Random numbers. One generator per device, all seeded together by manual_seed.

The same seed gives the same numbers on the same device (CPU and GPU generators differ from each other).
state_dict() / load_state_dict(state) save and restore where every generator is, so a training run
resumed from a checkpoint draws the same dropout masks and shuffles as one that never stopped."""
import numpy as np

from . import backend
from .creation import _filled
from .tensor import int64

_seed = 0
_generators = {}   # device name -> NumPy or CuPy Generator


def manual_seed(seed):
    """Reseed the generators of every device (including ones first used later)."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(device="cpu"):
    """The random generator of a device: a NumPy `Generator`, or CuPy's on a GPU."""
    device = backend.parse_device(device)
    if device not in _generators:
        with backend.on_device(device):
            _generators[device] = backend.xp_for(device).random.default_rng(_seed)
    return _generators[device]


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


def state_dict():
    """Where every generator is: {'seed': the manual seed, 'generators': {device: state}}, for a
    checkpoint (tt.save writes it) and load_state_dict. A CPU generator's state is NumPy's dict of
    ints; a GPU generator's is a copy of its CuPy state array (the cuRAND states: all of its state)."""
    states = {}
    for device, rng in _generators.items():
        states[device] = rng.bit_generator.state if isinstance(rng, np.random.Generator) \
            else rng.bit_generator._state.copy()
    return {"seed": _seed, "generators": states}


def load_state_dict(state):
    """Put every generator back where state_dict() found it. Generators of GPUs this machine lacks are
    left out: nothing here can draw from them."""
    if not isinstance(state, dict) or not {"seed", "generators"} <= set(state):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"tt.random.load_state_dict: expected what tt.random.state_dict() returns, a dict "
                         f"with 'seed' and 'generators'; got {found}")
    manual_seed(state["seed"])
    for device, saved in state["generators"].items():
        if device != "cpu" and not backend.is_available():
            continue
        rng = generator(device)
        if isinstance(rng, np.random.Generator):
            rng.bit_generator.state = saved
            continue
        target = rng.bit_generator._state
        if tuple(saved.shape) != tuple(target.shape):
            raise ValueError(f"tt.random.load_state_dict: the {device} generator state has {saved.shape[0]} "
                             f"bytes, this GPU's has {target.shape[0]}: it was saved on another GPU model")
        target[...] = backend.move(saved, device)
