"""A pattern's batch statistics as one differentiable op, for plugins that compute with them (NormLayer.moments):

    forward:   [mean; var] = the plan's statistics kernel (fused where the kernels cover the layout)
               [sync.moments: the whole batch's, merged from every process's]
    backward:  dx = (ḡ_mean + 2·(x − mean)·ḡ_var) / count          ḡ: the gradient of each statistic,
               [summed over every process first: each one's loss reaches the shared statistics]

The two statistics leave as one Tensor of shape (2, *plan.stats_shape), in the input's dtype; the backward is
written with operators only, so it runs on arrays and, under create_graph, on Tensors.
"""
from ..backend import get_array_module
from ..engine import Function


class Moments(Function):
    """Input x; attributes plan (centered), sync (None or a combiner). Output [mean; var] (biased var)."""
    sync = None

    def forward(self, x):
        plan = self.plan
        count, (mean, var) = plan.count, plan.kernels.statistics(plan, x)
        if self.sync is not None:
            count, mean, var = self.sync.moments(count, mean, var)
        self.count = count
        return get_array_module(x).stack([mean, var]).astype(x.dtype, copy=False)

    def backward(self, g, y, x):
        if self.sync is not None:
            g = self.sync.total(g)
        n = max(self.count, 1)
        scale = g[1] * (2 / n)  # dx = x·scale + shift: the statistics-shaped parts first, one pass over x
        shift = g[0] / n - y[0] * scale
        return (x.reshape(self.plan.view) * scale + shift).reshape(x.shape)
