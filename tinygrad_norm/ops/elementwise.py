"""Elementwise ops: arithmetic, unary math, activations, selection. Backward sits beside each forward."""
import contextlib

import numpy as np

from ..engine import Function, is_tensor
from ..backend import get_array_module
from .namespace import array_of, namespace_of


class Cast(Function):
    """a.astype(dtype) between floating-point dtypes; the gradient is cast back to a's dtype."""
    def forward(self, a):
        self.source = a.dtype
        return a.astype(self.dtype)

    def backward(self, g, y, a): return g.astype(self.source, copy=False)


class Add(Function):
    def forward(self, a, b): return a + b
    def backward(self, g, y, a, b): return g, g


class Sub(Function):
    def forward(self, a, b): return a - b
    def backward(self, g, y, a, b): return g, -g


class Mul(Function):
    def forward(self, a, b): return a * b

    def backward(self, g, y, a, b):
        return (g * b if self.needs_grad[0] else None), (g * a if self.needs_grad[1] else None)


class Div(Function):
    def forward(self, a, b): return a / b

    def backward(self, g, y, a, b):
        ga = g / b
        return ga, (-ga * a / b if self.needs_grad[1] else None)


class Neg(Function):
    def forward(self, a): return -a
    def backward(self, g, y, a): return -g


def _power(a, p):
    """a ** p, by square roots where p is a common fraction (several times cheaper than pow on floats)."""
    xp = namespace_of(a)
    if p == 1:
        return a
    if p == 2:
        return a * a
    if p in (0.5, 0.75):
        s = xp.sqrt(a)
        return s if p == 0.5 else s * xp.sqrt(s)
    if p in (-0.5, -0.75):
        r = 1 / xp.sqrt(a)
        return r if p == -0.5 else r * xp.sqrt(r)
    return a ** p


class PowScalar(Function):
    """a ** p for a Python number p: d/da = p * a^(p-1) (= p * out / a for negative p, saving a pow); 0 for p = 0."""
    def forward(self, a): return _power(a, self.p)

    def backward(self, g, y, a):
        if self.p == 0:
            return namespace_of(g).zeros_like(g)
        if self.p < 0:
            return g * self.p * y / a
        return g * self.p * _power(a, self.p - 1)


class Pow(Function):
    """a ** b for a tensor exponent: d/da = b * a^(b-1), d/db = a^b * log(a). As PyTorch: d/da is 0 where b = 0
    and d/db is 0 where a = 0 and b >= 0 (the limits, where the formulas give 0 · inf)."""
    def forward(self, a, b): return a ** b

    def backward(self, g, y, a, b):
        xp = namespace_of(g)
        ga = gb = None
        with quiet(xp):
            if self.needs_grad[0]:  # g outside the where, so that its own derivative there is 0, not 0·inf
                ga = g * xp.where(array_of(b) == 0, 0, b * a ** (b - 1)).astype(g.dtype, copy=False)
            if self.needs_grad[1]:
                gb = g * xp.where((array_of(a) == 0) & (array_of(b) >= 0), 0, y * xp.log(a)).astype(g.dtype, copy=False)
        return ga, gb


def quiet(xp):
    """Silence NumPy's warnings where inf and NaN are expected along the way (CuPy never warns); `xp` is an
    array module or a backward's namespace (the Tensor one computes with NumPy or CuPy underneath)."""
    return contextlib.nullcontext() if getattr(xp, "module", xp) not in (np, None) else \
        np.errstate(divide="ignore", invalid="ignore")


class Exp(Function):
    def forward(self, a): return get_array_module(a).exp(a)
    def backward(self, g, y, a): return g * y


class Log(Function):
    def forward(self, a): return get_array_module(a).log(a)
    def backward(self, g, y, a): return g / a


class Sqrt(Function):
    def forward(self, a): return get_array_module(a).sqrt(a)
    def backward(self, g, y, a): return g / (2 * y)


class Abs(Function):
    def forward(self, a): return abs(a)
    def backward(self, g, y, a): return g * namespace_of(a).sign(a)


class Tanh(Function):
    def forward(self, a): return get_array_module(a).tanh(a)
    def backward(self, g, y, a): return g * (1 - y * y)


class Sigmoid(Function):
    def forward(self, a):
        return 0.5 * (get_array_module(a).tanh(0.5 * a) + 1)  # overflow-free form of 1 / (1 + exp(-a))

    def backward(self, g, y, a): return g * y * (1 - y)


