"""Ordinary mistakes on the command line end in one line on stderr and a non-zero exit, never a traceback;
plugins that are not registered reach `check` and `axes` as FILE.py:Class or MODULE:Class."""
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

MODEL = "from tinygrad_norm import nn\ndef build():\n    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))\nX = 3\n"
PLUGIN = """from tinygrad_norm.norms import NormLayer
class PixelNorm(NormLayer):
    pattern = "n c ... -> n ..."
    center = False
    example = ((), {}, (2, 4, 3, 3))
"""


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "pixel.py").write_text(PLUGIN)
    (tmp_path / "not_a_dir").write_text("")
    return tmp_path


@pytest.mark.parametrize("args, says", [
    ("check no_such_plugin", "no norm plugin named 'no_such_plugin'; available: adain, batch, batch_instance"),
    ("axes no_such_plugin", "no norm plugin named 'no_such_plugin'"),
    ("axes batch --shape 4,6,3", "--shape is N,C,H,W: four sizes; got 3"),
    ("axes batch --shape 4,6,3,3,2", "--shape is N,C,H,W: four sizes; got 5"),
    ("axes batch --shape 4,-6,3,3", "positive integers such as 2,3,8,8; got '4,-6,3,3'"),
    ("axes batch --shape 0,6,3,3", "positive integers such as 2,3,8,8; got '0,6,3,3'"),
    ("axes batch --shape 4,x,3,3", "positive integers"),
    ("axes batch -o out.png", "the picture is SVG, so the output must end in .svg; got 'out.png'"),
    ("axes batch -o not_a_dir/out.svg", "not_a_dir"),
    ("axes weight", "plugin 'weight' acts on weights"),
    ("check pixel.py:Nope", "pixel.py:Nope: pixel.py has no 'Nope'"),
    ("check model.py:build", "is not a norm plugin"),
    ("graph missing.py:build --shape 2,3", "missing.py:build: no file 'missing.py'"),
    ("graph nosuchmodule:f --shape 2,3", "no module named 'nosuchmodule'"),
    ("graph model.py:nothere --shape 2,3", "model.py has no 'nothere'"),
    ("graph model.py:X --shape 2,3", "is not a function that builds a model"),
    ("graph nonsense --shape 2,3", "expected FILE.py:FUNCTION or MODULE:FUNCTION; got 'nonsense'"),
    ("graph model.py:build --shape 2,3 -o g.jpg", "format must be 'svg', 'png' or 'pdf'; got 'jpg'"),
    ("graph model.py:build --shape 2,3 --collapse nothere", "collapse names modules the model does not have"),
    ("graph model.py:build --shape 2,5", "Linear"),  # the model's own shape error, still one line
    ("graph model.py:build", "the following arguments are required: --shape"),
])
def test_a_mistake_is_one_line_on_stderr(folder, args, says):
    result = cli(*args.split(), cwd=folder)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinygrad-norm") and says in lines[0], result.stderr


def test_unregistered_plugins_by_file_and_module(folder):
    check = cli("check", "pixel.py:PixelNorm", cwd=folder)
    assert check.returncode == 0 and "conformance of norm plugin 'PixelNorm': PASS" in check.stdout, check.stderr
    assert "unit mean square (no centering)" in check.stdout  # RMS-like: not "zero mean, unit variance"
    script = pathlib.Path(sys.executable).with_name("tinygrad-norm")  # the console script: cwd is not on its path
    axes = subprocess.run([str(script), "axes", "pixel:PixelNorm", "group", "-o", "sub/dir/p.svg"], cwd=folder,
                          capture_output=True, text=True)
    assert axes.returncode == 0, axes.stderr
    assert "for PixelNorm, group" in axes.stdout
    ET.parse(folder / "sub" / "dir" / "p.svg")
