"""Fused CPU kernels for the normalize op, compiled by numba when it is installed (the `fast` extra).

NumPy's ufuncs run on one core and make a temporary per step; these make one parallel pass per statistic
and save only the mean and variance (x̂ is recomputed in backward). They fuse each direction whole. The
split halves (statistics, normalize, grad_sums, input_grad), used where statistics are combined between
them, are numba kernels for columns (the layout of every norm that pools the batch axis, the ones that
synchronize) and the reference kernels' elsewhere. The layouts are the plan's ("rows", "columns"); within them, rows whose
γ varies along every element ("elementwise", LayerNorm) and columns of (N, C) input ("wide", BatchNorm1d)
get kernels of their own. float16 runs in float32. Set TINYGRAD_NORM_NUMBA=0 to switch these off; the
reference kernels are what they are tested against.
"""
import math
import os
import types

import numpy as np

from ..plan import fold_param_grad, stats_dtype
from . import reference

try:
    if os.environ.get("TINYGRAD_NORM_NUMBA", "1") == "0":
        raise ImportError("switched off by TINYGRAD_NORM_NUMBA=0")
    import numba
    from numba import njit, prange
except ImportError:
    numba = None

FAST_MATH = {"reassoc", "contract"}  # lets reductions vectorise; keeps NaN and inf semantics
# error_model="numpy" (every kernel): 1/0 is inf and 0/0 NaN, as in NumPy and PyTorch (eps=0 on a constant
# input), where numba's default, Python's, raises ZeroDivisionError


def available():
    return numba is not None


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

    # Columns (BatchNorm): one statistic per k over (B, I). The per-column steps are inlined into each kernel
    # by numba (inline="always"): handed the strided block x[:, k] instead, they do not vectorise (BN2d forward
    # 0.9 -> 2.1 ms). The fused kernels and the halves that synchronized BatchNorm runs are built from them.
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
        for k in prange(x.shape[1]):
            m, v = _column_moments(x, k, center)
            mean[k], var[k] = m, v
            a = w[k] / math.sqrt(v + eps)
            _column_affine(x, None, k, a, 0.0, b[k] - m * a, out)

    def _columns_backward(x, dy, w, mean, var, eps, center, dx, dw, db):
        n = x.shape[0] * x.shape[2]
        for k in prange(x.shape[1]):
            m, inv = mean[k], 1.0 / math.sqrt(var[k] + eps)
            sg, sgx = _column_sums(x, dy, k, m)
            sgx *= inv
            dw[k], db[k] = sgx, sg
            # dx = γ·r·(dy - mean(dy) - x̂·mean(dy·x̂)); γ is constant over the pooled set here
            a = w[k] * inv
            bx = -a * inv * sgx / n
            _column_affine(x, dy, k, a, bx, -a * (sg / n if center else 0.0) - m * bx, dx)

    def _columns_statistics(x, center, mean, var):
        for k in prange(x.shape[1]):
            mean[k], var[k] = _column_moments(x, k, center)

    def _columns_normalize(x, w, b, mean, var, eps, out):
        for k in prange(x.shape[1]):
            a = w[k] / math.sqrt(var[k] + eps)
            _column_affine(x, None, k, a, 0.0, b[k] - mean[k] * a, out)

    def _columns_grad_sums(x, dy, mean, var, eps, dw, db):
        """dw = Σ dy·x̂, db = Σ dy per column (Σg and Σg·x̂ are these times γ)."""
        for k in prange(x.shape[1]):
            sg, sgx = _column_sums(x, dy, k, mean[k])
            dw[k], db[k] = sgx / math.sqrt(var[k] + eps), sg

    def _columns_input_grad(x, dy, w, mean, var, eps, sum_g, sum_gx, count, center, fixed, dx):
        """dx = r·(g - Σg/count - x̂·Σg·x̂/count), g = γ·dy, with the (possibly combined) sums; fixed: r·g."""
        for k in prange(x.shape[1]):
            inv = 1.0 / math.sqrt(var[k] + eps)
            a = w[k] * inv
            if fixed:
                _column_affine(x, dy, k, a, 0.0, 0.0, dx)
            else:
                bx = -inv * inv * sum_gx[k] / count
                _column_affine(x, dy, k, a, bx, -inv * (sum_g[k] / count if center else 0.0) - mean[k] * bx, dx)

    def _wide_forward(x, w, b, eps, center, out, mean, var, blocks):
        """Columns with I = 1 (BatchNorm on (N, C)): blocks of k, rows read as contiguous slices. One pass for
        the statistics, shifted by the first row so the variance does not cancel on a large offset."""
        nb, nk = x.shape
        for blk in prange(blocks):
            k0, k1 = blk * nk // blocks, (blk + 1) * nk // blocks
            n = k1 - k0
            shift, s1, s2 = np.zeros(n), np.zeros(n), np.zeros(n)
            if center:
                for k in range(n):
                    shift[k] = x[0, k0 + k]
            for p in range(nb):
                row = x[p, k0:k1]
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
                mean[k0 + k], var[k0 + k] = shift[k] + m1, v
                a[k] = w[k0 + k] / math.sqrt(v + eps)
                c[k] = b[k0 + k] - m1 * a[k]
                sh[k] = shift[k]
            for p in range(nb):
                row, o = x[p, k0:k1], out[p, k0:k1]
                for k in range(n):
                    o[k] = (row[k] - sh[k]) * a[k] + c[k]

    def _wide_backward(x, dy, w, mean, var, eps, center, dx, dw, db, blocks):
        nb, nk = x.shape
        for blk in prange(blocks):
            k0, k1 = blk * nk // blocks, (blk + 1) * nk // blocks
            n = k1 - k0
            m = np.empty(n)
            for k in range(n):
                m[k] = mean[k0 + k]
            sg, sgx = np.zeros(n), np.zeros(n)
            for p in range(nb):
                row, grow = x[p, k0:k1], dy[p, k0:k1]
                for k in range(n):
                    sg[k] += grow[k]
                    sgx[k] += grow[k] * (row[k] - m[k])
            # dx = a·dy + bx·(x - shift) + c0, shifted by x's first row as in _wide_forward
            a, bx, c0, sh = np.empty(n, x.dtype), np.empty(n, x.dtype), np.empty(n, x.dtype), np.empty(n, x.dtype)
            for k in range(n):
                inv = 1.0 / math.sqrt(var[k0 + k] + eps)
                dw[k0 + k], db[k0 + k] = sgx[k] * inv, sg[k]
                sh[k] = x[0, k0 + k]
                a[k] = w[k0 + k] * inv
                bx[k] = -a[k] * inv * inv * sgx[k] / nb
                c0[k] = -a[k] * (sg[k] / nb if center else 0.0) - (m[k] - sh[k]) * bx[k]
            for p in range(nb):
                row, grow, drow = x[p, k0:k1], dy[p, k0:k1], dx[p, k0:k1]
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


