"""The one normalize op behind every declared plugin; its arithmetic is the kernels' (see kernels/).

    forward:  statistics -> [sync.moments] -> normalize        (fused into one call without sync)
    backward: grad_sums  -> [sync.sums]    -> input_grad       (fused into one call without sync)

In eval mode the statistics are fixed (running averages) and dx = r·dy·γ. `sync`, when given, combines
what each process computed locally between the halves: `sync.moments(count, mean, var) -> (count, mean,
var)` and `sync.sums(Σg, Σg·x̂) -> (Σg, Σg·x̂)`, summed over every process.
"""
from ..autograd import Function


class Normalize(Function):
    """Inputs: x, then γ, then β (β only with γ). Attributes: plan (a Plan), eps, stats (None for batch
    statistics, or fixed (mean, var)), sync (None or a combiner). After forward, `batch_stats` is
    (count, mean, var) of the batch, or None with fixed statistics."""
    stats = sync = None
    plugin = pattern = None  # for labels: the plugin's name and its Pattern

    def label(self):
        if self.pattern is None:
            return self.name
        reduced = ", ".join(self.pattern.reduced_names())
        return f"{self.name} [{self.plugin}]\n{self.pattern.text}\nreduces {reduced}" + ("" if self.stats is None else " (running stats)")

    def forward(self, x, weight=None, bias=None):
        plan, kernels, eps = self.plan, self.plan.kernels, self.eps
        count = plan.count
        if self.stats is not None:
            mean, var = self.stats
            y = kernels.normalize(plan, x, mean, var, weight, bias, eps)
        elif self.sync is None:
            y, mean, var = kernels.forward(plan, x, weight, bias, eps)
        else:
            count, mean, var = self.sync.moments(count, *kernels.statistics(plan, x))
            y = kernels.normalize(plan, x, mean, var, weight, bias, eps)
        self.x, self.weight, self.mean, self.var, self.count = x, weight, mean, var, count
        self.batch_stats = None if self.stats is not None else (count, mean, var)
        return y

    def backward(self, dy):
        plan, kernels, eps = self.plan, self.plan.kernels, self.eps
        x, w, mean, var = self.x, self.weight, self.mean, self.var
        if self.stats is None and self.sync is None:
            dx, dw, db = kernels.backward(plan, x, dy, mean, var, w, eps)
        else:
            sum_g, sum_gx, dw, db = kernels.grad_sums(plan, x, dy, mean, var, w, eps)
            if self.stats is not None:
                sum_g = sum_gx = None
            elif self.sync is not None:
                sum_g, sum_gx = self.sync.sums(sum_g, sum_gx)
            dx = kernels.input_grad(plan, x, dy, mean, var, w, eps, sum_g, sum_gx, self.count)
        return (dx, dw, db)[:len(self.needs_grad)]


def normalize(x, params, plan, eps, stats=None, sync=None, **labels):
    """Normalize the Tensor x by `plan` with γ, β in `params` (a list, possibly empty).

    Returns (y, batch statistics (count, mean, var) in the plan's statistics shape, or None when `stats`
    fixed them)."""
    op = Normalize(plan=plan, eps=eps, stats=stats, sync=sync, **labels)
    return op(x, *params), op.batch_stats
