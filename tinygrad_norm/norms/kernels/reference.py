"""The reference kernels: array expressions that run on NumPy or CuPy alike, for any plan.

With the means over the plan's reduced axes and r = 1/√(var + eps):

    x̂ = (x - μ)·r    (no centering: x̂ = x·r, var = mean(x²))       y = x̂·γ + β
    dx = r·(g - mean(g) - x̂·mean(g·x̂)),  g = dy·γ                 (without centering drop mean(g))
    dx = r·g                                                      (fixed running statistics)
    dγ = Σ dy·x̂,  dβ = Σ dy                                       (over the axes γ is broadcast along)

The second derivative: for v arriving at dx, with ḡ = mean(g), m = mean(g·x̂), v̄ = mean(v), B = mean(v·x̂)
and A = mean(v·g) - v̄·ḡ (the means over the reduced axes; without centering ḡ = v̄ = 0):

    h   = r·(v - v̄ - x̂·B)                          the gradient w.r.t. g; gdy = h·γ, gγ = Σ dy·h
    gx  = r²·(3·m·B·x̂ - A·x̂ - B·(g - ḡ) - m·(v - v̄))
    h   = r·v,  gx = 0                              (fixed running statistics)

(dx is linear in g through a symmetric projection, hence h; gx differentiates r, x̂ and m in x.)

float16 is computed in float32 and rounded once at the end. Statistics are two-pass, so a large offset
costs no precision. An empty input (a process with no rows of a synchronized batch) has zero statistics.
"""
from ...backend import get_array_module
from .interface import Kernels, param_in_view, stats_dtype


def _wide(a):
    """a in the dtype the arithmetic runs in: float32 for float16, else unchanged (no copy)."""
    return a.astype(stats_dtype(a.dtype), copy=False)


def _xhat(plan, xv, mean, var, eps):
    r = 1 / get_array_module(xv).sqrt(var + var.dtype.type(eps))
    return (xv - mean if mean is not None else xv) * r, r


class Reference(Kernels):
    """The array expressions: every plan, on NumPy or CuPy."""
    name = "reference"
    devices = ("cpu", "cuda")
    layouts = None  # every plan, with a layout or without

    def statistics(self, plan, x):
        xv = _wide(x).reshape(plan.view)
        mean_of = lambda a: a.sum(axis=plan.axes, keepdims=True) / max(plan.count, 1)  # empty input: zeros
        if not plan.center:
            return None, mean_of(xv * xv)
        mean = mean_of(xv)
        d = xv - mean
        d *= d
        return mean, mean_of(d)


    def normalize(self, plan, x, mean, var, w, b, eps):
        y, _ = _xhat(plan, _wide(x).reshape(plan.view), mean, var, eps)
        if w is not None:
            y = y * param_in_view(plan, w)
        if b is not None:
            y = y + param_in_view(plan, b)
        return y.astype(x.dtype, copy=False).reshape(x.shape)


    def grad_sums(self, plan, x, dy, mean, var, w, eps):
        xhat, _ = _xhat(plan, _wide(x).reshape(plan.view), mean, var, eps)
        dyv = _wide(dy).reshape(plan.view)
        dw = db = None
        if w is not None:
            dw, db = param_sum(plan, dyv * xhat, w), param_sum(plan, dyv, w)
        g = _times_gamma(plan, dyv, w)
        return g.sum(axis=plan.axes, keepdims=True), (g * xhat).sum(axis=plan.axes, keepdims=True), dw, db


    def input_grad(self, plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count):
        xhat, r = _xhat(plan, _wide(x).reshape(plan.view), mean, var, eps)
        g = _times_gamma(plan, _wide(dy).reshape(plan.view), w)
        if sum_g is None:
            dx = g * r
        else:
            inv_count = 1 / max(count, 1)  # an empty input has nothing to scale
            dx = g - sum_g * inv_count if plan.center else g.copy()
            dx -= xhat * (sum_gx * inv_count)
            dx *= r
        return dx.astype(x.dtype, copy=False).reshape(x.shape)

    def double_grad_sums(self, plan, x, dy, v, mean, var, w, eps):
        xhat, _ = _xhat(plan, _wide(x).reshape(plan.view), mean, var, eps)
        g, vv = _times_gamma(plan, _wide(dy).reshape(plan.view), w), _wide(v).reshape(plan.view)
        total = lambda a: a.sum(axis=plan.axes, keepdims=True)
        return total(vv), total(vv * xhat), total(vv * g), total(g), total(g * xhat)

    def double_grad(self, plan, x, dy, v, mean, var, w, eps, sums, count):
        xhat, r = _xhat(plan, _wide(x).reshape(plan.view), mean, var, eps)
        vv = _wide(v).reshape(plan.view)
        gx = None
        if sums is None:
            h = r * vv
        else:
            g = _times_gamma(plan, _wide(dy).reshape(plan.view), w)
            v_mean, b, vg_mean, g_mean, m = (s / max(count, 1) for s in sums)
            if plan.center:
                a = vg_mean - v_mean * g_mean
                h = r * (vv - v_mean - xhat * b)
                gx = r * r * ((3 * m * b - a) * xhat - b * (g - g_mean) - m * (vv - v_mean))
            else:
                h = r * (vv - xhat * b)
                gx = r * r * ((3 * m * b - vg_mean) * xhat - b * g - m * vv)
            gx = gx.astype(x.dtype, copy=False).reshape(x.shape)
        gdy = _times_gamma(plan, h, w)
        gw = None if w is None else param_sum(plan, _wide(dy).reshape(plan.view) * h, w)
        return gx, gdy.astype(dy.dtype, copy=False).reshape(dy.shape), gw


def _times_gamma(plan, a, w):
    """a·γ for `a` in the plan's view (a itself without γ): g = dy·γ, and its adjoint."""
    return a if w is None else a * param_in_view(plan, w)


def param_sum(plan, a, w):
    """a (in the plan's view) summed over the axes γ is broadcast along, in w's shape and dtype: dγ from dy·x̂,
    dβ from dy. Arrays or Tensors (the normalize op's create_graph backward uses it too)."""
    return a.sum(axis=plan.not_param_axes).reshape(w.shape).astype(w.dtype, copy=False)


BACKEND = Reference()