def _param_view(p, plan, dtype):
    """γ or β as a kernel reads it: (K, Ip) for rows, (K,) for columns, contiguous (a zero-stride view would
    stop numba from vectorising; these are parameter-sized, so the copy is cheap)."""
    kind, sizes, (lo, hi) = plan.layout
    shape = sizes[1:3] if kind == "rows" else sizes[1:2]
    if p is None:
        return np.ones(shape, dtype)
    block = p.astype(dtype, copy=False).reshape(plan.param_shape[lo:hi])
    return np.ascontiguousarray(np.broadcast_to(block, plan.view[lo:hi])).reshape(shape)


def _kernel(layout, direction):
    """(kernel, array shape it takes, extra arguments) for a layout; parallel only for large inputs."""
    kind, sizes, _ = layout
    threads = math.prod(sizes) >= PARALLEL_MIN
    pick = lambda name: KERNELS[name][direction][0 if threads else 1]
    if kind == "rows":
        return (pick("elementwise"), sizes[:3], ()) if sizes[3] == 1 else (pick("rows"), sizes, ())
    if sizes[2] == 1:
        blocks = min(sizes[1], 4 * numba.get_num_threads()) if threads else 1
        return pick("wide"), sizes[:2], (blocks,)
    return pick("columns"), sizes, ()


def _half(plan, name):
    """A columns half of the statistics' split (statistics, normalize, grad_sums or input_grad) and the
    (B, K, I) shape it takes, or (None, None) for the reference's: the halves serve synchronized norms, and
    those pool the batch axis, so their layout is columns. With I = 1 ((N, C) input) NumPy's reductions
    along contiguous rows beat a kernel striding down each column (2-3x at (256, 1024))."""
    kind, sizes, _ = plan.layout
    if kind != "columns" or sizes[2] == 1:
        return None, None
    return HALVES["_columns_" + name][0 if math.prod(sizes) >= PARALLEL_MIN else 1], sizes


def _stats_shape(plan, shape):
    """The statistics as a kernel holds them: (B, K) for rows, (K,) for columns."""
    return shape[:2] if plan.layout[0] == "rows" else shape[1:2]


def _compute(a, shape):
    """a as a contiguous array of the kernel's shape, in float32 when it is float16 (numba has no float16)."""
    return np.ascontiguousarray(a, dtype=stats_dtype(a.dtype)).reshape(shape)


def forward(plan, x, w, b, eps):
    """y, mean, var in one fused pass."""
    kernel, shape, extra = _kernel(plan.layout, 0)
    x_ = _compute(x, shape)
    out = np.empty_like(x_)
    # float64 statistics, the accumulators' precision: backward subtracts a mean that was not rounded to float32
    # (on float32 data offset by 1e6 a rounded mean is 0.03 off, and so was every input gradient)
    mean, var = np.empty(_stats_shape(plan, shape)), np.empty(_stats_shape(plan, shape))
    w_ = _param_view(w, plan, x_.dtype)
    b_ = np.zeros_like(w_) if b is None else _param_view(b, plan, x_.dtype)
    kernel(x_, w_, b_, eps, plan.center, out, mean, var, *extra)
    return (out.astype(x.dtype, copy=False).reshape(x.shape), mean.reshape(plan.stats_shape) if plan.center else None,
            var.reshape(plan.stats_shape))


