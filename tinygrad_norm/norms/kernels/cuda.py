"""CUDA kernels for the normalize op, compiled by CuPy through NVRTC on first use.

Both layouts are one addressing scheme: the input is a (P, S, Q) array, statistic s pools the P·Q
elements (p·S + s)·Q + q, and γ, β are read at (s mod K)·J + q / I:

    rows      (B, K, Ip, Ir)  ->  P = 1, S = B·K, Q = Ip·Ir;  K, J, I = K, Ip, Ir
    columns   (B, K, I)       ->  P = B, S = K,   Q = I;      K, J, I = K, 1, I

Six kernels, each one pass: `statistics` (a block per statistic, shifted sums in double, so an offset of
1e4 costs nothing), `normalize` (elementwise), `grad_sums` (a block per statistic: Σg, Σg·x̂, Σdy, Σdy·x̂
in one read; for columns the last two are dγ, dβ), `param_grads` (rows: a block per element of γ),
`column_param_grads` (rows whose γ varies along every element, LayerNorm: a warp across 32 adjacent
columns so that its loads coalesce, partial sums per chunk of rows) and `input_grad` (elementwise).
Forward is two launches; backward two (columns), three (rows) or four (LayerNorm: the chunks' sum); the op
runs them in turn. float16 is loaded and stored as half and computed in float; statistics and parameters
are float32 for it.
"""
import functools

import numpy as np

from ...backend import get_array_module
from ..plan import fold_param_grad, stats_dtype

BLOCK = 512          # threads of a reducing block (16 warps: column_param_grads relies on it)
TARGET_BLOCKS = 4 * 132  # enough blocks to keep an H100's 132 multiprocessors busy
ELEMENTWISE = 256    # threads of an elementwise block

PRELUDE = {  # storage type T, compute type F, and the loads and stores between them
    "float32": "typedef float T; typedef float F;\n"
               "__device__ __forceinline__ F ld(const T* p, long long i) { return p[i]; }\n"
               "__device__ __forceinline__ T st(F v) { return v; }\n",
    "float64": "typedef double T; typedef double F;\n"
               "__device__ __forceinline__ F ld(const T* p, long long i) { return p[i]; }\n"
               "__device__ __forceinline__ T st(F v) { return v; }\n",
    # half without cuda_fp16.h (NVRTC would need the toolkit's headers): the conversions are single PTX ops
    "float16": "typedef unsigned short T; typedef float F;\n"
               "__device__ __forceinline__ F ld(const T* p, long long i) {\n"
               "    float f; asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(p[i])); return f; }\n"
               "__device__ __forceinline__ T st(F v) {\n"
               "    unsigned short h; asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(h) : \"f\"(v)); return h; }\n",
}

