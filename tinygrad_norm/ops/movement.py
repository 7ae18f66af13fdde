"""Ops that move or select elements: reshape, permute, expand, getitem, concatenate, pad."""
import numpy as np

from ..engine import Function
from ..backend import get_array_module
from .namespace import namespace_of


class Reshape(Function):
    def forward(self, a): return a.reshape(self.shape)
    def backward(self, g, y, a): return g.reshape(a.shape)


class Permute(Function):
    def forward(self, a): return a.transpose(self.axes)
    def backward(self, g, y, a): return namespace_of(g).transpose(g, np.argsort(self.axes))


class Expand(Function):
    """broadcast_to; the engine's sum_to is exactly its backward."""
    def forward(self, a): return get_array_module(a).broadcast_to(a, self.shape)
    def backward(self, g, y, a): return g


def is_basic_index(index):
    """True when indexing selects each element at most once (slices, ints, None, Ellipsis, bool masks)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer))
               or getattr(i, "dtype", None) == bool for i in items)


class GetItem(Function):
    def forward(self, a):
        xp = get_array_module(a)
        if xp is not np:  # CuPy wants its own arrays inside an index
            items = self.index if isinstance(self.index, tuple) else (self.index,)
            items = tuple(xp.asarray(i) if isinstance(i, (np.ndarray, list)) else i for i in items)
            self.index = items if isinstance(self.index, tuple) else items[0]
        return a[self.index]

    def backward(self, g, y, a): return namespace_of(g).scatter(g, self.index, a.shape, is_basic_index(self.index))


class Scatter(Function):
    """GetItem's adjoint: zeros of `shape` with g put at `index`, added where an integer index picks an
    element twice (`unique`: it never does). Its own adjoint is GetItem."""
    def forward(self, g): return namespace_of(g).scatter(g, self.index, self.shape, self.unique)
    def backward(self, g, y, a): return g[self.index]


class Concatenate(Function):
    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        return get_array_module(*arrays).concatenate(arrays, axis=self.axis)

    def backward(self, g, y, *arrays):
        return tuple(namespace_of(g).split(g, np.cumsum(self.sizes)[:-1].tolist(), axis=self.axis))


class Pad(Function):
    """Constant padding; `pad` is NumPy's ((before, after), ...) per axis."""
    def forward(self, a):
        return get_array_module(a).pad(a, self.pad, constant_values=self.value)

    def backward(self, g, y, a):
        return g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(self.pad))]
