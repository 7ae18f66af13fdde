"""The normalize op's kernel interface: every backend against the reference, the split halves against the fused
calls, the CUDA sources through NVRTC (no GPU needed), and float16 on every device. The CUDA kernels' own
numbers, without a GPU: test_cuda_emulation.py."""
import dataclasses
import re

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import backend, nn
from tinygrad_norm.norms import NormLayer, Normalize
from tinygrad_norm.norms.normalize import backward, forward
from tinygrad_norm.norms import kernels
from tinygrad_norm.norms.kernels import cuda

reference, numba_cpu, cuda_kernels = (kernels.get(n) for n in ("reference", "numba_cpu", "cuda"))

GPU, NO_GPU = backend.gpu_available()

CASES = {  # name: (layer, input shape); together they reach every layout and kernel variant
    "batch2d": (lambda: nn.BatchNorm2d(6), (8, 6, 5, 4)),                  # columns
    "batch1d": (lambda: nn.BatchNorm1d(6), (16, 6)),                       # columns with I = 1
    "layer": (lambda: nn.LayerNorm(4), (8, 6, 5, 4)),                      # rows, γ on every element
    "layer_chw": (lambda: nn.LayerNorm((6, 5, 4)), (3, 6, 5, 4)),
    "group": (lambda: nn.GroupNorm(3, 6), (8, 6, 5, 4)),                   # rows, γ per channel in a group
    "instance": (lambda: nn.InstanceNorm2d(6, affine=True), (8, 6, 5, 4)),
    "instance_plain": (lambda: nn.InstanceNorm2d(6), (8, 6, 5, 4)),       # no γ, β
    "rms": (lambda: nn.RMSNorm(4), (8, 6, 5, 4)),                          # no centering, no β
    "per_channel_rows": (lambda: NormLayer((6, 4), pattern="n c d -> n c", param_axes="c d"), (8, 6, 4)),  # K > 1
    "batch_plain": (lambda: nn.BatchNorm2d(6, affine=False), (8, 6, 5, 4)),  # columns without γ, β
    "batch_rms": (lambda: type("BatchRMS", (NormLayer,), {"pattern": "n c ... -> c", "param_axes": "c",
                                                          "center": False})(6), (8, 6, 5, 4)),  # columns, no centering
    "ghost": (lambda: nn.Norm("ghost_batch", 6, k=2), (8, 6, 5, 4)),      # columns with G ghost batches
    "ghost_1d": (lambda: nn.Norm("ghost_batch", 3, k=4), (8, 3)),         # ... and I = 1
    "ghost_eval": (lambda: nn.Norm("ghost_batch", 6, k=2).eval(), (8, 6, 5, 4)),  # ghost batches of one
}


def implementation(name):
    if name == "numba_cpu" and not numba_cpu.available()[0]:
        pytest.skip(numba_cpu.available()[1])
    if name == "cuda" and not GPU:
        pytest.skip(f"needs a GPU: {NO_GPU}")
    return kernels.get(name)


def setup(case, impl, dtype=np.float64):
    """(plan with `impl` as its kernels, x, dy, γ, β, running mean, running var) on impl's device."""
    make, shape = CASES[case]
    layer = make()
    device = "cuda" if impl is cuda_kernels else "cpu"
    plan = dataclasses.replace(layer.plan(shape, device), kernels=impl)
    rng = np.random.default_rng(0)
    xp = backend.module_for(device)
    arr = lambda a, dt=dtype: xp.asarray(np.asarray(a, dt))
    x, dy = arr(rng.standard_normal(shape) * 2 + 3), arr(rng.standard_normal(shape))
    w = None if layer.weight is None else arr(1 + 0.5 * rng.standard_normal(layer.weight.shape), np.float64)
    b = None if layer.bias is None else arr(rng.standard_normal(layer.bias.shape), np.float64)
    fixed_shape = tuple(1 if i in plan.batch_axes else n for i, n in enumerate(plan.stats_shape))
    running = arr(rng.standard_normal(fixed_shape), np.float64), arr(rng.uniform(0.5, 2, fixed_shape), np.float64)
    return plan, x, dy, w, b, running


def host(arrays):
    return [None if a is None else backend.as_numpy(a) for a in arrays]


def close(got, want, rtol=1e-10, atol=1e-11):
    for g, w in zip(host(got), host(want)):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("impl_name", ["reference", "numba_cpu", "cuda"])
