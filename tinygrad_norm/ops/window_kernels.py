"""CPU kernels for the sliding-window ops, compiled by numba when it is installed (the `fast` extra).

    conv_direct(xp, w, ...)        a stride-1 convolution of padded input, straight from the input
    conv_direct_weight_grad        its dL/dw
    conv_direct_input_grad         its dL/dx (of the padded input)
    im2col(x, ...)                 x (N, C, H, W) -> columns (C, kh, kw, N, OH, OW), one GEMM operand
    col2im(cols, ...)              the adjoint: columns back into (N, C, H, W), summed where windows overlap
    max_pool(x, ...)               (max, argmax) of each window; argmax is the window position i·kw + j
    max_pool_backward              each window's gradient added at its argmax

The direct kernels read each padded image plane as one flat row: for a kernel tap (c, i, j) the output
plane, taken at the padded width Wp, is the input row shifted by i·dh·Wp + j·dw, so a tap is one
multiply-add over L = (OH - 1)·Wp + OW contiguous elements (the Wp - OW columns between output rows are
computed and dropped). Long contiguous loops vectorize; four taps share each pass over the accumulator.
Nothing is copied K·K times, which is why these beat im2col plus GEMM when a layer has few output
channels (a GEMM with a short side runs far below the BLAS's peak).

Padding is not materialized by im2col or the pools: each computes, per kernel position, the range of
outputs whose input lies inside the image. The argmax rule is PyTorch's CPU kernel's: the first element
inside the image to start with, then any larger one or any NaN.

`applies(*arrays)` says where they run: numba present and not switched off (TINYGRAD_NORM_NUMBA=0), NumPy
arrays of float32 or float64, not empty. The convolution's wrappers expect the caller to have asked
(ops/conv.py's conv_method does); the pools' return None where it is False, and the caller then takes the
NumPy/CuPy path.
"""
import numpy as np

from ..threads import FAST_MATH, numba

njit, prange = (numba.njit, numba.prange) if numba is not None else (None, None)


def applies(*arrays):
    """Whether these kernels can run on these arrays."""
    return njit is not None and all(type(a) is np.ndarray and a.dtype in (np.float32, np.float64) and a.size
                                    for a in arrays)


