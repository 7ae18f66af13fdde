"""PyTorch's edge semantics, case by case: the norms on one value per statistic, eps = 0, large offsets and empty
batches (on every kernel implementation), and the ops on 0-d tensors, zero-size axes, NaN and ±inf. Each case
is compared with PyTorch where it is installed and with the value PyTorch gives written out otherwise."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn
from tinygrad_norm.nn import functional as F

try:
    import torch
except ImportError:
    torch = None

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install torch==2.13.0)")


def refuses_like_torch(make, shape, eval_mode=False):
    """Our layer and PyTorch's both raise ValueError on this input."""
    ours = make(nn)
    if eval_mode:
        ours.eval()
    with pytest.raises(ValueError, match="needs more than one value per statistic"):
        ours(tg.randn(*shape))
    if torch is not None:
        theirs = make(torch.nn)
        if eval_mode:
            theirs.eval()
        with pytest.raises(ValueError):
            theirs(torch.randn(*shape))


def test_instance_norm_on_one_value_per_statistic_is_refused_in_training_and_in_eval(kernels):
    refuses_like_torch(lambda m: m.InstanceNorm1d(3), (4, 3, 1))
    refuses_like_torch(lambda m: m.InstanceNorm1d(3), (4, 3, 1), eval_mode=True)
    tracked = nn.InstanceNorm1d(3, track_running_stats=True).eval()  # running statistics: nothing to refuse
    assert tracked(tg.randn(4, 3, 1)).shape == (4, 3, 1)


def test_batch_norm_in_eval_without_running_statistics_refuses_one_value_as_in_training(kernels):
    refuses_like_torch(lambda m: m.BatchNorm1d(3, track_running_stats=False), (1, 3), eval_mode=True)
    assert nn.BatchNorm1d(3).eval()(tg.randn(1, 3)).shape == (1, 3)


@pytest.mark.parametrize("make, shape", [(lambda m: m.LayerNorm(1), (4, 1)), (lambda m: m.GroupNorm(8, 8), (2, 8)),
                                         (lambda m: m.GroupNorm(8, 8), (2, 8, 1))])
