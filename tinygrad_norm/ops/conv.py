"""2-D convolution and pooling on (N, C, H, W) arrays.

Forward views every sliding window through stride tricks (no copy until the BLAS matmul's im2col);
backward scatters window gradients back with one strided add per kernel position (kh·kw adds, no
loop over the batch, no np.add.at). Both directions share `windows` and `scatter_windows`.
"""
import numpy as np

from ..autograd import Function
from ..backend import as_strided, get_array_module


def out_size(size, k, stride, pad, dilation):
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def pad_hw(x, padding, value=0.0):
    (ph, pw) = padding
    if ph == pw == 0:
        return x
    return get_array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def windows(xp_, kernel, stride, dilation, out_hw):
    """View of a padded (N, C, Hp, Wp) array as (N, C, OH, OW, kh, kw) windows; no data is copied."""
    n, c = xp_.shape[:2]
    sn, sc, sh, sw = xp_.strides
    shape = (n, c) + tuple(out_hw) + tuple(kernel)
    strides = (sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    return as_strided(xp_, shape, strides)


def scatter_windows(gwin, in_shape, kernel, stride, dilation, padding):
    """Adjoint of `windows` followed by padding: sum window gradients, laid out (N, C, kh, kw, OH, OW), into
    (N, C, H, W): one strided add per kernel position."""
    n, c, h, w = in_shape
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    oh, ow = gwin.shape[4:6]
    g = get_array_module(gwin).zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gwin.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            g[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += gwin[:, :, i, j]
    return g[:, :, ph:ph + h, pw:pw + w]


class Conv2d(Function):
    """out[n, o] = Σ_{c in o's group, i, j} x_pad[n, c, s·y + d·i, s·x + d·j] · w[o, c, i, j] (+ b[o]).

    x: (N, C, H, W), w: (O, C/groups, kh, kw), b: (O,) or absent. Caffe's layout: the columns are
    (N, G, C/G·kh·kw, OH·OW), copied once from the windows view, and w (G, O/G, C/G·kh·kw) @ columns gives
    (N, G, O/G, OH·OW), which is already the output in NCHW order.
    """
    def forward(self, x, w, b=None):
        xp = get_array_module(x)
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
        win = windows(pad_hw(x, self.padding), (kh, kw), self.stride, self.dilation, (oh, ow))
        self.cols = xp.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(n, g, cg * kh * kw, oh * ow)
        self.wm = w.reshape(g, o // g, cg * kh * kw)
        self.x_shape, self.w_shape, self.out_hw = x.shape, w.shape, (oh, ow)
        out = (self.wm @ self.cols).reshape(n, o, oh, ow)
        if b is not None:
            out += b.reshape(1, o, 1, 1)
        return out

    def backward(self, gy):
        n, c, h, wd = self.x_shape
        o, cg, kh, kw = self.w_shape
        g, (oh, ow) = self.groups, self.out_hw
        gm = gy.reshape(n, g, o // g, oh * ow)
        gw = (gm @ self.cols.swapaxes(-1, -2)).sum(axis=0).reshape(self.w_shape) if self.needs_grad[1] else None
        gx = None
        if self.needs_grad[0]:
            gwin = (self.wm.swapaxes(-1, -2) @ gm).reshape(n, c, kh, kw, oh, ow)
            gx = scatter_windows(gwin, self.x_shape, (kh, kw), self.stride, self.dilation, self.padding)
        gb = gy.sum(axis=(0, 2, 3)) if len(self.needs_grad) > 2 and self.needs_grad[2] else None
        return gx, gw, gb


class _Pool2d(Function):
    """Shared set-up of the pools: padded windows of shape (N, C, OH, OW, kh, kw)."""
    pad_value = 0.0

    def _windows(self, x):
        oh, ow = (out_size(s, k, st, p, 1) for s, k, st, p in zip(x.shape[2:], self.kernel, self.stride, self.padding))
        if oh <= 0 or ow <= 0:
            raise ValueError(f"{self.name}: input {x.shape} is smaller than the kernel {self.kernel}")
        self.x_shape = x.shape
        return windows(pad_hw(x, self.padding, self.pad_value), self.kernel, self.stride, (1, 1), (oh, ow))

    def _scatter(self, gwin):
        """gwin laid out like the windows, (N, C, OH, OW, kh, kw)."""
        (kh, kw), (oh, ow) = self.kernel, gwin.shape[2:4]
        if self.stride == self.kernel and self.padding == (0, 0) and (oh * kh, ow * kw) == self.x_shape[2:]:
            return gwin.transpose(0, 1, 2, 4, 3, 5).reshape(self.x_shape)  # windows tile the input: nothing to add
        return scatter_windows(gwin.transpose(0, 1, 4, 5, 2, 3), self.x_shape, self.kernel, self.stride, (1, 1), self.padding)


class MaxPool2d(_Pool2d):
    """out = max over each window; the gradient goes to the (first) maximum of each window."""
    pad_value = -np.inf

    def forward(self, x):
        xp = get_array_module(x)
        win = self._windows(x)
        flat = win.reshape(win.shape[:4] + (win.shape[4] * win.shape[5],))  # not -1: a batch may be empty
        self.arg = flat.argmax(axis=-1)
        return xp.take_along_axis(flat, self.arg[..., None], axis=-1)[..., 0]

    def backward(self, g):
        xp = get_array_module(g)
        kh, kw = self.kernel
        onehot = (self.arg[..., None] == xp.arange(kh * kw)).reshape(self.arg.shape + (kh, kw))
        return self._scatter(onehot * g[..., None, None])


class AvgPool2d(_Pool2d):
    """out = mean over each window, padding counted as zeros (PyTorch's count_include_pad=True)."""
    def forward(self, x):
        return self._windows(x).mean(axis=(-2, -1))

    def backward(self, g):
        kh, kw = self.kernel
        shape = g.shape + (kh, kw)
        return self._scatter(get_array_module(g).broadcast_to((g / (kh * kw))[..., None, None], shape))
