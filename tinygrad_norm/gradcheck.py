"""Numerical gradient checks: autograd's first and second derivatives against central differences in float64."""
import numpy as np

from .engine import enable_grad, grad, no_grad
from .backend import as_numpy
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Autograd and central differences disagree; the message names the input and the element."""


def _as_float64_inputs(inputs):
    xs = [Tensor._from_array(x.data.astype(np.float64), x.requires_grad)  # a copy, on the input's device
          if isinstance(x, Tensor) and x.dtype.kind == "f" else x for x in inputs]
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:  # nothing marked: check every floating-point tensor
        checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.dtype.kind == "f"]
        for i in checked:
            xs[i].requires_grad = True
    if not checked:
        raise ValueError("gradcheck needs at least one floating-point Tensor among the inputs")
    return xs, checked


def _projection(fn, xs, weights):
    """sum_k <w_k, out_k> for fn's output(s): one scalar whose gradient checks every output at once."""
    outs = fn(*xs)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    if weights is None:
        rng = np.random.default_rng(0)
        weights = [Tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device) for o in outs]
    return sum((o * w).sum() for o, w in zip(outs, weights)), weights


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Check fn's gradients w.r.t. its Tensor inputs (those with requires_grad, else all float ones).

    The inputs are copied to float64 on their own device (the comparison runs on the host); fn(*inputs) may
    return a Tensor or a tuple of them. Each output is projected on a fixed random cotangent w, and
    d<w, fn(x)>/dx from backward is compared with (f(x + eps) - f(x - eps)) / 2eps element by element.
    Returns True or raises GradcheckError.
    """
    xs, checked = _as_float64_inputs(inputs)
    total, weights = _projection(fn, xs, None)
    if not total.requires_grad:
        raise GradcheckError("fn's output does not depend on any checked input through the graph")
    analytic = grad(total, [xs[i] for i in checked], allow_unused=True)
    _compare(lambda: _projection(fn, xs, weights)[0].item(), [(f"input {i}", xs[i]) for i in checked], analytic,
             eps, atol, rtol, "gradcheck")
    return True


def gradgradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_elements=None):
    """Check fn's second derivatives: the gradient of the first derivative (create_graph=True) against
    central differences of the first derivative, in float64, w.r.t. each checked input and w.r.t. the
    cotangents the first derivative was taken with (PyTorch's grad_outputs), as PyTorch's gradgradcheck.

    With s(x, w) = Σ_i <u_i, ∂<w, fn(x)>/∂x_i> for random cotangents w and u, ds/dx and ds/dw from a second
    backward pass are compared with central differences of s, each s one plain backward. max_elements: at
    most that many elements of each tensor are checked (a fixed random choice), for large inputs.
    Returns True or raises GradcheckError (which names the input, or the cotangent, and the element)."""
    xs, checked = _as_float64_inputs(inputs)
    targets = [xs[i] for i in checked]
    total, weights = _projection(fn, xs, None)
    if not total.requires_grad:
        raise GradcheckError("fn's output does not depend on any checked input through the graph")
    for w in weights:
        w.requires_grad = True
    rng = np.random.default_rng(1)
    us = [rng.standard_normal(x.shape) for x in targets]

    def second(first):
        return sum(((g * Tensor(u, dtype=g.dtype, device=g.device)).sum() for g, u in zip(first, us) if g is not None),
                   Tensor(0.0, dtype=np.float64))

    total = _projection(fn, xs, weights)[0]
    s = second(grad(total, targets, create_graph=True, allow_unused=True))
    analytic = grad(s, targets + weights, allow_unused=True) if s.requires_grad else [None] * (len(targets) + len(weights))

    def numeric_s():
        with enable_grad():
            first = grad(_projection(fn, xs, weights)[0], targets, allow_unused=True)
        return second(first).item()
    _compare(numeric_s, [(f"input {i}", xs[i]) for i in checked] + [(f"grad_output {k}", w) for k, w in enumerate(weights)],
             analytic, eps, atol, rtol, "gradgradcheck", max_elements)
    return True


def _compare(scalar, tensors, analytic, eps, atol, rtol, what, max_elements=None):
    """Each (name, tensor)'s `analytic` gradient (None: zero) against central differences of scalar(), at
    every element or at `max_elements` of them (a fixed random choice; the others are not compared)."""
    rng = np.random.default_rng(2)
    for (name, x), g in zip(tensors, analytic):
        found = np.zeros(x.shape) if g is None else as_numpy(g.data)
        flat = x.data.reshape(-1)
        chosen = range(flat.size) if max_elements is None or flat.size <= max_elements else \
            np.sort(rng.choice(flat.size, max_elements, replace=False))
        numeric = found.copy()  # elements not chosen compare equal
        with no_grad():
            for k in chosen:
                orig = flat[k].item()  # a number: CuPy's flat[k] is a view that the next line would change
                flat[k] = orig + eps
                hi = scalar()
                flat[k] = orig - eps
                lo = scalar()
                flat[k] = orig
                numeric.reshape(-1)[k] = (hi - lo) / (2 * eps)
        err = np.abs(found - numeric) - (atol + rtol * np.abs(numeric))
        if not np.all(err <= 0):  # also catches NaN
            k = np.unravel_index(np.nanargmax(np.where(np.isnan(err), np.inf, err)), x.shape)
            raise GradcheckError(
                f"{what} failed for {name} (shape {x.shape}) at element {tuple(int(j) for j in k)}: "
                f"autograd gives {found[k]:.8g}, central differences give {numeric[k]:.8g} "
                f"(|difference| {abs(found[k] - numeric[k]):.3g} > atol {atol} + rtol {rtol} * |numeric|)")


def gradcheck_module(module, *inputs, fn=None, **tolerances):
    """gradcheck of module(*inputs), or fn(*inputs) calling the module, with respect to the inputs and every
    parameter of the module: float64 copies of the parameters are swapped in while fn runs."""
    return gradcheck(*_with_parameters(module, inputs, fn), **tolerances)


def gradgradcheck_module(module, *inputs, fn=None, **tolerances):
    """gradgradcheck of module(*inputs) (or fn) w.r.t. the inputs and every parameter, as gradcheck_module."""
    return gradgradcheck(*_with_parameters(module, inputs, fn), **tolerances)


def buffer_restorer(module):
    """A function that puts the module's buffers back as they are now (a copy each time, so it can be called
    again): for checks that evaluate a training forward, which may move them, several times."""
    buffers = [(b, b.data.copy()) for b in module.buffers() if b is not None]

    def restore():
        for b, data in buffers:
            b.data = data.copy()
    return restore


def _with_parameters(module, inputs, fn):
    """(a function of inputs and parameters that runs the module with those parameters swapped in, its
    arguments: the inputs, then copies of the parameters, all requiring grad). The module's buffers are as
    they were before every call, so a training forward that moves them (running statistics a correction reads,
    a power iteration's vectors) is the same function at every evaluation."""
    slots = [(m, name) for m in module.modules() for name, p in m._parameters.items() if p is not None]
    restore_buffers = buffer_restorer(module)
    call = fn or module

    def run(*args):
        saved = [m._parameters[name] for m, name in slots]
        for (m, name), p in zip(slots, args[len(inputs):]):
            m._parameters[name] = p
        restore_buffers()
        try:
            return call(*args[:len(inputs)])
        finally:
            for (m, name), p in zip(slots, saved):
                m._parameters[name] = p
            restore_buffers()
    params = [Tensor(m._parameters[name].data, requires_grad=True) for m, name in slots]
    inputs = [Tensor(x.data, requires_grad=True) if isinstance(x, Tensor) and x.dtype.kind == "f" else x for x in inputs]
    return (run, *inputs, *params)
