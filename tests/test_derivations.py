"""Every derivation page's formulas agree with finite differences and with the library: each
docs/derivations/check_*.py script passes, and each page names its script."""
import runpy
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "docs" / "derivations"
SCRIPTS = sorted(p.name for p in FOLDER.glob("check_*.py"))
PAGES = ["layer_norm.md", "softmax_cross_entropy.md", "matmul_broadcasting.md", "conv2d_im2col.md", "attention.md"]


def test_each_page_has_its_check_script():
    assert sorted(f"check_{page[:-3]}.py" for page in PAGES) == SCRIPTS
    for page in PAGES:
        assert f"check_{page[:-3]}.py" in (FOLDER / page).read_text(encoding="utf-8")


@pytest.mark.parametrize("script", SCRIPTS)
def test_check_script_passes(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(FOLDER))          # the scripts import numeric.py beside them
    namespace = runpy.run_path(str(FOLDER / script), run_name="check")
    assert namespace["main"]() is True
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("ok ") >= 4


def test_a_wrong_formula_fails(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(FOLDER))
    namespace = runpy.run_path(str(FOLDER / "check_layer_norm.py"), run_name="check")
    right = namespace["backward"]
    namespace["main"].__globals__["backward"] = lambda x, w, g: (right(x, w, g)[0] * 1.01,) + right(x, w, g)[1:]
    assert namespace["main"]() is False
    assert "FAIL dL/dx vs finite differences" in capsys.readouterr().out
