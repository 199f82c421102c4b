import numpy as np

from tests.helpers import check_op


def test_matmul_broadcast_batch(device, rng):
    a, b = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2))
    check_op(lambda a, b: a @ b, np.matmul, a, b, device=device, second_order=True)
