"""Gradient clipping, as torch.nn.utils: in place on each parameter's .grad, after backward, before step."""
import math

from ..backend import get_array_module
from ..tensor import Tensor


def _grads(parameters):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"expected Tensors (a model's parameters()); got {type(p).__name__}")
    return [p.grad.data for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale every gradient by min(1, max_norm / (total + 1e-6)), where total is the norm_type-norm of all the
    gradients together (the norm of their norms); returns total as a 0-d Tensor. norm_type inf is the largest
    |g|, -inf the smallest."""
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(0.0)
    xp = get_array_module(grads[0])
    if math.isinf(norm_type):
        extreme = (lambda a: a.max()) if norm_type > 0 else (lambda a: a.min())
        total = extreme(xp.stack([extreme(xp.abs(g)) if g.size else xp.zeros((), g.dtype) for g in grads]))
    else:
        norms = [(xp.abs(g) ** norm_type).sum() ** (1 / norm_type) for g in grads]
        total = (xp.stack(norms) ** norm_type).sum() ** (1 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef.astype(g.dtype)
    return Tensor._from_array(xp.asarray(total))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        get_array_module(g).clip(g, -clip_value, clip_value, out=g)
