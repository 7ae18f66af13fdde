import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=["numba", "numba-parallel", "numpy"])
def kernels(request, monkeypatch):
    """Run a test on the fused numba kernels (serial, as small inputs use them, and parallel, forced), and on
    the reference kernels they are checked against."""
    from tinygrad_norm.norms.kernels import numba_cpu
    ok, why = numba_cpu.BACKEND.available()
    if request.param.startswith("numba") and not ok:
        pytest.skip(why)
    if request.param == "numba-parallel":
        monkeypatch.setattr(numba_cpu, "PARALLEL_MIN", 0)
    if request.param == "numpy":
        monkeypatch.setattr(numba_cpu.BACKEND, "available", lambda: (False, "switched off by the test"))
    return request.param


@pytest.fixture(params=["direct", "columns", "numpy"])
def window_kernels(request, monkeypatch):
    """Run a test on each convolution and pooling implementation: the numba direct kernels wherever they apply
    (stride 1), the numba im2col and col2im otherwise and everywhere for "columns", and the NumPy windows
    (what CuPy and a backward on Tensors run) for "numpy"."""
    from tinygrad_norm.ops import conv, window_kernels
    if request.param != "numpy" and window_kernels.njit is None:
        pytest.skip("numba is not installed or is switched off (TINYGRAD_NORM_NUMBA=0)")
    if request.param == "direct":
        monkeypatch.setattr(conv, "DIRECT_MAX_OUT", 1 << 30)
        monkeypatch.setattr(conv, "DIRECT_SPAN", 0)
    if request.param == "columns":
        monkeypatch.setattr(conv, "DIRECT_MAX_OUT", -1)
        monkeypatch.setattr(conv, "DIRECT_SPAN", 1 << 30)
    if request.param == "numpy":
        monkeypatch.setattr(window_kernels, "applies", lambda *arrays: False)
    return request.param


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """Run a test on every device; "cuda" skips, with the reason, where CuPy or a GPU is missing."""
    if request.param == "cuda":
        from tinygrad_norm import backend
        ok, why = backend.gpu_available()
        if not ok:
            pytest.skip(f"needs a GPU: {why}")
    return request.param