def test_layer_and_group_norm_compute_on_one_value_per_statistic_as_pytorch(kernels, make, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    layer = make(nn)
    with tg.no_grad():
        for p in layer.parameters():
            p.data = np.full_like(p.data, 0.5)  # the output is β wherever x̂ = 0
    y = layer(tg.Tensor(x)).numpy()
    np.testing.assert_allclose(y, np.full(shape, 0.5), atol=1e-2)
    if torch is not None:
        theirs = make(torch.nn)
        for p in theirs.parameters():
            torch.nn.init.constant_(p, 0.5)
        np.testing.assert_allclose(y, theirs(torch.from_numpy(x)).detach().numpy(), atol=1e-2)


NORMS = [("LayerNorm", lambda m: m.LayerNorm(4, eps=0), (3, 4)), ("GroupNorm", lambda m: m.GroupNorm(1, 3, eps=0), (2, 3, 4)),
         ("RMSNorm", lambda m: m.RMSNorm(4, eps=0), (3, 4)), ("BatchNorm eval", lambda m: m.BatchNorm1d(3, eps=0), (2, 3))]


@pytest.mark.parametrize("label, make, shape", NORMS, ids=[n for n, _, _ in NORMS])
@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_eps_zero_on_a_constant_input_gives_nan_or_inf_never_an_exception(kernels, label, make, shape, fill):
    x = np.full(shape, fill, np.float32)
    layer = make(nn)
    if label == "BatchNorm eval":
        layer.running_var.data[...] = 0
        layer.running_mean.data[...] = fill
        layer.eval()
    t = tg.Tensor(x, requires_grad=True)
    y = layer(t)
    y.sum().backward()
    want = {"LayerNorm": np.nan, "GroupNorm": np.nan, "BatchNorm eval": np.nan, "RMSNorm": np.nan if fill == 0 else 1.0}
    np.testing.assert_array_equal(y.numpy(), np.full(shape, want[label], np.float32))
    if torch is not None:
        theirs = make(torch.nn)
        if label == "BatchNorm eval":
            theirs.running_var.zero_()
            theirs.running_mean.fill_(fill)
            theirs.eval()
        np.testing.assert_array_equal(y.numpy(), theirs(torch.from_numpy(x)).detach().numpy())


def test_batch_norm_refuses_eps_zero_in_training_as_pytorch():
    with pytest.raises(ValueError, match=r"BatchNorm2d: eps must be positive in training \(as PyTorch's batch_norm\); got 0"):
        nn.BatchNorm2d(3, eps=0)(tg.ones(4, 3, 2, 2))
    if torch is not None:
        with pytest.raises(ValueError, match="eps must be positive"):
            torch.nn.BatchNorm2d(3, eps=0)(torch.ones(4, 3, 2, 2))


LAYOUTS = [("BatchNorm1d (N, C)", lambda m: m.BatchNorm1d(8), (64, 8)),
           ("BatchNorm1d (N, C, L)", lambda m: m.BatchNorm1d(8), (64, 8, 5)),
           ("BatchNorm2d", lambda m: m.BatchNorm2d(4), (8, 4, 5, 5)), ("LayerNorm", lambda m: m.LayerNorm(16), (8, 16)),
           ("GroupNorm", lambda m: m.GroupNorm(2, 4), (8, 4, 6)), ("InstanceNorm", lambda m: m.InstanceNorm1d(4), (8, 4, 16))]


@pytest.mark.parametrize("label, make, shape", LAYOUTS, ids=[n for n, _, _ in LAYOUTS])
def test_float32_data_offset_by_1e6_normalizes_to_float32_precision_on_every_layout(kernels, label, make, shape):
    """Against float64 arithmetic on the same float32 input: forward and input gradient within 2e-6 (PyTorch's
    float32 layers are off by 0.04 to 0.19 here, their mean being rounded to float32)."""
    if kernels == "numpy":
        pytest.skip("the NumPy reference kernels compute in the input's float32, as PyTorch's layers do (up to 0.2 "
                    "off at offset 1e6); the numba kernels, the CPU's default, accumulate in float64")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) + 1e6).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    results = []
    for dtype in (np.float32, np.float64):
        layer = make(nn).astype(dtype)
        t = tg.Tensor(x.astype(dtype), requires_grad=True)
        y = layer(t)
        y.backward(tg.Tensor(dy.astype(dtype)))
        results.append((y.numpy().astype(np.float64), t.grad.numpy().astype(np.float64)))
    (y32, dx32), (y64, dx64) = results
    assert np.abs(y32 - y64).max() < 2e-6, np.abs(y32 - y64).max()
    assert np.abs(dx32 - dx64).max() < 2e-5 * np.abs(dx64).max() + 1e-6, np.abs(dx32 - dx64).max()


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2)])
def test_batch_norm_on_an_empty_batch_returns_empty_and_keeps_its_averages(kernels, shape):
    layer = nn.BatchNorm1d(3) if len(shape) == 2 else nn.BatchNorm2d(3)
    x = tg.Tensor(np.zeros(shape, np.float32), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.shape == shape and x.grad.shape == shape
    assert layer.running_mean.numpy().tolist() == [0, 0, 0] and layer.running_var.numpy().tolist() == [1, 1, 1]
    assert layer.num_batches_tracked.item() == 1  # PyTorch counts the step
    assert layer.weight.grad.numpy().tolist() == [0, 0, 0]
    if torch is not None:
        theirs = torch.nn.BatchNorm1d(3) if len(shape) == 2 else torch.nn.BatchNorm2d(3)
        theirs(torch.zeros(shape))
        assert theirs.num_batches_tracked.item() == 1 and theirs.running_var.tolist() == [1, 1, 1]


@pytest.mark.parametrize("layer, shape", [(nn.LayerNorm(3), (0, 3)), (nn.GroupNorm(1, 3), (0, 3, 2)),
                                          (nn.InstanceNorm1d(3), (0, 3, 4)), (nn.RMSNorm(3), (0, 3))],
                         ids=["layer", "group", "instance", "rms"])
def test_the_other_norms_on_an_empty_batch_return_empty(kernels, layer, shape):
    assert layer(tg.zeros(*shape)).shape == shape


# ---- ops -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reducing_a_0d_tensor_over_axis_0_or_minus_1_returns_it(op):
    z = tg.tensor(np.float32(3.0))
    for axis in (0, -1, (0,), None):
        for keepdims in (False, True):
            r = getattr(z, op)(axis=axis, keepdims=keepdims)
            assert r.shape == () and r.item() == 3.0
    with pytest.raises(IndexError, match=r"axis 1 is out of range for a tensor of 0 dimensions \(expected one in \[-1, 0\]\)"):
        getattr(z, op)(axis=1)
    if torch is not None:
        assert getattr(torch.tensor(3.0), {"max": "amax", "min": "amin"}.get(op, op))(0).item() == 3.0


def test_0d_movement_ops_as_pytorch():
    z = tg.tensor(np.float32(3.0), requires_grad=True)
    for r in (z.cumsum(0), z.cumsum(-1), z.transpose(), z.transpose(0, -1), z.T, z.squeeze(), z.squeeze(0)):
        assert r.shape == () and r.item() == 3.0
    assert z.unsqueeze(0).shape == (1,) and z.flatten().shape == (1,)
    z.cumsum(0).backward()
    assert z.grad.item() == 1.0
    assert tg.tensor(np.arange(3)).cumsum().dtype == np.int64


def test_squeeze_of_an_axis_not_of_size_1_leaves_it_and_unsqueeze_checks_its_range():
    t = tg.ones(2, 1, 3)
    assert t.squeeze(0).shape == (2, 1, 3) and t.squeeze(1).shape == (2, 3) and t.squeeze((0, 1)).shape == (2, 3)
    with pytest.raises(IndexError, match="axis 5 is out of range for a tensor of 4 dimensions"):
        t.unsqueeze(5)
    with pytest.raises(IndexError, match="out of range"):
        t.permute(0, 1, 5)


def test_empty_axes_and_batches():
    assert F.softmax(tg.zeros(3, 0), dim=1).shape == (3, 0) and F.log_softmax(tg.zeros(0, 3), dim=1).shape == (0, 3)
    assert tg.zeros(0, 3, 4).flatten(1).shape == (0, 12) and tg.zeros(2, 0, 4).flatten().shape == (0,)
    empty = F.cross_entropy(tg.zeros(0, 3, requires_grad=True), np.zeros(0, np.int64))
    assert np.isnan(empty.item())
    assert F.cross_entropy(tg.zeros(0, 3), np.zeros(0, np.int64), reduction="sum").item() == 0
    assert np.isnan(F.mse_loss(tg.zeros(0), tg.zeros(0)).item()) and np.isnan(tg.zeros(0).mean().item())
    assert tg.zeros(0).sum().item() == 0
    if torch is not None:
        assert np.isnan(torch.nn.functional.cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).item())


