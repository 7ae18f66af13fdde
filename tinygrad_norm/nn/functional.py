"""Stateless functions on Tensors: activations, losses (from losses.py), dropout, convolution and pooling."""
import warnings

import numpy as np

from .. import ops
from ..backend import get_array_module
from ..random import rng
from ..tensor import stack, where
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


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """log(softmax(input)) along `dim`, computed stably; `dtype` casts the input first."""
    x = input if dtype is None else input.astype(dtype)
    return ops.LogSoftmax.apply(x, axis=_softmax_axis(x, dim, axis, "log_softmax"))


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    x = input if dtype is None else input.astype(dtype)
    return ops.LogSoftmax.apply(x, axis=_softmax_axis(x, dim, axis, "softmax")).exp()


def linear(x, weight, bias=None):
    """x (..., in) @ weightᵀ (out, in) + bias (out,), as one op."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input's last axis is {x.shape[-1]} but weight {weight.shape} expects {weight.shape[1]}")
    return ops.Linear.apply(x, weight) if bias is None else ops.Linear.apply(x, weight, bias)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1); got {p}")
    if not training or p == 0:
        return x
    xp = get_array_module(x.data)
    keep = xp.asarray(rng().random(x.shape) >= p)
    return x * (keep * np.float32(1 / (1 - p))).astype(x.dtype)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, H, W) ⋆ weight (O, C/groups, kh, kw) + bias (O,) -> (N, O, OH, OW)."""
    _check_rank("conv2d", x, "N, C, H, W")
    args = (x, weight) if bias is None else (x, weight, bias)
    return ops.Conv2d.apply(*args, stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation), groups=groups)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, L) ⋆ weight (O, C/groups, k) -> (N, O, OL), as conv2d on a height-1 image."""
    _check_rank("conv1d", x, "N, C, L")
    out = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride), (0, padding), (1, dilation), groups)
    return out.squeeze(2)


def _check_rank(name, x, axes):
    """`axes` names the expected axes, e.g. "N, C, H, W"; a tensor of another rank is an error saying both."""
    if x.ndim != axes.count(",") + 1:
        raise ValueError(f"{name} expects input of shape ({axes}); got {x.shape}")


def max_pool2d(x, kernel_size, stride=None, padding=0):
    _check_rank("max_pool2d", x, "N, C, H, W")
    k = _pair(kernel_size)
    return ops.MaxPool2d.apply(x, kernel=k, stride=_pair(stride or k), padding=_pair(padding))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    _check_rank("avg_pool2d", x, "N, C, H, W")
    k = _pair(kernel_size)
    return ops.AvgPool2d.apply(x, kernel=k, stride=_pair(stride or k), padding=_pair(padding))


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins: bin i spans [floor(i·H/OH), ceil((i+1)·H/OH))."""
    _check_rank("adaptive_avg_pool2d", x, "N, C, H, W")
    (oh, ow), (h, w) = _pair(output_size), x.shape[2:]
    if (oh, ow) == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True)
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(x, (h // oh, w // ow))
    bins = lambda i, n, o: slice(i * n // o, -(-(i + 1) * n // o))
    rows = [stack([x[:, :, bins(i, h, oh), bins(j, w, ow)].mean(axis=(2, 3)) for j in range(ow)], -1)
            for i in range(oh)]
    return stack(rows, -2)
