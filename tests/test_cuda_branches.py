"""The CuPy-only branches that no other test takes on a GPU (README, "CuPy-only branches"). Each test runs on
every device through the `device` fixture: here on the CPU, the NumPy side of the branch; on a machine with
CuPy and a GPU, the CuPy side too ("cuda" skips, with the reason, elsewhere)."""
import sys
import warnings

import numpy as np

import tinygrad_norm as tg
from tinygrad_norm import backend, distributed as dist


def test_the_backend_names_the_module_and_device_of_an_array(device):
    """module_for (cupy_or_raise on "cuda"), get_array_module, is_cupy_array, is_array and device_of agree."""
    xp = backend.module_for(device)
    a = xp.arange(6.0)
    assert (xp is np) == (device == "cpu") and (device == "cpu" or xp is sys.modules["cupy"])
    assert backend.get_array_module(a) is xp and backend.get_array_module(np.ones(1), tg.Tensor(a)) is xp
    assert backend.is_array(a) and backend.is_cupy_array(a) == (device == "cuda")
    assert backend.device_of(a) == device


def test_arrays_move_between_the_host_and_the_device(device):
    """to_device both ways (CuPy's asarray, and .get() back) and as_numpy give the same numbers."""
    host = np.arange(6.0).reshape(2, 3)
    there = backend.to_device(host, device)
    assert backend.device_of(there) == device and backend.to_device(there, device) is there
    back = backend.to_device(there, "cpu")
    assert type(back) is np.ndarray and type(backend.as_numpy(there)) is np.ndarray
    np.testing.assert_array_equal(back, host)
    np.testing.assert_array_equal(backend.as_numpy(there), host)


def test_as_strided_gives_window_views_on_the_device(device):
    """CuPy's as_strided (which takes no `writeable`) gives the same windows as NumPy's."""
    x = backend.to_device(np.arange(12.0).reshape(3, 4), device)
    win = backend.as_strided(x, (2, 3, 2, 2), x.strides + x.strides)  # the 2x2 windows of x
    assert backend.device_of(win) == device
    np.testing.assert_array_equal(backend.as_numpy(win[1, 2]), np.arange(12.0).reshape(3, 4)[1:3, 2:4])


def test_pow_gradient_and_floor_division_where_inf_and_nan_are_expected(device):
    """quiet(xp), around Pow's gradient and a floating div: NumPy's RuntimeWarnings silenced on the CPU, a
    null context for CuPy (which never warns); the limits are PyTorch's."""
    a = tg.Tensor([0.0, 2.0], device=device, requires_grad=True)
    b = tg.Tensor([0.0, 3.0], device=device, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        (a ** b).sum().backward()
        q = tg.Tensor([1.0, -1.0], device=device).div(tg.Tensor([0.0, 0.0], device=device), rounding_mode="floor")
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 12.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 8.0 * np.log(2.0)], rtol=1e-6)
    assert q.numpy().tolist() == [np.inf, -np.inf]


def test_repr_names_the_device_only_for_a_gpu_tensor(device):
    assert ("device='cuda'" in repr(tg.ones(2, device=device))) == (device == "cuda")


def test_all_reduce_of_a_device_array_comes_back_on_its_device(device):
    """A bare CuPy array goes to the host for the collective and comes back a CuPy array (a world of one)."""
    a = backend.to_device(np.array([1.0, 2.0]), device)
    total = dist.all_reduce(a)
    assert backend.device_of(total) == device and total is not a
    np.testing.assert_array_equal(backend.as_numpy(total), [1.0, 2.0])
