"""PyTorch's torch.autograd: `grad`, `backward`, `Function`, the grad modes, and `functional` (vjp, jvp, hvp,
hessian, jacobian). The engine underneath is tinygrad_norm.engine.

>>> import tinygrad_norm as tg
>>> x = tg.tensor(2.0, requires_grad=True)
>>> (g,) = tg.autograd.grad(x ** 3, x, create_graph=True)      # 3x² = 12
>>> g.item(), tg.autograd.grad(g, x)[0].item()                  # and 6x = 12
(12.0, 12.0)
"""
from ..engine import Function, backward, enable_grad, grad, is_grad_enabled, no_grad
from . import functional

__all__ = ["Function", "backward", "enable_grad", "functional", "grad", "is_grad_enabled", "no_grad"]
