"""check_op: one call checks an op's forward against NumPy and its gradients by finite differences."""
import numpy as np

import tinytensor as tt


def to_numpy(x):
    return x.detach().numpy() if isinstance(x, tt.Tensor) else np.asarray(x)


def check_op(op, reference, *arrays, device="cpu", atol=1e-6, rtol=1e-5, second_order=False,
             fast=False, grad_inputs=None):
    """Check `op` (on Tensors) against `reference` (on NumPy arrays) in float64, then its gradients.

    Float arrays become float64 tensors that require grad (or only those listed in grad_inputs);
    other arguments pass through unchanged. With second_order, second derivatives are checked too."""
    tensors = []
    for i, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            wants_grad = a.dtype.kind == "f" and (grad_inputs is None or i in grad_inputs)
            dtype = tt.float64 if a.dtype.kind == "f" else None
            a = tt.tensor(a, dtype=dtype, device=device).requires_grad_(wants_grad)
        tensors.append(a)
    out = op(*tensors)
    np.testing.assert_allclose(to_numpy(out), reference(*arrays), atol=atol, rtol=rtol)
    if any(isinstance(t, tt.Tensor) and t.requires_grad for t in tensors):
        assert tt.gradcheck(op, tensors, fast=fast)
        if second_order:
            assert tt.gradgradcheck(op, tensors, fast=fast)
    return out
