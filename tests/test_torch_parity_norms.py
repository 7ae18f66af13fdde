"""Where PyTorch is installed: every norm layer matches torch.nn's, forward, backward and running statistics,
to float32 tolerance, with the same state_dict keys."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


@pytest.fixture(autouse=True)
def _both_kernel_paths(kernels):
    return kernels


CASES = [
    ("BatchNorm1d", (6,), {}, (8, 6)),
    ("BatchNorm1d", (6,), {"momentum": None}, (8, 6, 5)),
    ("BatchNorm2d", (6,), {"momentum": 0.3}, (8, 6, 5, 4)),
    ("BatchNorm3d", (6,), {"affine": False}, (4, 6, 3, 4, 2)),
    ("LayerNorm", (7,), {}, (4, 5, 7)),
    ("LayerNorm", ((6, 5, 4),), {"bias": False}, (3, 6, 5, 4)),
    ("InstanceNorm1d", (6,), {}, (4, 6, 9)),
    ("InstanceNorm2d", (6,), {"affine": True, "track_running_stats": True}, (4, 6, 5, 4)),
    ("GroupNorm", (3, 6), {}, (4, 6, 5, 4)),
    ("GroupNorm", (2, 6), {"eps": 1e-3}, (4, 6, 7)),
    ("RMSNorm", (7,), {}, (4, 5, 7)),
    ("RMSNorm", ((5, 7),), {"eps": 1e-6}, (4, 5, 7)),
    ("LocalResponseNorm", (5,), {}, (4, 9, 5, 4)),
    ("LocalResponseNorm", (2,), {"alpha": 0.1, "beta": 0.5, "k": 2.0}, (4, 7, 6)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", CASES)
def test_norm_matches_torch(name, args, kwargs, shape):
    rng = np.random.default_rng(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    ours = getattr(nn, name)(*args, **kwargs)
    with torch.no_grad():  # non-trivial affine parameters
        for p in theirs.parameters():
            p.copy_(torch.tensor(1 + 0.3 * rng.standard_normal(p.shape), dtype=torch.float32))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for step in range(3):  # training steps: outputs, gradients, running statistics
        x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        xt, xo = torch.tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True)
        yt, yo = theirs(xt), ours(xo)
        np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        yt.backward(torch.tensor(g))
        yo.backward(g)
        np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-4)
        grads = dict(ours.named_parameters())
        for k, p in theirs.named_parameters():
            np.testing.assert_allclose(grads[k].grad.numpy(), p.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=k)
            p.grad = None
            grads[k].grad = None
    for k, v in theirs.state_dict().items():
        if k == "num_batches_tracked" and name.startswith("InstanceNorm"):
            continue  # torch's InstanceNorm never counts its batches (its forward bypasses the counter); ours does
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    theirs.eval(), ours.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ours(tg.Tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_batchnorm_single_value_raises_like_torch():
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(4)(torch.randn(1, 4))
    with pytest.raises(ValueError, match="more than one value"):
        nn.BatchNorm1d(4)(tg.randn(1, 4))


@pytest.mark.parametrize("make,shape", [(lambda m: m.Linear(5, 4), (3, 5)), (lambda m: m.Conv2d(2, 3, 3), (2, 2, 6, 6))])
def test_weight_norm_matches_torch(make, shape):
    theirs = torch.nn.utils.weight_norm(make(torch.nn))
    ours = nn.weight_norm(make(nn))
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    yt, yo = theirs(torch.tensor(x)), ours(tg.Tensor(x))
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    yt.sum().backward()
    yo.sum().backward()
    for k, p in theirs.named_parameters():
        np.testing.assert_allclose(dict(ours.named_parameters())[k].grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5)
