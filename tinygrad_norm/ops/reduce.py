"""Reductions over an axis (int, tuple, negative allowed, or None for all) with optional keepdims."""
import math

import numpy as np

from ..engine import Function
from ..backend import get_array_module
from ..dtypes import float_of, sum_of
from .namespace import namespace_of

ACCUMULATE = {np.dtype(np.float16): np.float32}  # float16 sums add up in float32 (PyTorch's accumulation type)


class AxisError(IndexError, ValueError):
    """An axis out of range or repeated (an IndexError, as PyTorch raises, and a ValueError, as NumPy's AxisError)."""


def normalize_axis(axis, ndim):
    """Axis spec (int, tuple, negative allowed, or None for every axis) -> sorted tuple of non-negative axes. A
    0-d tensor accepts axis 0 or -1 and has no axis to reduce, as in PyTorch."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    low, high = -max(ndim, 1), max(ndim, 1) - 1
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"axes are integers; got {a!r} in {axis!r}")
        if not low <= a <= high:
            raise AxisError(f"axis {a} is out of range for a tensor of {ndim} dimensions (expected one in "
                            f"[{low}, {high}])")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise AxisError(f"axis {axis} repeats an axis")
    return tuple(sorted(out)) if ndim else ()


def one_axis(axis, ndim):
    """Exactly one integer axis (negative allowed) of a tensor with at least one dimension -> its index."""
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"expected one integer axis; got {axis!r}")
    if ndim == 0 and not isinstance(axis, bool):  # (a bool is normalize_axis's TypeError)
        raise AxisError(f"axis {axis}: a 0-d tensor has no axis to take here")
    return normalize_axis(axis, ndim)[0]


def kept_shape(shape, axes):
    """The shape a reduction has with keepdims=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """Σ over axes: int64 for bool and integer input (dtypes.sum_of); float16 adds up in float32."""
    def forward(self, a):
        return self._total(a, np.int64).astype(sum_of(a.dtype), copy=False)

    def _total(self, a, integers_in):
        """Σ of a over the axes: NumPy's own for float32 and float64, float16 in float32, bool and integers in
        `integers_in`."""
        self.shape, self.axes = a.shape, normalize_axis(self.axis, a.ndim)
        if a.dtype.kind == "f" and a.dtype.itemsize > 2:
            return a.sum(axis=self.axes, keepdims=self.keepdims)
        return a.sum(axis=self.axes, keepdims=self.keepdims, dtype=ACCUMULATE.get(a.dtype, integers_in))

    def backward(self, g, y, a):
        return namespace_of(g).broadcast_to(g.reshape(kept_shape(self.shape, self.axes)), self.shape)


class Mean(Sum):
    """Σ/n over axes, divided as PyTorch and NumPy do (not times a rounded 1/n); the default float dtype for
    bool and integer input (dtypes.float_of); NaN over no elements."""
    def forward(self, a):
        out = self._total(a, np.float64)
        self.n = math.prod(self.shape[i] for i in self.axes) or math.nan  # NaN: the mean of no elements
        return (out / out.dtype.type(self.n)).astype(float_of(a.dtype), copy=False)

    def backward(self, g, y, a):
        return super().backward(g / g.dtype.type(self.n), y, a)


class Max(Function):
    """Max over axes; tied maxima share the gradient evenly."""
    reducer = "max"

    def forward(self, a):
        axes = normalize_axis(self.axis, a.ndim)
        out = getattr(a, self.reducer)(axis=axes, keepdims=True)
        self.mask = a == out
        self.kept = out.shape
        self.count = self.mask.sum(axis=axes, keepdims=True)
        if a.dtype.kind == "f":  # the ties' share, in the gradient's dtype
            self.count = self.count.astype(a.dtype)
        return out if self.keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    def backward(self, g, y, a):
        return g.reshape(self.kept) / self.count * self.mask


class Min(Max):
    reducer = "min"


class Cumsum(Function):
    """Running sum along `axis`; its adjoint is the running sum taken from the other end."""
    def forward(self, a):
        return get_array_module(a).cumsum(a, axis=self.axis, dtype=ACCUMULATE.get(a.dtype)).astype(a.dtype, copy=False)

    def backward(self, g, y, a):
        xp = namespace_of(g)
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

    def backward(self, g, y, a):
        return namespace_of(g).window_sum(g, self.axis, self.after, self.before)
