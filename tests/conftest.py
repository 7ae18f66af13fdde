import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=["numba", "numba-parallel", "numpy"])
def kernels(request, monkeypatch):
    """Run a test on the fused numba kernels (serial, as small inputs use them, and parallel, forced), and on
    the NumPy path they are checked against."""
    from tinygrad_norm.norms import cpu_kernels
    if request.param.startswith("numba") and not cpu_kernels.available():
        pytest.skip("numba is not installed (pip install 'tinygrad-norm[fast]')")
    if request.param == "numba-parallel":
        monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN", 0)
    if request.param == "numpy":
        monkeypatch.setattr(cpu_kernels, "available", lambda: False)
    return request.param
