"""The one fused normalize op behind every declared plugin.

Works on a canonical view of the input: adjacent axes that are alike (both reduced or both kept, both
carrying parameters or not, and never the batch axis) are merged, so BatchNorm on (N, C, H, W) runs on
(N, C, H·W) and LayerNorm on (B, T, D) on (B·T, D). Forward, with the means over the reduced axes:

    x̂ = (x - μ)·r,  r = 1/√(var + eps)     (no centering: x̂ = x·r with var = mean(x²))
    y = x̂·γ + β

Backward is closed form, the same for every pattern: with g = dy·γ,

    dx = r·(g - mean(g) - x̂·mean(g·x̂))    (batch statistics; without centering drop mean(g))
    dx = r·g                               (fixed running statistics, eval mode)
    dγ = Σ dy·x̂,  dβ = Σ dy               (summed over the axes γ does not vary along)
"""

import numpy as np

from . import cpu_kernels, gpu_kernels
from ..autograd import Function
from ..backend import get_array_module


def canonical_view(binding, param_names, batch_name="n"):
    """Merge alike adjacent axes. Returns (shape, reduce axes, γ's shape in the view, the axes that are `n`)."""
    kinds = [(r, name in param_names, name == batch_name) for name, r in zip(binding.names, binding.reduced)]
    shape, flags = [], []
    for size, kind in zip(binding.expanded_shape, kinds):
        if flags and flags[-1] == kind and not kind[2]:
            shape[-1] *= size
        else:
            shape.append(size)
            flags.append(kind)
    axes = tuple(i for i, f in enumerate(flags) if f[0])
    param_shape = tuple(n if f[1] else 1 for n, f in zip(shape, flags))
    batch_axes = tuple(i for i, f in enumerate(flags) if f[2])
    return tuple(shape), axes, param_shape, batch_axes


def moments(xv, axes, center):
    """(mean, var) over `axes` with keepdims, two-pass so a large offset does not cost precision.

    Without centering, mean is None and var is the mean square."""
    if not center:
        return None, (xv * xv).mean(axis=axes, keepdims=True)
    mean = xv.mean(axis=axes, keepdims=True)
    d = xv - mean
    d *= d
    return mean, d.mean(axis=axes, keepdims=True)


class Normalize(Function):
    """Inputs: x, then γ, then β (β only with γ). Attributes: view, axes, param_shape, eps, center, fast (a
    cpu_kernels layout or None), and either stats=(mean, var) fixed (eval) or stats=None (batch statistics,
    reported into the dict `record` when it is given)."""
    fast = stats = record = None
    plugin = pattern = None  # for labels: the plugin's name and its Pattern

    def label(self):
        if self.pattern is None:
            return self.name
        reduced = ", ".join(self.pattern.reduced_names())
        return f"{self.name} [{self.plugin}]\n{self.pattern.text}\nreduces {reduced}" + ("" if self.stats is None else " (running stats)")

    def forward(self, x, weight=None, bias=None):
        self.weight, self.bias_shape = weight, None if bias is None else bias.shape
        if self.stats is None and self.fast is not None and isinstance(x, np.ndarray):
            out, mean, var = cpu_kernels.forward(self.fast, x, weight, bias, self.view, self.param_shape, self.eps, self.center)
            self.saved = (x, mean, var)
            self._report(mean if self.center else None, var)
            return out
        xp = get_array_module(x)
        xv = x.reshape(self.view)
        if self.stats is None:
            mean, var = moments(xv, self.axes, self.center)
            self._report(mean, var)
        else:
            mean, var = self.stats
        self.invstd = 1 / xp.sqrt(var + xv.dtype.type(self.eps))
        w = None if weight is None else weight.reshape(self.param_shape)
        b = None if bias is None else bias.reshape(self.param_shape)
        self.xhat, out = gpu_kernels.normalize(xv, mean, self.invstd, w, b) if xp is not np \
            else _normalize(xv, mean, self.invstd, w, b)
        return out.reshape(x.shape)

    def _report(self, mean, var):
        if self.record is not None:
            shape = tuple(1 if i in self.axes else n for i, n in enumerate(self.view))
            self.record.update(mean=None if mean is None else mean.reshape(shape), var=var.reshape(shape))

    def backward(self, gy):
        weight, gw, gb = self.weight, None, None
        if hasattr(self, "saved"):
            dx, dw, db = cpu_kernels.backward(self.fast, self.saved[0], gy, weight, *self.saved[1:], self.view,
                                              self.param_shape, self.eps, self.center)
            if weight is not None and self.needs_grad[1]:
                gw = cpu_kernels.param_grad(dw, self.fast, self.view, self.param_shape, weight)
            if self.bias_shape is not None and self.needs_grad[2]:
                gb = cpu_kernels.param_grad(db, self.fast, self.view, self.param_shape, weight)
            return (dx, gw, gb)[:len(self.needs_grad)]
        g, xhat = gy.reshape(self.view), self.xhat
        not_param = tuple(i for i, n in enumerate(self.param_shape) if n == 1)
        if weight is not None and self.needs_grad[1]:
            gw = (g * xhat).sum(axis=not_param).reshape(weight.shape)
        if self.bias_shape is not None and self.needs_grad[2]:
            gb = g.sum(axis=not_param).reshape(self.bias_shape)
        dx = None
        if self.needs_grad[0]:
            if weight is not None:
                g = g * weight.reshape(self.param_shape)
            if self.stats is None:
                gmean = g.mean(axis=self.axes, keepdims=True) if self.center else 0
                proj = (g * xhat).mean(axis=self.axes, keepdims=True)
                dx = gpu_kernels.input_grad(g, gmean, xhat, proj, self.invstd) if not isinstance(g, np.ndarray) \
                    else _input_grad(g, gmean, xhat, proj, self.invstd)
            else:
                dx = g * self.invstd
            dx = dx.reshape(gy.shape)
        return (dx, gw, gb)[:len(self.needs_grad)]


def _normalize(xv, mean, invstd, w, b):
    """NumPy: (x̂, y) with x̂ = (x - μ)·r and y = x̂·γ + β, in as few temporaries as NumPy allows."""
    xhat = xv - mean if mean is not None else xv.copy()
    xhat *= invstd
    if w is None:
        return xhat, xhat
    out = xhat * w
    if b is not None:
        out += b
    return xhat, out


def _input_grad(g, gmean, xhat, proj, invstd):
    dx = g - gmean
    dx -= xhat * proj
    dx *= invstd
    return dx
