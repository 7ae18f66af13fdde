"""Fused CPU kernels for the normalize op, compiled by numba when it is installed (the `fast` extra).

NumPy's ufuncs run on one core and make a temporary per step; these make one parallel pass per statistic
and save only the mean and variance (x̂ is recomputed in backward). They fuse each direction whole. The
split halves (statistics, normalize, grad_sums, input_grad), used where statistics are combined between
them and with eval mode's fixed statistics, are numba kernels for columns (the layout of every norm that
pools the batch axis, the ones that synchronize) and the reference kernels' elsewhere. The layouts are the
plan's ("rows", "columns" with its G ghost batches); within them, rows whose γ varies along every element
("elementwise", LayerNorm) and columns of (N, C) input ("wide", BatchNorm1d) get kernels of their own.
float16 runs in float32. Set TINYGRAD_NORM_NUMBA=0 to switch these off; the
reference kernels are what they are tested against.
"""
import math
import types

import numpy as np

from .interface import Kernels, fold_param_grad, param_block, stats_dtype
from .reference import BACKEND as reference

from ...threads import FAST_MATH, numba

if numba is not None:
    from numba import njit, prange
# error_model="numpy" (every kernel): 1/0 is inf and 0/0 NaN, as in NumPy and PyTorch (eps=0 on a constant
# input), where numba's default, Python's, raises ZeroDivisionError


