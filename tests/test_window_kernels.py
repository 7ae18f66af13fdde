"""The numba kernels of convolution and pooling (ops/window_kernels.py), and the thread pools (threads.py): which
implementation a layer gets, max pooling's NaN and -inf rule (PyTorch's), float32 against PyTorch, and the
thread controls. Their values and gradients against the definition are in test_conv_pool*.py, which run every
implementation (the window_kernels fixture)."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn, threads
from tinygrad_norm.nn import functional as F
from tinygrad_norm.ops import window_kernels

needs_numba = pytest.mark.skipif(window_kernels.njit is None, reason="numba is not installed or is switched off")


def method_of(x, w, **options):
    """The implementation F.conv2d picked for these arrays: the op at the output's node keeps it."""
    return F.conv2d(tg.Tensor(x, requires_grad=True), tg.Tensor(w), **options)._ctx.method.name


@needs_numba
def test_each_layer_gets_the_implementation_the_rule_names(rng):
    lenet1 = rng.standard_normal((4, 3, 32, 32)).astype(np.float32), rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    lenet2 = rng.standard_normal((4, 6, 14, 14)).astype(np.float32), rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    assert method_of(*lenet1) == "direct"  # 6 output channels, rows of 892
    assert method_of(*lenet2) == "columns"  # 16 output channels
    assert method_of(*lenet1, stride=2) == "columns"  # the direct kernels are stride-1 only
    tiny = rng.standard_normal((4, 3, 4, 4)).astype(np.float32), rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    assert method_of(*tiny) == "columns"  # rows of 6: too short for the direct loops
    assert method_of(*(a.astype(np.float16) for a in lenet1)) == "windows"  # numba has no float16


def test_without_numba_every_layer_takes_the_windows(monkeypatch, rng):
    monkeypatch.setattr(window_kernels, "applies", lambda *arrays: False)
    assert method_of(rng.standard_normal((2, 3, 32, 32)), rng.standard_normal((6, 3, 5, 5))) == "windows"


@pytest.mark.usefixtures("window_kernels")
def test_max_pool_nan_and_minus_infinity_follow_pytorchs_rule():
    """PyTorch's CPU kernel: the window's first element inside the image to start with, then any larger one or any
    NaN, so a NaN wins (the last NaN of a window), and a window of -inf points at its first element inside the
    image, not at the padding. The values hold on every path; the indices are PyTorch's on the numba path (the
    NumPy path, CuPy's, takes the first NaN, and may point at the padding of an all -inf window)."""
    nan, inf = np.nan, np.inf
    x = np.array([[[[1.0, nan, -inf, -inf],
                    [nan, 2.0, -inf, -inf]]]])
    out, idx = F.max_pool2d(tg.Tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), [[[[nan, -inf]]]])
    padded, pidx = F.max_pool2d(tg.Tensor(np.full((1, 1, 2, 2), -inf)), 2, stride=2, padding=1, return_indices=True)
    assert padded.numpy().tolist() == [[[[-inf, -inf], [-inf, -inf]]]]
    if window_kernels.applies(x):
        assert idx.numpy().tolist() == [[[[4, 2]]]]
        assert pidx.numpy().tolist() == [[[[0, 1], [2, 3]]]]


def test_max_pool_indices_match_pytorch_with_nans(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    if not window_kernels.applies(np.zeros(1)):
        pytest.skip("the numba kernels are off: the NumPy path keeps the first NaN of a window")
    x = rng.standard_normal((2, 3, 7, 8))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[rng.random(x.shape) < 0.1] = -np.inf
    for options in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, ceil_mode=True),
                    dict(kernel_size=2, dilation=2, stride=1)]:
        out, idx = F.max_pool2d(tg.Tensor(x), return_indices=True, **options)
        tout, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **options)
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@needs_numba
@pytest.mark.parametrize("shape,out_ch,options", [((8, 3, 32, 32), 6, {}), ((8, 6, 14, 14), 16, {}),
                                                  ((8, 16, 4, 4), 32, dict(padding=1)),
                                                  ((4, 8, 9, 9), 8, dict(stride=2, padding=1, groups=2))])
def test_float32_kernels_agree_with_pytorch(shape, out_ch, options, rng):
    """float32 convolution, forward and both gradients, against PyTorch's to float32 rounding."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out_ch, shape[1] // options.get("groups", 1), 5 if shape[2] > 9 else 3,
                             5 if shape[2] > 9 else 3)).astype(np.float32)
    tx, tw = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)
    out = F.conv2d(tx, tw, **options)
    gy = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(tg.Tensor(gy))
    px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    pout = torch.nn.functional.conv2d(px, pw, **options)
    pout.backward(torch.tensor(gy))
    for ours, theirs in [(out.numpy(), pout.detach().numpy()), (tx.grad.numpy(), px.grad.numpy()),
                         (tw.grad.numpy(), pw.grad.numpy())]:
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


def test_set_num_threads_sets_numbas_and_openblass_threads():
    before = tg.get_num_threads()
    try:
        tg.set_num_threads(1)
        assert tg.get_num_threads() == 1
        lib = threads.blas()
        if lib is not None and hasattr(lib, "scipy_openblas_get_num_threads64_"):
            assert lib.scipy_openblas_get_num_threads64_() == 1
        model = nn.Conv2d(3, 6, 5)
        assert model(tg.randn(2, 3, 8, 8)).shape == (2, 6, 4, 4)  # the kernels run on one thread
    finally:
        tg.set_num_threads(before)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
            tg.set_num_threads(bad)


def test_openblas_idle_spin_is_cut_at_import():
    lib = threads.blas()
    if lib is None or not hasattr(lib, "openblas_thread_timeout"):
        pytest.skip("NumPy's BLAS is not an OpenBLAS with a thread timeout")
    import os
    assert lib.openblas_thread_timeout() == int(os.environ["OPENBLAS_THREAD_TIMEOUT"])
    a = np.ones((256, 256))
    np.testing.assert_allclose(a @ a, 256.0)  # the pool restarted and computes
