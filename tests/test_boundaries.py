"""Clear errors at every boundary: registry names and patterns, the autoload switch, DataLoader arguments and
item structure, collective inputs, and the CLI's build functions. Each names what was expected and what came."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import distributed as dist
from tinygrad_norm import norms
from tinygrad_norm.data import DataLoader, Dataset, TensorDataset
from tinygrad_norm.norms import NormLayer, NormPluginError, PatternError


class Plain(NormLayer):
    pattern = "n c -> c"


@pytest.mark.parametrize("name, why", [(123, "a plugin's name is a string; got int 123"),
                                       ("", "non-empty string without spaces; got ''"),
                                       ("two words", "non-empty string without spaces; got 'two words'")])
def test_register_refuses_a_name_that_is_not_a_name_and_the_registry_survives(name, why):
    with pytest.raises(NormPluginError, match=why):
        norms.register(Plain, name=name)
    assert "batch" in norms.available()  # the listing still sorts: nothing was added
    with pytest.raises(NormPluginError, match="cannot look up a norm plugin: a plugin's name is a string; got int"):
        norms.get(123)


def test_a_pattern_that_keeps_an_axis_twice_is_refused_where_it_is_declared():
    with pytest.raises(PatternError, match=r"pattern 'n c -> c c' keeps axis 'c' twice"):
        norms.Pattern("n c -> c c")
    twice = type("Twice", (NormLayer,), {"pattern": "n c -> c c"})
    assert "keeps axis 'c' twice" in norms.problem(twice)


def test_an_installed_plugin_skipped_by_the_autoload_switch_says_so(tmp_path):
    info = tmp_path / "other_norm-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-norm\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tinygrad_norm.norms]\nother = other_norm_module:Other\n")
    (tmp_path / "other_norm_module.py").write_text(
        "from tinygrad_norm.norms import NormLayer\nclass Other(NormLayer):\n    pattern = 'n c -> c'\n")
    code = ("from tinygrad_norm import norms\ntry:\n    norms.get('other')\nexcept norms.NormPluginError as e:\n"
            "    print(e)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert "'other' (other_norm_module:Other from other-norm) is installed but was not loaded" in out
    assert "TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD is set" in out


@pytest.mark.parametrize("size", [0, -1, 2.5, True, None])
def test_dataloader_refuses_a_batch_size_that_is_not_a_positive_integer(size):
    with pytest.raises(ValueError, match=rf"batch_size must be a positive integer; got {size!r}"):
        DataLoader(TensorDataset(np.zeros(4)), batch_size=size)


class Items(Dataset):
    def __init__(self, *items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_items_of_different_structures_or_shapes_are_an_error_naming_them():
    with pytest.raises(ValueError, match="item 0 has 2 fields but item 1 has 1 field; every item"):
        list(DataLoader(Items((np.zeros(2), 1), (np.zeros(2),)), batch_size=2))
    with pytest.raises(ValueError, match="item 0 has one value but item 1 has 2 fields"):
        list(DataLoader(Items(np.zeros(2), (np.zeros(2), 1)), batch_size=2))
    with pytest.raises(ValueError, match=r"field 0 of item 0 has shape \(2,\) but of item 1 shape \(3,\); a batch stacks"):
        list(DataLoader(Items((np.zeros(2), 1), (np.zeros(3), 1)), batch_size=2))
    with pytest.raises(TypeError, match="field 1 of item 0 is a str of dtype <U3"):
        list(DataLoader(Items((np.zeros(2), "cat"), (np.zeros(2), "dog")), batch_size=2))
    with pytest.raises(TypeError, match="must have __len__ and __getitem__"):
        DataLoader(iter([1, 2]))


def test_items_batch_by_field_and_a_single_value_batches_as_one_tensor():
    x, y = DataLoader(Items((np.ones(2), 1), (np.zeros(2), 0)), batch_size=2).__iter__().__next__()
    assert x.shape == (2, 2) and y.numpy().tolist() == [1, 0] and y.dtype == np.int64
    batch = next(iter(DataLoader(Items(np.ones(3), np.zeros(3)), batch_size=2)))
    assert isinstance(batch, tg.Tensor) and batch.shape == (2, 3)  # not the rows of the first item zipped


@pytest.mark.parametrize("value, why", [(None, "got NoneType"), ([np.zeros(2), np.zeros(3)], "got list \\(stack"),
                                        (np.array(["a"]), "got dtype <U1"), (3.0, "got float")])
def test_collectives_refuse_what_is_not_an_array_of_numbers(value, why):
    for collective in (dist.all_reduce, dist.broadcast):
        with pytest.raises(TypeError, match=f"takes .*{why}"):
            collective(value)


def test_collectives_still_take_tensors_and_arrays():
    t = tg.tensor([1.0, 2.0])
    assert dist.all_reduce(t).numpy().tolist() == [1.0, 2.0] and dist.broadcast(np.arange(3)).tolist() == [0, 1, 2]


BUILDS = '''
def raises():
    return {}["missing"]

def runtime():
    raise RuntimeError("no GPU here")

def nothing():
    return None

def wrong_input():
    from tinygrad_norm import nn
    return nn.Linear(3, 2)
'''


@pytest.mark.parametrize("function, says", [
    ("raises", re.escape("builds.py:raises() raised: KeyError: 'missing'")),
    ("runtime", re.escape("builds.py:runtime() raised: RuntimeError: no GPU here")),
    ("nothing", re.escape("builds.py:nothing() must return a model (an nn.Module); it returned NoneType")),
    ("wrong_input", r"the model from .*builds.py:wrong_input on an input of shape \(2, 5\): ValueError: Linear"),
])
def test_graph_reports_a_build_function_that_fails_in_one_line(tmp_path, function, says):
    (tmp_path / "builds.py").write_text(BUILDS)
    result = subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", "graph", f"{tmp_path / 'builds.py'}:{function}",
                             "--shape", "2,5", "-o", str(tmp_path / "g.svg")], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinygrad-norm graph: error: "), result.stderr
    assert re.search(says, lines[0]), lines[0]