if numba is not None:
    @njit(fastmath=FAST_MATH, error_model="numpy", cache=True)
    def _moments(block, center):
        """(mean, variance) of a 2-D block in one pass, shifted by its first element; float64 accumulators make
        the cancellation harmless (error ≈ offset² · 1e-16). Without centering: (0, mean square)."""
        shift = block[0, 0] if center else 0.0
        s1, s2 = 0.0, 0.0
        for a in range(block.shape[0]):
            for i in range(block.shape[1]):
                d = block[a, i] - shift
                s1 += d
                s2 += d * d
        m1 = s1 / block.size if center else 0.0
        return shift + m1, s2 / block.size - m1 * m1

    def _rows_forward(x, w, b, eps, center, out, mean, var):
        nb, nk, nj, ni = x.shape
        for r in prange(nb * nk):
            p, k = r // nk, r % nk
            m, v = _moments(x[p, k], center)
            inv = 1.0 / math.sqrt(v + eps)
            mean[p, k], var[p, k] = m, v
            for j in range(nj):
                a = inv * w[k, j]
                c = b[k, j] - m * a
                for i in range(ni):
                    out[p, k, j, i] = x[p, k, j, i] * a + c

    def _rows_backward(x, dy, w, mean, var, eps, center, dx, dw, db):
        """dw, db: (chunks, K, Ip) float64 partial sums, one slab per parallel chunk (no races)."""
        nb, nk, nj, ni = x.shape
        n, rows, chunks = nj * ni, nb * nk, dw.shape[0]
        for c in prange(chunks):
            for r in range(c * rows // chunks, (c + 1) * rows // chunks):
                p, k = r // nk, r % nk
                m, inv = mean[p, k], 1.0 / math.sqrt(var[p, k] + eps)
                sg, sgx = 0.0, 0.0
                for j in range(nj):
                    sdy, sdyx = 0.0, 0.0
                    for i in range(ni):
                        g = dy[p, k, j, i]
                        sdy += g
                        sdyx += g * (x[p, k, j, i] - m)
                    sdyx *= inv
                    dw[c, k, j] += sdyx
                    db[c, k, j] += sdy
                    sg += w[k, j] * sdy
                    sgx += w[k, j] * sdyx
                # dx = r·(γ·dy - mean(g) - x̂·mean(g·x̂)) = A·dy + B·x + C per block j
                mg = sg / n if center else 0.0
                mgx = sgx / n
                bx = -inv * inv * mgx
                c0 = -inv * mg - m * bx
                for j in range(nj):
                    a = inv * w[k, j]
                    for i in range(ni):
                        dx[p, k, j, i] = a * dy[p, k, j, i] + bx * x[p, k, j, i] + c0

    def _elementwise_forward(x, w, b, eps, center, out, mean, var):
        """Rows whose γ varies along every pooled element (LayerNorm): x (B, K, I), w (K, I)."""
        nb, nk, ni = x.shape
        for r in prange(nb * nk):
            p, k = r // nk, r % nk
            row, o, wk, bk = x[p, k], out[p, k], w[k], b[k]
            m, v = _moments(x[p, k:k + 1], center)
            inv = 1.0 / math.sqrt(v + eps)
            mean[p, k], var[p, k] = m, v
            for i in range(ni):
                o[i] = (row[i] - m) * inv * wk[i] + bk[i]

    def _elementwise_backward(x, dy, w, mean, var, eps, center, dx, dw, db):
        """dw, db: (chunks, K, I) partial sums, one slab per parallel chunk."""
        nb, nk, ni = x.shape
        rows, chunks = nb * nk, dw.shape[0]
        for c in prange(chunks):
            for r in range(c * rows // chunks, (c + 1) * rows // chunks):
                p, k = r // nk, r % nk
                row, grow, drow, wk, dwk, dbk = x[p, k], dy[p, k], dx[p, k], w[k], dw[c, k], db[c, k]
                m, inv = mean[p, k], 1.0 / math.sqrt(var[p, k] + eps)
                sg, sgx = 0.0, 0.0
                for i in range(ni):
                    xh = (row[i] - m) * inv
                    g = grow[i]
                    dwk[i] += g * xh
                    dbk[i] += g
                    sg += g * wk[i]
                    sgx += g * wk[i] * xh
                mg = sg / ni if center else 0.0
                mgx = sgx / ni
                for i in range(ni):
                    drow[i] = (grow[i] * wk[i] - mg - (row[i] - m) * inv * mgx) * inv

    # Columns (BatchNorm, ghost batches): x is (G, B, K, I), one statistic per (g, k) over (B, I); G = 1 but for
    # ghost batches. The per-column steps take one (B, K, I) slab x[g] and are inlined into each kernel by numba
    # (inline="always"): handed the strided block x[:, k] instead, they do not vectorise (BN2d forward 0.9 ->
    # 2.1 ms). The fused kernels and the halves that synchronized BatchNorm runs are built from them.
    @njit(fastmath=FAST_MATH, error_model="numpy", inline="always")
    def _column_moments(x, k, center):
        """(mean, variance) of x[:, k, :], one pass shifted by its first element (see _moments)."""
        nb, _, ni = x.shape
        shift = x[0, k, 0] if center else 0.0
        s1, s2 = 0.0, 0.0
        for p in range(nb):
            for i in range(ni):
                d = x[p, k, i] - shift
                s1 += d
                s2 += d * d
        n = nb * ni
        m1 = s1 / n if center else 0.0
        return shift + m1, s2 / n - m1 * m1

    @njit(fastmath=FAST_MATH, error_model="numpy", inline="always")
    def _column_sums(x, dy, k, m):
        """(Σ dy, Σ dy·(x - m)) over x[:, k, :]."""
        sg, sgx = 0.0, 0.0
        for p in range(x.shape[0]):
            for i in range(x.shape[2]):
                g = dy[p, k, i]
                sg += g
                sgx += g * (x[p, k, i] - m)
        return sg, sgx

    @njit(fastmath=FAST_MATH, error_model="numpy", inline="always")
    def _column_affine(x, dy, k, a, bx, c, out):
        """out[:, k] = a·x + c, or with dy: a·dy + bx·x + c (dx as an affine map of dy and x)."""
        for p in range(x.shape[0]):
            for i in range(x.shape[2]):
                out[p, k, i] = (a * x[p, k, i] + c) if dy is None else (a * dy[p, k, i] + bx * x[p, k, i] + c)

    def _columns_forward(x, w, b, eps, center, out, mean, var):
        nk = x.shape[2]
        for r in prange(x.shape[0] * nk):
            g, k = r // nk, r % nk
            m, v = _column_moments(x[g], k, center)
            mean[g, k], var[g, k] = m, v
            a = w[k] / math.sqrt(v + eps)
            _column_affine(x[g], None, k, a, 0.0, b[k] - m * a, out[g])

    def _columns_backward(x, dy, w, mean, var, eps, center, dx, dw, db):
        """dw, db: (G, K), one partial sum per ghost batch (summed by the caller)."""
        nk, n = x.shape[2], x.shape[1] * x.shape[3]
        for r in prange(x.shape[0] * nk):
            g, k = r // nk, r % nk
            m, inv = mean[g, k], 1.0 / math.sqrt(var[g, k] + eps)
            sg, sgx = _column_sums(x[g], dy[g], k, m)
            sgx *= inv
            dw[g, k], db[g, k] = sgx, sg
            # dx = γ·r·(dy - mean(dy) - x̂·mean(dy·x̂)); γ is constant over the pooled set here
            a = w[k] * inv
            bx = -a * inv * sgx / n
            _column_affine(x[g], dy[g], k, a, bx, -a * (sg / n if center else 0.0) - m * bx, dx[g])

    def _columns_statistics(x, center, mean, var):
        nk = x.shape[2]
        for r in prange(x.shape[0] * nk):
            g, k = r // nk, r % nk
            mean[g, k], var[g, k] = _column_moments(x[g], k, center)

    def _columns_normalize(x, w, b, mean, var, eps, out):
        nk = x.shape[2]
        for r in prange(x.shape[0] * nk):
            g, k = r // nk, r % nk
            a = w[k] / math.sqrt(var[g, k] + eps)
            _column_affine(x[g], None, k, a, 0.0, b[k] - mean[g, k] * a, out[g])

    def _columns_grad_sums(x, dy, mean, var, eps, dw, db):
        """dw = Σ dy·x̂, db = Σ dy per (g, k) (Σg and Σg·x̂ are these times γ)."""
        nk = x.shape[2]
        for r in prange(x.shape[0] * nk):
            g, k = r // nk, r % nk
            sg, sgx = _column_sums(x[g], dy[g], k, mean[g, k])
            dw[g, k], db[g, k] = sgx / math.sqrt(var[g, k] + eps), sg

    def _columns_input_grad(x, dy, w, mean, var, eps, sum_g, sum_gx, count, center, fixed, dx):
        """dx = r·(g - Σg/count - x̂·Σg·x̂/count), g = γ·dy, with the (possibly combined) sums; fixed: r·g."""
        nk = x.shape[2]
        for r in prange(x.shape[0] * nk):
            g, k = r // nk, r % nk
            inv = 1.0 / math.sqrt(var[g, k] + eps)
            a = w[k] * inv
            if fixed:
                _column_affine(x[g], dy[g], k, a, 0.0, 0.0, dx[g])
            else:
                bx = -inv * inv * sum_gx[g, k] / count
                c0 = -inv * (sum_g[g, k] / count if center else 0.0) - mean[g, k] * bx
                _column_affine(x[g], dy[g], k, a, bx, c0, dx[g])

    def _wide_forward(x, w, b, eps, center, out, mean, var, blocks):
        """Columns with I = 1 (BatchNorm on (N, C), x (G, B, K)): blocks of k in each slab x[g], rows read as
        contiguous slices. One pass for the statistics, shifted by the first row so the variance does not cancel
        on a large offset."""
        _, nb, nk = x.shape
        for gb in prange(x.shape[0] * blocks):
            g, blk = gb // blocks, gb % blocks
            xg, og = x[g], out[g]
            k0, k1 = blk * nk // blocks, (blk + 1) * nk // blocks
            n = k1 - k0
            shift, s1, s2 = np.zeros(n), np.zeros(n), np.zeros(n)
            if center:
                for k in range(n):
                    shift[k] = xg[0, k0 + k]
            for p in range(nb):
                row = xg[p, k0:k1]
                for k in range(n):
                    d = row[k] - shift[k]
                    s1[k] += d
                    s2[k] += d * d
            # y = (x - shift)·a + c, c = β - (mean - shift)·a: both terms are O(1), where x·a + (β - mean·a) cancels
            # on a large offset (0.06 off at 1e6 in float32). shift is x's first row, so x - shift is exact there.
            a, c, sh = np.empty(n, x.dtype), np.empty(n, x.dtype), np.empty(n, x.dtype)
            for k in range(n):
                m1 = s1[k] / nb if center else 0.0
                v = s2[k] / nb - m1 * m1
                mean[g, k0 + k], var[g, k0 + k] = shift[k] + m1, v
                a[k] = w[k0 + k] / math.sqrt(v + eps)
                c[k] = b[k0 + k] - m1 * a[k]
                sh[k] = shift[k]
            for p in range(nb):
                row, o = xg[p, k0:k1], og[p, k0:k1]
                for k in range(n):
                    o[k] = (row[k] - sh[k]) * a[k] + c[k]

    def _wide_backward(x, dy, w, mean, var, eps, center, dx, dw, db, blocks):
        _, nb, nk = x.shape
        for gb in prange(x.shape[0] * blocks):
            g, blk = gb // blocks, gb % blocks
            xg, dyg, dxg = x[g], dy[g], dx[g]
            k0, k1 = blk * nk // blocks, (blk + 1) * nk // blocks
            n = k1 - k0
            m = np.empty(n)
            for k in range(n):
                m[k] = mean[g, k0 + k]
            sg, sgx = np.zeros(n), np.zeros(n)
            for p in range(nb):
                row, grow = xg[p, k0:k1], dyg[p, k0:k1]
                for k in range(n):
                    sg[k] += grow[k]
                    sgx[k] += grow[k] * (row[k] - m[k])
            # dx = a·dy + bx·(x - shift) + c0, shifted by x's first row as in _wide_forward
            a, bx, c0, sh = np.empty(n, x.dtype), np.empty(n, x.dtype), np.empty(n, x.dtype), np.empty(n, x.dtype)
            for k in range(n):
                inv = 1.0 / math.sqrt(var[g, k0 + k] + eps)
                dw[g, k0 + k], db[g, k0 + k] = sgx[k] * inv, sg[k]
                sh[k] = xg[0, k0 + k]
                a[k] = w[k0 + k] * inv
                bx[k] = -a[k] * inv * inv * sgx[k] / nb
                c0[k] = -a[k] * (sg[k] / nb if center else 0.0) - (m[k] - sh[k]) * bx[k]
            for p in range(nb):
                row, grow, drow = xg[p, k0:k1], dyg[p, k0:k1], dxg[p, k0:k1]
                for k in range(n):
                    drow[k] = a[k] * grow[k] + bx[k] * (row[k] - sh[k]) + c0[k]


    def _compile(fn):
        """(parallel, serial) compilations of one kernel: threads pay off only on large arrays, and on small ones
        numba's pool would fight BLAS's spinning threads for the same cores (a 12x slowdown of a BN MLP step).
        Each gets its own name: numba's disk cache keys on the name, not on `parallel`."""
        def renamed(suffix):
            f = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
            f.__qualname__ = fn.__qualname__ + suffix
            return f
        return (njit(parallel=True, fastmath=FAST_MATH, error_model="numpy", cache=True)(renamed("_parallel")),
                njit(parallel=False, fastmath=FAST_MATH, error_model="numpy", cache=True)(renamed("_serial")))

    KERNELS = {name: (_compile(fwd), _compile(bwd)) for name, (fwd, bwd) in {
        "rows": (_rows_forward, _rows_backward), "elementwise": (_elementwise_forward, _elementwise_backward),
        "columns": (_columns_forward, _columns_backward), "wide": (_wide_forward, _wide_backward)}.items()}
    HALVES = {fn.__name__: _compile(fn) for fn in (_columns_statistics, _columns_normalize, _columns_grad_sums,
                                                   _columns_input_grad)}

PARALLEL_MIN = 1 << 18  # elements; below, one thread beats waking two (and fighting BLAS's threads)


def _param_view(p, plan, dtype, shape):
    """γ or β as a kernel reads it, in `shape` ((K, Ip) for rows, (K,) for columns): contiguous, as a zero-stride
    view would stop numba from vectorising; ones for a missing γ (zeros for a missing β are the caller's)."""
    return np.ones(shape, dtype) if p is None else param_block(plan, p, dtype).reshape(shape)


def _shapes(layout):
    """(array shape the layout's kernels take, statistics shape they hold, parameter shape they read)."""
    kind, sizes, _ = layout
    shape = sizes if sizes[3] != 1 else sizes[:3]  # I = 1: the three-axis kernels (elementwise rows, wide columns)
    if kind == "rows":  # (B, K, Ip, Ir)
        return shape, sizes[:2], sizes[1:3]
    return shape, (sizes[0], sizes[2]), sizes[2:3]  # columns (G, B, K, I)


def _compiled(pair, sizes):
    """The parallel compilation of a (parallel, serial) pair for large inputs, else the serial one."""
    return pair[0 if math.prod(sizes) >= PARALLEL_MIN else 1]


def _kernel(layout, direction):
    """(kernel, extra arguments) for a layout; parallel only for large inputs."""
    kind, sizes, _ = layout
    pick = lambda name: _compiled(KERNELS[name][direction], sizes)
    if kind == "rows":
        return (pick("elementwise"), ()) if sizes[3] == 1 else (pick("rows"), ())
    if sizes[3] == 1:
        blocks = min(sizes[2], 4 * numba.get_num_threads()) if math.prod(sizes) >= PARALLEL_MIN else 1
        return pick("wide"), (blocks,)
    return pick("columns"), ()


def _half(plan, name):
    """A columns half of the statistics' split (statistics, normalize, grad_sums or input_grad), or None for the
    reference's: the halves serve synchronized norms, and those pool the batch axis, so their layout is columns;
    and eval mode's fixed statistics. With I = 1 ((N, C) input) NumPy's reductions along contiguous rows beat a
    kernel striding down each column (2-3x at (256, 1024))."""
    kind, sizes, _ = plan.layout
    if kind != "columns" or sizes[3] == 1:
        return None
    return _compiled(HALVES["_columns_" + name], sizes)


def _compute(a, shape):
    """a as a contiguous array of the kernel's shape, in float32 when it is float16 (numba has no float16)."""
    return np.ascontiguousarray(a, dtype=stats_dtype(a.dtype)).reshape(shape)


def _stat(s, plan, shape):
    """A statistic or sum (plan.stats_shape, or without the batch axes: running statistics; None: zeros, as
    without centering) as the kernels hold it: float64 of `shape`."""
    if s is None:
        return np.zeros(shape)
    if s.shape != plan.stats_shape:  # (the batch statistics have that shape already: no broadcast to pay for)
        s = np.broadcast_to(s, plan.stats_shape)
    return np.ascontiguousarray(s, np.float64).reshape(shape)


class NumbaCpu(Kernels):
    """The fused CPU kernels: each direction in one pass where nothing sits between the halves."""
    name = "numba_cpu"
    devices = ("cpu",)
    layouts = ("rows", "columns")
    priority = 10

    def available(self):
        return (True, "") if numba is not None else (False, "numba is not installed (pip install 'tinygrad-norm[fast]')"
                                                            " or TINYGRAD_NORM_NUMBA=0")

    def forward(self, plan, x, w, b, eps):
        """y, mean, var in one fused pass."""
        (kernel, extra), (shape, stats, params) = _kernel(plan.layout, 0), _shapes(plan.layout)
        x_ = _compute(x, shape)
        out = np.empty_like(x_)
        # float64 statistics, the accumulators' precision: backward subtracts a mean that was not rounded to
        # float32 (on float32 data offset by 1e6 a rounded mean is 0.03 off, and so was every input gradient)
        mean, var = np.empty(stats), np.empty(stats)
        w_ = _param_view(w, plan, x_.dtype, params)
        b_ = np.zeros_like(w_) if b is None else _param_view(b, plan, x_.dtype, params)
        kernel(x_, w_, b_, eps, plan.center, out, mean, var, *extra)
        return (out.astype(x.dtype, copy=False).reshape(x.shape),
                mean.reshape(plan.stats_shape) if plan.center else None, var.reshape(plan.stats_shape))

    def backward(self, plan, x, dy, mean, var, w, eps):
        """dx, dw, db in one fused pass (batch statistics)."""
        (kernel, extra), (shape, stats, params) = _kernel(plan.layout, 1), _shapes(plan.layout)
        x_, dy_ = _compute(x, shape), _compute(dy, shape)
        dx = np.empty_like(x_)
        w_ = _param_view(w, plan, x_.dtype, params)
        mean_, var_ = _stat(mean, plan, stats), _stat(var, plan, stats)
        if plan.layout[0] == "rows":  # partial sums per parallel chunk of rows (no races)
            chunks = max(1, min(stats[0] * stats[1], numba.get_num_threads()))
            dw, db = np.zeros((chunks, *params)), np.zeros((chunks, *params))
        else:  # partial sums per ghost batch
            dw, db = np.empty(stats), np.empty(stats)
        kernel(x_, dy_, w_, mean_, var_, eps, plan.center, dx, dw, db, *extra)
        dx = dx.astype(x.dtype, copy=False).reshape(x.shape)
        if w is None:
            return dx, None, None
        return dx, fold_param_grad(plan, dw.sum(axis=0), w), fold_param_grad(plan, db.sum(axis=0), w)

    # the halves: numba for columns, the reference's elsewhere
    def statistics(self, plan, x):
        kernel = _half(plan, "statistics")
        if kernel is None:
            return reference.statistics(plan, x)
        shape, stats, _ = _shapes(plan.layout)
        mean, var = np.empty(stats), np.empty(stats)  # float64, as forward's
        kernel(_compute(x, shape), plan.center, mean, var)
        return (mean.reshape(plan.stats_shape) if plan.center else None), var.reshape(plan.stats_shape)

    def normalize(self, plan, x, mean, var, w, b, eps):
        kernel = _half(plan, "normalize")
        if kernel is None:
            return reference.normalize(plan, x, mean, var, w, b, eps)
        shape, stats, params = _shapes(plan.layout)
        x_ = _compute(x, shape)
        out, w_ = np.empty_like(x_), _param_view(w, plan, x_.dtype, params)
        b_ = np.zeros_like(w_) if b is None else _param_view(b, plan, x_.dtype, params)
        kernel(x_, w_, b_, _stat(mean, plan, stats), _stat(var, plan, stats), eps, out)
        return out.astype(x.dtype, copy=False).reshape(x.shape)

    def grad_sums(self, plan, x, dy, mean, var, w, eps):
        kernel = _half(plan, "grad_sums")
        if kernel is None:
            return reference.grad_sums(plan, x, dy, mean, var, w, eps)
        shape, stats, params = _shapes(plan.layout)
        x_, dy_ = _compute(x, shape), _compute(dy, shape)
        dw, db = np.empty(stats), np.empty(stats)
        kernel(x_, dy_, _stat(mean, plan, stats), _stat(var, plan, stats), eps, dw, db)
        scale = _param_view(w, plan, np.float64, params)  # γ per column: Σg = γ·Σdy, Σg·x̂ = γ·Σdy·x̂
        sums = [(scale * s).astype(x_.dtype).reshape(plan.stats_shape) for s in (db, dw)]
        if w is None:
            return (*sums, None, None)
        return (*sums, fold_param_grad(plan, dw.sum(axis=0), w), fold_param_grad(plan, db.sum(axis=0), w))

    def input_grad(self, plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count):
        kernel = _half(plan, "input_grad")
        if kernel is None:
            return reference.input_grad(plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count)
        shape, stats, params = _shapes(plan.layout)
        x_, dy_ = _compute(x, shape), _compute(dy, shape)
        dx, fixed = np.empty_like(x_), sum_g is None
        kernel(x_, dy_, _param_view(w, plan, x_.dtype, params), _stat(mean, plan, stats), _stat(var, plan, stats),
               eps, _stat(sum_g, plan, stats), _stat(sum_gx, plan, stats), float(count), plan.center, fixed, dx)
        return dx.astype(x.dtype, copy=False).reshape(x.shape)


BACKEND = NumbaCpu()
