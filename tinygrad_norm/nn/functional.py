"""Stateless functions on Tensors: activations, losses (from losses.py), dropout, convolution and pooling."""
import warnings

import numpy as np

from .. import ops
from ..backend import get_array_module
from ..random import rng
from ..tensor import Tensor, stack, where
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss,  # noqa: F401
                     kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def relu(x): return x.relu()
def tanh(x): return x.tanh()
def sigmoid(x): return x.sigmoid()
def gelu(x, approximate="none"): return ops.Gelu.apply(x, approximate=approximate)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope·x; the gradient at 0 is negative_slope, as in PyTorch."""
    return where(x.data > 0, x, x * negative_slope)


def _softmax_axis(x, dim, axis, name):
    """PyTorch's dim (or NumPy's axis); neither is PyTorch's deprecated implicit choice, with its warning."""
    if dim is not None and axis is not None:
        raise TypeError(f"{name}: give dim or axis, not both")
    if dim is None and axis is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
                      f"dim=X as an argument.", UserWarning, stacklevel=3)
        return 0 if x.ndim in (0, 1, 3) else 1
    return dim if axis is None else axis


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None, _name="log_softmax"):
    """log(softmax(input)) along `dim`, computed stably; `dtype` casts the input first."""
    x = input if dtype is None else input.astype(dtype)
    return ops.LogSoftmax.apply(x, axis=_softmax_axis(x, dim, axis, _name))


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    return log_softmax(input, dim, dtype=dtype, axis=axis, _name="softmax").exp()


def linear(x, weight, bias=None):
    """x (..., in) @ weightᵀ (out, in) + bias (out,), as one op."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input's last axis is {x.shape[-1]} but weight {weight.shape} expects {weight.shape[1]}")
    return ops.Linear.apply(x, weight) if bias is None else ops.Linear.apply(x, weight, bias)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout); p = 1 zeroes all."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    xp = get_array_module(x.data)
    keep = xp.asarray(rng().random(x.shape) >= p)
    return x * (keep * np.float32(1 / (1 - p))).astype(x.dtype)


def _tuple(value, n, name, what):
    """An int, or a sequence of n (or one, which repeats, as in PyTorch), as an n-tuple of ints."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(items) == 1:
        items = items * n
    if len(items) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{name}: expected {what} to be a single integer value or a list of {n} values to match "
                         f"the {n}-d input, but got {what}={value!r}")
    return tuple(int(v) for v in items)


def _batched(name, x, axes, run):
    """run(x) on input with the axes named in `axes` ("N, C, H, W"), or on one sample without N, which PyTorch's
    layers also take: it gets a batch axis of one for the run, and loses it after."""
    rank = axes.count(",") + 1
    if x.ndim == rank - 1:
        out = run(x.unsqueeze(0))
        return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)
    if x.ndim != rank:
        raise ValueError(f"{name} expects input of shape ({axes}) or ({axes[3:]}); got {x.shape}")
    return run(x)