BODY = r"""
// Sum of v over the block; the result is valid in thread 0. `shared` holds one double per warp.
__device__ double block_sum(double v, double* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();  // the previous call's readers are done with `shared`
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? shared[threadIdx.x] : 0.0;
    if (threadIdx.x < 32)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// The block's threads visit(e, q) every element e = (p·S + s)·Q + q of statistic s: run by run, threads
// across q, with no division per element; runs shorter than the block are flattened instead.
template <class Visit>
__device__ void for_each_in_statistic(long long s, long long P, long long S, long long Q, Visit visit) {
    if (Q >= blockDim.x) {
        for (long long p = 0; p < P; ++p)
            for (long long q = threadIdx.x, base = (p * S + s) * Q; q < Q; q += blockDim.x) visit(base + q, q);
    } else {
        for (long long t = threadIdx.x; t < P * Q; t += blockDim.x) {
            long long p = t / Q, q = t - p * Q;
            visit((p * S + s) * Q + q, q);
        }
    }
}

// The grid visits(e, s, q) every element of the (P·S, Q) rows once: a block per row with one division
// per row, or, for rows shorter than the block, a flat grid-stride loop.
template <class Visit>
__device__ void for_each_element(long long rows, long long S, long long Q, Visit visit) {
    if (Q >= blockDim.x) {
        for (long long r = blockIdx.x; r < rows; r += gridDim.x)
            for (long long q = threadIdx.x, s = r % S; q < Q; q += blockDim.x) visit(r * Q + q, s, q);
    } else {
        for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < rows * Q;
             e += (long long)gridDim.x * blockDim.x) {
            long long r = e / Q;
            visit(e, r % S, e - r * Q);
        }
    }
}

// Index of γ, β for statistic s and position q in its run (q / I in 32 bits: a run is under 2^32 long).
__device__ __forceinline__ long long param_index(long long s, long long q, long long K, long long J, long long I) {
    return (s % K) * J + (unsigned)q / (unsigned)I;
}

// mean[s], var[s] over the P·Q elements of statistic s, shifted by its first element.
extern "C" __global__ void statistics(const T* x, F* mean, F* var, long long P, long long S, long long Q,
                                      int center) {
    __shared__ double shared[32];
    const long long s = blockIdx.x, n = P * Q;
    const double shift = center ? (double)ld(x, s * Q) : 0.0;
    double s1 = 0.0, s2 = 0.0;
    for_each_in_statistic(s, P, S, Q, [&](long long e, long long) {
        double d = (double)ld(x, e) - shift;
        s1 += d;
        s2 += d * d;
    });
    s1 = block_sum(s1, shared);
    s2 = block_sum(s2, shared);
    if (threadIdx.x == 0) {
        double m1 = center ? s1 / n : 0.0;
        mean[s] = (F)(shift + m1);
        var[s] = (F)fmax(s2 / n - m1 * m1, 0.0);
    }
}

// y = (x - mean)·r·γ + β, elementwise.
extern "C" __global__ void normalize(const T* x, const F* mean, const F* var, const F* w, const F* b, T* y,
                                     long long rows, long long S, long long Q, long long K, long long J,
                                     long long I, double eps, int center, int has_w, int has_b) {
    for_each_element(rows, S, Q, [&](long long e, long long s, long long q) {
        F r = (F)rsqrt((double)var[s] + eps);
        F v = (ld(x, e) - (center ? mean[s] : (F)0)) * r;
        if (has_w) v *= w[param_index(s, q, K, J, I)];
        if (has_b) v += b[param_index(s, q, K, J, I)];
        y[e] = st(v);
    });
}

// Per statistic s, in one read: Σg, Σg·x̂ (g = dy·γ) for the input gradient, Σdy, Σdy·x̂ for γ and β.
extern "C" __global__ void grad_sums(const T* x, const T* dy, const F* mean, const F* var, const F* w,
                                     F* sum_g, F* sum_gx, F* sum_dy, F* sum_dyx, long long P, long long S,
                                     long long Q, long long K, long long J, long long I, double eps,
                                     int center, int has_w) {
    __shared__ double shared[32];
    const long long s = blockIdx.x;
    const double m = center ? (double)mean[s] : 0.0, r = rsqrt((double)var[s] + eps);
    double a = 0.0, ax = 0.0, c = 0.0, cx = 0.0;
    for_each_in_statistic(s, P, S, Q, [&](long long e, long long q) {
        double d = ld(dy, e), xh = ((double)ld(x, e) - m) * r;
        double g = has_w ? d * (double)w[param_index(s, q, K, J, I)] : d;
        a += g; ax += g * xh; c += d; cx += d * xh;
    });
    a = block_sum(a, shared); ax = block_sum(ax, shared);
    c = block_sum(c, shared); cx = block_sum(cx, shared);
    if (threadIdx.x == 0) { sum_g[s] = (F)a; sum_gx[s] = (F)ax; sum_dy[s] = (F)c; sum_dyx[s] = (F)cx; }
}

// Rows layout: dγ, dβ at (k, j), summed over the statistics s = b·K + k and the elements j·I .. j·I + I - 1.
extern "C" __global__ void param_grads(const T* x, const T* dy, const F* mean, const F* var, F* dw, F* db,
                                       long long S, long long Q, long long K, long long J, long long I,
                                       double eps, int center) {
    __shared__ double shared[32];
    const long long k = blockIdx.x / J, j = blockIdx.x % J, n = (S / K) * I;
    double c = 0.0, cx = 0.0;
    for (long long t = threadIdx.x; t < n; t += blockDim.x) {
        long long s = (t / I) * K + k, e = s * Q + j * I + t % I;
        double d = ld(dy, e), r = rsqrt((double)var[s] + eps);
        c += d;
        cx += d * ((double)ld(x, e) - (center ? (double)mean[s] : 0.0)) * r;
    }
    c = block_sum(c, shared);
    cx = block_sum(cx, shared);
    if (threadIdx.x == 0) { db[blockIdx.x] = (F)c; dw[blockIdx.x] = (F)cx; }
}

// Rows layout with I = 1 (LayerNorm, RMSNorm): x is a (B, C) matrix, C = K·J, whose column c is γ's element c
// and whose row b holds the statistics s = b·K + c / J. A warp spans 32 adjacent columns (coalesced), the
// block's 16 warps take every 16th row of this block's chunk of rows; one partial sum per chunk and column.
extern "C" __global__ void column_param_grads(const T* x, const T* dy, const F* mean, const F* var,
                                              F* dw_part, F* db_part, long long B, long long C, long long J,
                                              long long rows_per_chunk, double eps, int center) {
    __shared__ double shared[2][16][33];
    const int lane = threadIdx.x & 31, row_lane = threadIdx.x >> 5;
    const long long c = blockIdx.x * 32LL + lane, first = blockIdx.y * rows_per_chunk;
    const long long last = min(first + rows_per_chunk, B);
    double a = 0.0, ax = 0.0;
    if (c < C) {
        for (long long b = first + row_lane; b < last; b += 16) {
            long long s = b * (C / J) + c / J, e = b * C + c;
            double d = ld(dy, e);
            a += d;
            ax += d * ((double)ld(x, e) - (center ? (double)mean[s] : 0.0)) * rsqrt((double)var[s] + eps);
        }
    }
    shared[0][row_lane][lane] = a;
    shared[1][row_lane][lane] = ax;
    __syncthreads();
    if (row_lane == 0 && c < C) {
        for (int k = 1; k < 16; ++k) { a += shared[0][k][lane]; ax += shared[1][k][lane]; }
        db_part[blockIdx.y * C + c] = (F)a;
        dw_part[blockIdx.y * C + c] = (F)ax;
    }
}

// dx = r·(g - Σg/count - x̂·Σg·x̂/count); with fixed statistics (sum_g null) dx = r·g.
extern "C" __global__ void input_grad(const T* x, const T* dy, const F* mean, const F* var, const F* w,
                                      const F* sum_g, const F* sum_gx, T* dx, long long rows, long long S,
                                      long long Q, long long K, long long J, long long I, double eps,
                                      double inv_count, int center, int has_w) {
    for_each_element(rows, S, Q, [&](long long e, long long s, long long q) {
        F r = (F)rsqrt((double)var[s] + eps);
        F g = ld(dy, e);
        if (has_w) g *= w[param_index(s, q, K, J, I)];
        if (sum_g) {
            F xh = (ld(x, e) - (center ? mean[s] : (F)0)) * r;
            g -= (center ? sum_g[s] * (F)inv_count : (F)0) + xh * sum_gx[s] * (F)inv_count;
        }
        dx[e] = st(g * r);
    });
}
"""

