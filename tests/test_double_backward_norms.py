"""Second derivatives through every built-in norm: training and eval, w.r.t. the input and the parameters,
against PyTorch's double backward (where it is installed) and against central differences (gradgradcheck),
on the fused kernels and the reference; synchronized statistics; and the error at the third order."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import gradgradcheck_module, nn, world
from worlds import IdenticalProcesses

# (ours, PyTorch's, input shape): every built-in norm PyTorch also has
NORMS = {
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), "BatchNorm1d(3)", (5, 3)),
    "BatchNorm1d_3d": (lambda: nn.BatchNorm1d(3), "BatchNorm1d(3)", (4, 3, 2)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), "BatchNorm2d(3)", (4, 3, 2, 2)),
    "BatchNorm2d_no_affine": (lambda: nn.BatchNorm2d(3, affine=False), "BatchNorm2d(3, affine=False)", (3, 3, 2, 2)),
    "LayerNorm": (lambda: nn.LayerNorm(4), "LayerNorm(4)", (3, 2, 4)),
    "LayerNorm_2d": (lambda: nn.LayerNorm((2, 4)), "LayerNorm((2, 4))", (3, 2, 4)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), "GroupNorm(2, 4)", (3, 4, 3)),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3), "InstanceNorm1d(3)", (2, 3, 5)),
    "InstanceNorm2d_affine_running": (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
                                      "InstanceNorm2d(3, affine=True, track_running_stats=True)", (2, 3, 3, 3)),
    "RMSNorm": (lambda: nn.RMSNorm(4), "RMSNorm(4)", (3, 4)),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3), "LocalResponseNorm(3)", (2, 5, 3)),
}


def _copy_state(ours, theirs, rng, torch):
    """Random parameters and running statistics, the same in both."""
    for name, p in ours.named_parameters():
        value = 1 + 0.5 * rng.standard_normal(p.shape)
        p.data[...] = value
        dict(theirs.named_parameters())[name].data.copy_(torch.tensor(value))
    for name, b in ours.named_buffers():
        if b.dtype.kind == "f":
            value = rng.random(b.shape) + 0.5
            b.data[...] = value
            dict(theirs.named_buffers())[name].data.copy_(torch.tensor(value))


def _penalty_gradients(module, x, params, weights, grad):
    """d/d(x, params) of Σ ‖∂L/∂(x, params)‖² with L = Σ w·y², by one framework's grad."""
    first = grad((module(x) ** 2 * weights).sum(), [x] + params, create_graph=True)
    return grad(sum((g * g).sum() for g in first), [x] + params)


# the fused numba kernels and the reference (the numba kernels' parallel form is the same arithmetic, tested
# against the serial one in test_kernels.py)
TWO_KERNELS = pytest.mark.parametrize("kernels", ["numba", "numpy"], indirect=True)


@TWO_KERNELS
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", NORMS)
def test_second_derivatives_match_pytorchs_double_backward(name, mode, kernels):
    torch = pytest.importorskip("torch")
    make, theirs_text, shape = NORMS[name]
    rng = np.random.default_rng(0)
    ours, theirs = make().double(), eval(f"torch.nn.{theirs_text}").double()
    _copy_state(ours, theirs, rng, torch)
    ours.train(mode == "train")
    theirs.train(mode == "train")
    x, w = rng.standard_normal(shape), rng.standard_normal(shape)
    xs = tg.Tensor(x, requires_grad=True)
    got = _penalty_gradients(ours, xs, list(ours.parameters()), tg.Tensor(w), tg.grad)
    xt = torch.tensor(x, requires_grad=True)
    want = _penalty_gradients(theirs, xt, list(theirs.parameters()), torch.tensor(w), torch.autograd.grad)
    assert len(got) == len(want) == 1 + len(list(ours.parameters()))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11)


MODULES = {
    "batch_train": (lambda: nn.BatchNorm2d(3), (4, 3, 2, 2), True),
    "batch_eval": (lambda: nn.BatchNorm2d(3), (4, 3, 2, 2), False),
    "layer": (lambda: nn.LayerNorm(5), (3, 5), True),
    "group": (lambda: nn.GroupNorm(2, 4), (2, 4, 3), True),
    "instance_eval": (lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (2, 3, 4), False),
    "rms": (lambda: nn.RMSNorm(4), (3, 4), True),
    "ghost_batch": (lambda: nn.Norm("ghost_batch", 3, k=2), (4, 3, 2), True),
    "local_response": (lambda: nn.LocalResponseNorm(3), (2, 5, 2), True),
}


@TWO_KERNELS
@pytest.mark.parametrize("name", MODULES)
def test_second_derivatives_against_central_differences(name, kernels):
    make, shape, training = MODULES[name]
    module = make().double().train(training)
    for p in module.parameters():
        p.data[...] = 1 + 0.5 * np.random.default_rng(1).standard_normal(p.shape)
    gradgradcheck_module(module, tg.Tensor(np.random.default_rng(0).standard_normal(shape)))


def test_float32_second_derivatives_stay_float32():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    bn = nn.BatchNorm1d(3)
    (g,) = tg.grad((bn(x) ** 3).sum(), x, create_graph=True)
    (h,) = tg.grad((g * g).sum(), x)
    assert g.dtype == h.dtype == np.float32
    assert np.isfinite(h.numpy()).all()


def test_synchronized_second_derivatives_are_those_of_the_whole_batch(monkeypatch):
    """3 processes with the same local batch x make the whole batch [x; x; x]: each process's second
    derivative (its five sums all-reduced) must be the whole batch's for its own copy. A process's dγ is its
    own third of the whole's, so the whole batch's penalty on it is weighted by 1/3 to be the sum of theirs."""
    rng = np.random.default_rng(0)
    x, w, u = (rng.standard_normal((4, 3, 2)) for _ in range(3))

    def second(module, x, w, u, weight):
        xs = tg.Tensor(x, requires_grad=True)
        params = list(module.parameters())
        (gx, *gp) = tg.grad((module(xs) ** 2 * tg.Tensor(w)).sum(), [xs] + params, create_graph=True)
        return tg.grad((gx * tg.Tensor(u)).sum() + sum((g * g).sum() for g in gp) * weight, [xs] + params)

    whole = nn.BatchNorm1d(3).double()
    want = second(whole, *(np.concatenate([a] * 3) for a in (x, w, u)), 1 / 3)
    synced = nn.SyncBatchNorm(3).double()
    monkeypatch.setattr(world, "world", lambda: IdenticalProcesses(3))
    got = second(synced, x, w, u, 1)
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy()[:4], rtol=1e-10, atol=1e-12)
    for a, b in zip(got[1:], want[1:]):  # each process holds a third of the whole batch's parameter gradient
        np.testing.assert_allclose(a.numpy() * 3, b.numpy(), rtol=1e-10)


def test_a_third_derivative_through_a_norm_is_a_clear_error():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    (g,) = tg.grad((nn.BatchNorm1d(3).double()(x) ** 2).sum(), x, create_graph=True)
    (h,) = tg.grad((g * g).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="NormalizeGrad's backward is once_differentiable"):
        tg.grad(h.sum(), x)
