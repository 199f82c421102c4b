"""Neural-network operations (also exposed as nn.functional)."""
from ..autograd import Function  # noqa: F401

__all__ = []
TENSOR_METHODS = []
