"""Tensor construction, dtypes, conversion, repr, and the backend's device handling."""
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import backend


def test_construction_and_default_dtype():
    assert tg.Tensor([1, 2, 3]).dtype == np.float32
    assert tg.Tensor(2.5).shape == () and tg.Tensor(2.5).item() == 2.5
    assert tg.Tensor(np.zeros(3)).dtype == np.float64  # float64 kept when given
    assert tg.Tensor(np.arange(3)).dtype == np.int64   # integer arrays (labels) stay integer
    assert tg.Tensor([1, 2], dtype=np.float64).dtype == np.float64
    t = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    assert (t.shape, t.ndim, t.device, t.numel(), len(t)) == ((2, 3), 2, "cpu", 6, 2)
    assert tg.Tensor(t).data is t.data


def test_scalars_keep_the_tensor_dtype_and_arrays_count_as_tensors():
    x = tg.Tensor(np.ones(3, np.float32))
    for y in (x * 2.5, 2.5 * x, x / np.float64(3), x ** 2, x + [1, 2, 3], np.float32(2) * x):
        assert isinstance(y, tg.Tensor) and y.dtype == np.float32
    assert (np.ones(3) + x).dtype == np.float64  # a float64 array is a tensor, not a weak scalar (PyTorch's rule)


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point.*int64"):
        tg.Tensor(np.arange(3), requires_grad=True)
    t = tg.Tensor(np.arange(3))
    with pytest.raises(TypeError, match="floating-point.*int64"):
        t.requires_grad = True  # refused where it is set, not later inside an op
    assert not t.requires_grad


def test_numpy_item_detach_tolist():
    t = tg.Tensor(np.arange(4.0), requires_grad=True)
    assert isinstance(t.numpy(), np.ndarray)
    d = (t * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    assert d.tolist() == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_repr_is_readable():
    r = repr(tg.Tensor([1.0, 2.0], requires_grad=True) * 2)
    assert r.startswith("Tensor([2., 4.]") and "grad_fn=Mul" in r
    assert "dtype=float64" in repr(tg.Tensor(np.zeros(2)))
    assert "..." in repr(tg.zeros(1000))


def test_comparisons_are_constant_boolean_tensors():
    x = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == bool and not m.requires_grad
    np.testing.assert_array_equal((x <= 2).numpy(), [True, True, False])


def test_factories():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.ones((4,)).numpy().sum() == 4
    assert tg.randn(3, dtype=np.float64).dtype == np.float64
    assert tg.rand(2, requires_grad=True).requires_grad


def test_get_array_module_is_numpy_on_cpu():
    assert tg.get_array_module(np.zeros(2)) is np
    assert tg.get_array_module(tg.zeros(2)) is np


def test_to_cpu_is_a_no_op():
    x = tg.zeros(2)
    assert x.to("cpu") is x


def test_unknown_device_is_a_clear_error():
    with pytest.raises(tg.DeviceError, match="unknown device 'tpu'"):
        tg.Tensor([1.0], device="tpu")


def test_cuda_without_cupy_or_gpu_says_which_is_missing():
    ok, why = tg.gpu_available()
    if ok:
        pytest.skip("a GPU is present: the error path cannot be exercised")
    with pytest.raises(tg.DeviceError) as info:
        tg.Tensor([1.0], device="cuda")
    msg = str(info.value)
    assert ("CuPy, which is not installed" in msg) or ("no usable GPU" in msg)
    assert msg == why


def test_cupy_is_not_imported_on_the_cpu_path():
    import subprocess
    import sys
    code = ("import sys, numpy as np, tinygrad_norm as tg; x = tg.Tensor(np.ones(3), requires_grad=True);"
            "(x * 2).sum().backward(); print('cupy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


gpu_ok, gpu_reason = backend.gpu_available()
needs_gpu = pytest.mark.skipif(not gpu_ok, reason=f"needs a GPU: {gpu_reason}")


@needs_gpu
def test_cuda_round_trip_and_gradients():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3), device="cuda", requires_grad=True)
    assert x.device == "cuda" and tg.get_array_module(x).__name__ == "cupy"
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.arange(6.0).reshape(2, 3))
    assert x.to("cpu").device == "cpu"


@needs_gpu
def test_cuda_ops_match_cpu():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    for dev in ("cpu", "cuda"):
        x, y = tg.Tensor(a, device=dev, requires_grad=True), tg.Tensor(b, device=dev, requires_grad=True)
        out = ((x @ y).tanh() * x[np.array([0, 0, 1, 2])].sum(1, keepdims=True)).sum()
        out.backward()
        if dev == "cpu":
            ref = (out.item(), x.grad.numpy(), y.grad.numpy())
        else:
            np.testing.assert_allclose(out.item(), ref[0], rtol=1e-10)
            np.testing.assert_allclose(x.grad.numpy(), ref[1], rtol=1e-10)
            np.testing.assert_allclose(y.grad.numpy(), ref[2], rtol=1e-10)


