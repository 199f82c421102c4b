"""nn and models use only tinytensor's public API, so the engine can change its insides freely."""
import ast
import re
from pathlib import Path

import tinytensor as tt

ROOT = Path(__file__).resolve().parents[1]


def _engine_private_names():
    names = set()
    for cls in (tt.Tensor, tt.Node, tt.Function):
        names |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
    return names


def test_nn_and_models_touch_no_private_engine_name():
    private = _engine_private_names()
    assert {"_from_array", "_node", "_version"} <= private
    offenders = []
    for path in list((ROOT / "nn").rglob("*.py")) + list((ROOT / "models").rglob("*.py")):
        text = path.read_text()
        # `self._x` is the class's own attribute (nn.Parameter, a Tensor subclass, initialises itself
        # through Tensor._set); anything else reached through a dot must be public.
        for name in re.findall(r"(?<!\bself)\.(_[a-z]\w*)", text):
            if name in private:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
        offenders += [f"{path.relative_to(ROOT)}: {line}" for line in re.findall(
            r"from tinytensor\S* import .*\b_[a-z]\w*.*", text)]
    assert offenders == []


def test_nn_functional_names_its_functions_without_a_module_getattr():
    from tinytensor.nn import functional
    assert "__getattr__" not in vars(functional)
    for name in functional.__all__:
        assert name in vars(functional), name


def test_the_engine_imports_its_own_modules_at_the_top_only():
    """The tensor <-> ops/autograd circle is closed once, at the bottom of tensor.py: no import of
    tinytensor's own modules hides inside a function or a class."""
    deferred = []
    for path in (ROOT / "tinytensor").rglob("*.py"):
        for definition in ast.parse(path.read_text()).body:
            if not isinstance(definition, (ast.FunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(definition):
                if isinstance(node, ast.ImportFrom):
                    own = node.level > 0 or node.module.startswith("tinytensor")
                else:
                    own = isinstance(node, ast.Import) and any(
                        alias.name.startswith("tinytensor") for alias in node.names)
                if own:
                    deferred.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert deferred == []