@pytest.mark.parametrize("case", CASES)
def test_every_implementation_matches_the_reference(case, impl_name):
    impl = implementation(impl_name)
    plan, x, dy, w, b, (rm, rv) = setup(case, impl)
    ref, rx, rdy, rw, rb, (rrm, rrv) = setup(case, reference)  # the same arrays (same seed), on the host
    y, count, mean, var = forward(plan, x, w, b, 1e-5)
    y_ref, _, mean_ref, var_ref = forward(ref, rx, rw, rb, 1e-5)
    close([y, mean, var], [y_ref, mean_ref, var_ref])
    close(backward(plan, x, dy, mean, var, w, 1e-5, count), backward(ref, rx, rdy, mean_ref, var_ref, rw, 1e-5, count))
    # fixed (running) statistics, as in eval mode: normalize, the parameter gradients, dx with Σg = None
    if not plan.center:
        rm = rrm = None
    close([impl.normalize(plan, x, rm, rv, w, b, 1e-5)], [reference.normalize(ref, rx, rrm, rrv, rw, rb, 1e-5)])
    close(impl.grad_sums(plan, x, dy, rm, rv, w, 1e-5)[2:], reference.grad_sums(ref, rx, rdy, rrm, rrv, rw, 1e-5)[2:])
    close([impl.input_grad(plan, x, dy, rm, rv, w, 1e-5, None, None, plan.count)],
          [reference.input_grad(ref, rx, rdy, rrm, rrv, rw, 1e-5, None, None, plan.count)])


@pytest.mark.parametrize("impl_name", ["reference", "numba_cpu", "cuda"])
@pytest.mark.parametrize("case", CASES)
def test_halves_with_a_combiner_between_them_equal_the_default_path(case, impl_name):
    """With an identity combiner the halves run apart (statistics -> normalize, grad_sums -> input_grad): the
    seam a process group uses. It must give what the default path (fused where the kernels fuse) gives."""
    impl = implementation(impl_name)
    plan, x, dy, w, b, _ = setup(case, impl)
    y, count, mean, var = forward(plan, x, w, b, 1e-5)
    sync = Recorder()
    y_apart, count_apart, mean_apart, var_apart = forward(plan, x, w, b, 1e-5, sync)
    assert count_apart == count
    close([y_apart, mean_apart, var_apart], [y, mean, var])
    close(backward(plan, x, dy, mean, var, w, 1e-5, count, sync), backward(plan, x, dy, mean, var, w, 1e-5, count))
    assert [seen[0] for seen in sync.seen] == ["moments", "sums"]