@pytest.fixture
def fake_cupy(monkeypatch):
    """CuPy as the backend sees it, on a machine without a GPU: its arrays are NumPy arrays of their own type (so
    they are "cuda" arrays), and its as_strided has CuPy's signature, which has no `writeable`."""
    class ndarray(np.ndarray):
        pass

    def as_strided(x, shape=None, strides=None):
        return np.lib.stride_tricks.as_strided(x, shape, strides).view(ndarray)

    cupy = SimpleNamespace(ndarray=ndarray, asarray=lambda a, dtype=None: np.asarray(a, dtype).view(ndarray),
                           lib=SimpleNamespace(stride_tricks=SimpleNamespace(as_strided=as_strided)))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return cupy


def test_as_strided_gives_a_read_only_window_view():
    x = np.arange(12.0).reshape(3, 4)
    win = backend.as_strided(x, (2, 3, 2, 2), x.strides + x.strides)  # the 2x2 windows of x
    np.testing.assert_array_equal(win[1, 2], x[1:3, 2:4])
    assert not win.flags.writeable and np.shares_memory(win, x)


def test_bfloat16_is_a_clear_error_everywhere_a_dtype_is_given():
    for make in (lambda: tg.Tensor([1.0], dtype="bfloat16"), lambda: tg.ones(2).astype("bfloat16"),
                 lambda: tg.nn.Linear(2, 2).astype("bfloat16"), lambda: tg.zeros(2, dtype="bfloat16")):
        with pytest.raises(TypeError, match="bfloat16 is not supported.*float16"):
            make()


def test_as_strided_calls_cupy_without_writeable(fake_cupy):
    x = fake_cupy.asarray(np.arange(12.0).reshape(3, 4))
    win = backend.as_strided(x, (2, 3, 2, 2), x.strides + x.strides)
    assert backend.device_of(win) == "cuda"
    np.testing.assert_array_equal(win[1, 2], np.arange(12.0).reshape(3, 4)[1:3, 2:4])


def test_mixing_devices_is_a_device_error_naming_the_op_and_both_devices(fake_cupy):
    cpu, cuda = tg.ones(2, 2), tg.Tensor(fake_cupy.asarray(np.ones((2, 2), np.float32)))
    assert cuda.device == "cuda"
    move = r"move them to one device with \.to\(device\)"
    for op, mixed in [("Add", lambda: cpu + cuda), ("MatMul", lambda: cuda @ cpu),
                      ("Mul", lambda: cuda * np.ones(2)),  # a host array is not copied to the GPU behind your back
                      ("Sub", lambda: np.ones(2) - cuda), ("Add", lambda: cpu + fake_cupy.asarray(np.ones(2))),
                      ("Concatenate", lambda: tg.concatenate([cpu, cuda])), ("lt", lambda: cpu < cuda)]:
        with pytest.raises(tg.DeviceError, match=rf"{op}: inputs are on different devices \(cpu and cuda\); {move}"):
            mixed()


def test_ops_on_one_device_still_work(device):
    x, y = tg.ones(2, 3, device=device), tg.Tensor(np.arange(6.0).reshape(2, 3), device=device)
    np.testing.assert_array_equal((x + y).numpy(), 1 + np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal((y < 2.5).numpy(), np.arange(6.0).reshape(2, 3) < 2.5)
    np.testing.assert_array_equal(tg.concatenate([x, y]).numpy()[2:], np.arange(6.0).reshape(2, 3))


# ---- the parts of PyTorch's Tensor API a training script uses ---------------------------------------------
def test_equality_is_elementwise_and_truth_needs_one_element():
    a, b = tg.tensor([1.0, 2.0, 3.0]), tg.tensor([1.0, 0.0, 3.0])
    assert (a == b).tolist() == [True, False, True] and (a != b).tolist() == [False, True, False]
    assert (a == 2).tolist() == [False, True, False]
    assert (a == None) is False and a in [a] and {a: 1}[a] == 1  # noqa: E711 (None compares as PyTorch's)
    assert bool(tg.tensor([2.0]) > 1) and not bool(tg.tensor(0.0))
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        bool(a == b)


def test_argmax_argmin_size_view_and_dtype_conversions():
    x = np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 1.0]])
    t = tg.Tensor(x)
    assert t.argmax(1).tolist() == [1, 0] and t.argmax().item() == 3 and t.argmin(0).tolist() == [0, 1, 1]
    assert t.argmax(1, keepdim=True).shape == (2, 1) and t.argmax(1).dtype == np.int64
    assert t.size() == (2, 3) and t.size(-1) == 3 and t.dim() == 2 and t.view(3, 2).shape == (3, 2)
    assert t.float().dtype == np.float32 and t.double().dtype == np.float64 and t.half().dtype == np.float16
    assert t.long().dtype == np.int64 and t.bool().dtype == np.bool_ and t.contiguous() is t
    assert t.to("cpu") is t and t.to(np.float32).dtype == np.float32 and t.to("cpu", "float16").dtype == np.float16
    assert t.to(tg.zeros(1, dtype="float32")).dtype == np.float32 and t.cpu() is t
    with pytest.raises(ValueError, match="empty tensor"):
        tg.zeros(0).argmax()


