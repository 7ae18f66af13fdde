"""Tensor: an array (NumPy or CuPy) plus what autograd needs (requires_grad, grad, the op that made it)."""
import math
import operator

import numpy as np

from . import engine, ops
from .backend import (DEVICES, as_numpy, check_device, check_dtype, check_same_device, device_of, get_array_module,
                      is_array, module_for, to_device)
from .dtypes import DEFAULT_FLOAT, float_of, is_weak, result_type, sum_of

DEFAULT_DTYPE = DEFAULT_FLOAT.type


class Tensor:
    """A multi-dimensional array that records the ops applied to it, for `backward()`.

    Arrays given as NumPy/CuPy keep their dtype; lists and Python numbers become float32 (or `dtype`).
    """
    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_retain", "name", "__weakref__")
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
        self.data, self._requires_grad = data, False
        if requires_grad:
            self.requires_grad = True  # the setter checks the dtype
        self.grad, self._ctx, self._retain, self.name = None, None, False, None

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad; this one is {self.data.dtype} (cast it "
                            f"first, e.g. t.astype('float32'))")
        self._requires_grad = bool(value)

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

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
        """This tensor on a device ("cpu", "cuda", "cuda:0") and/or in a dtype, given in either order or as
        another Tensor (its device and dtype), as PyTorch's .to; self when nothing changes, unless copy. A move
        between devices gives a leaf; a change of floating dtype is differentiable (astype). non_blocking and
        memory_format change nothing here (one synchronous copy; every array is laid out in C order)."""
        flags = []
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) and (a in DEVICES or a.startswith("cuda:")):
                device = a
            elif isinstance(a, bool):
                flags.append(a)  # PyTorch's positional non_blocking, copy
            else:
                dtype = a
        copy = copy or (len(flags) > 1 and flags[1])
        out = self
        if device is not None and check_device(device) != self.device:
            out = Tensor._from_array(to_device(self.data, check_device(device)), self.requires_grad)
        out = out if dtype is None else out.astype(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self, memory_format=None): return self.to("cpu")

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    # dtype conversions; memory_format is PyTorch's layout choice, which changes no value
    def float(self, memory_format=None): return self.astype(np.float32)
    def double(self, memory_format=None): return self.astype(np.float64)
    def half(self, memory_format=None): return self.astype(np.float16)
    def long(self, memory_format=None): return self.astype(np.int64)
    def bool(self, memory_format=None): return self.astype(np.bool_)

    def size(self, dim=None):
        """The shape, or the length of axis `dim`."""
        return self.shape if dim is None else self.shape[ops.one_axis(dim, self.ndim)]

    def dim(self):
        return self.ndim

    def clone(self, memory_format=None):
        """A copy of the data that gradients flow back through, as PyTorch's clone."""
        if self.requires_grad:
            return ops.Cast.apply(self, dtype=self.dtype)
        return Tensor._from_array(self.data.copy())

    def contiguous(self, memory_format=None):
        return self  # every array here is laid out in order, or copied when an op needs it so

    def astype(self, dtype, copy=True):
        """This tensor in `dtype`; differentiable between floating-point dtypes (the gradient is cast back), a
        constant when cast to an integer or bool dtype (as PyTorch's .to(dtype)). The dtype it has already
        gives self back (NumPy's copy=False; a Tensor is never changed in place by a cast)."""
        dtype = check_dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype.kind != "f" or not self.requires_grad:
            return Tensor._from_array(self.data.astype(dtype))
        return ops.Cast.apply(self, dtype=dtype)

    def __repr__(self):
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=20, edgeitems=2,
                               prefix="Tensor(")
        extra = [] if self.dtype == DEFAULT_DTYPE else [f"dtype={self.dtype}"]
        extra += [] if self.device == "cpu" else ["device='cuda'"]
        extra += [f"grad_fn={self._ctx.name}"] if self._ctx is not None else ["requires_grad=True"] * self.requires_grad
        return f"Tensor({body}{''.join(', ' + e for e in extra)})"

    # ---- autograd ---------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (or only into `inputs`'). `gradient` defaults
        to 1 for a scalar. create_graph=True gives `.grad`s with a graph of their own, to differentiate again;
        retain_graph defaults to create_graph, as in PyTorch."""
        engine.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward."""
        self._retain = True
        return self

    def _accumulate(self, g):
        """grad += g, in place after the first (which is copied, so no graph array is ever aliased); a Tensor
        g (create_graph) is added out of place, so the sum keeps the graph of both; one without a graph is
        copied too, since it may be another leaf's gradient as well."""
        if isinstance(g, Tensor):  # a copy (clone, with its graph): another leaf may get the same g
            g = g.astype(self.dtype).clone() if g.requires_grad else Tensor._from_array(g.data.astype(self.dtype, copy=True))
            self.grad = g if self.grad is None else self.grad + g
        elif self.grad is None:
            self.grad = Tensor._from_array(g.astype(self.dtype, copy=True))
        elif self.grad.requires_grad:  # a gradient with a graph, now added to without one
            self.grad = Tensor._from_array(self.grad.data + g)
        else:
            self.grad.data += g

    def zero_grad(self):
        self.grad = None

    # ---- the other operand, and the one dtype both are computed in -----------------------------------
    def _pair(self, other, reverse=False):
        """(self, other), or (other, self) with reverse, as Tensors of the dtype the promotion rule gives them
        (dtypes.result_type). The common cases decide nothing: a Tensor of the same dtype, a Python number
        beside a floating-point tensor."""
        dtype = self.data.dtype
        if isinstance(other, Tensor) and (other.data.dtype is dtype or other.data.dtype == dtype):
            pair = (self, other)
        elif type(other) in (float, int) and dtype.kind == "f":
            pair = (self, Tensor._from_array(get_array_module(self.data).asarray(other, dtype=dtype)))
        else:
            pair = promoted(self, other)
        return pair[::-1] if reverse else pair

    def _floating(self):
        """self, cast to the default float dtype when it is bool or an integer (exp, log, division, ...)."""
        return self if self.data.dtype.kind == "f" else self.astype(float_of(self.data.dtype))

    def _not_bool(self, op):
        if self.data.dtype.kind == "b":
            raise TypeError(f"{op} is not defined on a bool tensor (as in PyTorch); cast it first, e.g. t.astype('int64')")
        return self

    # ---- arithmetic -------------------------------------------------------------------------------
    def __add__(self, o): return ops.Add.apply(*self._pair(o))
    def __radd__(self, o): return ops.Add.apply(*self._pair(o, reverse=True))
    def __sub__(self, o): return ops.Sub.apply(*self._pair(_no_bool_subtraction(self, o)))
    def __rsub__(self, o): return ops.Sub.apply(*self._pair(_no_bool_subtraction(self, o), reverse=True))
    def __mul__(self, o): return ops.Mul.apply(*self._pair(o))
    def __rmul__(self, o): return ops.Mul.apply(*self._pair(o, reverse=True))
    def __truediv__(self, o): return ops.Div.apply(*_floating_pair(self._pair(o)))
    def __rtruediv__(self, o): return ops.Div.apply(*_floating_pair(self._pair(o, reverse=True)))
    def __neg__(self): return ops.Neg.apply(self._not_bool("negation, the - operator,"))
    def __matmul__(self, o): return ops.MatMul.apply(*self._pair(o))
    def matmul(self, other): return self @ other
    def pow(self, exponent): return self ** exponent
    def where(self, condition, other): return where(condition, self, other)
    def __rmatmul__(self, o): return ops.MatMul.apply(*self._pair(o, reverse=True))
    def __getitem__(self, index): return ops.GetItem.apply(self, index=_raw_index(index))

    def __pow__(self, o):
        if isinstance(o, (bool, int, float)):  # a Python exponent (np.float64 is one): one op, a closed-form derivative
            base, _ = self._pair(o)
            if base.dtype.kind != "f" and o < 0:
                raise ValueError(f"integers to negative integer powers are not allowed (a {base.dtype} tensor ** {o}); "
                                 f"cast the tensor to a float dtype first")
            return ops.PowScalar.apply(base, p=o)
        return ops.Pow.apply(*_no_bool_power(self._pair(o)))

    def __rpow__(self, o): return ops.Pow.apply(*_no_bool_power(self._pair(o, reverse=True)))

    # comparisons give constant boolean tensors (no graph), as in PyTorch; the operands are compared in their
    # promoted dtype
    def _compare(self, o, op):
        raw = o.data if isinstance(o, Tensor) else o
        if is_array(raw) and type(raw) is not type(self.data):
            check_same_device(op.__name__, [self.data, raw])
        a, b = self._pair(o)
        return Tensor._from_array(op(a.data, b.data))

    def __lt__(self, o): return self._compare(o, operator.lt)
    def __le__(self, o): return self._compare(o, operator.le)
    def __gt__(self, o): return self._compare(o, operator.gt)
    def __ge__(self, o): return self._compare(o, operator.ge)

    def __eq__(self, o):
        """Elementwise, as PyTorch (a bool Tensor); hashing stays by identity, so Tensors still key dicts."""
        return self._compare(o, operator.eq) if isinstance(o, (Tensor, int, float, bool)) or is_array(o) \
            else NotImplemented

    def __ne__(self, o):
        return self._compare(o, operator.ne) if isinstance(o, (Tensor, int, float, bool)) or is_array(o) \
            else NotImplemented

    __hash__ = object.__hash__

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous (shape {self.shape}; "
                               f"use .any() or .all())")
        return bool(self.data.reshape(()).item())

    # ---- unary math and activations -----------------------------------------------------------------
    def exp(self): return ops.Exp.apply(self._floating())
    def log(self): return ops.Log.apply(self._floating())
    def sqrt(self): return ops.Sqrt.apply(self._floating())
    def abs(self): return ops.Abs.apply(self._not_bool("abs"))
    def tanh(self): return ops.Tanh.apply(self._floating())
    def sigmoid(self): return ops.Sigmoid.apply(self._floating())
    def relu(self): return ops.Relu.apply(self._not_bool("relu"))
    def maximum(self, o): return ops.Maximum.apply(*self._pair(o))
    def minimum(self, o): return ops.Minimum.apply(*self._pair(o))
    __abs__ = abs

    def clip(self, low=None, high=None):
        """Elementwise min(max(self, low), high); the result dtype is the promotion of self with the bounds.
        Tensor bounds get gradients too: the input's where low <= x <= high, low's where x < low, high's
        where x > high (PyTorch's clamp)."""
        if isinstance(low, Tensor) or isinstance(high, Tensor):
            out = self
            if low is not None:
                out = where(out.data < _like(low, self).data, low, out)
            if high is not None:
                out = where(out.data > _like(high, self).data, high, out)
            return out
        bounds = [b for b in (low, high) if b is not None]
        x = self if all(type(b) in (int, float) for b in bounds) and self.dtype.kind == "f" else \
            self.astype(result_type(self.data, *bounds))
        return ops.Clip.apply(x, low=low, high=high)

    def clamp(self, min=None, max=None):
        """PyTorch's name (and keywords) for clip."""
        return self.clip(min, max)

    # ---- PyTorch's arithmetic methods ----------------------------------------------------------------
    def add(self, other, *, alpha=1):
        """self + alpha·other."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1):
        """self - alpha·other."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other): return self * other

    def div(self, other, *, rounding_mode=None):
        """self / other; rounding_mode "trunc" rounds toward zero, "floor" down (then integers stay integers,
        and the result is a constant: its gradient is zero almost everywhere, as PyTorch's)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                             f"{rounding_mode!r}")
        a, b = self._pair(other)
        xp = get_array_module(a.data)
        if a.dtype.kind in "iub":
            if b.data.size and bool((b.data == 0).any()):
                raise ZeroDivisionError("div of integers with a rounding mode: division by zero")
            q = xp.floor_divide(a.data, b.data)
            if rounding_mode == "trunc":  # floor is one below trunc where the signs differ and b does not divide a
                q = q + ((q < 0) & (q * b.data != a.data))
            return Tensor._from_array(q.astype(a.dtype, copy=False))
        with ops.quiet(xp):
            q = a.data / b.data
        return Tensor._from_array(xp.floor(q) if rounding_mode == "floor" else xp.trunc(q))

    def masked_fill(self, mask, value):
        """`value` where the bool `mask` (broadcast to self's shape) is True, else self; differentiable in self
        (and in `value` when it is a Tensor)."""
        m = mask.data if isinstance(mask, Tensor) else get_array_module(self.data).asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"masked_fill only supports boolean masks, but got mask with dtype {m.dtype}")
        return where(m, value if isinstance(value, Tensor) else _like(value, self), self)

    def gather(self, dim, index):
        """out[i][j][k] = self[index[i][j][k]][j][k] along `dim` (for dim 0): PyTorch's gather; the gradient
        adds each output's into the place it came from."""
        idx = index.data if isinstance(index, Tensor) else get_array_module(self.data).asarray(index)
        if idx.dtype.kind in "iu" and idx.size == 0:  # nothing to pick: an empty result of the index's shape
            return Tensor._from_array(get_array_module(self.data).zeros(idx.shape, self.dtype))
        if self.ndim == 0:  # a 0-d tensor gathers like a 1-element one
            return self.reshape(1).gather(dim, idx.reshape(-1)).reshape(idx.shape)
        if idx.dtype.kind not in "iu" or idx.ndim != self.ndim:
            raise ValueError(f"gather: index must be an integer tensor with as many dimensions as the input "
                             f"({self.ndim}); got {idx.dtype} of shape {idx.shape}")
        axis = ops.one_axis(dim, self.ndim)
        if idx.size and bool(((idx < 0) | (idx >= self.shape[axis])).any()):
            raise IndexError(f"gather: index {int(idx.min()) if (idx < 0).any() else int(idx.max())} is out of "
                             f"bounds for dimension {dim} with size {self.shape[axis]}")
        xp = get_array_module(self.data)
        grid = [xp.arange(n).reshape((-1,) + (1,) * (idx.ndim - k - 1)) for k, n in enumerate(idx.shape)]
        grid[axis] = idx
        return self[tuple(grid)]  # advanced indexing: its backward adds where an element was picked twice

    def chunk(self, chunks, dim=0):
        """Up to `chunks` pieces along `dim`, each ⌈size / chunks⌉ long but the last, as PyTorch's chunk."""
        if chunks <= 0:
            raise ValueError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        size = self.shape[ops.one_axis(dim, self.ndim)]
        return self.split(max(-(-size // chunks), 1), dim)

    def split(self, split_size_or_sections, dim=0):
        """Pieces along `dim`: each `split_size` long (the last may be shorter), or of the listed sizes."""
        axis = ops.one_axis(dim, self.ndim)
        size = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step <= 0 and size:
                raise ValueError(f"split expects split_size be non-negative and positive where the dim has "
                                 f"elements, but got split_size={step}")
            sizes = [min(step, size - i) for i in range(0, size, step)] if size else [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != size:
                raise ValueError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's "
                                 f"size at dimension {dim}), but got split_sizes={sizes}")
        starts = np.cumsum([0] + sizes[:-1])
        lead = (slice(None),) * axis
        return tuple(self[lead + (slice(int(a), int(a) + n),)] for a, n in zip(starts, sizes))

    # ---- reductions -------------------------------------------------------------------------------
    # sums of bool and integers are int64, means float32 (dtypes.py); an axis of a 0-d tensor may be 0 or -1.
    # Each takes PyTorch's (dim, keepdim) or NumPy's (axis=, keepdims=): dim=[] reduces every axis, as PyTorch's
    # sum and mean do, axis=() none, as NumPy's.
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        x = self if dtype is None else self.astype(dtype)
        return ops.Sum.apply(x, **_reduction(dim, keepdim, axis, keepdims))

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        x = self if dtype is None else self.astype(dtype)
        return ops.Mean.apply(x, **_reduction(dim, keepdim, axis, keepdims))

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The largest element; with an integer `dim` PyTorch's (values, indices) along it; with a Tensor,
        the elementwise maximum (PyTorch's max(other))."""
        return self._extreme(ops.Max, self.maximum, self.argmax, dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The smallest element, as max."""
        return self._extreme(ops.Min, self.minimum, self.argmin, dim, keepdim, axis, keepdims)

    def _extreme(self, reduce, elementwise, arg, dim, keepdim, axis, keepdims):
        if isinstance(dim, Tensor):
            return elementwise(dim)
        if isinstance(dim, int) and axis is None:
            keep = _reduction(dim, keepdim, None, keepdims)["keepdims"]
            return _values_indices(reduce.apply(self, axis=dim, keepdims=keep), arg(dim, keep))
        return reduce.apply(self, **_reduction(dim, keepdim, axis, keepdims))

    def amax(self, dim=(), keepdim=False): return ops.Max.apply(self, **_reduction(dim, keepdim, None, None))
    def amin(self, dim=(), keepdim=False): return ops.Min.apply(self, **_reduction(dim, keepdim, None, None))

    def cumsum(self, dim=None, *, axis=None, dtype=None):
        """Running sum along `dim` (int64 for bool and integers, or `dtype`); a 0-d tensor is its own running sum."""
        axes = ops.normalize_axis(_one_of(dim, axis, "dim", "axis", default=0), self.ndim)
        x = self.astype(sum_of(self.dtype) if dtype is None else dtype)
        return ops.Cumsum.apply(x, axis=axes[0]) if axes else x.reshape(())

    def window_sum(self, axis, before, after):
        """Σ of the elements from `before` before to `after` after each one along `axis` (zero past the ends)."""
        return ops.WindowSum.apply(self, axis=ops.one_axis(axis, self.ndim), before=before, after=after)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Variance sum((x - mean)²) / (n - correction); correction=1 is the unbiased estimate (PyTorch's default;
        unbiased=False is correction=0). NaN where n <= correction, as in PyTorch."""
        if isinstance(dim, bool):  # PyTorch's var(unbiased) overload
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise ValueError("var: give unbiased or correction, not both")
        correction = (1 if unbiased in (None, True) else 0) if correction is None else correction
        reduce = _reduction(dim, keepdim, axis, keepdims)
        axis, keepdims = reduce["axis"], reduce["keepdims"]
        axes = ops.normalize_axis(axis, self.ndim)
        n = int(np.prod([self.shape[i] for i in axes]))
        x = self._floating()
        centred = x - x.mean(axis=axes, keepdims=True)
        squares = (centred * centred).sum(axis=axes, keepdims=keepdims)
        return squares / (n - correction) if n > correction else squares * np.nan

    # ---- movement ---------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def argmax(self, dim=None, keepdim=False):
        """Index of the largest element (first one on ties; over the flattened tensor when dim is None)."""
        return self._arg(self.data.argmax, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return self._arg(self.data.argmin, dim, keepdim)

    def _arg(self, find, dim, keepdim):
        if self.data.size == 0:
            raise ValueError(f"argmax/argmin of an empty tensor (shape {self.shape}) has no answer")
        if dim is None:
            index = find()
            return Tensor._from_array(get_array_module(self.data).asarray(index, dtype=np.int64).reshape(
                (1,) * self.ndim if keepdim else ()))
        axis = ops.one_axis(dim, self.ndim) if self.ndim else None
        index = find(axis=axis, keepdims=keepdim) if axis is not None else find()
        return Tensor._from_array(get_array_module(self.data).asarray(index, dtype=np.int64))

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if len(axes) != self.ndim:
            raise ValueError(f"permute needs a permutation of all {self.ndim} axes of shape {self.shape}; got {tuple(axes)}")
        axes = tuple(ops.one_axis(a, self.ndim) for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute needs a permutation of 0..{self.ndim - 1}; got {axes}")
        return ops.Permute.apply(self, axes=axes)

    def swapaxes(self, axis0, axis1):
        """Swap two axes (PyTorch's and NumPy's swapaxes)."""
        axes = list(range(self.ndim))
        a, b = ops.one_axis(axis0, self.ndim), ops.one_axis(axis1, self.ndim)
        axes[a], axes[b] = axes[b], axes[a]
        return self.permute(axes)

    swapdims = swapaxes

    def transpose(self, dim0=None, dim1=None):
        """Swap axes dim0 and dim1 (by default the last two; below 2-D there is nothing to swap). A 0-d or 1-D
        tensor comes back as it is for any dims valid for it, as in PyTorch."""
        if self.ndim < 2:
            for d in (dim0, dim1):
                ops.normalize_axis(() if d is None else (d,), self.ndim)
            return self.reshape(self.shape)
        dim0, dim1 = -2 if dim0 is None else dim0, -1 if dim1 is None else dim1
        axes = list(range(self.ndim))
        a, b = ops.one_axis(dim0, self.ndim), ops.one_axis(dim1, self.ndim)
        axes[a], axes[b] = axes[b], axes[a]
        return self.permute(axes)

    def expand(self, *shape):
        """Broadcast to `shape`; -1 keeps an axis's size (PyTorch's)."""
        shape = tuple(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
        lead = len(shape) - self.ndim
        if -1 in shape:
            if any(n == -1 for n in shape[:lead]) or lead < 0:
                raise ValueError(f"expand: -1 may only stand for an existing axis; shape {self.shape} to {shape}")
            shape = shape[:lead] + tuple(old if n == -1 else n for n, old in zip(shape[lead:], self.shape))
        return ops.Expand.apply(self, shape=shape)

    broadcast_to = expand

    def flatten(self, start_dim=0, end_dim=-1):
        """The axes start_dim..end_dim joined into one (a 0-d tensor becomes shape (1,)); zero-size axes allowed."""
        if self.ndim == 0:
            for d in (start_dim, end_dim):
                ops.normalize_axis((d,), 0)
            return self.reshape((1,))
        lo, hi = ops.one_axis(start_dim, self.ndim), ops.one_axis(end_dim, self.ndim)
        if lo > hi:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        return self.reshape(self.shape[:lo] + (math.prod(self.shape[lo:hi + 1]),) + self.shape[hi + 1:])

    def squeeze(self, dim=None, *, axis=None):
        """Drop size-1 axes: all of them, or those among `dim` (an axis whose size is not 1 stays, as in PyTorch)."""
        axis = _one_of(dim, axis, "dim", "axis")
        axes = range(self.ndim) if axis is None else ops.normalize_axis(axis, self.ndim)
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def unsqueeze(self, dim=None, *, axis=None):
        axis = ops.one_axis(_one_of(dim, axis, "dim", "axis", required="unsqueeze"), self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def pad(self, pad, value=0.0):
        """Constant padding with NumPy's per-axis ((before, after), ...) widths."""
        return ops.Pad.apply(self, pad=tuple(tuple(p) for p in pad), value=value)


def _one_of(dim, axis, dim_name, axis_name, default=None, required=None):
    """The one of PyTorch's `dim` and NumPy's `axis` given; both is an error, neither `default`."""
    if dim is not None and axis is not None:
        raise TypeError(f"give {dim_name} or {axis_name}, not both")
    chosen = dim if axis is None else axis
    if chosen is None and required:
        raise TypeError(f"{required}() missing required argument 'dim'")
    return default if chosen is None else chosen


def _reduction(dim, keepdim, axis, keepdims):
    """ops keywords from PyTorch's (dim, keepdim) or NumPy's (axis, keepdims); dim=[] (or ()) is every axis."""
    if dim is not None and axis is not None:
        raise TypeError("give dim or axis, not both")
    if keepdims is not None and keepdim:
        raise TypeError("give keepdim or keepdims, not both")
    if dim is not None and not isinstance(dim, int) and len(dim) == 0:
        dim = None
    return {"axis": dim if axis is None else axis, "keepdims": bool(keepdim if keepdims is None else keepdims)}


class _ValuesIndices(tuple):
    """PyTorch's (values, indices) of max(dim)/min(dim), by position or by name."""
    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _values_indices(values, indices):
    return _ValuesIndices((values, indices))


def _like(value, like):
    """`value` as a Tensor on `like`'s device in like's dtype (a Tensor as it is)."""
    if isinstance(value, Tensor):
        return value
    return Tensor._from_array(get_array_module(like.data).asarray(value, dtype=like.dtype))


def _raw_index(index):
    """Tensors inside an index become their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def tensor(data, requires_grad=False, dtype=None, device=None):
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def from_numpy(array):
    """A Tensor sharing the NumPy array's memory and dtype, as torch.from_numpy."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray; got {type(array).__name__}")
    return Tensor(array)


def as_tensor(x):
    """x as a Tensor: itself, or a constant made by Tensor(x) (arrays keep their dtype, numbers become float32)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _constant(value, dtype, like):
    """A Python number or list as an array of `dtype` on `like`'s device; integers wrap around as in PyTorch."""
    xp = get_array_module(like)
    if dtype.kind in "iub":
        return xp.asarray(np.asarray(value).astype(dtype))
    return xp.asarray(value, dtype=dtype)


def promoted(*operands):
    """The operands as Tensors of the one dtype the promotion rule (dtypes.result_type) gives them: a Tensor is
    cast where it differs (differentiably), an array becomes a constant on its own device (so a host array
    beside a GPU tensor is the op's DeviceError, not a silent copy), a number or list a constant on the device
    of the first Tensor."""
    like = next(x for x in operands if isinstance(x, Tensor)).data
    for x in operands:
        if not (isinstance(x, (Tensor, np.generic)) or is_array(x) or is_weak(x)):
            raise TypeError(f"expected a Tensor, a NumPy or CuPy array, a number or a list of numbers as an operand; "
                            f"got {type(x).__name__}")
    dtype = result_type(*(x.data if isinstance(x, Tensor) else x for x in operands))
    out = []
    for x in operands:
        if isinstance(x, Tensor):
            out.append(x.astype(dtype))
        elif is_array(x):
            out.append(Tensor._from_array(x.astype(dtype, copy=False)))
        else:  # numbers, lists and NumPy scalars follow the tensor's device
            out.append(Tensor._from_array(_constant(x, dtype, like)))
    return out


def _floating_pair(pair):
    """A promoted pair (of one dtype) in the default float dtype where that dtype is not floating (division)."""
    return pair if pair[0].data.dtype.kind == "f" else (pair[0]._floating(), pair[1]._floating())


def _no_bool_subtraction(tensor, other):
    """`other`, unless either operand of a subtraction is bool, which PyTorch refuses."""
    if tensor.data.dtype.kind == "b" or isinstance(other, bool) or getattr(getattr(other, "dtype", None), "kind", "") == "b":
        raise TypeError("subtraction, the - operator, with a bool operand is not defined (as in PyTorch); use "
                        "logical operations, or cast first, e.g. t.astype('int64')")
    return other


def _no_bool_power(pair):
    if pair[0].dtype == bool:
        raise TypeError("pow is not defined between bool tensors (as in PyTorch); cast first, e.g. t.astype('int64')")
    return pair


def _tensors(a, b):
    """a and b promoted to Tensors of one dtype; when neither is a Tensor, a becomes one first."""
    return promoted(a if isinstance(a, Tensor) or isinstance(b, Tensor) else Tensor(a), b)


def where(cond, a, b):
    """Elementwise `a if cond else b`; differentiable in a and b, which are promoted to one dtype."""
    a, b = _tensors(a, b)
    cond = cond.data if isinstance(cond, Tensor) else cond
    return ops.Where.apply(a, b, cond=get_array_module(a.data).asarray(cond).astype(bool))  # on a's device


def maximum(a, b): return ops.Maximum.apply(*_tensors(a, b))
def minimum(a, b): return ops.Minimum.apply(*_tensors(a, b))


def concatenate(tensors, dim=None, *, axis=None):
    """Join tensors along an existing axis (PyTorch's `cat`); they are promoted to one dtype first."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    if any(t.ndim > 1 for t in tensors):  # PyTorch's legacy rule: empty 1-d tensors are left out
        tensors = [t for t in tensors if t.shape != (0,)]
    tensors = promoted(*tensors)
    return ops.Concatenate.apply(*tensors, axis=ops.one_axis(_one_of(dim, axis, "dim", "axis", 0), tensors[0].ndim))


cat = concatenate


def stack(tensors, dim=None, *, axis=None):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    axis = ops.one_axis(_one_of(dim, axis, "dim", "axis", 0), tensors[0].ndim + 1)
    return concatenate([t.unsqueeze(axis) for t in tensors], axis=axis)


def _factory(make):
    def factory(*shape, dtype=DEFAULT_DTYPE, device="cpu", requires_grad=False):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Tensor._from_array(make(module_for(device), tuple(shape), check_dtype(dtype)), requires_grad)
    return factory


zeros = _factory(lambda xp, shape, dtype: xp.zeros(shape, dtype))
ones = _factory(lambda xp, shape, dtype: xp.ones(shape, dtype))
randn = _factory(lambda xp, shape, dtype: xp.random.standard_normal(shape).astype(dtype))
rand = _factory(lambda xp, shape, dtype: xp.random.random_sample(shape).astype(dtype))
