"""2-D convolution and pooling on (N, C, H, W) arrays.

Forward views every sliding window through stride tricks (no copy until the BLAS matmul's im2col);
backward scatters window gradients back with one strided add per kernel position (kh·kw adds, no
loop over the batch, no np.add.at). Both directions share `windows`; `unfold` (the im2col copy) and
`fold` (its adjoint, the scatter) are also the ops Unfold and Fold, each the other's backward, so that
a convolution's or a pool's gradient can be differentiated again.
"""
import numpy as np

from ..engine import Function, is_tensor
from ..backend import as_strided, get_array_module
from . import window_kernels
from .namespace import namespace_of


def out_size(size, k, stride, pad, dilation):
    """Output length along one axis; `pad` is (before, after)."""
    return (size + pad[0] + pad[1] - dilation * (k - 1) - 1) // stride + 1


def pad_hw(x, padding, value=0.0):
    """x (N, C, H, W) padded by ((top, bottom), (left, right)) with `value`."""
    if not any(padding[0] + padding[1]):
        return x
    return get_array_module(x).pad(x, ((0, 0), (0, 0)) + tuple(padding), constant_values=value)


def windows(xp_, kernel, stride, dilation, out_hw):
    """View of a padded (N, C, Hp, Wp) array as (N, C, OH, OW, kh, kw) windows; no data is copied."""
    n, c = xp_.shape[:2]
    sn, sc, sh, sw = xp_.strides
    shape = (n, c) + tuple(out_hw) + tuple(kernel)
    strides = (sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    return as_strided(xp_, shape, strides)


def unfold(x, kernel, stride, dilation, padding, out_hw, value=0.0):
    """x (N, C, H, W) padded by `padding` with `value` -> its windows laid out (N, C, kh, kw, OH, OW), copied."""
    win = windows(pad_hw(x, padding, value), kernel, stride, dilation, out_hw)
    return get_array_module(x).ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3))


