"""PyTorch's own sample inputs for every module of its ModuleInfo database that we have by name: each is built
with PyTorch's constructor arguments, given PyTorch's weights by name, fed PyTorch's forward arguments, and must
give PyTorch's outputs and gradients (float64). These are the samples PyTorch tests its modules with, so an
argument we do not support fails here, naming the sample."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
pytest.importorskip("expecttest", reason="PyTorch's test samples need expecttest (pip install expecttest)")
from torch.testing._internal.common_modules import module_db  # noqa: E402
from torch_bridge import leaves, ours_of  # noqa: E402

OURS = [m for m in module_db if hasattr(nn, m.module_cls.__name__)]


def samples(training, seed=0):
    """The samples are random draws: made from a fixed seed, so that every run checks the same ones."""
    for info in OURS:
        if not training and not info.train_and_eval_differ:
            continue
        torch.manual_seed(seed)
        for sample in info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=True,
                                              training=training):
            yield pytest.param(info, sample, training, id=f"{info.module_cls.__name__}-{sample.desc or 'default'}-"
                               f"{'train' if training else 'eval'}")


def compare(ours, theirs, what):
    ours = ours.numpy() if isinstance(ours, tg.Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, PyTorch's {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("info,sample,training", list(samples(True)) + list(samples(False)))
def test_pytorch_sample_gives_pytorchs_outputs_and_gradients(info, sample, training):
    name, c, f = info.module_cls.__name__, sample.constructor_input, sample.forward_input
    torch.manual_seed(0)
    theirs = info.module_cls(*c.args, **c.kwargs).double().train(training)
    ours = getattr(nn, name)(*ours_of(c.args), **ours_of(c.kwargs)).train(training)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for t in list(ours.parameters()) + list(ours.buffers()):
        if t.dtype.kind == "f":
            t.data = t.data.astype(np.float64)
    args, kwargs = ours_of(f.args), ours_of(f.kwargs)
    want, got = leaves(theirs(*f.args, **f.kwargs)), leaves(ours(*args, **kwargs))
    assert len(got) == len(want), f"{len(got)} outputs, PyTorch gives {len(want)}"
    for i, (a, b) in enumerate(zip(got, want)):
        compare(a, b, f"output {i}")
    # one backward of Σ w·out with the same weights w on both sides
    floats = [(a, b) for a, b in zip(got, want) if b.dtype.is_floating_point and b.requires_grad]
    if not floats:
        return
    weights = [np.random.default_rng(i).standard_normal(b.shape) for i, (_, b) in enumerate(floats)]
    theirs_inputs = leaves(f.args) + leaves(list(f.kwargs.values()))
    sum((a * tg.Tensor(w)).sum() for (a, _), w in zip(floats, weights)).backward()
    sum((b * torch.tensor(w)).sum() for (_, b), w in zip(floats, weights)).backward()
    for i, (a, b) in enumerate(zip(leaves(args) + leaves(list(kwargs.values())), theirs_inputs)):
        # a sample input that PyTorch computed from another (a non-leaf) has no .grad there; ours are all leaves
        if isinstance(b, torch.Tensor) and b.is_leaf and b.grad is not None:
            compare(a.grad, b.grad, f"gradient of input {i}")
    ours_params = dict(ours.named_parameters())
    for k, p in theirs.named_parameters():
        if p.grad is not None:
            compare(ours_params[k].grad, p.grad, f"gradient of {k}")
