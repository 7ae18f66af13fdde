"""CUDA kernels for the normalize op, compiled by CuPy through NVRTC on first use.

Both layouts are one addressing scheme: the input is a (G, P, R, Q) array, statistic s = g·R + r pools the
P·Q elements ((g·P + p)·R + r)·Q + q, and γ, β are read at (s mod K)·J + q / I:

    rows      (B, K, Ip, Ir)    ->  G = 1, P = 1, R = B·K, Q = Ip·Ir;  K, J, I = K, Ip, Ir
    columns   (G, B, K, I)      ->  G,     P = B, R = K,   Q = I;      K, J, I = K, 1, I

Six kernels, each one pass: `statistics` (a block per statistic, shifted sums in double, so an offset of
1e4 costs nothing), `normalize` (elementwise), `grad_sums` (a block per statistic: Σg, Σg·x̂, Σdy, Σdy·x̂
in one read; for columns the last two are dγ, dβ, per ghost batch when G > 1), `param_grads` (rows: a block per element of γ),
`column_param_grads` (rows whose γ varies along every element, LayerNorm: a warp across 32 adjacent
columns so that its loads coalesce, partial sums per chunk of rows) and `input_grad` (elementwise).
Forward is two launches; backward two (columns), three (rows) or four (LayerNorm: the chunks' sum); the op
runs them in turn. float16 is loaded and stored as half and computed in float; statistics and parameters
are float32 for it. A reducing block has any multiple of 32 threads up to 1024 (`CudaKernels(block=...)`); the
kernels read their warp count from blockDim.

The backend takes the compiler as a parameter (`raw_module`, CuPy's RawModule by default): the one seam
where cuda_emulated.py swaps in its stand-in, so that the emulated tier runs this launch code unchanged.
"""
import numpy as np

from ...backend import get_array_module
from .interface import Kernels, fold_param_grad, param_block, stats_dtype

BLOCK = 512          # threads of a reducing block (16 warps)
TARGET_BLOCKS = 4 * 132  # enough blocks to keep an H100's or H200's 132 multiprocessors busy
ELEMENTWISE = 256    # threads of an elementwise block

HALF_LOAD = 'asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i]));'       # f = p[i] as float
HALF_STORE = 'asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));'   # h = v rounded to half, to nearest even

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
               "    float f; " + HALF_LOAD + " return f; }\n"
               "__device__ __forceinline__ T st(F v) {\n"
               "    unsigned short h; " + HALF_STORE + " return h; }\n",
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

// The first element of statistic s = g·R + r, ((g·P)·R + r)·Q; its p-th run of Q starts p·R·Q after it.
__device__ __forceinline__ long long statistic_start(long long s, long long P, long long R, long long Q) {
    const long long g = s / R;
    return (g * P * R + s - g * R) * Q;
}

// The block's threads visit(e, q) every element e = ((g·P + p)·R + r)·Q + q of statistic s: run by run,
// threads across q, with no division per element; runs shorter than the block are flattened instead.
template <class Visit>
__device__ void for_each_in_statistic(long long s, long long P, long long R, long long Q, Visit visit) {
    const long long start = statistic_start(s, P, R, Q), stride = R * Q;
    if (Q >= blockDim.x) {
        for (long long p = 0; p < P; ++p)
            for (long long q = threadIdx.x, base = start + p * stride; q < Q; q += blockDim.x) visit(base + q, q);
    } else {
        for (long long t = threadIdx.x; t < P * Q; t += blockDim.x) {
            long long p = t / Q, q = t - p * Q;
            visit(start + p * stride + q, q);
        }
    }
}

// The statistic of row i = (g·P + p)·R + r of the (G·P·R, Q) rows: g·R + r (one division unless g > 0).
__device__ __forceinline__ long long statistic_of_row(long long i, long long P, long long R) {
    return P == 1 ? i : i < P * R ? i % R : i / (P * R) * R + i % R;
}

