"""PyTorch's own sample inputs (its OpInfo database) for every op we have under PyTorch's name (found by name:
a Tensor method, nn.functional, or a top-level function): each sample's output must be PyTorch's, and the
gradient of Σ w·out for every floating-point input too (float64). One test per op, naming what differs."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm.nn import functional as F

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
pytest.importorskip("expecttest", reason="PyTorch's test samples need expecttest (pip install expecttest)")
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402
from torch_bridge import leaves, ours_of  # noqa: E402

RANDOM = {"nn.functional.dropout", "randn"}  # random draws: their own tests check them
TOP_LEVEL = {"cat": tg.cat, "stack": tg.stack, "zeros": tg.zeros, "ones": tg.ones,
             "where": lambda x, condition, other: tg.where(condition, x, other)}  # OpInfo's where takes x first


def ours(info):
    """Ours under PyTorch's name: nn.functional's, a top-level function, or a Tensor method or property."""
    name = info.name
    if name in RANDOM:
        return None
    if name.startswith("nn.functional."):
        return getattr(F, name.split(".")[-1], None)
    if name in TOP_LEVEL:
        return TOP_LEVEL[name]
    if "." in name or not hasattr(tg.Tensor, name):
        return None
    if isinstance(getattr(tg.Tensor, name), property):  # .T
        return lambda x: getattr(x, name)
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


OPS = [info for info in op_db if ours(info) is not None]


def fresh(value):
    """Every Tensor copied to a new leaf: samples may share tensors (whose .grad would pile up) or compute them."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return type(value)(fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    return value


def difference(sample, fn, op):
    """None when ours gives PyTorch's outputs and gradients for `sample`, else what differs."""
    first, args, kwargs = fresh(sample.input), fresh(sample.args), fresh(sample.kwargs)
    try:
        want = leaves(op(first, *args, **kwargs))
    except Exception:
        return None  # PyTorch refuses this sample (an error input)
    inputs = ours_of([first, *args, *kwargs.values()])
    try:
        got = leaves(fn(inputs[0], *inputs[1:1 + len(args)], **dict(zip(kwargs, inputs[1 + len(args):]))))
    except Exception as e:
        return f"refused: {type(e).__name__}: {e}"
    if len(got) != len(want):
        return f"{len(got)} outputs, PyTorch gives {len(want)}"
    for a, b in zip(got, want):
        if isinstance(b, torch.Tensor):
            a, b_ = (a.numpy() if isinstance(a, tg.Tensor) else np.asarray(a)), b.detach().numpy()
            if a.shape != b_.shape or (a.dtype != b_.dtype and not a.dtype.kind == b_.dtype.kind == "f"):
                return f"output {a.dtype}{a.shape}, PyTorch's {b_.dtype}{b_.shape}"
            if not np.allclose(a, b_, rtol=1e-7, atol=1e-9, equal_nan=True):
                return f"outputs differ by up to {np.nanmax(np.abs(a - b_))}"
    floats = [(a, b) for a, b in zip(got, want) if isinstance(b, torch.Tensor) and b.requires_grad
              and b.dtype.is_floating_point and b.numel()]
    if not floats:
        return None
    weights = [np.random.default_rng(i).standard_normal(b.shape) for i, (_, b) in enumerate(floats)]
    mine = [(a * tg.Tensor(w)).sum() for (a, _), w in zip(floats, weights) if a.requires_grad]
    if mine:
        sum(mine).backward()
    sum((b * torch.tensor(w)).sum() for (_, b), w in zip(floats, weights)).backward()
    for i, (a, b) in enumerate(zip(leaves(inputs), leaves([first, *args, *kwargs.values()]))):
        if isinstance(b, torch.Tensor) and b.grad is not None:
            # an op that is constant here (div with rounding) has no gradient: PyTorch's must then be zeros
            got_grad = np.zeros(b.shape) if a.grad is None else a.grad.numpy()
            if not np.allclose(got_grad, b.grad.numpy(), rtol=1e-7, atol=1e-9, equal_nan=True):
                return f"gradient of input {i} differs by up to {np.nanmax(np.abs(got_grad - b.grad.numpy()))}"
    return None


@pytest.mark.parametrize("info", OPS, ids=[f"{i.name}.{i.variant_test_name}" if i.variant_test_name else i.name
                                           for i in OPS])
def test_pytorch_samples_give_pytorchs_outputs_and_gradients(info):
    torch.manual_seed(0)  # the samples are random draws: the same ones every run
    fn, problems = ours(info), []
    for sample in info.sample_inputs("cpu", torch.float64, requires_grad=True):
        why = difference(sample, fn, info.op)
        if why:
            shapes = [tuple(a.shape) if isinstance(a, torch.Tensor) else a for a in (sample.input, *sample.args)]
            problems.append(f"{info.name}{shapes} {sample.kwargs}: {why}")
    assert not problems, f"{len(problems)} samples differ:\n" + "\n".join(problems[:10])
