"""Tools for testing tinytensor itself: `fake_cupy`, a strict NumPy-backed stand-in for CuPy."""
