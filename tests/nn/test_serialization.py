"""tt.save / tt.load: round trips of nested state, atomic writes, clear errors for bad files."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tinytensor import nn
import tinytensor as tt


def test_round_trip_of_nested_state(tmp_path):
    state = {
        "weights": {"fc.weight": tt.tensor([[1.0, 2.0]]), "steps": tt.tensor(3, dtype=tt.int64)},
        "optimizer": {"state": {0: {"step": 2, "exp_avg": tt.tensor([0.5], dtype=tt.float64)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}]},
        "array": np.arange(4, dtype=np.int32), "scalar": np.float32(2.5),
        "misc": [None, True, "text", 1.5, -7], "__tensor__": "a key that looks like a marker",
    }
    tt.save(state, tmp_path / "state.npz")
    loaded = tt.load(tmp_path / "state.npz")
    assert loaded["weights"]["fc.weight"].tolist() == [[1.0, 2.0]]
    assert loaded["weights"]["fc.weight"].dtype == tt.float32
    assert loaded["weights"]["steps"].dtype == tt.int64 and loaded["weights"]["steps"].item() == 3
    group = loaded["optimizer"]["param_groups"][0]
    assert group == {"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}     # tuple stays a tuple
    assert list(loaded["optimizer"]["state"]) == [0]                       # int key stays an int
    assert loaded["optimizer"]["state"][0]["exp_avg"].dtype == tt.float64
    assert loaded["array"].dtype == np.int32 and loaded["array"].tolist() == [0, 1, 2, 3]
    assert loaded["scalar"] == np.float32(2.5) and isinstance(loaded["scalar"], np.float32)
    assert loaded["misc"] == [None, True, "text", 1.5, -7]
    assert loaded["__tensor__"] == "a key that looks like a marker"


def test_requires_grad_is_kept(tmp_path):
    tt.save([tt.ones(2, requires_grad=True), tt.ones(2)], tmp_path / "t.npz")
    a, b = tt.load(tmp_path / "t.npz")
    assert a.requires_grad and not b.requires_grad


def test_model_state_dict_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model[1].running_mean.data[...] = 0.25
    tt.save(model.state_dict(), tmp_path / "model.npz")
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    fresh.load_state_dict(tt.load(tmp_path / "model.npz"))
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_map_location(tmp_path, device):
    tt.save({"w": tt.ones(2)}, tmp_path / "w.npz")
    w = tt.load(tmp_path / "w.npz", map_location=device)["w"]
    assert w.device.startswith(device) and w.tolist() == [1.0, 1.0]


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "ckpt.npz"
    tt.save({"a": tt.ones(1)}, path)
    tt.save({"a": tt.zeros(1)}, path)                       # replaces the old file
    assert tt.load(path)["a"].item() == 0
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    with pytest.raises(TypeError, match=r"cannot save a function at obj\['bad'\]"):
        tt.save({"a": tt.ones(1), "bad": lambda: 0}, path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]     # no temporary file left behind
    assert tt.load(path)["a"].item() == 0                   # and the old file is intact


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot write .*ckpt.npz: the folder .*nowhere does not exist"):
        tt.save({"a": 1}, tmp_path / "nowhere" / "ckpt.npz")


def test_failure_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tt.save({"a": tt.ones(1)}, path)

    def broken_fsync(fd):
        raise OSError("disk full")
    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        tt.save({"a": tt.zeros(1)}, path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert tt.load(path)["a"].item() == 1


KILLED_MID_WRITE = """
import os, signal, sys
import numpy as np
import tinytensor as tt

def write_half_then_die(file, **arrays):
    file.write(b"PK" + bytes(5000))          # the start of an archive, then the process is killed
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)

np.savez = write_half_then_die
tt.save({"w": tt.zeros(1000)}, sys.argv[1])
"""


def test_a_save_killed_mid_write_leaves_the_old_file_and_its_leftover_is_cleaned_next_time(tmp_path):
    path = tmp_path / "ckpt.npz"
    tt.save({"w": tt.ones(2)}, path)
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(path)])
    assert killed.returncode == -signal.SIGKILL
    (leftover,) = [name for name in os.listdir(tmp_path) if name != "ckpt.npz"]
    assert leftover.startswith(".ckpt.npz.") and leftover.endswith(".tmp")
    assert (tmp_path / leftover).stat().st_size == 5002
    assert tt.load(path)["w"].tolist() == [1.0, 1.0]        # the old checkpoint is whole
    tt.save({"w": tt.zeros(2)}, path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_only_leftovers_of_ended_processes_and_of_this_path_are_deleted(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stale = tmp_path / f".ckpt.npz.{ended.pid}.k3j2h1.tmp"          # a fake partial file
        in_progress = tmp_path / f".ckpt.npz.{running.pid}.a8b7c6.tmp"
        other_path = tmp_path / f".ckpt.npz.best.{ended.pid}.x1y2z3.tmp"      # of another file name
        for partial in (stale, in_progress, other_path):
            partial.write_bytes(b"PK\x03\x04 half")
        tt.save({"w": tt.ones(1)}, tmp_path / "ckpt.npz")
        assert not stale.exists() and in_progress.exists() and other_path.exists()
    finally:
        running.kill()
        running.wait()


def test_truncated_file_error_names_it(tmp_path):
    path = tmp_path / "ckpt.npz"
    tt.save({"a": tt.ones(100)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"tt.load: {path} is truncated or damaged"):
        tt.load(path)


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_bytes(b"not a checkpoint at all"), "is not a file written by tt.save"),
    (lambda p: p.write_bytes(b""), "is not a file written by tt.save"),
    (lambda p: np.save(open(p, "wb"), np.zeros(3)), "is not a file written by tt.save"),
    (lambda p: np.savez(open(p, "wb"), a=np.zeros(3)), "NumPy archive but not one written by tt.save"),
])
def test_foreign_file_error_names_it(tmp_path, write, message):
    path = tmp_path / "foreign.bin"
    write(path)
    with pytest.raises(ValueError, match=message) as info:
        tt.load(path)
    assert str(path) in str(info.value)


def test_no_pickle_is_used(tmp_path):
    with pytest.raises(TypeError, match="object array"):
        tt.save({"objects": np.array([{}, []], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dict key"):
        tt.save({("a", "b"): 1}, tmp_path / "x.npz")


def test_a_structure_naming_a_missing_array_is_reported(tmp_path):
    tt.save({"w": tt.zeros(2), "b": tt.ones(1)}, tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as archive:
        np.savez(tmp_path / "cut.npz", tinytensor=archive["tinytensor"], arr_0=archive["arr_0"])
    with pytest.raises(ValueError, match="damaged: its structure names the array 'arr_1' but the archive "
                                         "holds only 1 array"):
        tt.load(tmp_path / "cut.npz")
