"""Tensor: an array (NumPy or CuPy) plus what autograd needs (requires_grad, grad, the op that made it)."""
import operator

import numpy as np

from . import autograd, ops
from .backend import (as_numpy, check_device, check_dtype, check_same_device, device_of, get_array_module,
                      is_array, module_for, to_device)

DEFAULT_DTYPE = np.float32


class Tensor:
    """A multi-dimensional array that records the ops applied to it, for `backward()`.

    Arrays given as NumPy/CuPy keep their dtype; lists and Python numbers become float32 (or `dtype`).
    """
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retain", "name", "__weakref__")
    __array_priority__ = 1000  # make `ndarray + Tensor` defer to Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        dtype = None if dtype is None else check_dtype(dtype)
        given_array = is_array(data)
        if given_array:
            check_dtype(data.dtype)
        if device is not None:
            data = to_device(data, device) if given_array else module_for(device).asarray(data, dtype=dtype or DEFAULT_DTYPE)
        elif not given_array:
            data = np.asarray(data, dtype=dtype or DEFAULT_DTYPE)
        if dtype is not None and data.dtype != dtype:
            data = data.astype(dtype)
        self._init(data, requires_grad)

    def _init(self, data, requires_grad):
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad; this one is {data.dtype}")
        self.data, self.requires_grad = data, bool(requires_grad)
        self.grad, self._ctx, self._retain, self.name = None, None, False, None

    @classmethod
    def _from_array(cls, data, requires_grad=False):
        """Wrap an array without conversion (the fast path used by every op)."""
        t = Tensor.__new__(Tensor)
        t._init(data, requires_grad)
        return t

    # ---- properties -------------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: device_of(self.data))
    T = property(lambda self: self.permute(*reversed(range(self.ndim))))
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx)

    def __len__(self):
        return len(self.data)

    def numel(self):
        return int(self.data.size)

    def numpy(self):
        """The data as a NumPy array (copied from the GPU when needed)."""
        return as_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element; this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        return Tensor._from_array(self.data)

    def to(self, device):
        """A copy on `device` ("cpu" or "cuda") that is a leaf; self when it is already there."""
        if check_device(device) == self.device:
            return self
        return Tensor._from_array(to_device(self.data, device), self.requires_grad)

    def astype(self, dtype):
        dtype = check_dtype(dtype)
        return Tensor._from_array(self.data.astype(dtype), self.requires_grad and dtype.kind == "f")

    def __repr__(self):
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=20, edgeitems=2,
                               prefix="Tensor(")
        extra = [] if self.dtype == DEFAULT_DTYPE else [f"dtype={self.dtype}"]
        extra += [] if self.device == "cpu" else ["device='cuda'"]
        extra += [f"grad_fn={self._ctx.name}"] if self._ctx is not None else ["requires_grad=True"] * self.requires_grad
        return f"Tensor({body}{''.join(', ' + e for e in extra)})"

    # ---- autograd ---------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`. `grad` defaults to 1 for a scalar."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (no leaf it came from has "
                               "requires_grad=True, or it was made under no_grad())")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element output; this one has shape "
                                   f"{self.shape}: call y.backward(grad) with a gradient of shape {self.shape}")
            grad = xp.ones(self.shape, dtype=self.dtype)
        grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward() got a gradient of shape {grad.shape} for an output of shape {self.shape}")
        autograd.backward(self, grad, retain_graph)

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward."""
        self._retain = True
        return self

    def _accumulate(self, g):
        """grad += g, in place after the first (which is copied, so no graph array is ever aliased)."""
        if self.grad is None:
            self.grad = Tensor._from_array(g.astype(self.dtype, copy=True))
        else:
            self.grad.data += g

    def zero_grad(self):
        self.grad = None

    # ---- conversion of the other operand ------------------------------------------------------------
    def _lift(self, other):
        """Numbers and lists become constant tensors of this tensor's dtype and device. An array stays on its own
        device, so an op mixing a host array with a GPU tensor is the op's DeviceError, not a silent copy."""
        if isinstance(other, Tensor):
            return other
        xp = get_array_module(other if is_array(other) else self.data)
        return Tensor._from_array(xp.asarray(other, dtype=self.dtype))

    # ---- arithmetic -------------------------------------------------------------------------------
    def __add__(self, o): return ops.Add.apply(self, self._lift(o))
    def __radd__(self, o): return ops.Add.apply(self._lift(o), self)
    def __sub__(self, o): return ops.Sub.apply(self, self._lift(o))
    def __rsub__(self, o): return ops.Sub.apply(self._lift(o), self)
    def __mul__(self, o): return ops.Mul.apply(self, self._lift(o))
    def __rmul__(self, o): return ops.Mul.apply(self._lift(o), self)
    def __truediv__(self, o): return ops.Div.apply(self, self._lift(o))
    def __rtruediv__(self, o): return ops.Div.apply(self._lift(o), self)
    def __neg__(self): return ops.Neg.apply(self)
    def __matmul__(self, o): return ops.MatMul.apply(self, self._lift(o))
    def __rmatmul__(self, o): return ops.MatMul.apply(self._lift(o), self)
    def __getitem__(self, index): return ops.GetItem.apply(self, index=_raw_index(index))

    def __pow__(self, o):
        if isinstance(o, (int, float)):
            return ops.PowScalar.apply(self, p=o)
        return ops.Pow.apply(self, self._lift(o))

    def __rpow__(self, o): return ops.Pow.apply(self._lift(o), self)

    # comparisons give constant boolean tensors (no graph), as in PyTorch
    def _compare(self, o, op):
        o = o.data if isinstance(o, Tensor) else o
        if is_array(o) and type(o) is not type(self.data):
            check_same_device(op.__name__, [self.data, o])
        return Tensor._from_array(op(self.data, o))

    def __lt__(self, o): return self._compare(o, operator.lt)
    def __le__(self, o): return self._compare(o, operator.le)
    def __gt__(self, o): return self._compare(o, operator.gt)
    def __ge__(self, o): return self._compare(o, operator.ge)
    __hash__ = object.__hash__

    # ---- unary math and activations -----------------------------------------------------------------
    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def sqrt(self): return ops.Sqrt.apply(self)
    def abs(self): return ops.Abs.apply(self)
    def tanh(self): return ops.Tanh.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def relu(self): return ops.Relu.apply(self)
    def maximum(self, o): return ops.Maximum.apply(self, self._lift(o))
    def minimum(self, o): return ops.Minimum.apply(self, self._lift(o))
    def clip(self, low=None, high=None): return ops.Clip.apply(self, low=low, high=high)
    __abs__ = abs

    # ---- reductions -------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return ops.Sum.apply(self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return ops.Mean.apply(self, axis=axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return ops.Max.apply(self, axis=axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=0): return ops.Cumsum.apply(self, axis=axis % self.ndim)

    def window_sum(self, axis, before, after):
        """Σ of the elements from `before` before to `after` after each one along `axis` (zero past the ends)."""
        return ops.WindowSum.apply(self, axis=axis % self.ndim, before=before, after=after)

    def var(self, axis=None, keepdims=False, correction=1):
        """Variance sum((x - mean)²) / (n - correction); correction=1 is the unbiased estimate (PyTorch's default)."""
        axes = ops.normalize_axis(axis, self.ndim)
        n = int(np.prod([self.shape[i] for i in axes]))
        centred = self - self.mean(axis=axes, keepdims=True)
        return (centred * centred).sum(axis=axes, keepdims=keepdims) * (1.0 / (n - correction) if n > correction else np.nan)

    # ---- movement ---------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Reshape.apply(self, shape=tuple(shape))

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = tuple(a % self.ndim for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute needs a permutation of 0..{self.ndim - 1}; got {axes}")
        return ops.Permute.apply(self, axes=axes)

    def transpose(self, dim0=-2, dim1=-1):
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    def expand(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Expand.apply(self, shape=tuple(shape))

    broadcast_to = expand

    def flatten(self, start_dim=0):
        return self.reshape(self.shape[:start_dim] + (-1,))

    def squeeze(self, axis=None):
        axes = [i for i, n in enumerate(self.shape) if n == 1] if axis is None else ops.normalize_axis(axis, self.ndim)
        if any(self.shape[a] != 1 for a in axes):
            raise ValueError(f"cannot squeeze axis {axis} of shape {self.shape}: its size is not 1")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def unsqueeze(self, axis):
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def pad(self, pad, value=0.0):
        """Constant padding with NumPy's per-axis ((before, after), ...) widths."""
        return ops.Pad.apply(self, pad=tuple(tuple(p) for p in pad), value=value)


def _raw_index(index):
    """Tensors inside an index become their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def tensor(data, requires_grad=False, dtype=None, device=None):
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def as_tensor(x, like=None):
    """x as a Tensor; numbers and arrays become constants (of `like`'s dtype when given)."""
    return x if isinstance(x, Tensor) else (like._lift(x) if like is not None else Tensor(x))


def where(cond, a, b):
    """Elementwise `a if cond else b`; differentiable in a and b."""
    like = a if isinstance(a, Tensor) else b
    a, b = as_tensor(a, like), as_tensor(b, like)
    cond = cond.data if isinstance(cond, Tensor) else cond
    return ops.Where.apply(a, b, cond=get_array_module(a.data).asarray(cond).astype(bool))  # on a's device


def maximum(a, b): return as_tensor(a, b if isinstance(b, Tensor) else None).maximum(b)
def minimum(a, b): return as_tensor(a, b if isinstance(b, Tensor) else None).minimum(b)


def concatenate(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    return ops.Concatenate.apply(*tensors, axis=axis % tensors[0].ndim)


def stack(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    return concatenate([t.unsqueeze(axis) for t in tensors], axis=axis % (tensors[0].ndim + 1))


def _factory(make):
    def factory(*shape, dtype=DEFAULT_DTYPE, device="cpu", requires_grad=False):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Tensor._from_array(make(module_for(device), tuple(shape), check_dtype(dtype)), requires_grad)
    return factory


zeros = _factory(lambda xp, shape, dtype: xp.zeros(shape, dtype))
ones = _factory(lambda xp, shape, dtype: xp.ones(shape, dtype))
randn = _factory(lambda xp, shape, dtype: xp.random.standard_normal(shape).astype(dtype))
rand = _factory(lambda xp, shape, dtype: xp.random.random_sample(shape).astype(dtype))
