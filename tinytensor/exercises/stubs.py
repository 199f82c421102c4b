"""Stubs made from the reference solutions, where they live, and the hints shown so far.

A solution marks each part the learner writes:

        # ANSWER: return dL/dx = grad * dy/dx
        return grad / (1 + x.abs()) ** 2
        # END

and its stub has, in the same place, `# TODO: return dL/dx = grad * dy/dx` and a `raise
NotImplementedError`. So a stub can never drift from its solution, and `init` can write fresh stubs
anywhere, also from an installed package.
"""
import json
import re
from pathlib import Path

from ..download import cache_dir
from . import solutions

SOLUTIONS = Path(solutions.__file__).parent
_ANSWER = re.compile(r"^(?P<indent>[ \t]*)# ANSWER: (?P<task>.*)\n(?:.*\n)*?[ \t]*# END\n", re.M)


def default_dir():
    """examples/exercises of the checkout tinytensor runs from (an editable install), else of the
    current folder."""
    checkout = Path(__file__).resolve().parents[2] / "examples" / "exercises"
    return checkout if checkout.is_dir() else Path.cwd() / "examples" / "exercises"


def solution_path(exercise):
    return SOLUTIONS / exercise.filename


def stub_text(exercise):
    """The stub of an exercise: its solution with every ANSWER block replaced by a TODO."""
    def todo(match):
        indent = match["indent"]
        return (f"{indent}# TODO: {match['task']}\n"
                f"{indent}raise NotImplementedError(\"exercise {exercise.number}: write this part\")\n")
    return _ANSWER.sub(todo, solution_path(exercise).read_text(encoding="utf-8"))


def write_stub(exercise, folder, overwrite=False):
    """Write the stub into `folder`; an existing file is kept unless overwrite. True when written."""
    path = Path(folder) / exercise.filename
    if path.exists() and not overwrite:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stub_text(exercise), encoding="utf-8")
    return True


# ----------------------------------------------------------------------------------- hints

def _hints_file():
    return cache_dir() / "exercise_hints.json"


def hints_shown(number):
    path = _hints_file()
    shown = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return shown.get(str(number), 0)


def unlock_hint(exercise):
    """Remember one more hint as shown (up to all of them) and return how many are shown now."""
    path = _hints_file()
    shown = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    count = min(shown.get(str(exercise.number), 0) + 1, len(exercise.hints))
    shown[str(exercise.number)] = count
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(shown, indent=1), encoding="utf-8")
    return count


def reset_hints(number):
    path = _hints_file()
    if path.is_file():
        shown = json.loads(path.read_text(encoding="utf-8"))
        shown.pop(str(number), None)
        path.write_text(json.dumps(shown, indent=1), encoding="utf-8")
