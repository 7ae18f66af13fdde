"""The emulated-kernel tier: the CUDA kernels and their real launch code, run on the CPU under the emulation
of CUDA's execution model (kernels/cuda_emulation.h, kernels/cuda_emulated.py), compared with the reference.

Every plan the kernels cover (every built-in pattern; sizes not multiples of 32; rows shorter and longer
than a block; one-element statistics), float16/32/64, offset 0 and 1e4; poisoned shared memory, guarded
buffers, two schedules per launch. The planted bugs at the end prove the tier catches what it claims to.
It needs only a C++ compiler (g++), which .ci/run installs where the image lacks one.
"""
import dataclasses
import math

import numpy as np
import pytest

from tinygrad_norm import nn
from tinygrad_norm.norms import NormLayer, kernels
from tinygrad_norm.norms.kernels import cuda, cuda_emulated
from tinygrad_norm.norms.kernels.cuda_emulated import EmulationError, RawModule
from tinygrad_norm.norms.normalize import backward, forward

ok, why = kernels.get("cuda_emulated").available()
pytestmark = pytest.mark.skipif(not ok, reason=why)

BatchRMS = type("BatchRMS", (NormLayer,), {"pattern": "n c ... -> c", "param_axes": "c", "center": False})
PerChannelRows = lambda: NormLayer((6, 4), pattern="n c d -> n c", param_axes="c d")

PLANS = {  # name: (layer, input shape); together every built-in pattern and every branch of the kernels
    "batch2d": (lambda: nn.BatchNorm2d(6), (8, 6, 5, 4)),
    "batch2d_odd": (lambda: nn.BatchNorm2d(5), (3, 5, 7, 9)),
    "batch2d_long_rows": (lambda: nn.BatchNorm2d(3), (2, 3, 33, 17)),     # runs of 561 > the 512-thread block
    "batch1d": (lambda: nn.BatchNorm1d(6), (16, 6)),                      # columns with I = 1
    "batch1d_odd": (lambda: nn.BatchNorm1d(37), (5, 37)),
    "batch1d_one_value": (lambda: nn.BatchNorm1d(4), (1, 4)),             # one-element statistics
    "batch1d_length": (lambda: nn.BatchNorm1d(3), (4, 3, 600)),
    "batch_plain": (lambda: nn.BatchNorm2d(6, affine=False), (8, 6, 5, 4)),
    "batch_no_bias": (lambda: nn.BatchNorm2d(6, bias=False), (4, 6, 3, 3)),
    "batch_rms": (lambda: BatchRMS(6), (8, 6, 5, 4)),                     # columns without centering
    "layer": (lambda: nn.LayerNorm(4), (2, 6, 5, 4)),                     # rows, γ on every element
    "layer_wide": (lambda: nn.LayerNorm(600), (3, 600)),                  # a row longer than the block
    "layer_odd": (lambda: nn.LayerNorm(33), (2, 7, 33)),
    "layer_chw": (lambda: nn.LayerNorm((6, 5, 4)), (3, 6, 5, 4)),
    "layer_one": (lambda: nn.LayerNorm(1), (5, 1)),                       # one-element statistics
    "layer_plain": (lambda: nn.LayerNorm(20, elementwise_affine=False), (6, 20)),
    "layer_no_bias": (lambda: nn.LayerNorm(20, bias=False), (6, 20)),
    "layer_many_rows": (lambda: nn.LayerNorm(40), (131, 40)),             # column_param_grads: several chunks
    "group": (lambda: nn.GroupNorm(3, 6), (8, 6, 5, 4)),                  # rows, γ per channel in a group
    "group_one": (lambda: nn.GroupNorm(1, 5), (3, 5, 7)),
    "group_per_channel": (lambda: nn.GroupNorm(6, 6), (2, 6, 1, 1)),      # one-element statistics
    "group_long": (lambda: nn.GroupNorm(2, 4), (2, 4, 20, 30)),           # param_grads over runs of 600
    "group_odd": (lambda: nn.GroupNorm(3, 9), (3, 9, 5, 7)),
    "instance": (lambda: nn.InstanceNorm2d(6, affine=True), (8, 6, 5, 4)),
    "instance_plain": (lambda: nn.InstanceNorm2d(6), (8, 6, 5, 4)),
    "instance_long": (lambda: nn.InstanceNorm1d(3, affine=True), (2, 3, 700)),
    "instance_one": (lambda: nn.InstanceNorm1d(3, affine=True), (2, 3, 1)),
    "rms": (lambda: nn.RMSNorm(4, eps=1e-5), (2, 6, 5, 4)),              # rows without centering, no β
    "rms_2d": (lambda: nn.RMSNorm((5, 4), eps=1e-5), (6, 5, 4)),
    "rms_wide": (lambda: nn.RMSNorm(530, eps=1e-5), (3, 530)),
    "per_channel_rows": (PerChannelRows, (8, 6, 4)),                      # rows with K > 1
    "per_channel_rows_pooled": (lambda: NormLayer((6, 4), pattern="n c d ... -> n c", param_axes="c d"),
                                (4, 6, 4, 5)),                            # rows with K > 1 and I > 1
    "ghost": (lambda: nn.Norm("ghost_batch", 6, k=2), (8, 6, 5, 4)),      # columns with G ghost batches
    "ghost_1d": (lambda: nn.Norm("ghost_batch", 3, k=4), (8, 3)),
    "ghost_odd": (lambda: nn.Norm("ghost_batch", 5, k=3), (6, 5, 33)),
    "ghost_long": (lambda: nn.Norm("ghost_batch", 2, k=2), (4, 2, 520)),
    "ghost_eval": (lambda: nn.Norm("ghost_batch", 6, k=2).eval(), (8, 6, 5, 4)),  # ghost batches of one
    "ghost_one": (lambda: nn.Norm("ghost_batch", 4, k=1), (3, 4)),       # one-element statistics
    "ghost_plain": (lambda: nn.Norm("ghost_batch", 6, k=2, affine=False), (8, 6, 5, 4)),
}
DTYPES = ("float16", "float32", "float64")
OFFSETS = (0.0, 1e4)
EPS = 1e-5


