"""Convolution and pooling: forward against the definition (plain loops), backward by gradcheck."""
from functools import partial

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import backend, gradcheck, nn
from tinygrad_norm.nn import functional as F
from tinygrad_norm.ops import conv

pytestmark = pytest.mark.usefixtures("window_kernels")


def conv2d_reference(x, w, b, stride, padding, dilation, groups):
    """out[n, o, y, x] = Σ_{c, i, j} xpad[n, g·Cg + c, y·s + i·d, x·s + j·d] · w[o, c, i, j] + b[o], by loops."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    for oc in range(o):
        g = oc // (o // groups)
        for yy in range(oh):
            for xx in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        patch = xp[:, g * cg:(g + 1) * cg, yy * stride[0] + i * dilation[0], xx * stride[1] + j * dilation[1]]
                        out[:, oc, yy, xx] += patch @ w[oc, :, i, j]
        out[:, oc] += 0 if b is None else b[oc]
    return out


CONV_CASES = [
    dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
    dict(stride=(2, 1), padding=(1, 2), dilation=(1, 1), groups=1),
    dict(stride=(1, 1), padding=(1, 1), dilation=(2, 1), groups=1),
    dict(stride=(2, 2), padding=(1, 1), dilation=(1, 2), groups=2),
    dict(stride=(1, 1), padding=(0, 1), dilation=(1, 1), groups=4),  # depthwise
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_definition_and_gradchecks(case, bias, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((4, 4 // case["groups"], 3, 2))
    b = rng.standard_normal(4) if bias else None
    out = F.conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), **case)
    np.testing.assert_allclose(out.numpy(), conv2d_reference(x, w, b, **case), rtol=1e-10, atol=1e-12)
    args = [Tensor(x), Tensor(w)] + ([Tensor(b)] if bias else [])
    gradcheck(lambda *t: F.conv2d(*t, **case), *args)


def test_conv1d_gradcheck_and_shape(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x, w, b = (Tensor(rng.standard_normal(s)) for s in ((2, 4, 9), (6, 2, 3), (6,)))
    out = F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2)
    assert out.shape == (2, 6, 4)
    gradcheck(lambda *t: F.conv1d(*t, stride=2, padding=1, dilation=2, groups=2), x, w, b)
    layer = nn.Conv1d(4, 6, 3, groups=2).to(device)
    assert layer.weight.shape == (6, 2, 3) and layer(tg.randn(2, 4, 9, device=device)).shape == (2, 6, 7)


def test_conv_layer_errors_are_clear():
    with pytest.raises(ValueError, match=r"in_channels \(3\).*divisible by groups \(2\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\); got \(8, 8\)"):
        nn.Conv2d(4, 4, 3)(tg.randn(8, 8))
    assert nn.Conv2d(4, 4, 3)(tg.randn(4, 8, 8)).shape == (4, 6, 6)  # one sample without a batch axis
    with pytest.raises(ValueError, match="weight shape is"):
        nn.Conv2d(4, 4, 3)(tg.randn(1, 3, 8, 8))


def pool_reference(x, k, s, p, reduce, pad_value):
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=pad_value)
    oh, ow = (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
    return np.array([[[[reduce(xp[n, c, i * s:i * s + k, j * s:j * s + k]) for j in range(ow)] for i in range(oh)]
                      for c in range(x.shape[1])] for n in range(x.shape[0])])


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0)])
def test_max_pool(k, s, p, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x = Tensor(rng.standard_normal((2, 3, 6, 7)))
    np.testing.assert_allclose(F.max_pool2d(x, k, s, p).numpy(), pool_reference(x.numpy(), k, s, p, np.max, -np.inf))
    gradcheck(lambda t: F.max_pool2d(t, k, s, p), x)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_avg_pool(k, s, p, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x = Tensor(rng.standard_normal((2, 3, 6, 7)))
    np.testing.assert_allclose(F.avg_pool2d(x, k, s, p).numpy(), pool_reference(x.numpy(), k, s, p, np.mean, 0.0))
    gradcheck(lambda t: F.avg_pool2d(t, k, s, p), x)


@pytest.mark.parametrize("out", [1, 2, 3, (2, 3)])
def test_adaptive_avg_pool(out, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x = Tensor(rng.standard_normal((2, 3, 6, 7)))
    y = nn.AdaptiveAvgPool2d(out)(x)
    oh, ow = (out, out) if isinstance(out, int) else out
    assert y.shape == (2, 3, oh, ow)
    h0, h1 = 0, -(-6 // oh)  # first bin, PyTorch's rule
    w0, w1 = 0, -(-7 // ow)
    np.testing.assert_allclose(y.numpy()[:, :, 0, 0], x.numpy()[:, :, h0:h1, w0:w1].mean(axis=(2, 3)))
    gradcheck(lambda t: F.adaptive_avg_pool2d(t, out), x)


@pytest.mark.parametrize("pool,reduce,pad_value", [(F.max_pool2d, np.max, -np.inf), (F.avg_pool2d, np.mean, 0.0)])
def test_pools_whose_windows_tile_the_input(pool, reduce, pad_value, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    x = Tensor(rng.standard_normal((2, 3, 6, 4)))  # 2x2 windows, stride 2: each element in exactly one window
    np.testing.assert_allclose(pool(x, 2).numpy(), pool_reference(x.numpy(), 2, 2, 0, reduce, pad_value))
    gradcheck(lambda t: pool(t, 2), x)


def test_conv_and_pools_take_their_windows_from_the_backend_as_strided(monkeypatch, rng):
    """NumPy's and CuPy's as_strided differ (CuPy's has no `writeable`), so windows come from backend.as_strided
    (on the NumPy path, which is CuPy's)."""
    monkeypatch.setattr(conv.window_kernels, "applies", lambda *arrays: False)
    views = []

    def spy(x, shape, strides):
        views.append(backend.as_strided(x, shape, strides))
        return views[-1]
    monkeypatch.setattr(conv, "as_strided", spy)
    x, w = tg.Tensor(rng.standard_normal((2, 4, 6, 5))), tg.Tensor(rng.standard_normal((6, 2, 3, 2)))
    for op, window in [(lambda: F.conv2d(x, w, padding=1, stride=2, groups=2), (2, 4, 3, 3, 3, 2)),
                       (lambda: F.max_pool2d(x, 3, 2, 1), (2, 4, 3, 3, 3, 3)),
                       (lambda: F.avg_pool2d(x, 2), (2, 4, 3, 2, 2, 2))]:
        n = len(views)
        op()
        assert len(views) == n + 1 and views[-1].shape == window and not views[-1].flags.writeable
