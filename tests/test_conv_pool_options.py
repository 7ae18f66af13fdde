"""PyTorch's convolution and pooling options and F.pad's modes: against PyTorch where it is installed, against
index arithmetic written out here everywhere, and their gradients against central differences."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import gradcheck, nn
from tinygrad_norm.nn import functional as F

pytestmark = pytest.mark.usefixtures("window_kernels")

R = np.random.default_rng(0)
X = R.standard_normal((2, 3, 7, 6))
W = R.standard_normal((4, 3, 3, 2))


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


def test_pad_modes_read_the_positions_their_rule_gives():
    """Along one axis of length 5, (2, 3) padding reads these input positions."""
    x = tg.Tensor(np.arange(5.0).reshape(1, 1, 5))
    assert F.pad(x, (2, 3), mode="reflect").numpy().ravel().tolist() == [2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
    assert F.pad(x, (2, 3), mode="replicate").numpy().ravel().tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4, 4]
    assert F.pad(x, (2, 3), mode="circular").numpy().ravel().tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1, 2]
    assert F.pad(x, (2, 3), value=-1.0).numpy().ravel().tolist() == [-1, -1, 0, 1, 2, 3, 4, -1, -1, -1]
    assert F.pad(x, (-1, 2), mode="circular").numpy().ravel().tolist() == [1, 2, 3, 4, 1, 2]  # crops first
    assert F.pad(x, (-2, -1)).numpy().ravel().tolist() == [2, 3]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("widths", [(1, 2), (2, 1, 1, 0), (-1, 2, 1, -2), (1, 1, 0, 2, 1, 1)])
def test_pad_is_pytorchs_and_its_gradient_adds_where_an_element_repeats(mode, widths, device):
    x = X if len(widths) < 6 else X[:, :, :, :, None].repeat(3, axis=4)
    if mode != "constant" and len(widths) == 2:
        x = x[0]  # PyTorch pads one axis of a 2-d or 3-d input only, in these modes
    ours = F.pad(tg.Tensor(x, device=device), widths, mode=mode)
    gradcheck(lambda t: F.pad(t, widths, mode=mode), tg.Tensor(x, device=device))
    torch = torch_or_skip()
    np.testing.assert_array_equal(ours.numpy(), torch.nn.functional.pad(torch.tensor(x), widths, mode=mode).numpy())


def test_pad_errors_are_pytorchs():
    x = tg.Tensor(X)
    with pytest.raises(ValueError, match="less than the corresponding input dimension"):
        F.pad(x, (6, 0, 0, 0), mode="reflect")
    with pytest.raises(NotImplementedError, match="needs a 2-d or 3-d input"):
        F.pad(x, (1, 1), mode="reflect")
    with pytest.raises(ValueError, match="divisible by 2"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match="doesn't take in value"):
        F.pad(x, (1, 1, 1, 1), mode="replicate", value=2.0)


CONV = [dict(padding="same"), dict(padding="same", dilation=2), dict(padding="valid", stride=(2,)),
        dict(padding=(1, 0), stride=[2]), dict(padding=2, dilation=(2, 1), stride=(1, 2))]


@pytest.mark.parametrize("options", CONV, ids=[str(c) for c in CONV])
def test_conv2d_options_and_unbatched_input(options, device):
    x, w = tg.Tensor(X, device=device), tg.Tensor(W, device=device)
    out = F.conv2d(x, w, **options)
    if options.get("padding") == "same":
        assert out.shape[2:] == X.shape[2:]
    np.testing.assert_allclose(F.conv2d(tg.Tensor(X[1], device=device), w, **options).numpy(), out.numpy()[1],
                               rtol=1e-12)
    gradcheck(lambda a, b: F.conv2d(a, b, **options), tg.Tensor(X[:1, :, :5, :4], device=device), w)
    torch = torch_or_skip()
    np.testing.assert_allclose(out.numpy(), torch.nn.functional.conv2d(torch.tensor(X), torch.tensor(W), **options)
                               .numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("dims", [1, 2])
def test_conv_layers_padding_modes_are_pytorchs(padding_mode, dims):
    torch = torch_or_skip()
    ours = (nn.Conv1d if dims == 1 else nn.Conv2d)(3, 4, 3, padding=1 if dims == 2 else "same",
                                                   padding_mode=padding_mode, stride=1)
    theirs = (torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d)(3, 4, 3, padding=1 if dims == 2 else "same",
                                                                 padding_mode=padding_mode).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = X[:, :, 0] if dims == 1 else X
    np.testing.assert_allclose(ours(tg.Tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)


def test_conv_argument_errors():
    with pytest.raises(ValueError, match="'same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"stride to be a single integer value or a list of 2"):
        F.conv2d(tg.Tensor(X), tg.Tensor(W), stride=(1, 2, 3))
    assert nn.Conv1d(3, 4, 3, stride=(2,))(tg.Tensor(X[:, :, 0])).shape == (2, 4, 2)


def max_pool_reference(x, k, s, p, d, ceil_mode):
    """Max (and flat index h·W + w) over each window whose start lies in the input or its left padding."""
    n, c, h, w = x.shape
    sizes = []
    for size in (h, w):
        span = size + 2 * p - d * (k - 1) - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        sizes.append(o - 1 if ceil_mode and (o - 1) * s >= size + p else o)
    out, idx = np.full((n, c) + tuple(sizes), -np.inf), np.zeros((n, c) + tuple(sizes), int)
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            for a in range(k):
                for b in range(k):
                    r, q = i * s - p + a * d, j * s - p + b * d
                    if 0 <= r < h and 0 <= q < w:
                        better = x[:, :, r, q] > out[:, :, i, j]
                        out[:, :, i, j] = np.where(better, x[:, :, r, q], out[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, r * w + q, idx[:, :, i, j])
    return out, idx


@pytest.mark.parametrize("k,s,p,d,ceil_mode", [(3, 2, 1, 1, True), (2, 1, 0, 2, False), (3, 2, 1, 2, True),
                                               (2, 2, 0, 1, True)])
def test_max_pool_dilation_ceil_mode_and_indices(k, s, p, d, ceil_mode, device):
    want, want_idx = max_pool_reference(X, k, s, p, d, ceil_mode)
    out, idx = F.max_pool2d(tg.Tensor(X, device=device), k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    layer = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(layer(tg.Tensor(X[0], device=device)).numpy(), want[0])  # unbatched
    gradcheck(lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode=ceil_mode), tg.Tensor(X, device=device))


def avg_pool_reference(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """PyTorch's divisor: the window within the padded input, or its input elements, or the override."""
    n, c, h, w = x.shape
    sizes = []
    for size in (h, w):
        o = (-(-(size + 2 * p - k) // s) if ceil_mode else (size + 2 * p - k) // s) + 1
        sizes.append(o - 1 if ceil_mode and (o - 1) * s >= size + p else o)
    out = np.zeros((n, c) + tuple(sizes))
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            r0, q0 = i * s - p, j * s - p
            r1, q1 = min(r0 + k, h + p), min(q0 + k, w + p)
            divisor = (r1 - r0) * (q1 - q0)
            r0, q0, r1, q1 = max(r0, 0), max(q0, 0), min(r1, h), min(q1, w)
            if not count_include_pad:
                divisor = (r1 - r0) * (q1 - q0)
            out[:, :, i, j] = x[:, :, r0:r1, q0:q1].sum((2, 3)) / (divisor_override or divisor)
    return out


@pytest.mark.parametrize("options", [dict(k=3, s=2, p=1, ceil_mode=True, count_include_pad=True, divisor_override=None),
                                     dict(k=3, s=2, p=1, ceil_mode=True, count_include_pad=False, divisor_override=None),
                                     dict(k=2, s=2, p=0, ceil_mode=False, count_include_pad=True, divisor_override=3),
                                     dict(k=3, s=1, p=1, ceil_mode=False, count_include_pad=False, divisor_override=None)])
def test_avg_pool_divisors(options, device):
    o = options
    want = avg_pool_reference(X, **o)
    kw = dict(ceil_mode=o["ceil_mode"], count_include_pad=o["count_include_pad"], divisor_override=o["divisor_override"])
    out = F.avg_pool2d(tg.Tensor(X, device=device), o["k"], o["s"], o["p"], **kw)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    gradcheck(lambda t: F.avg_pool2d(t, o["k"], o["s"], o["p"], **kw), tg.Tensor(X, device=device))
    torch = torch_or_skip()
    np.testing.assert_allclose(out.numpy(), torch.nn.functional.avg_pool2d(torch.tensor(X), o["k"], o["s"], o["p"], **kw)
                               .numpy(), rtol=1e-12)


def test_pool_options_are_pytorchs():
    torch = torch_or_skip()
    for k, s, p, d, ceil_mode in [(3, 2, 1, 1, True), (2, 1, 0, 2, False), (3, 2, 1, 2, True)]:
        a, i = F.max_pool2d(tg.Tensor(X), k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
        b, j = torch.nn.functional.max_pool2d(torch.tensor(X), k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(i.numpy(), j.numpy())
    got = F.adaptive_avg_pool2d(tg.Tensor(X), (None, 4))
    np.testing.assert_allclose(got.numpy(), torch.nn.functional.adaptive_avg_pool2d(torch.tensor(X), (None, 4)).numpy(),
                               rtol=1e-12)


def test_pool_errors():
    with pytest.raises(ValueError, match="pad should be at most half of effective kernel size"):
        F.max_pool2d(tg.Tensor(X), 2, padding=2)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\); got \(7, 6\)"):
        F.avg_pool2d(tg.Tensor(X[0, 0]), 2)
