"""The exercises: every reference solution passes, every untouched stub fails, the stubs match their
solutions, planted mistakes are named, and the command line reports and exits as documented."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinytensor.exercises import EXERCISES, BY_NUMBER, Failure, NotStarted, check, solution_path, stub_text
from tinytensor.exercises.__main__ import main

STUBS = Path(__file__).resolve().parents[2] / "examples" / "exercises"
NUMBERS = [exercise.number for exercise in EXERCISES]


def test_at_least_ten_exercises_numbered_in_order():
    assert len(EXERCISES) >= 10
    assert NUMBERS == list(range(1, len(EXERCISES) + 1))
    assert all(len(exercise.hints) >= 2 for exercise in EXERCISES)


@pytest.mark.parametrize("number", NUMBERS)
def test_reference_solution_passes(number):
    exercise = BY_NUMBER[number]
    check(exercise, solution_path(exercise))


@pytest.mark.parametrize("number", NUMBERS)
def test_untouched_stub_fails_as_not_started(number):
    with pytest.raises(NotStarted, match="not written yet"):
        check(BY_NUMBER[number], STUBS / BY_NUMBER[number].filename)


@pytest.mark.parametrize("number", NUMBERS)
def test_committed_stub_is_its_solution_without_the_answers(number):
    exercise = BY_NUMBER[number]
    stub = (STUBS / exercise.filename).read_text(encoding="utf-8")
    assert stub == stub_text(exercise), "run `python -m tinytensor.exercises init --force` and commit"
    assert "# ANSWER" not in stub and "# TODO" in stub


PLANTED = [   # (exercise, the right line, a wrong one, words the diagnosis must contain)
    (1, "return grad / (1 + x.abs()) ** 2 ", "return grad / (1 + x.abs()) ", "forgot the square"),
    (1, "return grad / (1 + x.abs()) ** 2 ", "return (1 + x.abs()) ** -2 ", "forgot to multiply by grad_output"),
    (1, "return grad / (1 + x.abs()) ** 2 ", "return -grad / (1 + x.abs()) ** 2 ", "sign is flipped"),
    (2, "/ shape[axis], None, None", ", None, None", "forgot to divide by n"),
    (3, "return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)", "return grad * b, grad * a",
     "forgot to sum over the broadcast axis"),
    (4, "grad_b = a.reshape(-1, k).T @ grad.reshape(-1, n)", "grad_b = a.swapaxes(-1, -2) @ grad",
     "forgot to sum dL/dB over the batch"),
    (5, "return y * (grad - (grad * y).sum(axis=-1, keepdims=True))", "return y * (1 - y) * grad",
     "only the diagonal"),
    (6, "return (p - one_hot) / n * grad, None", "return (p - one_hot) * grad, None", "1/N of the mean"),
    (7, "return r * (grad - mean_g - xhat * mean_gx), None", "return r * grad, None", "as constants"),
    (9, "grad_q = grad_scores @ k * ctx.scale ", "grad_q = grad_scores @ k ", "constant factor of 1.41421"),
    (10, "return grad @ w, grad.T @ x, grad.sum(axis=0)", "return grad @ w, grad.T @ x, grad",
     "sum the bias gradient over the batch"),
    (10, "p -= lr * p.grad", "p += lr * p.grad", "training diverged"),
    (10, "p -= lr * p.grad", "p -= 0.01 * lr * p.grad", "reaches 0.015"),
    (10, "p.grad = None", "pass", "gradients are never cleared"),
    (11, "return grad * x.sigmoid()", "return grad * tt.tensor(1 / (1 + ctx.xp.exp(-x.data)))",
     "Softplus's backward is the problem"),
    (11, "tt.grad(f(x).sum(), x, create_graph=True)", "tt.grad(f(x).sum(), x)", "create_graph=True"),
    (5, "return y * (grad - (grad * y).sum(axis=-1, keepdims=True))",
     "return (y * (grad - (grad * y).sum(axis=-1, keepdims=True))).half()", "right to float16 precision"),
    (4, "grad_a = grad @ b.T ", "grad_a = grad @ b ", "shapes do not fit"),
]


def failure_of_mistake(tmp_path, number, right, wrong):
    """The checker's Failure for exercise `number`'s reference solution with `right` replaced by `wrong`."""
    exercise = BY_NUMBER[number]
    text = solution_path(exercise).read_text(encoding="utf-8")
    assert right in text
    path = tmp_path / exercise.filename
    path.write_text(text.replace(right, wrong), encoding="utf-8")
    with pytest.raises(Failure) as failure:
        check(exercise, path)
    return failure.value


@pytest.mark.parametrize("number, right, wrong, diagnosis", PLANTED)
def test_planted_mistake_is_named(tmp_path, number, right, wrong, diagnosis):
    failure = failure_of_mistake(tmp_path, number, right, wrong)
    assert diagnosis in str(failure)
    assert not isinstance(failure, NotStarted)


def test_failure_names_the_input_the_element_and_both_values(tmp_path):
    message = str(failure_of_mistake(tmp_path, 1, "** 2 ", "** 3 "))
    # x = [1, -2, 0.5, 3], grad_output[3] = -1.1: expected -1.1 / 16, got -1.1 / 64 (worst relatively)
    assert "x = [1, -2, 0.5, 3]: the gradient for x is wrong at x[3]" in message
    assert "expected -0.06875, got -0.0171875" in message


def test_command_line_list_check_and_exit_codes(capsys):
    assert main(["--dir", str(STUBS), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [int(line.split()[0]) for line in lines] == NUMBERS
    assert all(line.endswith("not started") for line in lines)
    assert main(["--dir", str(STUBS), "check", "1"]) == 1
    assert "NOT STARTED" in capsys.readouterr().out
    assert main(["check", "1", "--solution"]) == 0
    assert "PASSES" in capsys.readouterr().out


def test_list_tells_passes_fails_and_missing_apart(tmp_path, capsys):
    (tmp_path / BY_NUMBER[1].filename).write_text(solution_path(BY_NUMBER[1]).read_text(encoding="utf-8"))
    (tmp_path / BY_NUMBER[2].filename).write_text("import tinytensor as tt\n")
    (tmp_path / BY_NUMBER[3].filename).write_text(stub_text(BY_NUMBER[3]))
    main(["--dir", str(tmp_path), "list"])
    states = [line.split("  ")[-1].strip() for line in capsys.readouterr().out.splitlines()[1:5]]
    assert states == ["passes", "fails", "not started", "missing"]


def test_hints_unlock_one_at_a_time(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYTENSOR_CACHE", str(tmp_path))
    hints = BY_NUMBER[5].hints
    for shown in range(1, len(hints) + 1):
        main(["hint", "5"])
        out = capsys.readouterr().out
        assert f"hint {shown} of {len(hints)}" in out
        assert hints[shown - 1][:30] in out.replace("\n  ", " ")
    main(["hint", "5"])
    assert "reference solution" in capsys.readouterr().out
    main(["hint", "5", "--reset"])
    main(["hint", "5"])
    assert "hint 1 of" in capsys.readouterr().out


def test_init_writes_stubs_and_keeps_edited_files(tmp_path, capsys):
    main(["--dir", str(tmp_path), "init"])
    assert sorted(p.name for p in tmp_path.glob("ex*.py")) == sorted(e.filename for e in EXERCISES)
    edited = tmp_path / EXERCISES[0].filename
    edited.write_text("# mine\n")
    main(["--dir", str(tmp_path), "init"])
    assert edited.read_text() == "# mine\n"


def test_python_dash_m_runs_the_checker_with_its_exit_codes(tmp_path):
    def run(*args):
        env = dict(os.environ, PYTHONPATH=str(STUBS.parents[1]))   # also from a checkout that is not installed
        return subprocess.run([sys.executable, "-m", "tinytensor.exercises", *args], capture_output=True,
                              text=True, cwd=tmp_path, env=env)
    stub = run("--dir", str(STUBS), "check", "7")
    assert stub.returncode == 1 and "NOT STARTED" in stub.stdout and "ex07_layer_norm.py" in stub.stdout
    solution = run("check", "7", "--solution")
    assert solution.returncode == 0 and "PASSES" in solution.stdout


def test_the_guide_shows_what_the_checker_says(tmp_path):
    failure = failure_of_mistake(tmp_path, 1, "** 2 ", " ")
    guide = (STUBS.parents[1] / "docs" / "exercises.md").read_text(encoding="utf-8")
    assert " ".join(str(failure).split()) in " ".join(guide.split())


def test_list_without_the_folder_says_how_to_make_it(tmp_path, capsys):
    assert main(["--dir", str(tmp_path / "mine"), "list"]) == 0
    out = capsys.readouterr().out
    assert f"no folder {tmp_path / 'mine'} yet: `python -m tinytensor.exercises --dir {tmp_path / 'mine'} init`" in out
    assert "missing" in out
