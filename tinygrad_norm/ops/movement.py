"""Ops that move or select elements: reshape, permute, expand, getitem, concatenate, pad."""
import numpy as np

from ..autograd import Function
from ..backend import get_array_module


class Reshape(Function):
    def forward(self, a):
        self.in_shape = a.shape
        return a.reshape(self.shape)

    def backward(self, g): return g.reshape(self.in_shape)


class Permute(Function):
    def forward(self, a): return a.transpose(self.axes)
    def backward(self, g): return g.transpose(np.argsort(self.axes))


class Expand(Function):
    """broadcast_to; the engine's sum_to is exactly its backward."""
    def forward(self, a): return get_array_module(a).broadcast_to(a, self.shape)
    def backward(self, g): return g


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
        self.shape = a.shape
        return a[self.index]

    def backward(self, g):
        xp = get_array_module(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        if is_basic_index(self.index):
            gx[self.index] = g
        else:  # integer arrays may pick an element twice: accumulate
            if xp is np:
                np.add.at(gx, self.index, g)
            else:
                import cupyx
                cupyx.scatter_add(gx, self.index, g)
        return gx


class Concatenate(Function):
    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        return get_array_module(*arrays).concatenate(arrays, axis=self.axis)

    def backward(self, g):
        return tuple(get_array_module(g).split(g, np.cumsum(self.sizes)[:-1].tolist(), axis=self.axis))


class Pad(Function):
    """Constant padding; `pad` is NumPy's ((before, after), ...) per axis."""
    def forward(self, a):
        return get_array_module(a).pad(a, self.pad, constant_values=self.value)

    def backward(self, g):
        return g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(self.pad))]
