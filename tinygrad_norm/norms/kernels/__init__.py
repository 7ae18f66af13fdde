"""One kernel interface for the normalize op, three implementations behind it.

    reference   NumPy or CuPy array expressions: any plan, any device; the oracle the others are tested against
    numba_cpu   fused CPU kernels compiled by numba (the `fast` extra), for plans with a layout
    cuda        CUDA C kernels compiled by CuPy through NVRTC, for plans with a layout

Each is a module with the same functions; the statistics and the gradient sums are where the interface
splits, so that a step between the halves can combine them across processes:

    statistics(plan, x)                             -> mean, var      (mean None without centering)
    normalize(plan, x, mean, var, w, b, eps)        -> y
    grad_sums(plan, x, dy, mean, var, w, eps)       -> Σg, Σg·x̂, dw, db   (g = dy·γ; dw, db shaped like w)
    input_grad(plan, x, dy, mean, var, w, eps, Σg, Σg·x̂, count) -> dx   (Σg None: fixed statistics)

and, where an implementation can fuse the halves of one direction (numba_cpu), optionally

    forward(plan, x, w, b, eps)                     -> y, mean, var
    backward(plan, x, dy, mean, var, w, eps)        -> dx, dw, db      (batch statistics)

which the op uses when nothing sits between the halves (normalize.forward / normalize.backward).

x, y, dy and dx have the input's shape and dtype; mean and var have `plan.stats_shape` and are float32 for
float16 input (the statistics are accumulated in float32 or wider), else x's dtype, or wider: numba_cpu's are
float64, its accumulators' precision, so that its backward subtracts an unrounded mean. w, b (None when absent)
are the parameters as the layer holds them; dw, db come back in their shape and dtype. bfloat16 has no
NumPy dtype, so it never reaches a kernel.
"""
from . import cuda, numba_cpu, reference


def choose(device, layout):
    """The implementation for one plan: the fused kernels where the layout is one they cover."""
    if layout is None:
        return reference
    if device == "cuda":
        return cuda
    return numba_cpu if numba_cpu.available() else reference