def test_gradient_sums_are_the_closed_form_ones():
    """Σg and Σg·x̂ written out with NumPy for BatchNorm2d (per channel over N, H, W)."""
    plan, x, dy, w, b, _ = setup("batch2d", reference)
    sum_g, sum_gx, dw, db = reference.grad_sums(plan, x, dy, *reference.statistics(plan, x), w, 1e-5)
    mu, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    xhat, g = (x - mu) / np.sqrt(var + 1e-5), dy * w[:, None, None]
    np.testing.assert_allclose(sum_g.ravel(), g.sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(sum_gx.ravel(), (g * xhat).sum(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(dw, (dy * xhat).sum(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12)


class Recorder:
    """A combiner for a world of one: returns what it is given and remembers the shapes it saw."""
    def __init__(self):
        self.seen = []

    def moments(self, count, mean, var):
        self.seen.append(("moments", count, var.shape))
        return count, mean, var

    def sums(self, sum_g, sum_gx):
        self.seen.append(("sums", sum_g.shape, sum_gx.shape))
        return sum_g, sum_gx


def test_the_op_calls_its_combiner_between_the_halves_and_matches_the_fused_path(kernels):
    layer = nn.BatchNorm2d(6).double()
    x = tg.Tensor(np.random.default_rng(1).standard_normal((8, 6, 5, 4)), requires_grad=True)
    plan = layer.plan(x.shape)
    outs = []
    for sync in (None, Recorder()):
        y = Normalize.apply(x, layer.weight, layer.bias, plan=plan, eps=1e-5, sync=sync)
        y.backward(np.random.default_rng(2).standard_normal(x.shape))
        outs.append([y.numpy(), x.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()])
        x.grad = layer.weight.grad = layer.bias.grad = None
    close(outs[1], outs[0])
    assert sync.seen == [("moments", 160, (1, 6, 1)), ("sums", (1, 6, 1), (1, 6, 1))]


# ---- the CUDA kernels without a GPU ----------------------------------------------------------------------

def nvrtc_or_skip():
    try:
        cuda.compile_ptx('extern "C" __global__ void probe() {}')
    except ImportError as e:
        pytest.skip(f"needs CuPy for its NVRTC bindings (pip install 'tinygrad-norm[test]'): {e}")
    except cuda.CudaCompileError:
        raise
    except Exception as e:  # CuPy is there but the NVRTC library is not
        pytest.skip(f"needs the NVRTC library (pip install nvidia-cuda-nvrtc-cu12): {type(e).__name__}: {e}")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_cuda_kernel_source_compiles(dtype):
    nvrtc_or_skip()
    ptx = cuda.compile_ptx(cuda.source(dtype))
    for name in cuda.NAMES:
        assert f".entry {name}(" in ptx, name


def test_a_broken_kernel_source_is_rejected_with_the_compilers_log():
    nvrtc_or_skip()
    broken = cuda.source("float32").replace("s1 += d;", "s1 += d", 1)
    with pytest.raises(cuda.CudaCompileError, match=r"(?s)NVRTC rejected.*error: expected a \";\""):
        cuda.compile_ptx(broken)


# ---- float16 --------------------------------------------------------------------------------------------

HALF_CASES = {"batch2d": CASES["batch2d"], "batch1d": CASES["batch1d"], "layer": CASES["layer"],
              "group": CASES["group"], "instance": CASES["instance"],
              "rms": (lambda: nn.RMSNorm(4, eps=1e-5), (8, 6, 5, 4)),  # its default eps is the dtype's epsilon
              "local_response": (lambda: nn.LocalResponseNorm(3), (8, 6, 5, 4))}


@pytest.mark.parametrize("case", HALF_CASES)
def test_float16_input_gives_float16_close_to_float32(case, device, kernels):
    """Statistics in float32, output and input gradient in float16, parameters and their gradients float32;
    within twice float16's rounding (2⁻¹¹ of the largest value) of the same layer run in float32 on the same
    rounded input (measured on the CPU: at most 3.9e-4)."""
    make, shape = HALF_CASES[case]
    rng = np.random.default_rng(3)
    x16 = rng.standard_normal(shape).astype(np.float16)
    dy16 = rng.standard_normal(shape).astype(np.float16)
    results = []
    for dtype in (np.float16, np.float32):
        layer = make().to(device)
        x = tg.Tensor(x16.astype(dtype), device=device, requires_grad=True)
        y = layer(x)
        y.backward(tg.Tensor(dy16.astype(dtype), device=device))
        assert y.dtype == dtype and x.grad.dtype == dtype
        assert all(p.grad.dtype == np.float32 for p in layer.parameters())
        results.append([y.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    half, single = results
    for h, s in zip(half, single):
        scale = np.abs(s).max()
        np.testing.assert_allclose(h.astype(np.float32), s, rtol=0, atol=1e-3 * scale)


def test_float16_statistics_are_accumulated_wider(device, kernels):
    """4096 values near 3 sum to about 12288, where float16's spacing is 8: a float16 accumulator would put
    the mean off by a tenth of a standard deviation or more."""
    x = (3 + np.random.default_rng(5).standard_normal((4096, 2))).astype(np.float16)
    y = nn.BatchNorm1d(2, affine=False).to(device)(tg.Tensor(x, device=device)).numpy()
    x32 = x.astype(np.float64)
    expected = (x32 - x32.mean(0)) / np.sqrt(x32.var(0) + 1e-5)
    np.testing.assert_allclose(y.astype(np.float64), expected, rtol=0, atol=4e-3)


def test_float16_rmsnorm_with_its_default_eps(device, kernels):
    """RMSNorm's default eps is float16's own epsilon, a NumPy float16 scalar that numba refused."""
    x = np.random.default_rng(6).standard_normal((4, 8)).astype(np.float16)
    y = nn.RMSNorm(8).to(device)(tg.Tensor(x, device=device)).numpy()
    x64 = x.astype(np.float64)
    expected = x64 / np.sqrt((x64 ** 2).mean(-1, keepdims=True) + np.finfo(np.float16).eps)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float64), expected, rtol=0, atol=2e-3)


def test_float16_running_statistics_stay_float32(kernels):
    bn = nn.BatchNorm2d(6)
    bn(tg.Tensor(np.random.default_rng(4).standard_normal((8, 6, 5, 4)).astype(np.float16)))
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32
    bn.eval()
    assert bn(tg.Tensor(np.ones((2, 6, 5, 4), np.float16))).dtype == np.float16


def test_half_and_float_convert_a_models_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
    model.half()
    assert {t.dtype for t in model.state_dict().values() if t.dtype.kind == "f"} == {np.dtype(np.float16)}
    assert model[1].num_batches_tracked.dtype == np.int64
    y = model(tg.Tensor(np.ones((3, 4), np.float16)))
    assert y.dtype == np.float16
    model.float()
    assert {t.dtype for t in model.state_dict().values() if t.dtype.kind == "f"} == {np.dtype(np.float32)}


# ---- the backend interface and the policy that picks one ----------------------------------------------------

def test_a_backend_missing_a_required_function_is_refused_where_it_is_declared():
    with pytest.raises(TypeError, match="Partial: missing the required grad_sums, input_grad"):
        class Partial(kernels.Kernels):
            def statistics(self, plan, x): ...
            def normalize(self, plan, x, mean, var, w, b, eps): ...


def test_a_misspelt_function_is_refused_where_it_is_declared():
    with pytest.raises(TypeError, match=r"forwrd is not part of the kernel interface \(required: statistics"):
        class Misspelt(type(reference)):
            def forwrd(self, plan, x, w, b, eps): ...


def test_the_policy_picks_by_device_layout_availability_and_priority(monkeypatch):
    columns = nn.BatchNorm2d(6).plan((8, 6, 5, 4)).layout
    assert kernels.choose("cpu", None) is reference and kernels.choose("cuda", None) is reference
    assert kernels.choose("cuda", columns) is cuda_kernels
    assert kernels.choose("cpu", columns) is (numba_cpu if numba_cpu.available()[0] else reference)
    monkeypatch.setattr(numba_cpu, "available", lambda: (False, "off"))
    assert kernels.choose("cpu", columns) is reference


def test_a_new_backend_is_one_class_and_one_registration(monkeypatch):
    class Echo(type(reference)):  # the reference's arithmetic under another name, preferred on the CPU
        name, devices, layouts, priority = "echo", ("cpu",), ("columns",), 99
    monkeypatch.setattr(kernels, "BACKENDS", dict(kernels.BACKENDS))
    echo = kernels.register(Echo())
    assert nn.BatchNorm2d(6).plan((8, 6, 5, 4)).kernels is echo
    assert nn.LayerNorm(4).plan((3, 4)).kernels is not echo  # rows: not covered
    with pytest.raises(ValueError, match="already registered"):
        kernels.register(Echo())
    with pytest.raises(TypeError, match="a kernel backend is a Kernels instance"):
        kernels.register(reference.__class__)


def test_the_environment_variable_forces_a_backend_where_it_covers_the_plan(monkeypatch):
    columns = nn.BatchNorm2d(6).plan((8, 6, 5, 4)).layout
    monkeypatch.setenv("TINYGRAD_NORM_KERNELS", "reference")
    assert kernels.choose("cpu", columns) is reference
    monkeypatch.setenv("TINYGRAD_NORM_KERNELS", "cuda_emulated")
    if kernels.get("cuda_emulated").available()[0]:
        assert kernels.choose("cpu", columns).name == "cuda_emulated"
        assert kernels.choose("cpu", None) is reference  # no layout: not covered, so the policy decides
    monkeypatch.setenv("TINYGRAD_NORM_KERNELS", "numba_cpu")
    assert kernels.choose("cuda", columns) is cuda_kernels  # numba does not run on cuda arrays
    monkeypatch.setenv("TINYGRAD_NORM_KERNELS", "triton")
    with pytest.raises(KeyError, match="no kernel backend 'triton'; registered: reference, numba_cpu, cuda"):
        kernels.choose("cpu", columns)


def test_forcing_a_backend_that_cannot_run_here_says_why(monkeypatch):
    monkeypatch.setenv("TINYGRAD_NORM_KERNELS", "numba_cpu")
    monkeypatch.setattr(numba_cpu, "available", lambda: (False, "numba is not installed"))
    with pytest.raises(RuntimeError, match="TINYGRAD_NORM_KERNELS=numba_cpu: that backend cannot run here: numba is"):
        kernels.choose("cpu", None)


@pytest.mark.parametrize("shape,k,sizes", [((8, 6, 5, 4), 2, (4, 2, 6, 20)), ((8, 3), 4, (2, 4, 3, 1)),
                                           ((6, 5, 33), 3, (2, 3, 5, 33))])
def test_ghost_batches_get_the_fused_columns_layout(shape, k, sizes):
    """(n k) c ... -> n c: G = n ghost batches of B = k samples, statistics per (g, c) over (k, ...)."""
    plan = nn.Norm("ghost_batch", shape[1], k=k).plan(shape)
    assert plan.layout == ("columns", sizes, (2, 3))
    assert plan.kernels is (numba_cpu if numba_cpu.available()[0] else reference)