class Gelu(Function):
    """x·Φ(x) with Φ the normal CDF; 'tanh' uses PyTorch's tanh approximation of Φ. What forward computes
    for backward is kept on arrays and computed again (differentiably) on Tensors, by the same helpers."""
    def forward(self, a):
        if self.approximate == "tanh":
            self.t, self.dt = _tanh_gelu_parts(a)
            return 0.5 * a * (1 + self.t)
        self.cdf = _normal_cdf(a)
        return a * self.cdf

    def backward(self, g, y, a):
        xp = namespace_of(g)
        if self.approximate == "tanh":
            t, dt = _tanh_gelu_parts(a) if is_tensor(g) else (self.t, self.dt)
            return g * (0.5 * (1 + t) + 0.5 * a * dt)
        cdf = _normal_cdf(a) if is_tensor(g) else self.cdf
        return g * (cdf + a * xp.exp(-0.5 * a ** 2) / float(np.sqrt(2 * np.pi)))


def _tanh_gelu_parts(a):
    """t = tanh(k·(a + 0.044715 a³)) with k = √(2/π), and dt/da."""
    k = float(np.sqrt(2 / np.pi))
    t = namespace_of(a).tanh(k * (a + 0.044715 * a ** 3))
    return t, (1 - t ** 2) * k * (1 + 3 * 0.044715 * a ** 2)


def _normal_cdf(a):
    """Φ(a) = (1 + erf(a/√2)) / 2."""
    return 0.5 * (1 + namespace_of(a).erf(a / float(np.sqrt(2))))


class Erf(Function):
    """erf(a); d/da = 2/√π · exp(-a²)."""
    def forward(self, a): return erf(a)
    def backward(self, g, y, a): return g * namespace_of(a).exp(-(a * a)) * float(2 / np.sqrt(np.pi))


def erf(x):
    """erf to about 1e-16 relative in float64: the Taylor series for |x| < 2.5, the continued fraction beyond."""
    xp = get_array_module(x)
    x64 = x.astype(xp.float64)
    ax = xp.abs(x64)
    small = xp.minimum(ax, 2.5)
    term, total, n = small.copy(), small.copy(), 0
    while n < 80:  # erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)); about 60 terms reach 1e-17 at |x| = 2.5
        n += 1
        term = term * -small ** 2 / n
        delta = term / (2 * n + 1)
        total = total + delta
        if delta.size == 0 or float(xp.nanmax(xp.abs(delta))) < 1e-17:  # NaN input must not keep it going
            break
    series = 2 / xp.sqrt(xp.pi) * total
    big = xp.maximum(ax, 2.5)  # erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
    frac = big
    for k in range(60, 0, -1):
        frac = big + (k / 2) / frac
    tail = 1 - xp.exp(-big ** 2) / (xp.sqrt(xp.pi) * frac)
    return (xp.sign(x64) * xp.where(ax < 2.5, series, tail)).astype(x.dtype)


class Relu(Function):
    """max(a, 0); NaN stays NaN, and its gradient passes where a is not <= 0 (NaN included), as in PyTorch."""
    def forward(self, a):
        xp = get_array_module(a)
        if self.needs_grad[0]:
            self.mask = xp.logical_not(a <= 0)
        return xp.maximum(a, 0)  # not a * mask: -inf * 0 is NaN

    def backward(self, g, y, a): return g * self.mask


class Maximum(Function):
    """Elementwise max, NaN if either is NaN; on ties the gradient is split evenly, and where a NaN makes the
    inputs unordered each gets all of it (PyTorch's rule)."""
    choose = staticmethod(lambda xp: xp.maximum)
    beats = staticmethod(lambda a, b: a > b)

    def forward(self, a, b):
        xp = get_array_module(a, b)
        if any(self.needs_grad):  # floating point then: each input's share of the gradient is 1 where it wins
            half_ties = (a == b) * a.dtype.type(0.5)  # or a NaN leaves the two unordered, 1/2 on a tie
            self.share_a = (~self.beats(b, a)).astype(a.dtype) - half_ties
            self.share_b = (~self.beats(a, b)).astype(a.dtype) - half_ties
        return self.choose(xp)(a, b)

    def backward(self, g, y, a, b):
        return g * self.share_a, g * self.share_b


class Minimum(Maximum):
    choose = staticmethod(lambda xp: xp.minimum)
    beats = staticmethod(lambda a, b: a < b)


class Where(Function):
    """where(cond, a, b) with a fixed boolean `cond` (not differentiable)."""
    def forward(self, a, b):
        return get_array_module(a, b).where(self.cond, a, b)

    def backward(self, g, y, a, b):
        return g * self.cond, g * ~self.cond


class Clip(Function):
    """clip(a, low, high); the gradient passes where low <= a <= high."""
    def forward(self, a):
        xp = get_array_module(a)
        self.inside = (a >= (-xp.inf if self.low is None else self.low)) & (a <= (xp.inf if self.high is None else self.high))
        return xp.clip(a, self.low, self.high)

    def backward(self, g, y, a): return g * self.inside
