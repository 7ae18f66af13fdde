"""The runnable examples in the docstrings of the PyTorch-facing modules run and print what they say."""
import doctest
import importlib

import pytest

MODULES = ["tinygrad_norm.optim.optimizer", "tinygrad_norm.optim.lr_scheduler", "tinygrad_norm.serialization",
           "tinygrad_norm.nn.losses", "tinygrad_norm.nn.init", "tinygrad_norm.norms.kernels",
           "tinygrad_norm.norms.kernels.cuda_emulated"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name.endswith("cuda_emulated"):
        from tinygrad_norm.norms import kernels
        ok, why = kernels.get("cuda_emulated").available()
        if not ok:
            pytest.skip(why)
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0, f"{name} has no docstring example"
    assert failed == 0