def test_clone_copies_and_passes_gradients_and_from_numpy_shares_memory():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    (y * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0] and y.data is not x.data
    a = np.zeros(2, np.float32)
    t = tg.from_numpy(a)
    a[0] = 5
    assert t.tolist() == [5.0, 0.0] and t.dtype == np.float32
    with pytest.raises(TypeError, match="numpy.ndarray"):
        tg.from_numpy([1, 2])


def test_cuda_zero_is_cuda_and_other_gpus_are_refused():
    from tinygrad_norm.backend import DeviceError, check_device
    assert check_device("cuda:0") == "cuda"
    with pytest.raises(DeviceError, match="only one GPU"):
        check_device("cuda:1")


def test_reductions_take_pytorchs_dim_and_keepdim():
    x = tg.Tensor(np.arange(24.0).reshape(2, 3, 4))
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(x.sum(dim=(0, 2)).numpy(), a.sum((0, 2)))
    assert x.mean(1, keepdim=True).shape == (2, 1, 4) and x.sum(dim=[]).item() == a.sum()  # dim=[]: every axis
    assert x.sum(axis=()).shape == (2, 3, 4)  # NumPy's axis=() reduces nothing
    assert x.sum(dtype="float32").dtype == np.float32
    np.testing.assert_array_equal(x.amax((1, 2)).numpy(), a.max((1, 2)))
    np.testing.assert_allclose(x.var(1, unbiased=False).numpy(), a.var(1))
    np.testing.assert_allclose(x.var(dim=2, correction=2).numpy(), a.var(2, ddof=2))
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.numpy(), a.max(1))
    assert indices.tolist() == [[2] * 4] * 2 and x.min(2).indices.tolist() == [[0] * 3] * 2
    with pytest.raises(TypeError, match="not both"):
        x.sum(dim=0, axis=0)
    assert x.squeeze(dim=0).shape == (2, 3, 4) and x.unsqueeze(dim=1).shape == (2, 1, 3, 4)
    assert x.cumsum(dim=2).numpy()[0, 0].tolist() == [0, 1, 3, 6]
    assert tg.cat([x, x], dim=1).shape == (2, 6, 4) and tg.stack([x, x], dim=3).shape == (2, 3, 4, 2)
    assert tg.Tensor(np.ones((3, 1))).expand(-1, 4).shape == (3, 4) and x.expand(5, -1, -1, -1).shape == (5, 2, 3, 4)


def test_max_along_a_dim_is_pytorchs():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    a = np.random.default_rng(0).standard_normal((3, 5, 4))
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            ours, theirs = tg.Tensor(a).max(dim, keepdim), torch.tensor(a).max(dim, keepdim)
            np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
            np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


def test_clamp_with_tensor_bounds_sends_each_gradient_where_it_wins():
    """d/dx is 1 where low <= x <= high, d/dlow 1 where x < low, d/dhigh 1 where x > high."""
    x = tg.tensor([-2.0, 0.5, 3.0, 1.0], requires_grad=True)
    low = tg.tensor([0.0, 0.0, 0.0, 1.0], requires_grad=True)
    high = tg.tensor([1.0, 1.0, 2.0, 2.0], requires_grad=True)
    y = x.clamp(min=low, max=high)
    assert y.tolist() == [0.0, 0.5, 2.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 0, 1] and low.grad.tolist() == [1, 0, 0, 0] and high.grad.tolist() == [0, 0, 1, 0]
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    tx, tl, th = (torch.tensor(t.numpy(), requires_grad=True) for t in (x, low, high))
    torch.clamp(tx, tl, th).sum().backward()
    assert tx.grad.tolist() == x.grad.tolist() and tl.grad.tolist() == low.grad.tolist()
    assert th.grad.tolist() == high.grad.tolist()


