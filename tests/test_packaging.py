"""The library is reached under its own name only: a user's nn.py or models.py cannot shadow it."""
import os
import subprocess
import sys
from pathlib import Path

import tinytensor as tt
from tinytensor import nn
from tinytensor.nn import module

ROOT = Path(__file__).resolve().parents[1]


def run_script(folder, code):
    """Run `code` as a user's script in `folder`, the way `python script.py` would."""
    script = folder / "script.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # an uninstalled checkout; an installed one behaves the same
    return subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True)


def test_one_identity_per_module():
    assert nn.Module is module.Module
    assert nn.__name__ == "tinytensor.nn"
    assert tt.nn is nn


def test_users_own_models_and_nn_files_do_not_shadow_the_library(tmp_path):
    (tmp_path / "models.py").write_text("raise SystemExit('the user models.py was imported')\n")
    (tmp_path / "nn.py").write_text("raise SystemExit('the user nn.py was imported')\n")
    result = run_script(tmp_path, "from tinytensor import nn\nfrom tinytensor.models.mlp import MLP\n"
                                  "print(nn.Linear.__module__, MLP.__module__)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tinytensor.nn.layers", "tinytensor.models.mlp"]


def test_importing_nn_as_a_top_level_package_is_refused(tmp_path):
    result = run_script(tmp_path, f"import sys; sys.path.insert(0, {str(ROOT)!r})\nimport nn\n")
    assert result.returncode != 0
    assert "from tinytensor import nn" in result.stderr
