"""Reductions over an axis (int, tuple, negative allowed, or None for all) with optional keepdims."""
import math

from ..autograd import Function
from ..backend import get_array_module


def normalize_axis(axis, ndim):
    """Axis spec -> sorted tuple of non-negative axes; None means every axis."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(a % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis} repeats an axis")
    return tuple(sorted(out))


def kept_shape(shape, axes):
    """The shape a reduction has with keepdims=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, a):
        self.shape, self.axes = a.shape, normalize_axis(self.axis, a.ndim)
        return a.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        xp = get_array_module(g)
        return xp.broadcast_to(g.reshape(kept_shape(self.shape, self.axes)), self.shape)


class Mean(Sum):
    def forward(self, a):
        out = super().forward(a)
        self.scale = 1.0 / math.prod(self.shape[i] for i in self.axes)
        return out * out.dtype.type(self.scale)

    def backward(self, g):
        return super().backward(g * g.dtype.type(self.scale))


class Max(Function):
    """Max over axes; tied maxima share the gradient evenly."""
    reducer = "max"

    def forward(self, a):
        axes = normalize_axis(self.axis, a.ndim)
        out = getattr(a, self.reducer)(axis=axes, keepdims=True)
        self.mask = a == out
        self.kept = out.shape
        self.count = self.mask.sum(axis=axes, keepdims=True)
        return out if self.keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    def backward(self, g):
        return self.mask * (g.reshape(self.kept) / self.count)


class Min(Max):
    reducer = "min"


class Cumsum(Function):
    """Running sum along `axis`; its adjoint is the running sum taken from the other end."""
    def forward(self, a):
        return get_array_module(a).cumsum(a, axis=self.axis)

    def backward(self, g):
        xp = get_array_module(g)
        return xp.flip(xp.cumsum(xp.flip(g, self.axis), axis=self.axis), self.axis)


def window_sum(a, axis, before, after):
    """out[i] = Σ_{j = i - before}^{i + after} a[j] along `axis`, zero beyond the ends: one slice-add per offset."""
    out = a.copy()
    n = a.shape[axis]
    for shift in range(-before, after + 1):
        if shift == 0 or abs(shift) >= n:
            continue
        dst = [slice(None)] * a.ndim
        src = [slice(None)] * a.ndim
        dst[axis], src[axis] = (slice(0, n - shift), slice(shift, n)) if shift > 0 else (slice(-shift, n), slice(0, n + shift))
        out[tuple(dst)] += a[tuple(src)]
    return out


class WindowSum(Function):
    """Sliding-window sum along `axis` (a box filter, zero-padded): its adjoint is the mirrored window."""
    def forward(self, a):
        return window_sum(a, self.axis, self.before, self.after)

    def backward(self, g):
        return window_sum(g, self.axis, self.after, self.before)