def emulated(**options):
    return cuda_emulated.CudaEmulated(**options)


def inputs(case, dtype, offset):
    """(plan, x, dy, γ, β, running mean, running var): x rounded to `dtype`; γ, β in the statistics' dtype."""
    make, shape = PLANS[case]
    layer = make()
    plan = layer.plan(shape)
    assert plan.layout is not None, f"{case}: no fused layout, so the CUDA kernels would not run it"
    rng = np.random.default_rng(sum(map(ord, case)))
    stats = kernels.stats_dtype(dtype)
    x = (offset + 2 * rng.standard_normal(shape) + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = None if layer.weight is None else (1 + 0.5 * rng.standard_normal(layer.weight.shape)).astype(stats)
    b = None if layer.bias is None else rng.standard_normal(layer.bias.shape).astype(stats)
    fixed_shape = tuple(1 if i in plan.batch_axes else n for i, n in enumerate(plan.stats_shape))
    rm = (offset + rng.standard_normal(fixed_shape)).astype(stats) if plan.center else None
    rv = rng.uniform(0.5, 2, fixed_shape).astype(stats)
    return plan, x, dy, w, b, rm, rv


def run(plan, backend, x, dy, w, b, rm, rv):
    """Every output of the normalize op on `backend`: training forward and backward, then eval's fixed statistics."""
    plan = dataclasses.replace(plan, kernels=backend)
    y, count, mean, var = forward(plan, x, w, b, EPS)
    dx, dw, db = backward(plan, x, dy, mean, var, w, EPS, count)
    dw_fixed, db_fixed = backend.grad_sums(plan, x, dy, rm, rv, w, EPS)[2:]
    return {"y": y, "mean": mean, "var": var, "dx": dx, "dw": dw, "db": db,
            "y_fixed": backend.normalize(plan, x, rm, rv, w, b, EPS),
            "dx_fixed": backend.input_grad(plan, x, dy, rm, rv, w, EPS, None, None, count),
            "dw_fixed": dw_fixed, "db_fixed": db_fixed}


def magnitudes(plan, x, dy, w, b, rm, rv, exact):
    """Per output, what one rounding in the compute dtype can cost it, in units of that dtype's rounding (the
    formula's terms made positive, a serial-then-tree sum costing `steps` roundings of its positive sum, and the
    statistics' errors carried into x̂ and r), computed from the exact results."""
    ld = np.longdouble
    v = lambda a: np.asarray(a, ld).reshape(plan.stats_shape if a.size != x.size else plan.view)
    xv, dyv = v(x), v(dy)
    gamma = np.ones(plan.param_shape, ld) if w is None else np.abs(np.asarray(w, ld).reshape(plan.param_shape))
    beta = 0 if b is None else np.abs(np.asarray(b, ld).reshape(plan.param_shape))
    n = plan.count
    steps = math.ceil(n / cuda.BLOCK) + 10  # a thread's serial sum, then the block's tree
    pooled = lambda a: a.sum(axis=plan.axes, keepdims=True)
    param_sum = lambda a: a.sum(axis=plan.not_param_axes, keepdims=True)
    out = {}
    for mode in ("", "_fixed"):
        if mode:  # the running statistics are given, exactly
            mean = None if rm is None else np.broadcast_to(np.asarray(rm, ld), plan.stats_shape)
            var = np.broadcast_to(np.asarray(rv, ld), plan.stats_shape)
            m = 0 if mean is None else np.abs(mean)
            m_err = var_err = 0
        else:
            mean, var = (None if exact["mean"] is None else v(exact["mean"])), v(exact["var"])
            m = 0 if mean is None else np.abs(mean)
            m_err = out["mean"] = steps * pooled(np.abs(xv)) / n
            var_err = out["var"] = steps * pooled((np.abs(xv) + m) ** 2) / n
        r = 1 / np.sqrt(var + EPS)
        xhat = np.abs((xv - (0 if mean is None else mean)) * r)
        r_err = 2 + var_err / (var + EPS) / 2                  # r's relative error: rsqrt, its cast, var's error
        xhat_err = (np.abs(xv) + m + m_err) * r + xhat * r_err  # x - μ, μ's error, ·r
        g = np.abs(dyv) * gamma
        out["y" + mode] = (xhat_err + xhat) * gamma + beta      # x̂, ·γ, + β
        out["dw" + mode] = steps * param_sum(np.abs(dyv) * (xhat + xhat_err))
        out["db" + mode] = steps * param_sum(np.abs(dyv))
        if mode:
            out["dx" + mode] = g * r * (1 + r_err) + g * r
        else:
            sum_gx = np.abs(pooled(dyv * (1 if w is None else np.asarray(w, ld).reshape(plan.param_shape)) *
                                   (xv - (0 if mean is None else mean)) * r))
            terms = g + pooled(g) / n + xhat * sum_gx / n
            out["dx"] = r * (terms * (r_err + 3) + steps * pooled(g) / n + xhat_err * sum_gx / n +
                             xhat * steps * pooled(g * (xhat + xhat_err)) / n)
    return out


def units(case, dtype, offset, backend):
    """{output: the largest |error| in units of the rounding allowed} of `backend` against the exact results."""
    plan, x, dy, w, b, rm, rv = inputs(case, dtype, offset)
    got = run(plan, backend, x, dy, w, b, rm, rv)
    wide = lambda a: None if a is None else np.asarray(a, np.longdouble)
    exact = run(plan, kernels.get("reference"), *map(wide, (x, dy, w, b, rm, rv)))  # 64-bit significands
    size = magnitudes(plan, x, dy, w, b, rm, rv, exact)
    stored_in = {True: np.finfo(dtype), False: np.finfo(kernels.stats_dtype(dtype))}  # y, dx: the input's dtype
    compute, storage = float(stored_in[False].eps) / 2, float(stored_in[True].eps) / 2  # (as Python floats: in
    floor = {k: float(f.smallest_subnormal) / 2 for k, f in stored_in.items()}       # float16, 2^-25 is 0)
    result = {}
    for name, value in got.items():
        if value is None:
            assert exact[name] is None, f"{case} {dtype}: {name} missing"
            continue
        want = exact[name]
        assert value.shape == want.shape, (case, name, value.shape, want.shape)
        if name.startswith(("y", "dx")):
            assert value.dtype == dtype, (case, name, value.dtype)
        allowed = compute * np.broadcast_to(size[name], plan.view if want.size == x.size else size[name].shape)
        stored = name.startswith(("y", "dx"))
        allowed = allowed.reshape(want.shape) + (storage * np.abs(want) if stored else 0) + floor[stored]
        err = np.abs(np.asarray(value, np.longdouble) - want)
        assert np.isfinite(np.asarray(value, np.float64)).all(), f"{case} {dtype} offset {offset}: {name} not finite"
        result[name] = float((err / np.maximum(allowed, np.finfo(np.float64).tiny)).max())
    return result


LIMIT = 5  # units of the rounding the arithmetic allows


@pytest.mark.parametrize("case", PLANS)
def test_emulated_kernels_agree_with_the_exact_reference(case):
    """Every output of every launch path, in every dtype, at offset 0 and 1e4, within LIMIT units."""
    backend = emulated()
    worst = {}
    for dtype in DTYPES:
        for offset in OFFSETS:
            for name, u in units(case, dtype, offset, backend).items():
                worst[(dtype, offset, name)] = u
    bad = {k: v for k, v in worst.items() if v > LIMIT}
    assert not bad, f"{case}: beyond {LIMIT} units: {bad}"


def test_the_tier_covers_every_layout_and_kernel():
    """The plans reach both layouts with and without ghost batches, I = 1 and I > 1, and every kernel."""
    launched, layouts = set(), set()

    class Recording(RawModule):  # records which kernels are launched, and runs none (the outputs are not read)
        def get_function(self, name):
            return lambda grid, block, args: launched.add(name)
    backend = cuda.CudaKernels(raw_module=Recording)
    for case in PLANS:
        plan, *arrays = inputs(case, "float32", 0.0)
        kind, sizes, _ = plan.layout
        layouts.add((kind, sizes[0] > 1 if kind == "columns" else sizes[1] > 1, sizes[3] == 1))
        run(plan, backend, *arrays)
    assert launched == set(cuda.NAMES)
    assert layouts >= {("columns", False, False), ("columns", False, True), ("columns", True, False),
                       ("columns", True, True), ("rows", False, False), ("rows", False, True), ("rows", True, False)}


@pytest.mark.parametrize("block", [32, 256, 1024])
def test_reducing_blocks_of_any_whole_number_of_warps(block):
    """column_param_grads and block_sum read their warp count from blockDim (it was correct only at 512)."""
    for case in ("layer", "layer_many_rows", "batch2d", "group_long"):
        assert max(units(case, "float32", 0.0, emulated(block=block)).values()) <= LIMIT, case


def test_a_block_that_is_not_whole_warps_is_refused_at_construction():
    for block in (100, 0, 2048, 512.0):
        with pytest.raises(ValueError, match="multiple of 32 threads from 32 to 1024"):
            cuda.CudaKernels(block=block)


def test_shuffled_schedules_give_the_same_bits():
    """Seeded shuffles of the thread and block orders, besides the default ascending and descending ones."""
    backend = emulated(schedules=(0, 2, 3))
    for case in ("batch2d", "layer_many_rows", "group", "ghost"):
        assert max(units(case, "float32", 1e4, backend).values()) <= LIMIT, case


# ---- planted bugs: each must be caught --------------------------------------------------------------------

def planted(old, new):
    def edit(code):
        assert code.count(old) >= 1, f"the planted bug's target {old!r} is not in the source"
        return code.replace(old, new, 1)
    return edit


def caught(edit, cases, **options):
    """Run the cases on the edited kernels; return what caught the bug (an EmulationError or the comparison)."""
    backend = emulated(source=edit, **options)
    for case in cases:
        try:
            worst = max(units(case, "float32", 0.0, backend).values())
        except EmulationError as e:
            return f"emulation: {e}"
        except AssertionError as e:  # non-finite output
            return f"comparison: {e}"
        if worst > LIMIT:
            return f"comparison: {worst:.3g} units"
    return None


def test_a_dropped_barrier_is_caught():
    edit = planted("    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;\n    __syncthreads();\n",
                   "    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;\n")
    how = caught(edit, ["batch2d"])
    assert how and how.startswith("emulation") and "schedule" in how, how


def test_an_off_by_one_bound_is_caught():
    edit = planted("q < Q; q += blockDim.x) visit(base + q, q);", "q <= Q; q += blockDim.x) visit(base + q, q);")
    assert caught(edit, ["batch2d_long_rows"])


def test_a_bound_off_by_one_in_the_flat_loop_is_caught():
    edit = planted("t < P * Q; t += blockDim.x", "t <= P * Q; t += blockDim.x")
    assert caught(edit, ["batch2d"])


def test_a_wrong_parameter_index_is_caught():
    edit = planted("return (s % K) * J + (unsigned)q / (unsigned)I;", "return (s % K) * J + (unsigned)q % (unsigned)I;")
    assert caught(edit, ["group"])


def test_the_old_sixteen_warp_column_param_grads_is_caught_at_256_and_1024_threads():
    """What the emulation found: with 16 warps hard-coded, 256 threads sum shared memory nobody wrote and
    1024 write past the array. The fixed kernel passes at both (test above); the old one must fail."""
    old = lambda code: code.replace("shared[2][32][33]", "shared[2][16][33]").replace("b += warps", "b += 16") \
                           .replace("k < warps", "k < 16")
    assert caught(old, ["layer"], block=512) is None  # correct at exactly 512
    assert caught(old, ["layer"], block=256)
    assert caught(old, ["layer_many_rows"], block=1024)


# ---- the emulation's own rules, on small kernels (one source, one build) ------------------------------------

SMALL = r"""typedef float T; typedef float F;
extern "C" __global__ void shfl(const F* x, F* y, int delta, int width) {
    y[threadIdx.x] = __shfl_down_sync(0xffffffffu, x[threadIdx.x], delta, width); }
extern "C" __global__ void shfl_one(const F* x, F* y) {
    y[threadIdx.x] = __shfl_down_sync(0xffffffffu, x[threadIdx.x], 1); }
extern "C" __global__ void split(F* y) {
    if (threadIdx.x < 16) __syncthreads();
    else __syncthreads();
    y[threadIdx.x] = 1; }
extern "C" __global__ void early(F* y) {
    y[threadIdx.x] = 1;
    if (threadIdx.x == 0) return;
    __syncthreads(); }
extern "C" __global__ void peek(F* y) {
    __shared__ float s[64];
    if (threadIdx.x == 0 && blockIdx.x == 0) s[0] = 7;
    __syncthreads();
    y[blockIdx.x * blockDim.x + threadIdx.x] = s[0]; }
extern "C" __global__ void over(F* y) { y[threadIdx.x + 1] = 1; }
extern "C" __global__ void far(const F* x, F* y) { y[threadIdx.x] = x[threadIdx.x + 1000]; }
extern "C" __global__ void copy(const F* x, F* y) { y[threadIdx.x] = x[threadIdx.x]; }
extern "C" __global__ void half(F* y) { if (threadIdx.x < 16) y[threadIdx.x] = 1; }
extern "C" __global__ void race(F* y) {
    __shared__ float last;
    last = threadIdx.x;
    __syncthreads();
    y[threadIdx.x] = last; }
extern "C" __global__ void spin(F* y, int n) { for (volatile int i = 0; i >= 0; i += n) {} y[0] = 1; }
extern "C" __global__ void sig(const F* x, F* y, long long n) { y[0] = x[0] + n; }
"""


@pytest.fixture(scope="module")
def small():
    return RawModule(SMALL)


def test_shuffle_down_follows_ptx_for_every_delta_and_width(small):
    x = np.arange(64, dtype=np.float32)
    for width in (1, 2, 4, 8, 16, 32):
        for delta in (0, 1, 3, 16, 31):
            y = np.empty_like(x)
            small.get_function("shfl")((1,), (64,), (x, y, np.int32(delta), np.int32(width)))
            lane = np.arange(64) % 32
            source = lane + delta
            inside = source <= (lane // width) * width + width - 1  # the segment's last lane
            np.testing.assert_array_equal(y, np.where(inside, x + delta, x), err_msg=f"width {width} delta {delta}")


def test_shuffle_with_a_lane_that_does_not_exist_is_reported(small):
    with pytest.raises(EmulationError, match="names lane 16, which does not exist"):
        small.get_function("shfl_one")((1,), (48,), (np.ones(48, np.float32), np.empty(48, np.float32)))


def test_barriers_at_different_lines_are_reported(small):
    with pytest.raises(EmulationError, match=r"waits at the __syncthreads on line \d+ while thread \d+ waits at"):
        small.get_function("split")((1,), (32,), (np.empty(32, np.float32),))


def test_a_barrier_some_threads_never_reach_is_reported(small):
    with pytest.raises(EmulationError, match="thread 0 has exited"):
        small.get_function("early")((1,), (32,), (np.empty(32, np.float32),))


def test_shared_memory_starts_poisoned_in_every_block(small):
    with pytest.raises(EmulationError, match=r"32 of 64 elements hold the poison .*first at flat index 32"):
        small.get_function("peek")((2,), (32,), (np.empty(64, np.float32),))  # block 1 never wrote s[0]


def test_writing_one_past_the_end_is_reported(small):
    with pytest.raises(EmulationError, match=r"argument 0 \(F\* y\), schedule 0: wrote outside its 128-byte buffer"):
        small.get_function("over")((1,), (32,), (np.empty(32, np.float32),))


def test_reading_far_out_of_bounds_is_reported_not_a_crash(small):
    with pytest.raises(EmulationError, match=r"accessed argument const F\* x \d+ bytes past the end of its buffer"):
        small.get_function("far")((1,), (32,), (np.ones(32, np.float32), np.empty(32, np.float32)))


def test_a_null_pointer_is_reported(small):
    with pytest.raises(EmulationError, match="dereferenced a null pointer"):
        small.get_function("copy")((1,), (32,), (cuda.NULL, np.empty(32, np.float32)))


def test_an_unwritten_output_is_reported(small):
    with pytest.raises(EmulationError, match="16 of 32 elements hold the poison"):
        small.get_function("half")((1,), (32,), (np.empty(32, np.float32),))


def test_a_result_that_depends_on_the_thread_order_is_reported(small):
    with pytest.raises(EmulationError, match="depends on the schedule"):
        small.get_function("race")((1,), (32,), (np.empty(32, np.float32),))


def test_a_loop_that_never_ends_is_stopped(small, monkeypatch):
    monkeypatch.setattr(small, "timeout_s", 0.3)
    with pytest.raises(EmulationError, match="did not finish within"):
        small.get_function("spin")((1,), (1,), (np.empty(1, np.float32), np.int32(0)))


def test_arguments_are_checked_against_the_c_signature(small):
    x, y = np.ones(1, np.float32), np.empty(1, np.float32)
    sig = small.get_function("sig")
    with pytest.raises(EmulationError, match=r"argument 2 \(long long n\): expected int64 \(long long\), got int"):
        sig((1,), (1,), (x, y, 3))
    with pytest.raises(EmulationError, match=r"argument 0 \(const F\* x\): expected float32 \(float\), got float64"):
        sig((1,), (1,), (x.astype(np.float64), y, np.int64(3)))
    with pytest.raises(EmulationError, match="2 arguments for the 3"):
        sig((1,), (1,), (x, y))
    copy = small.get_function("copy")
    copy((1,), (4,), (np.arange(4, dtype=np.float32), y4 := np.empty(4, np.float32)))
    np.testing.assert_array_equal(y4, np.arange(4))  # and a correct kernel gives its numbers back


def test_software_half_conversions_equal_numpys_bit_for_bit(small):
    """Every float16 to float32, and float32 to float16 (round to nearest even) on every exponent's edges,
    the halfway cases, subnormals, inf and NaN: the two PTX cvt instructions the emulation replaces."""
    import ctypes
    lib = small.lib
    lib.emu_half_to_float.restype, lib.emu_half_to_float.argtypes = ctypes.c_float, [ctypes.c_ushort]
    lib.emu_float_to_half.restype, lib.emu_float_to_half.argtypes = ctypes.c_ushort, [ctypes.c_float]
    halves = np.arange(65536, dtype=np.uint16)
    got = np.array([lib.emu_half_to_float(int(h)) for h in halves], np.float32)
    want = halves.view(np.float16).astype(np.float32)
    finite = ~np.isnan(want)
    np.testing.assert_array_equal(got.view(np.uint32)[finite], want.view(np.uint32)[finite])
    assert np.isnan(got[~finite]).all()
    # float32 inputs: every half, the midpoints between neighbours (ties), one ulp either side, and random bits
    with np.errstate(invalid="ignore"):  # inf + -inf between the two signs' NaNs, dropped below
        mids = (halves[:-1].view(np.float16).astype(np.float64) + halves[1:].view(np.float16).astype(np.float64)) / 2
    mids = mids[np.isfinite(mids)].astype(np.float32)
    rng = np.random.default_rng(0)
    floats = np.concatenate([want[finite], mids, np.nextafter(mids, np.float32(np.inf)),
                             np.nextafter(mids, np.float32(-np.inf)), rng.integers(0, 2**32, 50000,
                                                                                    dtype=np.uint64).astype(np.uint32).view(np.float32),
                             np.float32([65504, 65519.996, 65520, 1e-8, -0.0, np.inf, -np.inf])])
    floats = floats[~np.isnan(floats)]
    got = np.array([lib.emu_float_to_half(float(f)) for f in floats], np.uint16)
    with np.errstate(over="ignore"):  # beyond 65520 rounds to inf: what is being compared
        np.testing.assert_array_equal(got, floats.astype(np.float16).view(np.uint16))
    assert np.isnan(np.uint16(lib.emu_float_to_half(float("nan"))).view(np.float16))


def test_a_training_run_through_the_emulated_kernels_gives_the_cpus_numbers(monkeypatch):
    """TINYGRAD_NORM_KERNELS=cuda_emulated sends every norm of a model through the emulated CUDA kernels, by way of
    the layers, the policy and the op: three SGD steps of a small CNN with BatchNorm, GroupNorm and ghost batches,
    and a LayerNorm head, equal to the fused CPU kernels' in float64."""
    import tinygrad_norm as tg
    from tinygrad_norm import optim
    from tinygrad_norm.nn import functional as F

    def train():
        tg.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.Conv2d(4, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.Norm("ghost_batch", 4, k=2),
                              nn.Flatten(), nn.Linear(64, 10), nn.LayerNorm(10)).double()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((4, 2, 4, 4)), rng.integers(0, 10, 4)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = F.cross_entropy(model(tg.Tensor(x)), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        chosen = {layer.plan((4, 4, 4, 4) if i < 6 else (4, 10)).kernels.name
                  for i, layer in enumerate(model) if i in (1, 4, 5, 8)}
        return losses, [p.numpy() for p in model.parameters()], chosen
    losses, params, chosen = train()
    monkeypatch.setenv("TINYGRAD_NORM_KERNELS", "cuda_emulated")
    emulated_losses, emulated_params, emulated_chosen = train()
    assert emulated_chosen == {"cuda_emulated"} and "cuda_emulated" not in chosen
    np.testing.assert_allclose(emulated_losses, losses, rtol=1e-12)
    for a, b in zip(emulated_params, params):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_portable_ucontext_fibers_give_the_same_results(monkeypatch):
    """Off x86-64 the fibers switch with ucontext instead of the assembly switch; forced here, one kernel with
    barriers and shuffles (block_sum's) must give the assembly build's bits."""
    plan, x, dy, w, b, rm, rv = inputs("batch2d_odd", "float32", 0.0)
    fast = run(plan, emulated(), x, dy, w, b, rm, rv)
    monkeypatch.setattr(cuda_emulated, "FLAGS", cuda_emulated.FLAGS + ("-DEMU_UCONTEXT",))
    portable = run(plan, emulated(), x, dy, w, b, rm, rv)
    for name, value in fast.items():
        np.testing.assert_array_equal(portable[name], value, err_msg=name)