NAMES = ("statistics", "normalize", "grad_sums", "param_grads", "column_param_grads", "input_grad")


def source(dtype):
    """The CUDA C source of the kernels for one input dtype ("float16", "float32" or "float64")."""
    return PRELUDE[np.dtype(dtype).name] + BODY


@functools.lru_cache(maxsize=None)
def _module(dtype):
    import cupy
    return cupy.RawModule(code=source(dtype), options=("--std=c++14",))


class CudaCompileError(RuntimeError):
    """NVRTC rejected a kernel source; the message carries the compiler's log."""


def compile_ptx(code, arch="compute_90"):
    """Compile CUDA C to PTX with NVRTC, which needs no GPU (only CuPy and the NVRTC library): how CI checks
    every kernel source on machines without one. Raises CudaCompileError with the compiler's log."""
    from cupy.cuda import nvrtc
    program = nvrtc.createProgram(code, "tinygrad_norm.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(program, [f"--gpu-architecture={arch}", "--std=c++14"])
        except nvrtc.NVRTCError as e:
            raise CudaCompileError(f"NVRTC rejected the kernel source ({e}):\n{nvrtc.getProgramLog(program)}") from None
        return nvrtc.getPTX(program).decode()
    finally:
        nvrtc.destroyProgram(program)


def _kernel(dtype, name):
    return _module(np.dtype(dtype).name).get_function(name)


def _geometry(plan):
    """(P, S, Q, K, J, I) of the plan's layout, as the module docstring maps them."""
    kind, sizes, _ = plan.layout
    if kind == "rows":
        b, k, ip, ir = sizes
        return 1, b * k, ip * ir, k, ip, ir
    b, k, i = sizes
    return b, k, i, k, 1, i


def _flat_param(p, plan, dtype):
    """γ or β as the kernels read it: (K·J) values, contiguous, in the statistics' dtype; or None."""
    if p is None:
        return None
    xp = get_array_module(p)
    _, _, (lo, hi) = plan.layout
    block = p.astype(dtype, copy=False).reshape(plan.param_shape[lo:hi])
    return xp.ascontiguousarray(xp.broadcast_to(block, plan.view[lo:hi])).reshape(-1)


def _stat(a, plan, dtype):
    """A statistic (or a gradient sum) as the kernels index it: one value per statistic s, contiguous. Running
    statistics come without the batch axes, so they are broadcast to the plan's full statistics shape."""
    xp = get_array_module(a)
    return xp.ascontiguousarray(xp.broadcast_to(a.astype(dtype, copy=False), plan.stats_shape))


def _elementwise_grid(rows, Q):
    """Blocks for `for_each_element`: a block per row of Q >= ELEMENTWISE elements, else enough to flatten."""
    blocks = rows if Q >= ELEMENTWISE else (rows * Q + ELEMENTWISE - 1) // ELEMENTWISE
    return (max(1, min(blocks, 65535)),), (ELEMENTWISE,)


def _int(flag):
    return np.int32(bool(flag))


NULL = np.uint64(0)  # a null pointer, for arrays a kernel is told (by a flag) not to read


def _or_null(a):
    return NULL if a is None else a


def statistics(plan, x):
    xp = get_array_module(x)
    P, S, Q, *_ = _geometry(plan)
    x = xp.ascontiguousarray(x)
    mean, var = xp.empty(S, stats_dtype(x.dtype)), xp.empty(S, stats_dtype(x.dtype))
    _kernel(x.dtype, "statistics")((S,), (BLOCK,), (x, mean, var, np.int64(P), np.int64(S), np.int64(Q),
                                                     _int(plan.center)))
    return (mean.reshape(plan.stats_shape) if plan.center else None), var.reshape(plan.stats_shape)


def normalize(plan, x, mean, var, w, b, eps):
    xp = get_array_module(x)
    P, S, Q, K, J, I = _geometry(plan)
    x, dtype = xp.ascontiguousarray(x), stats_dtype(x.dtype)
    y = xp.empty_like(x)
    w_, b_ = _flat_param(w, plan, dtype), _flat_param(b, plan, dtype)
    var_ = _stat(var, plan, dtype)
    mean_ = None if mean is None else _stat(mean, plan, dtype)
    grid, block = _elementwise_grid(P * S, Q)
    _kernel(x.dtype, "normalize")(grid, block, (
        x, _or_null(mean_), var_, _or_null(w_), _or_null(b_), y, np.int64(P * S),
        np.int64(S), np.int64(Q), np.int64(K), np.int64(J), np.int64(I), np.float64(eps), _int(plan.center),
        _int(w_ is not None), _int(b_ is not None)))
    return y.reshape(x.shape)


def grad_sums(plan, x, dy, mean, var, w, eps):
    xp = get_array_module(x)
    P, S, Q, K, J, I = _geometry(plan)
    x, dy, dtype = xp.ascontiguousarray(x), xp.ascontiguousarray(dy), stats_dtype(x.dtype)
    w_ = _flat_param(w, plan, dtype)
    var_ = _stat(var, plan, dtype)
    mean_ = None if mean is None else _stat(mean, plan, dtype)
    sums = xp.empty((4, S), dtype)
    _kernel(x.dtype, "grad_sums")((S,), (BLOCK,), (
        x, dy, _or_null(mean_), var_, _or_null(w_), *sums, np.int64(P), np.int64(S), np.int64(Q),
        np.int64(K), np.int64(J), np.int64(I), np.float64(eps), _int(plan.center), _int(w_ is not None)))
    sum_g, sum_gx = sums[0].reshape(plan.stats_shape), sums[1].reshape(plan.stats_shape)
    if w is None:
        return sum_g, sum_gx, None, None
    if plan.layout[0] == "columns":
        dw, db = sums[3], sums[2]
    elif I == 1:
        dw, db = _column_param_grads(plan, x, dy, mean_, var_, eps, dtype)
    else:
        dw, db = xp.empty(K * J, dtype), xp.empty(K * J, dtype)
        _kernel(x.dtype, "param_grads")((K * J,), (BLOCK,), (
            x, dy, _or_null(mean_), var_, dw, db, np.int64(S), np.int64(Q), np.int64(K), np.int64(J), np.int64(I),
            np.float64(eps), _int(plan.center)))
    return sum_g, sum_gx, fold_param_grad(plan, dw, w), fold_param_grad(plan, db, w)


def _column_param_grads(plan, x, dy, mean, var, eps, dtype):
    """dγ, dβ for rows whose γ varies along every element: `column_param_grads` on blocks of 32 columns and
    chunks of rows (enough blocks to fill the GPU), then one sum over the chunks."""
    xp = get_array_module(x)
    _, S, Q, K, J, _ = _geometry(plan)
    rows, columns = S // K, Q * K
    column_blocks = (columns + 31) // 32
    chunks = max(1, min((rows + 15) // 16, -(-TARGET_BLOCKS // column_blocks)))
    rows_per_chunk = -(-rows // chunks)
    chunks = -(-rows // rows_per_chunk)
    dw_part, db_part = xp.empty((chunks, columns), dtype), xp.empty((chunks, columns), dtype)
    _kernel(x.dtype, "column_param_grads")((column_blocks, chunks), (BLOCK,), (
        x, dy, _or_null(mean), var, dw_part, db_part, np.int64(rows), np.int64(columns), np.int64(J),
        np.int64(rows_per_chunk), np.float64(eps), _int(plan.center)))
    return dw_part.sum(axis=0), db_part.sum(axis=0)


def input_grad(plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count):
    xp = get_array_module(x)
    P, S, Q, K, J, I = _geometry(plan)
    x, dy, dtype = xp.ascontiguousarray(x), xp.ascontiguousarray(dy), stats_dtype(x.dtype)
    dx = xp.empty_like(x)
    w_ = _flat_param(w, plan, dtype)
    var_ = _stat(var, plan, dtype)
    mean_ = None if mean is None else _stat(mean, plan, dtype)
    fixed = sum_g is None
    grid, block = _elementwise_grid(P * S, Q)
    _kernel(x.dtype, "input_grad")(grid, block, (
        x, dy, _or_null(mean_), var_, _or_null(w_),
        NULL if fixed else _stat(sum_g, plan, dtype),  # null: fixed statistics
        NULL if fixed else _stat(sum_gx, plan, dtype),
        dx, np.int64(P * S), np.int64(S), np.int64(Q), np.int64(K), np.int64(J), np.int64(I),
        np.float64(eps), np.float64(1.0 / count), _int(plan.center), _int(w_ is not None)))
    return dx.reshape(x.shape)

