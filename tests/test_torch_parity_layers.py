"""Where PyTorch is installed: the same weights, loaded by name, give the same numbers (float32 tolerance)."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn
from tinygrad_norm.nn import functional as F

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


def load_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def compare(ours, theirs, x, *extra, rtol=1e-4, atol=1e-5, pick=lambda o: o):
    xt = torch.tensor(x, requires_grad=True)
    xo = tg.Tensor(x, requires_grad=True)
    yt, yo = pick(theirs(xt, *extra)), pick(ours(xo))
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(1).standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    yo.backward(g)
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol)
    ours_grads = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_grads[name].grad.numpy(), p.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


def test_cnn_matches_torch():
    x = np.random.default_rng(0).standard_normal((4, 2, 9, 9)).astype(np.float32)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 6, 3, stride=2, padding=1, dilation=1, groups=2), torch.nn.GELU(),
                                 torch.nn.MaxPool2d(2, 1), torch.nn.Conv2d(6, 4, 2, dilation=2), torch.nn.LeakyReLU(0.2),
                                 torch.nn.AvgPool2d(2, 1, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(4, 3))
    ours = nn.Sequential(nn.Conv2d(2, 6, 3, stride=2, padding=1, groups=2), nn.GELU(), nn.MaxPool2d(2, 1),
                         nn.Conv2d(6, 4, 2, dilation=2), nn.LeakyReLU(0.2), nn.AvgPool2d(2, 1, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    load_from_torch(ours, theirs)
    compare(ours, theirs, x)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_match_torch(name):
    x = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    theirs = getattr(torch.nn, name)(4, 6, num_layers=2, batch_first=True)
    ours = getattr(nn, name)(4, 6, num_layers=2, batch_first=True)
    load_from_torch(ours, theirs)
    compare(ours, theirs, x, pick=lambda out: out[0])


def test_cross_entropy_matches_torch():
    logits = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    target = np.array([0, 3, 2, 2, 1])
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target), label_smoothing=0.1)
    ours = F.cross_entropy(tg.Tensor(logits), target, label_smoothing=0.1)
    np.testing.assert_allclose(ours.item(), ref.item(), rtol=1e-6)


def test_optimizers_match_torch():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    for ours_cls, torch_cls, kw in [(tg.optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
                                    (tg.optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
                                    (tg.optim.AdamW, torch.optim.AdamW, dict(lr=0.01))]:
        wt, wo = torch.tensor(w0, requires_grad=True), nn.Parameter(w0.copy())
        ot, oo = torch_cls([wt], **kw), ours_cls([wo], **kw)
        for _ in range(5):
            ot.zero_grad(), oo.zero_grad()
            (wt ** 3).sum().backward()
            (wo ** 3).sum().backward()
            ot.step(), oo.step()
        np.testing.assert_allclose(wo.data, wt.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=ours_cls.__name__)
