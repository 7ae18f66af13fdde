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


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """Run a test on every device; "cuda" skips, with the reason, where CuPy or a GPU is missing."""
    if request.param == "cuda":
        from tinygrad_norm import backend
        ok, why = backend.gpu_available()
        if not ok:
            pytest.skip(f"needs a GPU: {why}")
    return request.param
