"""python -m tinytensor.exercises {list, check N [--solution], hint N [--reset], init}"""
import argparse
import sys
import textwrap
from pathlib import Path

from . import BY_NUMBER, EXERCISES, default_dir, solution_path, status
from .stubs import hints_shown, reset_hints, unlock_hint, write_stub


def _exercise(number):
    if number not in BY_NUMBER:
        raise SystemExit(f"there is no exercise {number}; they are numbered 1 to {len(EXERCISES)}")
    return BY_NUMBER[number]


def _shown(path):
    """path relative to the current folder when it is below it, else as it is."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _say(text, indent="  "):
    print(textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinytensor.exercises", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None,
                        help="the folder of your exercise files (default: examples/exercises of the checkout)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every exercise and whether your version passes yet")
    check = commands.add_parser("check", help="check one exercise; exit 0 when it passes, 1 when not")
    check.add_argument("number", type=int)
    check.add_argument("--solution", action="store_true", help="check the reference solution instead")
    hint = commands.add_parser("hint", help="show the hints unlocked so far and one more")
    hint.add_argument("number", type=int)
    hint.add_argument("--reset", action="store_true", help="lock this exercise's hints again")
    init = commands.add_parser("init", help="write the stubs into --dir (existing files are kept)")
    init.add_argument("--force", action="store_true", help="overwrite existing files with fresh stubs")
    args = parser.parse_args(argv)
    folder = _shown(args.dir or default_dir())     # messages then name files as the learner would

    if args.command == "list":
        if folder.is_dir():
            print(f"exercises in {folder}:")
        else:   # an installed package run outside a checkout, or a --dir not made yet
            dir_option = f" --dir {folder}" if args.dir else ""
            print(f"no folder {folder} yet: `python -m tinytensor.exercises{dir_option} init` writes the stubs there")
        for exercise in EXERCISES:
            state, _ = status(exercise, folder)
            print(f"{exercise.number:3d}  {exercise.title:<55s} {state}")
        return 0
    if args.command == "init":
        for exercise in EXERCISES:
            written = write_stub(exercise, folder, overwrite=args.force)
            print(f"{'wrote' if written else 'kept '} {folder / exercise.filename}")
        return 0
    exercise = _exercise(args.number)
    if args.command == "hint":
        if args.reset:
            reset_hints(exercise.number)
            print(f"exercise {exercise.number}: hints locked again")
            return 0
        before = hints_shown(exercise.number)
        shown = unlock_hint(exercise)
        print(f"exercise {exercise.number}, {exercise.title}: hint {shown} of {len(exercise.hints)}")
        for i, text in enumerate(exercise.hints[:shown], 1):
            _say(f"{i}. {text}")
        if before == shown:
            print(f"  that was the last hint; the reference solution is {solution_path(exercise)}")
        return 0
    folder = _shown(solution_path(exercise).parent) if args.solution else folder
    state, message = status(exercise, folder)
    print(f"exercise {exercise.number}, {exercise.title} ({folder / exercise.filename}): {state.upper()}")
    _say(message)
    return 0 if state == "passes" else 1


if __name__ == "__main__":
    sys.exit(main())
