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
import math

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
    """Inputs: x, then γ, then β (β only with γ). Attributes: view, axes, param_shape, eps, center, and either
    stats=(mean, var) fixed (eval) or stats=None (batch statistics, reported into the dict `record`)."""

    def forward(self, x, weight=None, bias=None):
        xp = get_array_module(x)
        xv = x.reshape(self.view)
        if self.stats is None:
            mean, var = moments(xv, self.axes, self.center)
            if self.record is not None:
                self.record.update(mean=mean, var=var)
        else:
            mean, var = self.stats
        self.invstd = 1 / xp.sqrt(var + xv.dtype.type(self.eps))
        xhat = xv - mean if mean is not None else xv.copy()
        xhat *= self.invstd
        self.xhat, self.weight, self.bias_shape = xhat, weight, None if bias is None else bias.shape
        if weight is None:
            out = xhat
        else:
            out = xhat * weight.reshape(self.param_shape)
            if bias is not None:
                out += bias.reshape(self.param_shape)
        return out.reshape(x.shape)

    def backward(self, gy):
        g, xhat, weight = gy.reshape(self.view), self.xhat, self.weight
        not_param = tuple(i for i, n in enumerate(self.param_shape) if n == 1)
        gw = gb = dx = None
        if weight is not None and self.needs_grad[1]:
            gw = (g * xhat).sum(axis=not_param).reshape(weight.shape)
        if self.bias_shape is not None and self.needs_grad[2]:
            gb = g.sum(axis=not_param).reshape(self.bias_shape)
        if self.needs_grad[0]:
            if weight is not None:
                g = g * weight.reshape(self.param_shape)
            if self.stats is None:
                proj = (g * xhat).mean(axis=self.axes, keepdims=True)
                dx = g - g.mean(axis=self.axes, keepdims=True) if self.center else g.copy()
                dx -= xhat * proj
                dx *= self.invstd
            else:
                dx = g * self.invstd
            dx = dx.reshape(gy.shape)
        return (dx, gw, gb)[:len(self.needs_grad)]
