"""tt.save / tt.load: state dicts (nested dicts, lists and tuples of tensors, arrays, numbers, strings)
in one NumPy .npz file, without pickle.

The arrays go into the archive as arr_0, arr_1, ...; the structure goes in as JSON text (the array
named `tinytensor`), where a tensor is {"__tensor__": i, "device": ..., "requires_grad": ...}, an array
{"__ndarray__": i}, a tuple {"__tuple__": [...]}, and a dict whose keys are not all plain strings
{"__dict__": [[key, value], ...]}. Loading runs no code from the file (allow_pickle=False).

Writes are atomic: the file is written beside the target under a temporary name, flushed to disk, then
renamed over the target, so a crash leaves either the old file or the new one, never half of one. The
temporary name, `.<name>.<process id>.<random>.tmp`, says whose it is: a process killed mid-write
(SIGKILL) leaves its temporary file behind, and the next save to that path deletes it once that process
is gone.
"""
import glob
import json
import os
import tempfile
import zipfile

import numpy as np

from . import backend
from .tensor import Tensor

_META = "tinytensor"
_FORMAT_VERSION = 1
_MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__")


def save(obj, path):
    """Write obj (e.g. {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3})."""
    arrays = []
    tree = _encode(obj, arrays, "obj")
    meta = json.dumps({"format": _META, "version": _FORMAT_VERSION, "tree": tree})
    files = {f"arr_{i}": array for i, array in enumerate(arrays)}
    files[_META] = np.frombuffer(meta.encode(), dtype=np.uint8)
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"tt.save: cannot write {path}: the folder {folder} does not exist "
                                "(make it first, e.g. Path(folder).mkdir(parents=True))")
    _remove_leftovers(folder, name)
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix=f".{name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **files)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        os.unlink(temp_path)
        raise


def _remove_leftovers(folder, name):
    """Delete the temporary files of earlier saves to `name` whose process has ended (killed mid-write)."""
    for leftover in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
        parts = os.path.basename(leftover)[len(name) + 2:-len(".tmp")].split(".")
        if len(parts) != 2 or not parts[0].isdigit():
            continue                      # the temporary file of another name (e.g. <name>.best)
        if _is_running(int(parts[0])):
            continue                      # its process is writing it right now
        try:
            os.unlink(leftover)
        except OSError:                   # gone already, or held open (Windows refuses to delete it)
            pass


def _is_running(pid):
    """Whether a process with this id exists. On Windows a file that a running process holds open
    cannot be deleted anyway, so there every leftover is simply tried."""
    if os.name == "nt":
        return False
    try:
        os.kill(pid, 0)                   # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:               # it exists, and belongs to another user
        return True
    return True


def load(path, map_location=None):
    """Read what save wrote. Tensors go to `map_location` ('cpu', 'cuda', 'cuda:N') or, when it is
    None, back to the device they were saved from."""
    path = os.fspath(path)
    target = None if map_location is None else backend.parse_device(map_location)
    with open(path, "rb") as file:
        head = file.read(4)
    if head != b"PK\x03\x04":   # every .npz (a zip archive) starts so
        raise ValueError(f"tt.load: {path} is not a file written by tt.save (it is not a .npz "
                         f"archive: it starts with {head!r})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _META not in archive.files:
                raise ValueError(f"tt.load: {path} is a NumPy archive but not one written by tt.save "
                                 f"(it has no '{_META}' entry)")
            meta = json.loads(archive[_META].tobytes().decode())
            arrays = {name: archive[name] for name in archive.files if name != _META}
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"tt.load: {path} is truncated or damaged ({type(err).__name__}: {err})") from err
    if meta.get("format") != _META or meta.get("version", 0) > _FORMAT_VERSION:
        raise ValueError(f"tt.load: {path} has format {meta.get('format')!r} version {meta.get('version')}, "
                         f"which this tinytensor (format version {_FORMAT_VERSION}) cannot read")
    try:
        return _decode(meta["tree"], arrays, target)
    except KeyError as err:
        raise ValueError(f"tt.load: {path} is damaged: its structure names the array {err} but the archive "
                         f"holds only {len(arrays)} array(s)") from None


def _encode(value, arrays, where):
    """The JSON form of value; arrays it holds are appended to `arrays`. `where` names it in errors."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        arrays.append(backend.move(value.data, "cpu"))
        return {"__tensor__": len(arrays) - 1, "device": value.device, "requires_grad": value.requires_grad}
    if backend.is_array(value) or isinstance(value, np.generic):
        array = backend.move(value, "cpu") if backend.is_array(value) else np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise TypeError(f"tt.save: cannot save the {array.dtype} array at {where}: only numeric "
                            "and bool arrays are saved (no object arrays, no pickle)")
        arrays.append(array)
        return {"__ndarray__": len(arrays) - 1, "scalar": isinstance(value, np.generic)}
    if isinstance(value, (list, tuple)):
        items = [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        if all(isinstance(key, str) and key not in _MARKERS for key in value):
            return {key: _encode(item, arrays, f"{where}[{key!r}]") for key, item in value.items()}
        for key in value:
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise TypeError(f"tt.save: cannot save the dict key {key!r} ({type(key).__name__}) at "
                                f"{where}: keys must be strings, numbers, booleans or None")
        return {"__dict__": [[key, _encode(item, arrays, f"{where}[{key!r}]")] for key, item in value.items()]}
    raise TypeError(f"tt.save: cannot save a {type(value).__name__} at {where}: only tensors, arrays, "
                    "numbers, strings, None, and dicts, lists and tuples of them are saved (no pickle)")


def _decode(node, arrays, device):
    if isinstance(node, list):
        return [_decode(item, arrays, device) for item in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        target = device or node["device"]
        data = backend.move(arrays[f"arr_{node['__tensor__']}"], target)
        return Tensor._from_array(data, target).requires_grad_(node["requires_grad"])
    if "__ndarray__" in node:
        array = arrays[f"arr_{node['__ndarray__']}"]
        return array[()] if node["scalar"] else array
    if "__tuple__" in node:
        return tuple(_decode(item, arrays, device) for item in node["__tuple__"])
    if "__dict__" in node:
        return {key: _decode(item, arrays, device) for key, item in node["__dict__"]}
    return {key: _decode(item, arrays, device) for key, item in node.items()}