// The grid visits(e, s, q) every element of the (G·P·R, Q) rows once: a block per row with the divisions
// once per row, or, for rows shorter than the block, a flat grid-stride loop.
template <class Visit>
__device__ void for_each_element(long long rows, long long P, long long R, long long Q, Visit visit) {
    if (Q >= blockDim.x) {
        for (long long i = blockIdx.x; i < rows; i += gridDim.x)
            for (long long q = threadIdx.x, s = statistic_of_row(i, P, R); q < Q; q += blockDim.x)
                visit(i * Q + q, s, q);
    } else {
        for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < rows * Q;
             e += (long long)gridDim.x * blockDim.x) {
            long long i = e / Q;
            visit(e, statistic_of_row(i, P, R), e - i * Q);
        }
    }
}

// Index of γ, β for statistic s and position q in its run (q / I in 32 bits: a run is under 2^32 long).
__device__ __forceinline__ long long param_index(long long s, long long q, long long K, long long J, long long I) {
    return (s % K) * J + (unsigned)q / (unsigned)I;
}

// mean[s], var[s] over the P·Q elements of statistic s, shifted by its first element.
extern "C" __global__ void statistics(const T* x, F* mean, F* var, long long P, long long R, long long Q,
                                      int center) {
    __shared__ double shared[32];
    const long long s = blockIdx.x, n = P * Q;
    const double shift = center ? (double)ld(x, statistic_start(s, P, R, Q)) : 0.0;
    double s1 = 0.0, s2 = 0.0;
    for_each_in_statistic(s, P, R, Q, [&](long long e, long long) {
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
                                     long long rows, long long P, long long R, long long Q, long long K,
                                     long long J, long long I, double eps, int center, int has_w, int has_b) {
    for_each_element(rows, P, R, Q, [&](long long e, long long s, long long q) {
        F r = (F)rsqrt((double)var[s] + eps);
        F v = (ld(x, e) - (center ? mean[s] : (F)0)) * r;
        if (has_w) v *= w[param_index(s, q, K, J, I)];
        if (has_b) v += b[param_index(s, q, K, J, I)];
        y[e] = st(v);
    });
}

// Per statistic s, in one read: Σg, Σg·x̂ (g = dy·γ) for the input gradient, Σdy, Σdy·x̂ for γ and β.
extern "C" __global__ void grad_sums(const T* x, const T* dy, const F* mean, const F* var, const F* w,
                                     F* sum_g, F* sum_gx, F* sum_dy, F* sum_dyx, long long P, long long R,
                                     long long Q, long long K, long long J, long long I, double eps,
                                     int center, int has_w) {
    __shared__ double shared[32];
    const long long s = blockIdx.x;
    const double m = center ? (double)mean[s] : 0.0, r = rsqrt((double)var[s] + eps);
    double a = 0.0, ax = 0.0, c = 0.0, cx = 0.0;
    for_each_in_statistic(s, P, R, Q, [&](long long e, long long q) {
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
// block's W warps take every W-th row of this block's chunk of rows; one partial sum per chunk and column.
extern "C" __global__ void column_param_grads(const T* x, const T* dy, const F* mean, const F* var,
                                              F* dw_part, F* db_part, long long B, long long C, long long J,
                                              long long rows_per_chunk, double eps, int center) {
    __shared__ double shared[2][32][33];  // [Σdy, Σdy·x̂][warp][lane]: up to 32 warps, padded against bank conflicts
    const int lane = threadIdx.x & 31, row_lane = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const long long c = blockIdx.x * 32LL + lane, first = blockIdx.y * rows_per_chunk;
    const long long last = min(first + rows_per_chunk, B);
    double a = 0.0, ax = 0.0;
    if (c < C) {
        for (long long b = first + row_lane; b < last; b += warps) {
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
        for (int k = 1; k < warps; ++k) { a += shared[0][k][lane]; ax += shared[1][k][lane]; }
        db_part[blockIdx.y * C + c] = (F)a;
        dw_part[blockIdx.y * C + c] = (F)ax;
    }
}

// dx = r·(g - Σg/count - x̂·Σg·x̂/count); with fixed statistics (sum_g null) dx = r·g.
extern "C" __global__ void input_grad(const T* x, const T* dy, const F* mean, const F* var, const F* w,
                                      const F* sum_g, const F* sum_gx, T* dx, long long rows, long long P,
                                      long long R, long long Q, long long K, long long J, long long I,
                                      double eps, double inv_count, int center, int has_w) {
    for_each_element(rows, P, R, Q, [&](long long e, long long s, long long q) {
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


def cupy_raw_module(code):
    import cupy
    return cupy.RawModule(code=code, options=("--std=c++14",))


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


def _geometry(plan):
    """(G, P, R, Q, K, J, I) of the plan's layout, as the module docstring maps them."""
    kind, sizes, _ = plan.layout
    if kind == "rows":
        b, k, ip, ir = sizes
        return 1, 1, b * k, ip * ir, k, ip, ir
    g, b, k, i = sizes
    return g, b, k, i, k, 1, i


def _flat_param(p, plan, dtype):
    """γ or β as the kernels read it: (K·J) values, contiguous, in the statistics' dtype; or None."""
    return None if p is None else param_block(plan, p, dtype).reshape(-1)


def _stat(a, plan, dtype):
    """A statistic (or a gradient sum) as the kernels index it: one value per statistic s, contiguous; None
    stays None. Running statistics come without the batch axes, so they are broadcast to the plan's full
    statistics shape."""
    if a is None:
        return None
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


class CudaKernels(Kernels):
    """The CUDA kernels, compiled per input dtype by `raw_module(code)` (an object with get_function(name)),
    launched with reducing blocks of `block` threads."""
    name = "cuda"
    devices = ("cuda",)
    layouts = ("rows", "columns")
    priority = 10

    def __init__(self, raw_module=cupy_raw_module, block=BLOCK):
        if not isinstance(block, int) or block % 32 or not 32 <= block <= 1024:
            raise ValueError(f"CudaKernels: a reducing block must have a multiple of 32 threads from 32 to 1024 "
                             f"(whole warps: the kernels shuffle across all 32 lanes); got block={block!r}")
        self.raw_module, self.block = raw_module, block
        self._modules = {}

    def _kernel(self, dtype, name):
        dtype = np.dtype(dtype).name
        if dtype not in self._modules:
            self._modules[dtype] = self.raw_module(source(dtype))
        return self._modules[dtype].get_function(name)

    def statistics(self, plan, x):
        xp = get_array_module(x)
        G, P, R, Q, *_ = _geometry(plan)
        x = xp.ascontiguousarray(x)
        mean, var = xp.empty(G * R, stats_dtype(x.dtype)), xp.empty(G * R, stats_dtype(x.dtype))
        self._kernel(x.dtype, "statistics")((G * R,), (self.block,), (
            x, mean, var, np.int64(P), np.int64(R), np.int64(Q), _int(plan.center)))
        return (mean.reshape(plan.stats_shape) if plan.center else None), var.reshape(plan.stats_shape)

    def normalize(self, plan, x, mean, var, w, b, eps):
        xp = get_array_module(x)
        G, P, R, Q, K, J, I = _geometry(plan)
        x, dtype = xp.ascontiguousarray(x), stats_dtype(x.dtype)
        y = xp.empty_like(x)
        w_, b_ = _flat_param(w, plan, dtype), _flat_param(b, plan, dtype)
        grid, block = _elementwise_grid(G * P * R, Q)
        self._kernel(x.dtype, "normalize")(grid, block, (
            x, _or_null(_stat(mean, plan, dtype)), _stat(var, plan, dtype), _or_null(w_), _or_null(b_), y,
            np.int64(G * P * R), np.int64(P), np.int64(R), np.int64(Q), np.int64(K), np.int64(J), np.int64(I),
            np.float64(eps), _int(plan.center), _int(w_ is not None), _int(b_ is not None)))
        return y.reshape(x.shape)

    def grad_sums(self, plan, x, dy, mean, var, w, eps):
        xp = get_array_module(x)
        G, P, R, Q, K, J, I = _geometry(plan)
        x, dy, dtype = xp.ascontiguousarray(x), xp.ascontiguousarray(dy), stats_dtype(x.dtype)
        w_, mean_, var_ = _flat_param(w, plan, dtype), _stat(mean, plan, dtype), _stat(var, plan, dtype)
        sums = xp.empty((4, G * R), dtype)
        self._kernel(x.dtype, "grad_sums")((G * R,), (self.block,), (
            x, dy, _or_null(mean_), var_, _or_null(w_), *sums, np.int64(P), np.int64(R), np.int64(Q),
            np.int64(K), np.int64(J), np.int64(I), np.float64(eps), _int(plan.center), _int(w_ is not None)))
        sum_g, sum_gx = sums[0].reshape(plan.stats_shape), sums[1].reshape(plan.stats_shape)
        if w is None:
            return sum_g, sum_gx, None, None
        if plan.layout[0] == "columns":  # per statistic (g, k): summed over the ghost batches g
            dw, db = sums[3].reshape(G, K).sum(axis=0), sums[2].reshape(G, K).sum(axis=0)
        elif I == 1:
            dw, db = self._column_param_grads(plan, x, dy, mean_, var_, eps, dtype)
        else:
            dw, db = xp.empty(K * J, dtype), xp.empty(K * J, dtype)
            self._kernel(x.dtype, "param_grads")((K * J,), (self.block,), (
                x, dy, _or_null(mean_), var_, dw, db, np.int64(R), np.int64(Q), np.int64(K), np.int64(J),
                np.int64(I), np.float64(eps), _int(plan.center)))
        return sum_g, sum_gx, fold_param_grad(plan, dw, w), fold_param_grad(plan, db, w)

    def _column_param_grads(self, plan, x, dy, mean, var, eps, dtype):
        """dγ, dβ for rows whose γ varies along every element: `column_param_grads` on blocks of 32 columns and
        chunks of rows (enough blocks to fill the GPU), then one sum over the chunks."""
        xp = get_array_module(x)
        _, _, R, Q, K, J, _ = _geometry(plan)
        rows, columns, warps = R // K, Q * K, self.block // 32
        column_blocks = (columns + 31) // 32
        chunks = max(1, min((rows + warps - 1) // warps, -(-TARGET_BLOCKS // column_blocks)))
        rows_per_chunk = -(-rows // chunks)
        chunks = -(-rows // rows_per_chunk)
        dw_part, db_part = xp.empty((chunks, columns), dtype), xp.empty((chunks, columns), dtype)
        self._kernel(x.dtype, "column_param_grads")((column_blocks, chunks), (self.block,), (
            x, dy, _or_null(mean), var, dw_part, db_part, np.int64(rows), np.int64(columns), np.int64(J),
            np.int64(rows_per_chunk), np.float64(eps), _int(plan.center)))
        return dw_part.sum(axis=0), db_part.sum(axis=0)

    def input_grad(self, plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count):
        xp = get_array_module(x)
        G, P, R, Q, K, J, I = _geometry(plan)
        x, dy, dtype = xp.ascontiguousarray(x), xp.ascontiguousarray(dy), stats_dtype(x.dtype)
        dx = xp.empty_like(x)
        w_ = _flat_param(w, plan, dtype)
        grid, block = _elementwise_grid(G * P * R, Q)
        self._kernel(x.dtype, "input_grad")(grid, block, (  # Σg null: fixed statistics
            x, dy, _or_null(_stat(mean, plan, dtype)), _stat(var, plan, dtype), _or_null(w_),
            _or_null(_stat(sum_g, plan, dtype)), _or_null(_stat(sum_gx, plan, dtype)), dx,
            np.int64(G * P * R), np.int64(P), np.int64(R), np.int64(Q), np.int64(K), np.int64(J), np.int64(I),
            np.float64(eps), np.float64(1.0 / count), _int(plan.center), _int(w_ is not None)))
        return dx.reshape(x.shape)


BACKEND = CudaKernels()
