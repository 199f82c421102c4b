"""The Python snippets in the README and the learning-path docs run as written."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/backprop.md", "docs/adding_an_op.md"]


@pytest.mark.parametrize("page", PAGES)
def test_python_snippets_run(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert snippets, f"{page} has no python snippet"
    namespace = {}
    for snippet in snippets:    # the snippets of one page build on each other
        exec(compile(snippet, page, "exec"), namespace)