def fold(gwin, in_shape, kernel, stride, dilation, padding):
    """Adjoint of `unfold`: sum window gradients, laid out (N, C, kh, kw, OH, OW), into (N, C, H, W): one
    strided add per kernel position."""
    n, c, h, w = in_shape
    ((top, bottom), (left, right)), (sh, sw), (dh, dw) = padding, stride, dilation
    oh, ow = gwin.shape[4:6]
    g = get_array_module(gwin).zeros((n, c, h + top + bottom, w + left + right), dtype=gwin.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            g[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += gwin[:, :, i, j]
    return g[:, :, top:top + h, left:left + w]


class Conv2d(Function):
    """out[n, o] = Σ_{c in o's group, i, j} x_pad[n, c, s·y + d·i, s·x + d·j] · w[o, c, i, j] (+ b[o]).

    x: (N, C, H, W), w: (O, C/groups, kh, kw), b: (O,) or absent; padding ((top, bottom), (left, right)) of
    zeros. How it is computed is one of three declared implementations, picked per call by `conv_method`
    (Chainer's _impl_selector): WINDOWS on any array and on Tensors, COLUMNS and DIRECT with the numba CPU
    kernels. A backward on Tensors (create_graph) always takes WINDOWS', whose every step is an op.
    """
    def forward(self, x, w, b=None):
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        g = self.groups
        if c != cg * g or o % g:
            raise ValueError(f"Conv2d: input has {c} channels and groups={g}, so the weight needs {c // g} input "
                             f"channels per group and out channels divisible by {g}; weight shape is {w.shape}")
        oh, ow = (out_size(s, k, st, p, d) for s, k, st, p, d in
                  zip((h, wd), (kh, kw), self.stride, self.padding, self.dilation))
        if oh <= 0 or ow <= 0:
            raise ValueError(f"Conv2d: input {x.shape} is smaller than the kernel {(kh, kw)} (with dilation {self.dilation})")
        self.out_hw = oh, ow
        self.method = conv_method(self, x, w)
        out = self.method.forward(self, x, w)
        if b is not None:
            out += b.reshape(1, o, 1, 1)
        return out

    def backward(self, gy, y, x, w, b=None):
        method = WINDOWS if is_tensor(gy) else self.method
        gx, gw = method.backward(self, gy, x, w, *self.needs_grad[:2])
        gb = gy.sum(axis=(0, 2, 3)) if len(self.needs_grad) > 2 and self.needs_grad[2] else None
        return gx, gw, gb

    def unpad(self, gxp, x):
        """The gradient of the padded input -> the input's: the padding's rows and columns dropped."""
        (top, _), (left, _) = self.padding
        return gxp[:, :, top:top + x.shape[2], left:left + x.shape[3]]

    def padded_hw(self, x):
        return tuple(s + p[0] + p[1] for s, p in zip(x.shape[2:], self.padding))

    def span(self, x):
        """The direct kernels' flat row length: (OH - 1)·Wp + OW."""
        return (self.out_hw[0] - 1) * self.padded_hw(x)[1] + self.out_hw[1]


class Windows:
    """Caffe's layout on NumPy, CuPy or Tensors: columns (N, G, C/G·kh·kw, OH·OW) copied once from the windows
    view; w (G, O/G, C/G·kh·kw) @ columns is (N, G, O/G, OH·OW), already the output in NCHW order."""
    name = "windows"

    def forward(self, op, x, w):
        op.cols = self.columns(op, x, w)
        o, cg, kh, kw = w.shape
        return (w.reshape(op.groups, o // op.groups, cg * kh * kw) @ op.cols).reshape((x.shape[0], o) + op.out_hw)

    def columns(self, op, x, w):
        (n, c), (kh, kw), (oh, ow) = x.shape[:2], w.shape[2:], op.out_hw
        cols = namespace_of(x).unfold(x, (kh, kw), op.stride, op.dilation, op.padding, op.out_hw)
        return cols.reshape(n, op.groups, c // op.groups * kh * kw, oh * ow)

    def backward(self, op, gy, x, w, need_x, need_w):
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        g, (oh, ow) = op.groups, op.out_hw
        gm = gy.reshape(n, g, o // g, oh * ow)
        gx = gw = None
        if need_w:
            cols = self.columns(op, x, w) if is_tensor(gy) else op.cols  # on Tensors: computed again, differentiably
            gw = (gm @ cols.swapaxes(-1, -2)).sum(axis=0).reshape(w.shape)
        if need_x:
            gwin = (w.reshape(g, o // g, cg * kh * kw).swapaxes(-1, -2) @ gm).reshape(n, c, kh, kw, oh, ow)
            gx = namespace_of(gy).fold(gwin, x.shape, (kh, kw), op.stride, op.dilation, op.padding)
        return gx, gw


class Columns:
    """The numba im2col: columns (G, C/G·kh·kw, N·OH·R), the batch inside the GEMM's long axis, so that the
    layer is one product per group rather than one per image. R, a row's width in the columns, is OW for a
    strided layer and the padded width Wp at stride 1, where each column row is then one contiguous slice
    of the padded input (im2col_wide) and the Wp - OW extra outputs per row are computed and dropped. dx of
    a stride-1 layer with rows of DIRECT_SPAN or more comes from the direct kernel, which reads gy in place
    (LeNet's second layer: 1.2 ms against 2.5 for the transposed product and col2im); otherwise from the
    transposed product and col2im."""
    name = "columns"

    def forward(self, op, x, w):
        o, cg, kh, kw = w.shape
        (n, c), g, (oh, ow) = x.shape[:2], op.groups, op.out_hw
        if op.stride == (1, 1):
            op.xp = pad_hw(x, op.padding)
            cols = window_kernels.im2col_wide(op.xp, (kh, kw), op.dilation, oh)
        else:
            cols = window_kernels.im2col(x, (kh, kw), op.stride, op.dilation, op.padding, op.out_hw)
        op.cols = cols.reshape(g, cg * kh * kw, -1)
        out = (w.reshape(g, o // g, cg * kh * kw) @ op.cols).reshape(o, n, oh, -1)[..., :ow]
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3))

    def backward(self, op, gy, x, w, need_x, need_w):
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        g, (oh, ow) = op.groups, op.out_hw
        rows = op.cols.shape[-1] // (n * oh)
        gm = np.zeros((o, n, oh, rows), gy.dtype)
        gm[..., :ow] = gy.transpose(1, 0, 2, 3)
        gm = gm.reshape(g, o // g, -1)
        gw = (gm @ op.cols.swapaxes(-1, -2)).reshape(w.shape) if need_w else None
        if not need_x:
            return None, gw
        if op.stride == (1, 1) and op.span(x) >= DIRECT_SPAN:
            return DIRECT.input_grad(op, gy, x, w), gw
        gcols = (w.reshape(g, o // g, cg * kh * kw).swapaxes(-1, -2) @ gm).reshape(c, kh, kw, n, -1)
        if op.stride != (1, 1):
            return window_kernels.col2im(gcols.reshape((c, kh, kw, n) + op.out_hw), x.shape, op.stride,
                                         op.dilation, op.padding), gw
        return op.unpad(window_kernels.col2im_wide(gcols, op.xp.shape, op.dilation), x), gw


class Direct:
    """The numba direct convolution (window_kernels.conv_direct): stride 1, straight from the padded input;
    the padded input is kept for dw."""
    name = "direct"

    def forward(self, op, x, w):
        op.xp = pad_hw(x, op.padding)
        return window_kernels.conv_direct(op.xp, w, op.groups, op.dilation, op.out_hw)

    def input_grad(self, op, gy, x, w):
        """dx of a stride-1 layer, read from gy in place (no columns); op.xp is the padded input."""
        return op.unpad(window_kernels.conv_direct_input_grad(gy, w, op.xp.shape, op.groups, op.dilation), x)

    def backward(self, op, gy, x, w, need_x, need_w):
        gw = window_kernels.conv_direct_weight_grad(op.xp, gy, w.shape, op.groups, op.dilation) if need_w else None
        return (self.input_grad(op, gy, x, w) if need_x else None), gw


WINDOWS, COLUMNS, DIRECT = Windows(), Columns(), Direct()
DIRECT_SPAN = 64  # below this flat row length the direct kernels' loops are too short to vectorize
DIRECT_MAX_OUT = 8  # out channels per group up to which a direct forward beats im2col and a GEMM with a short side


def conv_method(op, x, w):
    """The implementation for this call, as measured on a 2-core AVX2 machine (benchmarks/bench_ops.py):
    DIRECT for a stride-1 layer with few output channels and long rows (LeNet's first layer: 1.2 ms against
    COLUMNS' 5.7), COLUMNS for the rest of what the numba kernels take, WINDOWS otherwise."""
    if not window_kernels.applies(x, w):
        return WINDOWS
    if op.stride == (1, 1) and w.shape[0] // op.groups <= DIRECT_MAX_OUT and op.span(x) >= DIRECT_SPAN:
        return DIRECT
    return COLUMNS


class Unfold(Function):
    """`unfold` as an op (attributes: kernel, stride, dilation, padding, out_hw, value); its backward is Fold."""
    def forward(self, x):
        return unfold(x, self.kernel, self.stride, self.dilation, self.padding, self.out_hw, self.value)

    def backward(self, g, y, x):
        return namespace_of(g).fold(g, x.shape, self.kernel, self.stride, self.dilation, self.padding)


class Fold(Function):
    """`fold` as an op (attributes: in_shape, kernel, stride, dilation, padding); its backward is Unfold."""
    def forward(self, gwin):
        return fold(gwin, self.in_shape, self.kernel, self.stride, self.dilation, self.padding)

    def backward(self, g, y, gwin):
        return namespace_of(g).unfold(g, self.kernel, self.stride, self.dilation, self.padding, gwin.shape[4:6])


def pool_geometry(size, k, stride, pad, dilation, ceil_mode):
    """(output length, extra padding after) of PyTorch's pooling along one axis: with ceil_mode the last
    window may run past the padded input (padded further), but must start inside the input or its padding."""
    span = size + 2 * pad - dilation * (k - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out, max((out - 1) * stride + dilation * (k - 1) + 1 - (size + 2 * pad), 0)


class _Pool2d(Function):
    """Shared set-up of the pools: padded windows of shape (N, C, OH, OW, kh, kw). Attributes: kernel,
    stride, padding (per side, symmetric), dilation, ceil_mode."""
    pad_value = 0.0

    def _geometry(self, x):
        """(OH, OW); sets the padding per side, ceil_mode's extra included."""
        (oh, eh), (ow, ew) = (pool_geometry(s, k, st, p, d, self.ceil_mode) for s, k, st, p, d in
                              zip(x.shape[2:], self.kernel, self.stride, self.padding, self.dilation))
        if oh <= 0 or ow <= 0:
            raise ValueError(f"{self.name}: input {x.shape} is smaller than the kernel {self.kernel}")
        (ph, pw), self.x_shape = self.padding, x.shape
        self.sides = ((ph, ph + eh), (pw, pw + ew))
        return oh, ow

    def _windows(self, x, out_hw):
        return windows(pad_hw(x, self.sides, self.pad_value), self.kernel, self.stride, self.dilation, out_hw)

    def _scatter(self, gwin):
        """gwin laid out like the windows, (N, C, OH, OW, kh, kw)."""
        xp = namespace_of(gwin)
        (kh, kw), (oh, ow) = self.kernel, gwin.shape[2:4]
        if self.stride == self.kernel and not any(self.sides[0] + self.sides[1]) and self.dilation == (1, 1) \
                and (oh * kh, ow * kw) == self.x_shape[2:]:
            return xp.transpose(gwin, (0, 1, 2, 4, 3, 5)).reshape(self.x_shape)  # windows tile the input: nothing to add
        return xp.fold(xp.transpose(gwin, (0, 1, 4, 5, 2, 3)), self.x_shape, self.kernel, self.stride,
                       self.dilation, self.sides)


class MaxPool2d(_Pool2d):
    """out = max over each (dilated) window; the gradient goes to the (first) maximum of each window.
    `indices` holds each maximum's flat position in its input plane (h·W + w), PyTorch's return_indices."""
    pad_value = -np.inf

    def forward(self, x):
        out_hw = self._geometry(x)
        fast = window_kernels.max_pool(x, self.kernel, self.stride, self.dilation, self.sides, out_hw)
        if fast is not None:
            out, self.arg = fast
            return out
        win = self._windows(x, out_hw)
        flat = win.reshape(win.shape[:4] + (win.shape[4] * win.shape[5],))  # not -1: a batch may be empty
        self.arg = flat.argmax(axis=-1)
        return get_array_module(x).take_along_axis(flat, self.arg[..., None], axis=-1)[..., 0]

    def indices(self):
        xp = get_array_module(self.arg)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        oh, ow = self.arg.shape[2:]
        i, j = self.arg // kw, self.arg % kw
        rows = xp.arange(oh).reshape(-1, 1) * sh - self.padding[0] + i * dh
        cols = xp.arange(ow) * sw - self.padding[1] + j * dw
        return (rows * self.x_shape[3] + cols).astype(np.int64)

    def backward(self, g, y, x):
        fast = window_kernels.max_pool_backward(g, self.arg, self.x_shape, self.kernel, self.stride, self.dilation,
                                                self.sides)  # None on Tensors (create_graph) and CuPy arrays
        if fast is not None:
            return fast
        kh, kw = self.kernel
        onehot = (self.arg[..., None] == get_array_module(self.arg).arange(kh * kw)).reshape(self.arg.shape + (kh, kw))
        return self._scatter(g[..., None, None] * onehot)


class AvgPool2d(_Pool2d):
    """out = Σ window / divisor: by default the window's size within the padded input (PyTorch's
    count_include_pad=True), or its number of input elements (count_include_pad=False), or divisor_override."""
    def forward(self, x):
        win = self._windows(x, self._geometry(x))
        self.divisor = get_array_module(x).asarray(self._divisors(win.shape[2:4]), dtype=x.dtype)
        return win.sum(axis=(-2, -1)) / self.divisor

    def _divisors(self, out_hw):
        """(OH, OW) divisors, from each window's start and end as PyTorch computes them."""
        if self.divisor_override:
            return np.full(out_hw, float(self.divisor_override))
        counts = []
        for o, size, k, s, p in zip(out_hw, self.x_shape[2:], self.kernel, self.stride, self.padding):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, size + p)
            if not self.count_include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, size)
            counts.append(end - start)
        return np.outer(counts[0], counts[1])

    def backward(self, g, y, x):
        kh, kw = self.kernel
        shape = g.shape + (kh, kw)
        return self._scatter(namespace_of(g).broadcast_to((g / self.divisor)[..., None, None], shape))
