"""Shared by the check scripts of the derivation pages: finite differences and a one-line verdict."""
import numpy as np


def numeric_gradient(loss, x, eps=1e-6):
    """d loss / dx by central differences; loss(x) returns a float, x is a float64 array (each element
    is nudged and put back)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = loss(x)
        x[i] = old - eps
        minus = loss(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def agree(what, formula, reference, tolerance=1e-6):
    """Print how far the page's formula is from a reference (relative to the reference's size); True
    when within tolerance."""
    assert formula.shape == reference.shape, f"{what}: shapes {formula.shape} and {reference.shape}"
    error = np.max(np.abs(formula - reference)) / max(np.max(np.abs(reference)), 1e-12)
    ok = error < tolerance
    print(f"{'ok  ' if ok else 'FAIL'} {what}: largest difference {error:.1e} (relative)")
    return ok
