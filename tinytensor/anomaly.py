"""Anomaly detection: `with tt.detect_anomaly():` finds the op that first made a NaN or an inf.

While it is on, every Function.apply notes the line of the user's code that called it and checks
forward's output, and every backward step checks the gradients it returns. The first op whose result
holds a NaN or an inf that what it was given did not hold raises an error naming the op, the shapes,
the first bad element and that line. With the mode off (the default) none of this runs: a normal run
pays one flag test per op.

    with tt.detect_anomaly():
        loss = model(x).log().mean()     # RuntimeError: Log made nan in its output ... at train.py:12
        loss.backward()
"""
import contextlib
import linecache
import os
import sys
import sysconfig

from . import backend

enabled = False
_in_backward = False   # True while a node's backward runs: its inner ops are checked as that backward


@contextlib.contextmanager
def detect_anomaly():
    """Context manager (or decorator): raise at the first op whose forward or backward makes NaN/inf."""
    global enabled
    previous, enabled = enabled, True
    try:
        yield
    finally:
        enabled = previous


def watch_forward(node, arrays, output):
    """Note on the node where the user's code called its op; raise when forward made a NaN or an inf
    that none of its arguments had (inf - inf = nan counts; nan in, nan out does not)."""
    if _in_backward:
        return
    node.created_at = _user_call_site()
    new = _new_bad_values(output, [a for a in arrays if _is_float_array(a)])
    if new:
        shapes = ", ".join(str(tuple(a.shape)) for a in arrays if _is_float_array(a))
        raise RuntimeError(
            f"detect_anomaly: {node.name} made {_first(new, output)} in its {tuple(output.shape)} "
            f"output, from inputs of shapes ({shapes}) without {new}{_called_at(node)}")


def watch_backward(node, grad_output):
    """Run the node's backward; raise when a gradient it returns has a NaN or an inf that the incoming
    gradient had not."""
    global _in_backward
    previous, _in_backward = _in_backward, True
    try:
        grads = node.fn.backward(node, grad_output)
    finally:
        _in_backward = previous
    for index, grad in enumerate(grads if isinstance(grads, tuple) else (grads,)):
        array = getattr(grad, "data", grad)
        new = _new_bad_values(array, [grad_output.data]) if _is_float_array(array) else ""
        if new:
            raise RuntimeError(
                f"detect_anomaly: {node.name}.backward made {_first(new, array)} in the "
                f"{tuple(array.shape)} gradient of its argument {index}, from a "
                f"{tuple(grad_output.shape)} gradient of its output without {new}{_called_at(node)}")
    return grads


def _is_float_array(value):
    return hasattr(value, "dtype") and hasattr(value, "shape") and value.dtype.kind in "fc"


def _xp(array):
    return backend.xp_for(backend.device_of(array))


def _bad_values(array):
    """Which of 'nan' and 'inf' the array holds."""
    xp = _xp(array)
    return {kind for kind, test in (("nan", xp.isnan), ("inf", xp.isinf)) if bool(test(array).any())}


def _new_bad_values(array, sources):
    """'nan' or 'inf' (or 'nan or inf') when the array holds that and none of the sources did; ''."""
    new = _bad_values(array)
    for source in sources:
        if not new:
            break
        new -= _bad_values(source)
    return " or ".join(sorted(new))


def _first(kinds, array):
    """'nan at index (1, 2)': the first element of those kinds, in C order."""
    xp = _xp(array)
    bad = xp.isnan(array) if kinds == "nan" else xp.isinf(array) if kinds == "inf" else ~xp.isfinite(array)
    index = tuple(int(i) for i in xp.argwhere(bad)[0])
    return f"{array[index].item()} at index {index}"


def _called_at(node):
    """'; the op was called at path:line: source code', or '' when no user frame was found."""
    if node.created_at is None:
        return ""
    path, line = node.created_at
    code = linecache.getline(path, line).strip()
    return f"; the op was called at {path}:{line}" + (f": {code}" if code else "")


_ENGINE_AND_STDLIB = [os.path.dirname(__file__), sysconfig.get_paths()["stdlib"]]


def _library_folders():
    """Folders whose frames are not the user's: tinytensor (with its nn and models) and the stdlib."""
    folders = list(_ENGINE_AND_STDLIB)
    for name in ("tinytensor.nn", "tinytensor.models"):
        module = sys.modules.get(name)
        if module is not None:
            folders.append(os.path.dirname(module.__file__))
    return tuple(os.path.join(folder, "") for folder in folders)


def _user_call_site():
    """(path, line) of the innermost frame outside the library, or None. Only the two are kept, not the
    frame, which would keep all its local variables alive with the graph."""
    library = _library_folders()
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(library):
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)
