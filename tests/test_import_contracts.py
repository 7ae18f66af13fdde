"""The layers of the code are a contract (setup.cfg's [importlinter] sections), checked here by import-linter:
the engine imports nothing above it, the norm core no PyTorch-named layer, nothing the drawing."""
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e '.[test]'")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def lint_imports(root, cwd):
    """Run import-linter on the packages under `root` (first on the path) with this repository's contracts."""
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; "
                           "sys.exit(c())", "--config", str(ROOT / "setup.cfg"), "--no-cache"],
                          cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""})


def test_the_import_contracts_hold():
    result = lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("tinygrad_norm/engine.py", "from . import tensor", "Each layer imports only the layers below it"),
    ("tinygrad_norm/norms/check.py", "from ..nn import Linear", "Each layer imports only the layers below it"),
    ("tinygrad_norm/norms/layer.py", "import tinygrad_norm_plugins.batch", "The core never names a built-in plugin"),
    ("tinygrad_norm/tensor.py", "import graphviz", "Only the drawing imports Graphviz"),
])
def test_the_contracts_catch_the_cycles_they_forbid(tmp_path, module, line, broken):
    """The two import cycles this project once had (tensor <-> autograd, norms <-> nn) and two other breaches,
    put back into a copy of the code: import-linter must report the contract each one breaks."""
    shutil.copytree(ROOT / "tinygrad_norm", tmp_path / "tinygrad_norm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "plugins", tmp_path / "tinygrad_norm_plugins", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / module, "a") as f:
        f.write(f"\n{line}\n")
    result = lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout.split("Broken contracts")[-1], result.stdout
