"""The plan: a pattern fitted to one input shape, reduced to what the kernels need.

A layer plans each input shape once. Adjacent axes that are alike (both reduced or both kept, both
carrying parameters or not, and never the batch axis) are merged into a canonical view, so BatchNorm on
(N, C, H, W) runs on (N, C, H·W) and LayerNorm on (B, T, D) on (B·T, D). Every view whose kept axes form
one block is also given a layout the fused kernels cover:

    ("rows", (B, K, Ip, Ir), (lo, hi))   statistics per (b, k) over (Ip, Ir); γ varies along (K, Ip)
                                         LayerNorm, RMSNorm, InstanceNorm, GroupNorm
    ("columns", (G, B, K, I), (lo, hi))  statistics per (g, k) over (B, I); γ varies along K
                                         BatchNorm (G = 1), ghost-batch norm (G ghost batches of B)

view[lo:hi] is the part of the view that γ and β span. Anything else, and an empty input, has layout None
and runs on the reference kernels. Which kernels run a plan is the kernels package's policy (`choose`).
"""
import math
from dataclasses import dataclass
from functools import cached_property

from .kernels import choose


@dataclass(frozen=True)
class Plan:
    view: tuple           # the canonical view
    axes: tuple           # the view's reduced axes
    param_shape: tuple    # γ's shape broadcast against the view (1 where γ does not vary)
    batch_axes: tuple     # the view's axes that are the batch axis `n`
    center: bool          # subtract the mean (False: divide by the root mean square)
    layout: tuple         # see the module docstring; None where no fused kernel applies
    kernels: object       # the backend: a kernels.Kernels

    @cached_property  # read several times per call: computed once per plan
    def count(self):
        """How many elements share one set of statistics."""
        return math.prod(self.view[i] for i in self.axes)

    @cached_property
    def stats_shape(self):
        """The statistics' shape: the view with the reduced axes kept as 1."""
        return tuple(1 if i in self.axes else n for i, n in enumerate(self.view))

    @cached_property
    def not_param_axes(self):
        """The view's axes γ is broadcast along: its gradient sums over them."""
        return tuple(i for i, n in enumerate(self.param_shape) if n == 1)


def canonical_view(binding, param_names, batch_name):
    """Merge alike adjacent axes. Returns (view, reduced axes, γ's shape in the view, the batch axes)."""
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


def layout(view, axes, param_shape):
    """The fused kernels' layout of a canonical view (see the module docstring), or None."""
    reduced = [i in axes for i in range(len(view))]
    params = [n != 1 for n in param_shape]
    kept = [i for i, r in enumerate(reduced) if not r]
    if not kept or not axes:
        return None
    runs = [i for i in kept if i == 0 or reduced[i - 1]]  # where each run of kept axes starts
    if runs == [0]:  # rows: kept axes lead; those without parameters become B, those with them K
        hi = kept[-1] + 1
        first = next((i for i in kept if params[i]), hi)
        last = next((i for i in range(hi, len(view)) if not params[i]), len(view))  # params on a prefix of the pool
        if any(not params[i] for i in range(first, hi)) or any(params[i] for i in range(last, len(view))):
            return None
        sizes = tuple(math.prod(view[a:b]) for a, b in ((0, first), (first, hi), (hi, last), (last, len(view))))
        return "rows", sizes, (first, last)
    # columns: [G kept][B reduced][K kept][I reduced], G possibly empty, parameters only along K
    if len(runs) > 2 or (len(runs) == 2 and runs[0] != 0):
        return None
    g_end = next(i for i in range(len(view)) if reduced[i]) if len(runs) == 2 else 0
    lo = runs[-1]
    hi = next((i for i in range(lo, len(view)) if reduced[i]), len(view))
    if any(params[i] for i in range(len(view)) if not lo <= i < hi):
        return None
    return "columns", tuple(math.prod(view[a:b]) for a, b in ((0, g_end), (g_end, lo), (lo, hi), (hi, len(view)))), \
        (lo, hi)


def make_plan(binding, param_names, batch_name, center, device):
    """Plan one input shape on one device: the view, its layout, and the backend the policy picks for them."""
    view, axes, param_shape, batch_axes = canonical_view(binding, param_names, batch_name)
    fit = layout(view, axes, param_shape) if math.prod(view) else None  # empty input: the reference kernels
    return Plan(view, axes, param_shape, batch_axes, center, fit, choose(device, fit))

