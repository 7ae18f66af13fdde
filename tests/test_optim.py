"""Optimizers against their update rules, written out by hand; schedules against their formulas."""
import math

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import backend, nn, optim


def quadratic_steps(opt_factory, steps=3, device="cpu"):
    """Minimise Σ (w - 1)² on `device`, returning the parameter (on the host) and the gradients it saw."""
    w = nn.Parameter(np.array([0.5, -2.0]))
    w.data = backend.to_device(w.data, device)
    opt = opt_factory([w])
    history = []
    for _ in range(steps):
        opt.zero_grad()
        ((w - 1) ** 2).sum().backward()
        history.append((w.numpy().copy(), w.grad.numpy().copy()))
        opt.step()
    assert w.device == device
    return w.numpy(), history


def test_sgd_plain_and_weight_decay(device):
    w, hist = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01), device=device)
    ref = np.array([0.5, -2.0])
    for _ in range(3):
        ref = ref - 0.1 * (2 * (ref - 1) + 0.01 * ref)
    np.testing.assert_allclose(w, ref)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(nesterov, device):
    w, _ = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=nesterov), steps=4, device=device)
    ref, buf = np.array([0.5, -2.0]), None
    for _ in range(4):
        g = 2 * (ref - 1)
        buf = g if buf is None else 0.9 * buf + g
        ref = ref - 0.1 * (g + 0.9 * buf if nesterov else buf)
    np.testing.assert_allclose(w, ref)


@pytest.mark.parametrize("cls,wd", [(optim.Adam, 0.0), (optim.Adam, 0.1), (optim.AdamW, 0.1)])
def test_adam_and_adamw(cls, wd, device):
    w, _ = quadratic_steps(lambda p: cls(p, lr=0.05, weight_decay=wd), steps=5, device=device)
    ref, m, v = np.array([0.5, -2.0]), 0, 0
    for t in range(1, 6):
        g = 2 * (ref - 1)
        if cls is optim.AdamW:
            ref = ref * (1 - 0.05 * wd)
        else:
            g = g + wd * ref
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        ref = ref - 0.05 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(w, ref)


def test_schedules():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    step = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        step.step()
        lrs.append(opt.lr)
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt.lr = 1.0
    cos = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    for epoch in range(1, 5):
        cos.step()
        assert opt.lr == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * epoch / 4)) / 2)
    assert opt.lr == pytest.approx(0.1)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="no parameters that require grad"):
        optim.SGD([tg.zeros(2)])
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([nn.Parameter(np.zeros(1))], nesterov=True)


def test_parameters_without_grad_are_skipped(device):
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    a.data, b.data = backend.to_device(a.data, device), backend.to_device(b.data, device)
    opt = optim.SGD([a, b], lr=1.0)
    (a * 3).sum().backward()
    opt.step()
    np.testing.assert_allclose(a.numpy(), [-2, -2])
    np.testing.assert_allclose(b.numpy(), [1, 1])
