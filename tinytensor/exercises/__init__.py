"""Graded exercises on backpropagation, with a checker that says what is wrong.

    python -m tinytensor.exercises list              # every exercise, and whether yours passes yet
    python -m tinytensor.exercises check 3           # check examples/exercises/ex03_*.py
    python -m tinytensor.exercises hint 3            # the next hint (remembered in the cache folder)
    python -m tinytensor.exercises check 3 --solution

The stubs are in examples/exercises/ of a checkout (`--dir` for another folder; `init --dir DIR` writes
fresh ones), the reference solutions in tinytensor/exercises/solutions/. docs/exercises.md is the guide.
"""
from .catalog import BY_NUMBER, EXERCISES
from .checker import Failure, NotStarted, check
from .stubs import default_dir, solution_path, stub_text

__all__ = ["EXERCISES", "BY_NUMBER", "Failure", "NotStarted", "check", "default_dir", "solution_path",
           "stub_text", "status"]


def status(exercise, folder):
    """('passes' | 'not started' | 'fails' | 'missing', message) for the learner's file in folder."""
    path = folder / exercise.filename
    if not path.is_file():
        return "missing", f"{path} does not exist; `python -m tinytensor.exercises init` writes the stubs"
    try:
        check(exercise, path)
    except NotStarted as failure:
        return "not started", str(failure)
    except Failure as failure:
        return "fails", str(failure)
    return "passes", f"all {len(exercise.cases)} case(s) pass"