def backward(plan, x, dy, mean, var, w, eps):
    """dx, dw, db in one fused pass (batch statistics)."""
    kernel, shape, extra = _kernel(plan.layout, 1)
    x_, dy_ = _compute(x, shape), _compute(dy, shape)
    dx = np.empty_like(x_)
    w_ = _param_view(w, plan, x_.dtype)
    stats_shape = _stats_shape(plan, shape)
    mean_ = np.zeros(stats_shape) if mean is None else mean.reshape(stats_shape)
    var_ = var.reshape(stats_shape).astype(np.float64, copy=False)
    if plan.layout[0] == "rows":
        nb, nk, nj, _ = plan.layout[1]
        chunks = max(1, min(nb * nk, numba.get_num_threads()))
        dw, db = np.zeros((chunks, nk, nj)), np.zeros((chunks, nk, nj))
        kernel(x_, dy_, w_, mean_, var_, eps, plan.center, dx, dw, db)
        dw, db = dw.sum(axis=0), db.sum(axis=0)
    else:
        dw, db = np.empty(plan.layout[1][1]), np.empty(plan.layout[1][1])
        kernel(x_, dy_, w_, mean_, var_, eps, plan.center, dx, dw, db, *extra)
    if w is None:
        return dx.astype(x.dtype, copy=False).reshape(x.shape), None, None
    return dx.astype(x.dtype, copy=False).reshape(x.shape), fold_param_grad(plan, dw, w), fold_param_grad(plan, db, w)


# ---- the halves (see kernels/__init__.py): numba for columns, the reference's elsewhere ---------------------
def statistics(plan, x):
    kernel, shape = _half(plan, "statistics")
    if kernel is None:
        return reference.statistics(plan, x)
    x_ = _compute(x, shape)
    mean, var = np.empty(shape[1]), np.empty(shape[1])  # float64, as forward's
    kernel(x_, plan.center, mean, var)
    return (mean.reshape(plan.stats_shape) if plan.center else None), var.reshape(plan.stats_shape)


def normalize(plan, x, mean, var, w, b, eps):
    kernel, shape = _half(plan, "normalize")
    if kernel is None:
        return reference.normalize(plan, x, mean, var, w, b, eps)
    x_ = _compute(x, shape)
    out, w_ = np.empty_like(x_), _param_view(w, plan, x_.dtype)
    b_ = np.zeros_like(w_) if b is None else _param_view(b, plan, x_.dtype)
    kernel(x_, w_, b_, _column_stat(mean, shape), _column_stat(var, shape), eps, out)
    return out.astype(x.dtype, copy=False).reshape(x.shape)


def grad_sums(plan, x, dy, mean, var, w, eps):
    kernel, shape = _half(plan, "grad_sums")
    if kernel is None:
        return reference.grad_sums(plan, x, dy, mean, var, w, eps)
    x_, dy_ = _compute(x, shape), _compute(dy, shape)
    dw, db = np.empty(shape[1]), np.empty(shape[1])
    kernel(x_, dy_, _column_stat(mean, shape), _column_stat(var, shape), eps, dw, db)
    scale = _param_view(w, plan, np.float64)  # γ per column: Σg = γ·Σdy, Σg·x̂ = γ·Σdy·x̂
    sums = [(scale * s).astype(x_.dtype).reshape(plan.stats_shape) for s in (db, dw)]
    params = (None, None) if w is None else (fold_param_grad(plan, dw, w), fold_param_grad(plan, db, w))
    return (*sums, *params)


def input_grad(plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count):
    kernel, shape = _half(plan, "input_grad")
    if kernel is None:
        return reference.input_grad(plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count)
    x_, dy_ = _compute(x, shape), _compute(dy, shape)
    dx, fixed = np.empty_like(x_), sum_g is None
    sums = [np.zeros(shape[1]) if fixed else s.reshape(shape[1]).astype(np.float64) for s in (sum_g, sum_gx)]
    kernel(x_, dy_, _param_view(w, plan, x_.dtype), _column_stat(mean, shape), _column_stat(var, shape), eps,
           *sums, float(count), plan.center, fixed, dx)
    return dx.astype(x.dtype, copy=False).reshape(x.shape)


def _column_stat(s, shape):
    """A statistic (plan.stats_shape, or None without centering) as the columns kernels read it: (K,)."""
    return np.zeros(shape[1]) if s is None else np.ascontiguousarray(s, np.float64).reshape(shape[1])
