"""The docs cannot drift from the code: their Python snippets run, and print what the docs say they print.

Conventions, for README.md and every page under docs/:
- A ```python block runs; the blocks of one page run in order in one namespace. A block fenced as
  ```python illustrative is a sketch with names left undefined, and is not run.
- `expression  # -> text` (or a comment line `# -> text` right after the expression): what the line
  prints, or the repr of its value when it prints nothing, must read `text`. Runs of spaces count as
  one; `...` stands for anything.
- A ```output block right after a ```python block holds everything that block prints.
- A link whose text is a code name and whose target is a Python file, [`LayerNorm.backward`](x.py),
  points at a class or function that file defines.
"""
import ast
import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *ROOT.glob("docs/**/*.md")])
BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```\n(?:\s*^```output\n(.*?)^```)?", re.S | re.M)
MARK = re.compile(r"#\s*->\s*(.*)$")
CODE_LINK = re.compile(r"\[`([\w.]+)`\]\(([^)\s]+\.py)\)")


def _matches(shown, expected):
    """shown equals expected, whitespace runs counted as one space, `...` in expected matching anything."""
    normal = " ".join(shown.split())
    pattern = ".*?".join(re.escape(" ".join(part.split())) for part in expected.strip().split("..."))
    return re.fullmatch(pattern, normal, flags=re.S) is not None


def _expectations(code):
    """{line number of a statement's last line: expected text} from the `# -> text` markers."""
    found, lines = {}, code.splitlines()
    for number, line in enumerate(lines, 1):
        mark = MARK.search(line)
        if not mark:
            continue
        if line.lstrip().startswith("#"):           # on its own line: it belongs to the line above
            number -= 1
            while number > 0 and (not lines[number - 1].strip() or lines[number - 1].lstrip().startswith("#")):
                number -= 1
        found[number] = mark.group(1)
    return found


def run_block(code, where, namespace):
    """Run one block statement by statement, checking each marked expression; return all it printed."""
    expected = _expectations(code)
    printed = io.StringIO()
    for statement in ast.parse(code).body:
        text = expected.pop(statement.end_lineno, None)
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            if text is not None and isinstance(statement, ast.Expr):
                value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
                if not shown.getvalue() and value is not None:
                    print(repr(value))
            else:
                assert text is None, f"{where}, line {statement.end_lineno}: `# ->` marks a statement, " \
                                     "not an expression whose value can be shown"
                exec(compile(ast.Module([statement], []), where, "exec"), namespace)
        printed.write(shown.getvalue())
        if text is not None:
            assert _matches(shown.getvalue(), text), (
                f"{where}, line {statement.end_lineno}: the docs say `{text}`, the code shows "
                f"`{shown.getvalue().strip()}`")
    assert not expected, f"{where}: `# ->` markers on lines {sorted(expected)} are not at the end of a statement"
    return printed.getvalue()


def test_every_page_is_seen():
    assert {"README.md", "docs/backprop.md", "docs/exercises.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_snippets_run_and_print_what_the_page_says(page, monkeypatch, tmp_path):
    text = (ROOT / page).read_text(encoding="utf-8")
    monkeypatch.chdir(ROOT)                   # snippets name files relative to the repository
    namespace = {}
    for block in BLOCK.finditer(text):
        info, code, output = block.groups()
        if "illustrative" in info:
            continue
        where = f"{page}:{text.count(chr(10), 0, block.start()) + 2}"   # the block's first code line
        printed = run_block(code, where, namespace)
        if output is not None:
            assert _matches(printed, output), f"{where}: the output block says\n{output}\nthe code printed\n{printed}"


@pytest.mark.parametrize("page", PAGES)
def test_code_links_name_what_the_file_defines(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    for name, target in CODE_LINK.findall(text):
        path = ((ROOT / page).parent / target).resolve()
        assert path.is_file(), f"{page}: the link to {target} points at no file"
        defined = {node.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
        missing = [part for part in name.split(".") if part not in defined]
        assert not missing, f"{page}: [`{name}`]({target}): {target} defines no {missing[0]}"


@pytest.mark.parametrize("shown, expected, same", [
    ("tensor([2., 4.])\n", "tensor([2., 4.])", True),
    ("tensor([2., 4.])", "tensor([2., 5.])", False),
    ("tensor([ 0.5, -0.6667], dtype=float64)", "tensor([ 0.5, -0.6667], ...)", True),
    ("a   b", "a b", True),
])
def test_the_comparison_itself(shown, expected, same):
    assert _matches(shown, expected) is same


def test_a_wrong_value_in_the_docs_is_caught():
    with pytest.raises(AssertionError, match="the docs say `5`, the code shows `4`"):
        run_block("x = 2\nx * 2      # -> 5\n", "page.md:1", {})
    assert run_block("print(1 + 1)\n# -> 2\n", "page.md:1", {}) == "2\n"