def test_relu_maximum_and_minimum_keep_nan_and_inf():
    inf, nan = np.inf, np.nan
    assert tg.tensor([-inf, inf, nan]).relu().numpy().tolist()[:2] == [0, inf]
    assert np.isnan(tg.tensor([nan]).relu().item())
    for op in ("maximum", "minimum"):
        r = getattr(tg.tensor([nan, 1.0]), op)(tg.tensor([1.0, nan])).numpy()
        assert np.isnan(r).all(), (op, r)  # a NaN in either operand, as PyTorch and np.maximum


def test_gradients_at_the_special_points_are_pytorchs():
    a = tg.tensor([0.0, 0.0, 1.0], requires_grad=True)
    b = tg.tensor([2.0, 0.0, 2.0], requires_grad=True)
    (a ** b).sum().backward()
    assert a.grad.numpy().tolist() == [0, 0, 2] and b.grad.numpy().tolist() == [0, 0, 0]  # PyTorch's, not NaN
    c = tg.tensor([0.0, 1.0], requires_grad=True)
    (c ** 0).sum().backward()
    assert c.grad.numpy().tolist() == [0, 0]
    r = tg.tensor([-np.inf, np.inf, np.nan], requires_grad=True)
    r.relu().sum().backward()
    assert r.grad.numpy().tolist() == [0, 1, 1]  # NaN is not <= 0: the gradient passes, as in PyTorch
    m = tg.tensor([np.nan, 1.0, 2.0], requires_grad=True)
    m.maximum(tg.tensor([1.0, 1.0, 3.0], requires_grad=True)).sum().backward()
    assert m.grad.numpy().tolist() == [1, 0.5, 0]
    if torch is not None:
        ta, tb = torch.tensor([0.0, 0.0, 1.0], requires_grad=True), torch.tensor([2.0, 0.0, 2.0], requires_grad=True)
        (ta ** tb).sum().backward()
        assert ta.grad.tolist() == a.grad.numpy().tolist() and tb.grad.tolist() == b.grad.numpy().tolist()
        tm = torch.tensor([np.nan, 1.0, 2.0], requires_grad=True)
        torch.maximum(tm, torch.tensor([1.0, 1.0, 3.0])).sum().backward()
        assert tm.grad.tolist() == m.grad.numpy().tolist()


def test_gelu_of_nan_ends_and_is_nan():
    y = F.gelu(tg.tensor([np.nan, np.inf, -np.inf, 0.5])).numpy()
    assert np.isnan(y[0]) and y[1] == np.inf and np.isnan(y[2]) and abs(y[3] - 0.3457312) < 1e-6


def test_pooling_an_empty_batch_and_a_sequence_of_no_steps():
    assert F.max_pool2d(tg.zeros(0, 1, 4, 4), 2).shape == (0, 1, 2, 2) == F.avg_pool2d(tg.zeros(0, 1, 4, 4), 2).shape
    with pytest.raises(ValueError, match=r"LSTM expects a sequence of at least one step \(as PyTorch\); got input of "
                                         r"shape \(2, 0, 3\)"):
        nn.LSTM(3, 4, batch_first=True)(tg.zeros(2, 0, 3))
