"""The op families. Each module lists in `__all__` what `tt.<name>` exports; Tensor's methods
(tensor.py) call these functions (`x.exp()` is `tt.exp(x)`)."""
from . import elementwise, linalg, loss, nn, reduce, shape
from .elementwise import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403

FAMILIES = (elementwise, linalg, reduce, shape, nn, loss)
__all__ = [name for family in FAMILIES for name in family.__all__]
