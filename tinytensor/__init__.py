"""tinytensor: a small deep-learning engine. Tensors with reverse-mode autodiff on NumPy or CuPy.

    import tinytensor as tt
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad            # tensor([2., 4., 6.])

The layers and models live in tinytensor.nn and tinytensor.models (`from tinytensor import nn`).
"""
import os as _os

# In a checkout, nn/ and models/ sit beside this folder; setup.cfg installs them as tinytensor.nn and
# tinytensor.models. When running from a checkout without installing (PYTHONPATH=.), look for
# subpackages beside this folder too, so both ways give the same module names.
_checkout = _os.path.dirname(__path__[0])
if not _os.path.isdir(_os.path.join(__path__[0], "nn")) and _os.path.isfile(_os.path.join(_checkout, "nn", "__init__.py")):
    __path__.append(_checkout)

from .tensor import (Tensor, bool_, default_dtype, float16, float32, float64, int8, int16, int32, int64,
                     uint8)
from . import backend, cuda, ops, viz
from .anomaly import detect_anomaly
from .autograd import Function, Node, enable_grad, grad, is_grad_enabled, no_grad, sum_to
from .creation import (arange, as_tensor, empty, eye, full, full_like, linspace, ones, ones_like, tensor,
                       zeros, zeros_like)
from .ops import *  # noqa: F401,F403
from .serialization import load, save
from .random import manual_seed, rand, randint, randn, randperm
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__version__ = "0.1.0"
