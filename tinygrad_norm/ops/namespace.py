"""The functions a backward is written with, for both kinds of values it runs on (see engine.py).

`namespace_of(g)` is NumPy or CuPy, plus the few adjoints they lack (scatter, window_sum, unfold, fold,
erf) and concatenate, when g is an array, and the same functions made of differentiable ops when g is a Tensor: so one
backward gives the plain gradient on arrays and a gradient with a graph under create_graph=True.

>>> import numpy as np, tinygrad_norm as tg
>>> from tinygrad_norm.ops import namespace_of
>>> namespace_of(np.ones(2)).exp(np.zeros(2)), namespace_of(tg.zeros(2)).exp(tg.zeros(2)).numpy()
(array([1., 1.]), array([1., 1.], dtype=float32))

Functions whose derivative is zero (sign) give a constant; a value that is a constant of differentiation
is read with `array_of` (a mask built from an input, say).
"""
import sys
import types

import numpy as np

from ..backend import get_array_module
from ..engine import is_tensor


def array_of(value):
    """The array behind a Tensor, or the value itself: for conditions and masks, which are constants."""
    return value.data if is_tensor(value) else value


def namespace_of(*values):
    """The namespace for these values: the Tensor one when the first is a Tensor, else the array one (a
    NumPy scalar, which 0-d arithmetic gives, counts as an array)."""
    first = values[0]
    if is_tensor(first):
        return TENSORS
    return _ARRAYS[np] if isinstance(first, (np.ndarray, np.generic)) else _array_namespace(sys.modules["cupy"])


# ---- on arrays: the array module, plus the adjoints it has no function for ---------------------------------

def _scatter(xp, g, index, shape, unique):
    """The adjoint of a[index]: zeros of `shape` with g added where index picked (twice picked adds twice);
    `unique`: the index picks each element at most once, so g is simply assigned."""
    out = xp.zeros(shape, dtype=g.dtype)
    if unique:
        out[index] = g
    elif xp is np:
        np.add.at(out, index, g)
    else:
        import cupyx
        cupyx.scatter_add(out, index, g)
    return out


def _array_namespace(xp):
    if xp not in _ARRAYS:
        from . import conv, elementwise, reduce
        ns = types.SimpleNamespace(**{name: getattr(xp, name) for name in _FROM_MODULE})
        ns.module = xp
        ns.scatter = lambda g, index, shape, unique=False: _scatter(xp, g, index, shape, unique)
        ns.window_sum = reduce.window_sum
        ns.unfold, ns.fold = conv.unfold, conv.fold
        ns.erf = elementwise.erf
        ns.concatenate = lambda arrays, axis: xp.concatenate(arrays, axis=axis)
        _ARRAYS[xp] = ns
    return _ARRAYS[xp]


_FROM_MODULE = ("exp", "log", "sqrt", "sign", "tanh", "where", "broadcast_to", "transpose", "flip", "cumsum",
                "zeros_like", "split")
_ARRAYS = {}


# ---- on Tensors: each function an op, so that what it computes has a gradient --------------------------------

class _TensorNamespace:
    """The array functions a backward uses, on Tensors, built from the ops (which know their own backward)."""
    module = None

    @staticmethod
    def _constant(value, like):
        return type(like)._from_array(get_array_module(like.data).asarray(value, dtype=like.dtype))

    exp = staticmethod(lambda a: a.exp())
    log = staticmethod(lambda a: a.log())
    sqrt = staticmethod(lambda a: a.sqrt())
    tanh = staticmethod(lambda a: a.tanh())

    def sign(self, a):
        return type(a)._from_array(get_array_module(a.data).sign(a.data))  # its derivative is zero

    def where(self, cond, a, b):
        like = a if is_tensor(a) else b
        a, b = (v if is_tensor(v) else self._constant(v, like) for v in (a, b))
        from .elementwise import Where
        return Where.apply(a, b, cond=get_array_module(like.data).asarray(array_of(cond)).astype(bool))

    def broadcast_to(self, a, shape):
        from .movement import Expand
        return a if a.shape == tuple(shape) else Expand.apply(a, shape=tuple(shape))

    def transpose(self, a, axes):
        from .movement import Permute
        return Permute.apply(a, axes=tuple(int(i) for i in axes))

    def flip(self, a, axis):
        return a[(slice(None),) * axis + (slice(None, None, -1),)]

    def cumsum(self, a, axis):
        from .reduce import Cumsum
        return Cumsum.apply(a, axis=axis)

    def zeros_like(self, a):
        return type(a)._from_array(get_array_module(a.data).zeros_like(a.data))

    def split(self, a, indices, axis):
        bounds = [0] + list(indices) + [a.shape[axis]]
        lead = (slice(None),) * axis
        return [a[lead + (slice(lo, hi),)] for lo, hi in zip(bounds, bounds[1:])]

    def scatter(self, g, index, shape, unique=False):
        from .movement import Scatter
        return Scatter.apply(g, index=index, shape=tuple(shape), unique=unique)

    def window_sum(self, a, axis, before, after):
        from .reduce import WindowSum
        return WindowSum.apply(a, axis=axis, before=before, after=after)

    def unfold(self, x, kernel, stride, dilation, padding, out_hw, value=0.0):
        from .conv import Unfold
        return Unfold.apply(x, kernel=kernel, stride=stride, dilation=dilation, padding=padding, out_hw=out_hw,
                            value=value)

    def fold(self, cols, in_shape, kernel, stride, dilation, padding):
        from .conv import Fold
        return Fold.apply(cols, in_shape=in_shape, kernel=kernel, stride=stride, dilation=dilation, padding=padding)

    def erf(self, a):
        from .elementwise import Erf
        return Erf.apply(a)

    def concatenate(self, tensors, axis):
        from .movement import Concatenate
        return Concatenate.apply(*tensors, axis=axis)


TENSORS = _TensorNamespace()
_array_namespace(np)