if njit is not None:
    @njit(cache=True)
    def _inside(out_len, size, k, stride, dilation, before):
        """[lo, hi): the outputs whose input position o·stride + k·dilation - before lies in [0, size)."""
        offset = k * dilation - before
        lo = -(offset // stride) if offset < 0 else 0
        hi = (size - 1 - offset) // stride + 1 if size - 1 - offset >= 0 else 0
        return min(lo, out_len), max(min(lo, out_len), min(hi, out_len))

    @njit(cache=True)
    def _tap(t, kh, kw, dh, dw, wp):
        """Tap t of a (cg, kh, kw) kernel: (its input channel within the group, its offset in the flat plane)."""
        return t // (kh * kw), (t // kw % kh) * dh * wp + (t % kw) * dw

    @njit(parallel=True, cache=True)
    def _conv_direct(xp, w, groups, dh, dw, oh, ow, out):
        n, c, hp, wp = xp.shape
        o, cg, kh, kw = w.shape
        og, taps, span = o // groups, cg * kh * kw, (oh - 1) * wp + ow
        xf = xp.reshape(n, c, hp * wp)
        for r in prange(n * o):
            b, f = r // o, r % o
            first, wf = f // og * cg, w[f].ravel()
            acc = np.zeros(span, xp.dtype)
            t = 0
            while t < taps:
                if t + 4 <= taps:
                    (c0, q0), (c1, q1) = _tap(t, kh, kw, dh, dw, wp), _tap(t + 1, kh, kw, dh, dw, wp)
                    (c2, q2), (c3, q3) = _tap(t + 2, kh, kw, dh, dw, wp), _tap(t + 3, kh, kw, dh, dw, wp)
                    s0, s1 = xf[b, first + c0, q0:q0 + span], xf[b, first + c1, q1:q1 + span]
                    s2, s3 = xf[b, first + c2, q2:q2 + span], xf[b, first + c3, q3:q3 + span]
                    w0, w1, w2, w3 = wf[t], wf[t + 1], wf[t + 2], wf[t + 3]
                    for p in range(span):
                        acc[p] += (w0 * s0[p] + w1 * s1[p]) + (w2 * s2[p] + w3 * s3[p])
                    t += 4
                else:
                    c0, q0 = _tap(t, kh, kw, dh, dw, wp)
                    s0, w0 = xf[b, first + c0, q0:q0 + span], wf[t]
                    for p in range(span):
                        acc[p] += w0 * s0[p]
                    t += 1
            for y in range(oh):
                out[b, f, y, :] = acc[y * wp:y * wp + ow]

    @njit(parallel=True, fastmath=FAST_MATH, cache=True)
    def _conv_direct_weight_grad(xp, gyw, groups, dh, dw, gw):
        n, c, hp, wp = xp.shape
        o, cg, kh, kw = gw.shape
        og, span = o // groups, gyw.shape[2]
        xf = xp.reshape(n, c, hp * wp)
        gwf = gw.reshape(o, cg * kh * kw)
        for r in prange(o * cg):
            f, cl = r // cg, r % cg
            ci = f // og * cg + cl
            t = cl * kh * kw
            while t < (cl + 1) * kh * kw:
                m = min(4, (cl + 1) * kh * kw - t)
                q0, q1 = _tap(t, kh, kw, dh, dw, wp)[1], _tap(t + min(1, m - 1), kh, kw, dh, dw, wp)[1]
                q2, q3 = _tap(t + min(2, m - 1), kh, kw, dh, dw, wp)[1], _tap(t + min(3, m - 1), kh, kw, dh, dw, wp)[1]
                a0 = a1 = a2 = a3 = np.zeros(1, gw.dtype)[0]  # sums in the data's precision, as a BLAS's are
                for b in range(n):
                    g, row = gyw[b, f], xf[b, ci]
                    s0, s1, s2, s3 = row[q0:q0 + span], row[q1:q1 + span], row[q2:q2 + span], row[q3:q3 + span]
                    for p in range(span):
                        a0 += g[p] * s0[p]
                        a1 += g[p] * s1[p]
                        a2 += g[p] * s2[p]
                        a3 += g[p] * s3[p]
                gwf[f, t] = a0
                if m > 1:
                    gwf[f, t + 1] = a1
                if m > 2:
                    gwf[f, t + 2] = a2
                if m > 3:
                    gwf[f, t + 3] = a3
                t += m

    @njit(parallel=True, cache=True)
    def _conv_direct_input_grad(gyw, w, groups, dh, dw, gxp):
        n, c, hp, wp = gxp.shape
        o, cg, kh, kw = w.shape
        og, span = o // groups, gyw.shape[2]
        gxf = gxp.reshape(n, c, hp * wp)
        for r in prange(n * c):
            b, ci = r // c, r % c
            first, cl, plane = ci // cg * og, ci % cg, gxf[b, ci]
            plane[:] = 0
            for i in range(kh):
                for j in range(kw):
                    q = i * dh * wp + j * dw
                    dst = plane[q:q + span]
                    f = first
                    while f < first + og:
                        if f + 4 <= first + og:
                            g0, g1, g2, g3 = gyw[b, f], gyw[b, f + 1], gyw[b, f + 2], gyw[b, f + 3]
                            w0, w1, w2, w3 = w[f, cl, i, j], w[f + 1, cl, i, j], w[f + 2, cl, i, j], w[f + 3, cl, i, j]
                            for p in range(span):
                                dst[p] += (w0 * g0[p] + w1 * g1[p]) + (w2 * g2[p] + w3 * g3[p])
                            f += 4
                        else:
                            g0, w0 = gyw[b, f], w[f, cl, i, j]
                            for p in range(span):
                                dst[p] += w0 * g0[p]
                            f += 1

    @njit(parallel=True, cache=True)
    def _im2col(x, sh, sw, dh, dw, top, left, cols):
        n, c, h, w = x.shape
        kh, kw, oh, ow = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
        for r in prange(c * kh * kw * n):
            ci, i, j, b = r // (kh * kw * n), r // (kw * n) % kh, r // n % kw, r % n
            x_lo, x_hi = _inside(ow, w, j, sw, dw, left)
            y_lo, y_hi = _inside(oh, h, i, sh, dh, top)
            plane = cols[ci, i, j, b]
            plane[:y_lo] = 0
            plane[y_hi:] = 0
            for yo in range(y_lo, y_hi):
                src, dst = x[b, ci, yo * sh + i * dh - top], plane[yo]
                dst[:x_lo] = 0
                dst[x_hi:] = 0
                start = x_lo * sw + j * dw - left
                if sw == 1:  # a contiguous copy, which vectorizes
                    dst[x_lo:x_hi] = src[start:start + x_hi - x_lo]
                else:
                    for xo in range(x_lo, x_hi):
                        dst[xo] = src[start + (xo - x_lo) * sw]

    @njit(parallel=True, cache=True)
    def _col2im(cols, sh, sw, dh, dw, top, left, gx):
        n, c, h, w = gx.shape
        kh, kw, oh, ow = cols.shape[1], cols.shape[2], cols.shape[4], cols.shape[5]
        for r in prange(n * c):
            b, ci = r // c, r % c
            plane = gx[b, ci]
            plane[:] = 0
            for i in range(kh):
                y_lo, y_hi = _inside(oh, h, i, sh, dh, top)
                for j in range(kw):
                    x_lo, x_hi = _inside(ow, w, j, sw, dw, left)
                    for yo in range(y_lo, y_hi):
                        src, dst = cols[ci, i, j, b, yo], plane[yo * sh + i * dh - top]
                        for xo in range(x_lo, x_hi):
                            dst[xo * sw + j * dw - left] += src[xo]

    @njit(cache=True)
    def _window_ranges(out_len, size, k, stride, dilation, before):
        """(out_len, 2): for each output, the kernel positions [lo, hi) whose input lies inside [0, size)."""
        ranges = np.empty((out_len, 2), np.int64)
        for o in range(out_len):
            lo, hi = k, 0
            for kk in range(k):
                if 0 <= o * stride + kk * dilation - before < size:
                    lo, hi = min(lo, kk), kk + 1
            ranges[o, 0], ranges[o, 1] = lo, max(lo, hi)
        return ranges

    @njit(parallel=True, cache=True)
    def _max_pool(x, kh, kw, sh, sw, dh, dw, top, left, out, arg):
        n, c, h, w = x.shape
        oh, ow = out.shape[2], out.shape[3]
        rows, cols = _window_ranges(oh, h, kh, sh, dh, top), _window_ranges(ow, w, kw, sw, dw, left)
        inside = top == 0 and left == 0 and (oh - 1) * sh + (kh - 1) * dh < h and (ow - 1) * sw + (kw - 1) * dw < w
        for r in prange(n * c):
            b, ci = r // c, r % c
            plane = x[b, ci]
            for yo in range(oh):
                i0, i1, y = (0, kh, yo * sh) if inside else (rows[yo, 0], rows[yo, 1], yo * sh - top)
                for xo in range(ow):
                    j0, j1, xx = (0, kw, xo * sw) if inside else (cols[xo, 0], cols[xo, 1], xo * sw - left)
                    best, at = plane[y + i0 * dh, xx + j0 * dw], i0 * kw + j0
                    total = best * 0  # NaN if the window holds a NaN (or both infinities): then the exact rule below
                    for i in range(i0, i1):
                        for j in range(j0, j1):
                            v = plane[y + i * dh, xx + j * dw]
                            total += v
                            if v > best:
                                best, at = v, i * kw + j
                    if total != total:
                        best, at = -np.inf, i0 * kw + j0
                        for i in range(i0, i1):
                            for j in range(j0, j1):
                                v = plane[y + i * dh, xx + j * dw]
                                if v > best or v != v:
                                    best, at = v, i * kw + j
                    out[b, ci, yo, xo], arg[b, ci, yo, xo] = best, at

    @njit(parallel=True, cache=True)
    def _max_pool_2x2(x, out, arg):
        """_max_pool's commonest case written out: 2x2 windows at stride 2 inside the image (for LeNet's first
        pool 0.1 ms where the general loops take 1.0)."""
        n, c = x.shape[:2]
        oh, ow = out.shape[2], out.shape[3]
        for r in prange(n * c):
            b, ci = r // c, r % c
            for yo in range(oh):
                upper, lower = x[b, ci, 2 * yo], x[b, ci, 2 * yo + 1]
                for xo in range(ow):
                    a0, a1, a2, a3 = upper[2 * xo], upper[2 * xo + 1], lower[2 * xo], lower[2 * xo + 1]
                    best, at = a0, 0
                    if a1 > best:
                        best, at = a1, 1
                    if a2 > best:
                        best, at = a2, 2
                    if a3 > best:
                        best, at = a3, 3
                    total = a0 + a1 + a2 + a3
                    if total != total:  # a NaN (or both infinities): the exact rule, as in _max_pool
                        best, at = a0, 0
                        for k, v in ((1, a1), (2, a2), (3, a3)):
                            if v > best or v != v:
                                best, at = v, k
                    out[b, ci, yo, xo], arg[b, ci, yo, xo] = best, at

    @njit(parallel=True, cache=True)
    def _im2col_wide(xp, kh, kw, dh, dw, oh, cols):
        n, c, hp, wp = xp.shape
        span = oh * wp - (kw - 1) * dw
        xf = xp.reshape(n, c, hp * wp)
        for r in prange(c * kh * kw * n):
            ci, i, j, b = r // (kh * kw * n), r // (kw * n) % kh, r // n % kw, r % n
            q = i * dh * wp + j * dw
            cols[ci, i, j, b, :span] = xf[b, ci, q:q + span]
            cols[ci, i, j, b, span:] = 0

    @njit(parallel=True, cache=True)
    def _col2im_wide(cols, kh, kw, dh, dw, gxp):
        n, c, hp, wp = gxp.shape
        span = cols.shape[4] - (kw - 1) * dw
        gxf = gxp.reshape(n, c, hp * wp)
        for r in prange(n * c):
            b, ci = r // c, r % c
            plane = gxf[b, ci]
            plane[:] = 0
            for i in range(kh):
                for j in range(kw):
                    q = i * dh * wp + j * dw
                    dst, src = plane[q:q + span], cols[ci, i, j, b]
                    for p in range(span):
                        dst[p] += src[p]

    @njit(parallel=True, cache=True)
    def _max_pool_backward(g, arg, kw, sh, sw, dh, dw, top, left, gx):
        n, c, h, w = gx.shape
        oh, ow = g.shape[2], g.shape[3]
        for r in prange(n * c):
            b, ci = r // c, r % c
            plane = gx[b, ci]
            plane[:] = 0
            for yo in range(oh):
                for xo in range(ow):
                    k = arg[b, ci, yo, xo]
                    plane[yo * sh + k // kw * dh - top, xo * sw + k % kw * dw - left] += g[b, ci, yo, xo]


def wide(gy, wp):
    """gy (N, O, OH, OW) laid out as the direct kernels' flat output rows: (N, O, (OH - 1)·Wp + OW), zeros
    in the dropped columns."""
    n, o, oh, ow = gy.shape
    out = np.zeros((n, o, oh, wp), gy.dtype)
    out[..., :ow] = gy
    return out.reshape(n, o, oh * wp)[..., :(oh - 1) * wp + ow]


def conv_direct(xp, w, groups, dilation, out_hw):
    """Stride-1 convolution of xp (N, C, Hp, Wp), already padded, by w (O, C/groups, kh, kw) -> (N, O, OH, OW)."""
    out = np.empty((xp.shape[0], w.shape[0]) + tuple(out_hw), xp.dtype)
    _conv_direct(np.ascontiguousarray(xp), np.ascontiguousarray(w), groups, *dilation, *out_hw, out)
    return out


def conv_direct_weight_grad(xp, gy, w_shape, groups, dilation):
    """dL/dw (O, C/groups, kh, kw) of conv_direct, from its padded input and gy (N, O, OH, OW)."""
    gw = np.empty(w_shape, gy.dtype)
    _conv_direct_weight_grad(np.ascontiguousarray(xp), np.ascontiguousarray(wide(gy, xp.shape[3])), groups,
                             *dilation, gw)
    return gw


def conv_direct_input_grad(gy, w, padded_shape, groups, dilation):
    """dL/dxp (N, C, Hp, Wp) of conv_direct, from gy (N, O, OH, OW) and w."""
    gxp = np.empty(padded_shape, gy.dtype)
    _conv_direct_input_grad(np.ascontiguousarray(wide(gy, padded_shape[3])), np.ascontiguousarray(w), groups,
                            *dilation, gxp)
    return gxp


def im2col(x, kernel, stride, dilation, padding, out_hw):
    """x (N, C, H, W), zero-padded by ((top, bottom), (left, right)) -> columns (C, kh, kw, N, OH, OW)."""
    cols = np.empty((x.shape[1],) + tuple(kernel) + (x.shape[0],) + tuple(out_hw), x.dtype)
    _im2col(np.ascontiguousarray(x), *stride, *dilation, padding[0][0], padding[1][0], cols)
    return cols


def col2im(cols, in_shape, stride, dilation, padding):
    """Adjoint of im2col: columns (C, kh, kw, N, OH, OW) -> (N, C, H, W)."""
    gx = np.empty(in_shape, cols.dtype)
    _col2im(np.ascontiguousarray(cols), *stride, *dilation, padding[0][0], padding[1][0], gx)
    return gx


def im2col_wide(xp, kernel, dilation, oh):
    """Stride-1 columns of a padded xp (N, C, Hp, Wp), rows kept at the padded width: (C, kh, kw, N, OH·Wp),
    where column (n, y, x) for x < OW is output (y, x)'s window and the Wp - OW others are zero or unused."""
    cols = np.empty((xp.shape[1],) + tuple(kernel) + (xp.shape[0], oh * xp.shape[3]), xp.dtype)
    _im2col_wide(np.ascontiguousarray(xp), *kernel, *dilation, oh, cols)
    return cols


def col2im_wide(cols, padded_shape, dilation):
    """Adjoint of im2col_wide: (C, kh, kw, N, OH·Wp) -> the padded input's gradient (N, C, Hp, Wp); the unused
    columns of cols must be zero."""
    gxp = np.empty(padded_shape, cols.dtype)
    _col2im_wide(np.ascontiguousarray(cols), cols.shape[1], cols.shape[2], *dilation, gxp)
    return gxp


def max_pool(x, kernel, stride, dilation, padding, out_hw):
    """(max, argmax) of x's (N, C, H, W) windows, padding ((top, bottom), (left, right)) excluded."""
    if not applies(x):
        return None
    out = np.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    arg = np.empty(out.shape, np.int32)  # int64's stores made the kernel twice as slow
    x = np.ascontiguousarray(x)
    if tuple(kernel) == tuple(stride) == (2, 2) and tuple(dilation) == (1, 1) and not any(padding[0] + padding[1]):
        _max_pool_2x2(x, out, arg)
    else:
        _max_pool(x, *kernel, *stride, *dilation, padding[0][0], padding[1][0], out, arg)
    return out, arg


def max_pool_backward(g, arg, in_shape, kernel, stride, dilation, padding):
    """Each window's gradient (N, C, OH, OW) added at its argmax, into (N, C, H, W)."""
    if not applies(g):
        return None
    gx = np.empty(in_shape, g.dtype)
    _max_pool_backward(np.ascontiguousarray(g), np.ascontiguousarray(arg), kernel[1], *stride, *dilation,
                       padding[0][0], padding[1][0], gx)
    return gx
