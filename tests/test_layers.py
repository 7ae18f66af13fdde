"""Layers, activations, losses, dropout: shapes, closed forms and gradchecks, on every device."""
from functools import partial

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import gradcheck, nn
from tinygrad_norm.nn import functional as F


def test_linear_matches_definition_and_init_bounds(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(0)
    layer = nn.Linear(16, 4).to(device)
    bound = 1 / np.sqrt(16)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    x = Tensor(rng.standard_normal((3, 16)).astype(np.float32))
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"Linear\(16, 4\) expects inputs whose last axis is 16; got shape \(3, 5\)"):
        layer(tg.randn(3, 5, device=device))


def test_linear_gradcheck(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    gradcheck(lambda x, w, b: x @ w.T + b, *(Tensor(rng.standard_normal(s)) for s in ((3, 5), (4, 5), (4,))))


@pytest.mark.parametrize("fn", [F.relu, F.tanh, F.sigmoid, lambda x: F.leaky_relu(x, 0.1),
                                lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh")])
def test_activation_gradchecks(fn, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    gradcheck(fn, Tensor(rng.standard_normal((4, 5))))


def test_gelu_matches_the_normal_cdf(device):
    Tensor = partial(tg.Tensor, device=device)
    from math import erf, sqrt
    x = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(F.gelu(Tensor(x)).numpy(), [v * 0.5 * (1 + erf(v / sqrt(2))) for v in x], rtol=1e-10,
                               atol=1e-15)


def test_softmax_and_log_softmax(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x = Tensor(rng.standard_normal((4, 5)) * 10)
    e = np.exp(x.numpy() - x.numpy().max(1, keepdims=True))
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy(), e / e.sum(1, keepdims=True))
    gradcheck(lambda t: F.log_softmax(t, axis=0), x)
    gradcheck(F.softmax, x)
    big = Tensor(np.array([[1000.0, 0.0]], np.float32))
    assert np.isfinite(F.log_softmax(big, dim=-1).numpy()).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_closed_form_and_gradcheck(reduction, smoothing, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    logits = Tensor(rng.standard_normal((6, 4)))
    target = np.array([0, 3, 1, 1, 2, 0])
    logp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    per = -(1 - smoothing) * logp[np.arange(6), target] - smoothing * logp.mean(1)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    out = F.cross_entropy(logits, target, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(out.numpy(), expected)
    gradcheck(lambda t: F.cross_entropy(t, target, reduction=reduction, label_smoothing=smoothing), logits)


def test_nll_and_mse_gradcheck(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    target = np.array([2, 0, 1])
    gradcheck(lambda t: F.nll_loss(F.log_softmax(t, dim=1), target), Tensor(rng.standard_normal((3, 3))))
    a, b = Tensor(rng.standard_normal((3, 2))), Tensor(rng.standard_normal((3, 2)))
    np.testing.assert_allclose(F.mse_loss(a, b).item(), ((a.numpy() - b.numpy()) ** 2).mean())
    gradcheck(lambda x, y: F.mse_loss(x, y, reduction="sum"), a, b)


def test_loss_errors_are_clear():
    logits = tg.randn(3, 4)
    with pytest.raises(ValueError, match=r"3 integer class indices.*float64 of shape \(3,\)"):
        F.cross_entropy(logits, np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 4\).*got values from 0 to 7"):
        F.cross_entropy(logits, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match="reduction must be"):
        F.mse_loss(logits, logits, reduction="avg")


def test_dropout_train_and_eval(device):
    tg.manual_seed(0)
    layer = nn.Dropout(0.25)
    x = tg.ones(1000, 10, device=device)
    y = layer(x).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    layer.eval()
    assert layer(x) is x
    gradcheck(lambda t: F.dropout(t, 0.0), tg.randn(3, device=device))
    assert (F.dropout(x, 1.0).numpy() == 0).all()  # p = 1 zeroes everything, as PyTorch's
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        F.dropout(x, 1.5)


def test_dropout_gradient_is_the_mask(device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(1)
    x = Tensor(np.ones(200), requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # d/dx (x·mask·2) = mask·2 = y when x = 1


def test_embedding_flatten_identity(device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(0)
    emb = nn.Embedding(10, 3).to(device)
    idx = np.array([[1, 2], [1, 9]])
    out = emb(idx)
    assert out.shape == (2, 2, 3)
    out.sum().backward()
    assert emb.weight.grad.numpy()[1].tolist() == [2, 2, 2]  # row 1 picked twice
    with pytest.raises(TypeError, match="integer indices"):
        emb(Tensor([1.0]))
    assert nn.Flatten()(tg.zeros(2, 3, 4, device=device)).shape == (2, 12)
    x = tg.zeros(2)
    assert nn.Identity(5, foo=1)(x) is x


@pytest.mark.parametrize("xshape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_op(xshape, bias, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x, w, b = Tensor(rng.standard_normal(xshape)), Tensor(rng.standard_normal((4, 5))), Tensor(rng.standard_normal(4))
    out = F.linear(x, w, b if bias else None)
    np.testing.assert_allclose(out.numpy(), x.numpy() @ w.numpy().T + (b.numpy() if bias else 0))
    gradcheck(lambda *t: F.linear(*t), x, w, *([b] if bias else []))
    with pytest.raises(ValueError, match="expects 5"):
        F.linear(tg.randn(2, 3, device=device), w)
