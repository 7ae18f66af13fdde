"""The kernel interface of the normalize op: what a backend must define, what it may, and the helpers they share.

A backend subclasses `Kernels`, says where it runs and which layouts it covers, and defines the four
required functions; the statistics and the gradient sums are where the interface splits, so that a step
between the halves can combine them across processes:

    statistics(plan, x)                             -> mean, var      (mean None without centering)
    normalize(plan, x, mean, var, w, b, eps)        -> y
    grad_sums(plan, x, dy, mean, var, w, eps)       -> Σg, Σg·x̂, dw, db   (g = dy·γ; dw, db shaped like w)
    input_grad(plan, x, dy, mean, var, w, eps, Σg, Σg·x̂, count) -> dx   (Σg None: fixed statistics)

Where a backend can fuse the halves of one direction it may also define

    forward(plan, x, w, b, eps)                     -> y, mean, var
    backward(plan, x, dy, mean, var, w, eps)        -> dx, dw, db      (batch statistics)

which the op uses when nothing sits between the halves (normalize.forward / normalize.backward).

The second derivative (create_graph=True) is the backward of input_grad: for v, the gradient arriving at
dx, the sums first, then the gradients of x, dy and w (the reference's where a backend has neither):

    double_grad_sums(plan, x, dy, v, mean, var, w, eps)        -> Σv, Σv·x̂, Σv·g, Σg, Σg·x̂
    double_grad(plan, x, dy, v, mean, var, w, eps, sums, count) -> gx, gdy, gw   (sums None: fixed statistics)

x, y, dy and dx have the input's shape and dtype; mean and var have `plan.stats_shape` and are float32 for
float16 input (`stats_dtype`), else x's dtype, or wider. w, b (None when absent) are the parameters as the
layer holds them; dw, db come back in their shape and dtype. bfloat16 has no NumPy dtype, so it never
reaches a kernel. A subclass that leaves out a required function, or defines a public one the interface
does not have (a misspelt `forwrd`), is a TypeError where it is declared.
"""
import numpy as np

from ...backend import get_array_module

REQUIRED = ("statistics", "normalize", "grad_sums", "input_grad")
OPTIONAL = ("forward", "backward", "double_grad_sums", "double_grad")
DECLARED = ("name", "devices", "layouts", "priority", "automatic", "available", "covers")


class Kernels:
    """A kernel backend. Declare, in the subclass:

        name      the registry name ("numba_cpu")
        devices    the devices whose arrays it computes on ("cpu", "cuda")
        layouts    the plan layouts it covers ("rows", "columns"); None: every plan, layout or not
        priority   among the backends covering a plan, the highest is chosen
        automatic  False for a backend the policy takes only when named (TINYGRAD_NORM_KERNELS)
    """
    name = None
    devices = ()
    layouts = ()
    priority = 0
    automatic = True
    forward = backward = None  # the optional fused directions
    double_grad_sums = double_grad = None  # the optional second derivative

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        missing = [f for f in REQUIRED if getattr(cls, f, None) is getattr(Kernels, f, None)]
        unknown = [f for f, v in vars(cls).items()
                   if callable(v) and not f.startswith("_") and f not in REQUIRED + OPTIONAL + DECLARED]
        if missing or unknown:
            raise TypeError(f"kernel backend {cls.__name__}: " + "; ".join(
                ([f"missing the required {', '.join(missing)}"] if missing else []) +
                ([f"{', '.join(unknown)} is not part of the kernel interface (required: {', '.join(REQUIRED)}; "
                  f"optional: {', '.join(OPTIONAL)})"] if unknown else [])))

    def available(self):
        """(True, "") where this backend can run here, else (False, why)."""
        return True, ""

    def covers(self, layout):
        """Whether this backend computes a plan of this layout (None: no layout)."""
        return self.layouts is None or (layout is not None and layout[0] in self.layouts)

    def __repr__(self):
        return f"<kernels {self.name}>"

    # the required functions, which every subclass defines (the signatures above)
    def statistics(self, plan, x):
        raise NotImplementedError

    def normalize(self, plan, x, mean, var, w, b, eps):
        raise NotImplementedError

    def grad_sums(self, plan, x, dy, mean, var, w, eps):
        raise NotImplementedError

    def input_grad(self, plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count):
        raise NotImplementedError


def stats_dtype(dtype):
    """The dtype of the statistics and of the kernels' arithmetic: float32 for float16 input, else the input's."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def param_in_view(plan, p):
    """γ or β shaped to broadcast against the plan's view (1 where it does not vary); None stays None."""
    return None if p is None else p.reshape(plan.param_shape)


def param_block(plan, p, dtype):
    """γ or β as a fused kernel reads it: over view[lo:hi], the part of the view the parameters span,
    broadcast where they do not vary, contiguous, in `dtype`; None stays None. Each layout kernel reshapes it
    (rows: (K, Ip), columns: (K,), CUDA: flat)."""
    if p is None:
        return None
    xp = get_array_module(p)
    _, _, (lo, hi) = plan.layout
    block = p.astype(dtype, copy=False).reshape(plan.param_shape[lo:hi])
    if block.shape != plan.view[lo:hi]:  # (LayerNorm's γ spans the whole block already: no broadcast to pay for)
        block = xp.broadcast_to(block, plan.view[lo:hi])
    return xp.ascontiguousarray(block)


def fold_param_grad(plan, partial, like):
    """A layout kernel's parameter gradient over view[lo:hi] (any shape of that size), summed over the axes
    γ is broadcast along there -> `like`'s shape and dtype."""
    _, _, (lo, hi) = plan.layout
    g = partial.reshape(plan.view[lo:hi])
    axes = tuple(i for i, n in enumerate(plan.param_shape[lo:hi]) if n == 1 and plan.view[lo + i] != 1)
    return (g.sum(axis=axes) if axes else g).reshape(like.shape).astype(like.dtype, copy=False)