def test_add_sub_alpha_and_div_rounding_modes_are_pytorchs():
    a, b = tg.tensor([7.0, -7.0, 7.5, -7.5]), tg.tensor([2.0, 2.0, -2.0, -2.0])
    assert a.add(b, alpha=3).tolist() == [13.0, -1.0, 1.5, -13.5] and a.sub(b, alpha=0.5).tolist() == [6, -8, 8.5, -6.5]
    assert a.div(b, rounding_mode="trunc").tolist() == [3, -3, -3, 3]
    assert a.div(b, rounding_mode="floor").tolist() == [3, -4, -4, 3]
    i, j = tg.Tensor(np.array([7, -7, 7, -7, 6])), tg.Tensor(np.array([2, 2, -2, -2, -3]))
    assert i.div(j, rounding_mode="trunc").tolist() == [3, -3, -3, 3, -2] and i.div(j, rounding_mode="trunc").dtype == np.int64
    assert i.div(j, rounding_mode="floor").tolist() == [3, -4, -4, 3, -2]
    with pytest.raises(ValueError, match="rounding_mode"):
        a.div(b, rounding_mode="round")
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    for mode in ("trunc", "floor"):
        assert i.div(j, rounding_mode=mode).tolist() == torch.tensor(i.numpy()).div(torch.tensor(j.numpy()),
                                                                                     rounding_mode=mode).tolist()


def test_masked_fill_gather_chunk_and_split():
    x = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = x.masked_fill(x.data > 4, 0.0)
    assert y.tolist() == [[1, 2, 3], [4, 0, 0]]
    y.sum().backward()
    assert x.grad.tolist() == [[1, 1, 1], [1, 0, 0]]
    x.grad = None
    index = np.array([[0, 0], [2, 1]])
    g = x.gather(1, index)
    assert g.tolist() == [[1, 1], [6, 5]]
    g.sum().backward()
    assert x.grad.tolist() == [[2, 0, 0], [0, 1, 1]]  # x[0, 0] was picked twice
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        x.gather(1, np.array([[3], [0]]))
    t = tg.Tensor(np.arange(10.0))
    assert [p.tolist() for p in t.chunk(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(p) for p in t.split(4)] == [4, 4, 2] and [len(p) for p in t.split([1, 9])] == [1, 9]
    with pytest.raises(ValueError, match="sum exactly to 10"):
        t.split([3, 3])
    with pytest.raises(TypeError, match="boolean masks"):
        x.masked_fill(np.ones((2, 3)), 0.0)


def test_gather_chunk_and_split_are_pytorchs():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    a = np.random.default_rng(0).standard_normal((4, 5, 3))
    index = np.random.default_rng(1).integers(0, 4, (2, 5, 3))
    np.testing.assert_array_equal(tg.Tensor(a).gather(0, index).numpy(),
                                  torch.tensor(a).gather(0, torch.tensor(index)).numpy())
    for chunks in (1, 2, 3, 4, 6):
        assert [p.shape for p in tg.Tensor(a).chunk(chunks, 1)] == \
            [tuple(p.shape) for p in torch.tensor(a).chunk(chunks, 1)]


def test_softmax_takes_dim_and_dtype_and_warns_without_one():
    from tinygrad_norm.nn import functional as F
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32))
    assert F.softmax(x, dim=1, dtype="float64").dtype == np.float64
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy().sum(1), 1, rtol=1e-6)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        implicit = F.softmax(x)  # PyTorch's rule: dim 0 for 0-, 1- and 3-d input
    np.testing.assert_allclose(implicit.numpy().sum(0), 1, rtol=1e-6)


def test_a_layer_takes_its_input_by_pytorchs_name():
    layer = tg.nn.Linear(3, 2)
    x = tg.randn(4, 3)
    np.testing.assert_array_equal(layer(input=x).numpy(), layer(x).numpy())


def test_the_rest_of_pytorchs_method_forms():
    a, b = tg.tensor([[1.0, 5.0], [3.0, 2.0]]), tg.tensor([[2.0, 2.0], [2.0, 2.0]])
    assert a.matmul(b).tolist() == [[12, 12], [10, 10]] and a.pow(2).tolist() == [[1, 25], [9, 4]]
    assert a.max(b).tolist() == [[2, 5], [3, 2]] and a.min(b).tolist() == [[1, 2], [2, 2]]  # max(other)
    assert a.where(a.data > 2, b).tolist() == [[2, 5], [3, 2]]
    assert a.var(False).item() == pytest.approx(np.var([1, 5, 3, 2]))  # var(unbiased)
    assert tg.Tensor(np.arange(3)).cumsum(0, dtype=tg.float64).dtype == np.float64
    assert tg.tensor(7.0).gather(0, np.array([0, 0])).tolist() == [7, 7]
    assert tg.cat([a, tg.zeros(0)], dim=1).shape == (2, 2)  # PyTorch's legacy empty 1-d tensors are left out
    assert tg.float32 is np.float32 and tg.long is np.int64 and tg.zeros(1, dtype=tg.half).dtype == np.float16


def test_max_along_a_dim_keeps_dims_by_either_name():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3))
    assert x.max(1, keepdims=True).values.shape == (2, 1) and x.min(1, keepdim=True).indices.shape == (2, 1)
