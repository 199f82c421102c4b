"""Exact resume: a run killed mid-epoch and resumed from its checkpoint, in fresh processes, ends with
the same weights, bit for bit, as a run that was never interrupted (tests/nn/resume_run.py)."""
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

import tinytensor as tt

SCRIPT = Path(__file__).with_name("resume_run.py")


def start(out, *args):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(out), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process):
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_killed_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    # 4 training batches and 1 validation batch per epoch: call 13 is in the middle of epoch 3.
    whole, killed = start(tmp_path / "whole"), start(tmp_path / "resumed", "--die-at-call", 13)
    whole, killed = finish(whole), finish(killed)
    assert whole.returncode == 0, whole.stderr
    assert killed.returncode == -signal.SIGKILL
    assert tt.load(tmp_path / "resumed" / "ckpt.npz")["epoch"] == 2
    resumed = finish(start(tmp_path / "resumed", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert "after epoch 2" in resumed.stdout + resumed.stderr

    for name in ("final.npz", "ckpt.npz", "ckpt.best.npz"):
        a, b = (tt.load(tmp_path / run_name / name) for run_name in ("whole", "resumed"))
        if "history" in a and "seconds_per_epoch" in a["history"]:
            del a["history"]["seconds_per_epoch"], b["history"]["seconds_per_epoch"]   # times differ, of course
        assert_same(a, b, name)
    assert len(tt.load(tmp_path / "whole" / "final.npz")["history"]["train_loss"]) == 4


def assert_same(a, b, where):
    """a == b, bit for bit, through nested dicts and lists of tensors, arrays and numbers."""
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, tt.Tensor):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
    else:
        np.testing.assert_array_equal(a, b, err_msg=where)