def _conv_padding(name, padding, weight_hw, stride, dilation):
    """((top, bottom), (left, right)) zeros from an int, a pair, "valid" or "same" (the odd one after)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * len(weight_hw)
        if padding != "same":
            raise ValueError(f"{name}: Invalid padding string {padding!r}, should be one of ('valid', 'same')")
        if any(s != 1 for s in stride):
            raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for k, d in zip(weight_hw, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in _tuple(padding, len(weight_hw), name, "padding"))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """input (N, C, H, W) or (C, H, W) ⋆ weight (O, C/groups, kh, kw) + bias (O,) -> (N, O, OH, OW); padding
    an int, a pair, "valid" or "same"."""
    stride, dilation = _tuple(stride, 2, "conv2d", "stride"), _tuple(dilation, 2, "conv2d", "dilation")
    sides = _conv_padding("conv2d", padding, weight.shape[2:], stride, dilation)
    args = (weight,) if bias is None else (weight, bias)
    return _batched("conv2d", input, "N, C, H, W", lambda x: ops.Conv2d.apply(
        x, *args, stride=stride, padding=sides, dilation=dilation, groups=groups))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """input (N, C, L) or (C, L) ⋆ weight (O, C/groups, k) -> (N, O, OL), as conv2d on a height-1 image."""
    (stride,), (dilation,) = _tuple(stride, 1, "conv1d", "stride"), _tuple(dilation, 1, "conv1d", "dilation")
    sides = _conv_padding("conv1d", padding, weight.shape[2:], (stride,), (dilation,))
    args = (weight.unsqueeze(2),) if bias is None else (weight.unsqueeze(2), bias)
    return _batched("conv1d", input, "N, C, L", lambda x: ops.Conv2d.apply(
        x.unsqueeze(2), *args, stride=(1, stride), padding=((0, 0),) + sides, dilation=(1, dilation),
        groups=groups).squeeze(2))


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """PyTorch's pad: `pad` gives (before, after) widths from the last axis backwards, e.g. (1, 1, 2, 0) pads W
    by 1 each side and H by 2 on top. Negative widths crop. Modes: "constant" (value, 0 by default),
    "reflect" (mirrored, the edge once), "replicate" (the edge repeated), "circular" (wrapped around)."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}; got {mode!r}")
    if len(pad) % 2:
        raise ValueError(f"Padding length must be divisible by 2; got {len(pad)}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"Padding length too large: {len(pad)} widths for a {input.ndim}-d input")
    if mode != "constant":
        if value is not None:
            raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
        if len(pad) // 2 not in (1, 2, 3) or input.ndim not in (len(pad) // 2 + 1, len(pad) // 2 + 2):
            raise NotImplementedError(f"pad: {mode} padding of {len(pad) // 2} axes needs a {len(pad) // 2 + 1}-d or "
                                      f"{len(pad) // 2 + 2}-d input (PyTorch's rule); got {input.ndim}-d")
    widths = [(0, 0)] * (input.ndim - len(pad) // 2) + [tuple(pad[i:i + 2]) for i in range(len(pad) - 2, -1, -2)]
    if mode != "replicate" and any(b < 0 or a < 0 for b, a in widths):  # crop first, as PyTorch does
        crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(widths, input.shape))
        input, widths = input[crop], [(max(b, 0), max(a, 0)) for b, a in widths]
    if mode == "constant":
        return input.pad(widths, value=0.0 if value is None else value) if any(map(any, widths)) else input
    for axis, (before, after) in enumerate(widths):
        if before or after:  # (replicate may have negative widths here)
            index = _pad_index(input.shape[axis], before, after, mode, axis)
            input = input[(slice(None),) * axis + (index,)]  # a gather: its backward adds where an edge repeats
    return input


def _pad_index(n, before, after, mode, axis):
    """Which input position each output position along one axis reads, for the non-constant modes."""
    if mode == "reflect" and (before >= n or after >= n):
        raise ValueError(f"Padding size should be less than the corresponding input dimension, but got: padding "
                         f"({before}, {after}) at dimension {axis} of size {n}")
    if mode == "circular" and (before > n or after > n):
        raise ValueError(f"Padding value causes wrapping around more than once: padding ({before}, {after}) at "
                         f"dimension {axis} of size {n}")
    if n == 0:
        raise ValueError(f"pad: {mode} padding of an empty dimension {axis}")
    p = np.arange(-before, n + after)  # replicate's negative widths crop here, as PyTorch's do
    if mode == "reflect":
        return np.where(p < 0, -p, np.where(p >= n, 2 * (n - 1) - p, p))
    return np.clip(p, 0, n - 1) if mode == "replicate" else p % n


def _pool_args(name, kernel_size, stride, padding, dilation):
    k = _tuple(kernel_size, 2, name, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, 2, name, "stride")
    p, d = _tuple(padding, 2, name, "padding"), _tuple(dilation, 2, name, "dilation")
    for pi, ki, di in zip(p, k, d):
        if pi < 0 or 2 * pi > (ki - 1) * di + 1:
            raise ValueError(f"{name}: pad should be at most half of effective kernel size, but got pad={pi}, "
                             f"kernel_size={ki} and dilation={di}")
    return k, s, p, d


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over (dilated) windows of (N, C, H, W) or (C, H, W) input, padded with -inf; return_indices also
    gives each maximum's flat position h·W + w in its input plane."""
    k, s, p, d = _pool_args("max_pool2d", kernel_size, stride, padding, dilation)

    def run(x):
        op = ops.MaxPool2d(kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
        out = op(x)
        return (out, Tensor._from_array(op.indices())) if return_indices else out
    return _batched("max_pool2d", input, "N, C, H, W", run)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over windows of (N, C, H, W) or (C, H, W) input; the divisor counts the zero padding
    (count_include_pad), only the input's elements (count_include_pad=False), or is divisor_override."""
    k, s, p, _ = _pool_args("avg_pool2d", kernel_size, stride, padding, 1)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor must be not zero (an integer); got {divisor_override!r}")
    return _batched("avg_pool2d", input, "N, C, H, W", lambda x: ops.AvgPool2d.apply(
        x, kernel=k, stride=s, padding=p, dilation=(1, 1), ceil_mode=ceil_mode, count_include_pad=count_include_pad,
        divisor_override=divisor_override))


def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive bins: bin i spans [floor(i·H/OH), ceil((i+1)·H/OH)); None in
    output_size keeps that axis's size."""
    def run(x):
        h, w = x.shape[2:]
        oh, ow = (n if o is None else o for o, n in zip(_pair(output_size), (h, w)))
        if (oh, ow) == (1, 1):
            return x.mean(axis=(2, 3), keepdims=True)
        if h % oh == 0 and w % ow == 0:
            return avg_pool2d(x, (h // oh, w // ow))
        bins = lambda i, n, o: slice(i * n // o, -(-(i + 1) * n // o))
        rows = [stack([x[:, :, bins(i, h, oh), bins(j, w, ow)].mean(axis=(2, 3)) for j in range(ow)], -1)
                for i in range(oh)]
        return stack(rows, -2)
    return _batched("adaptive_avg_pool2d", input, "N, C, H, W", run)
