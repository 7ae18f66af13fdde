"""The one normalize op behind every declared plugin; its arithmetic is the plan's kernel backend's (kernels/).

    forward:  statistics -> [sync.moments] -> normalize        (one fused call where the kernels have one)
    backward: grad_sums  -> [sync.sums]    -> input_grad       (likewise)

In eval mode the statistics are fixed (running averages) and dx = r·dy·γ. `sync`, when given, combines
what each process computed locally between the halves, so the halves always run apart then:
`sync.moments(count, mean, var) -> (count, mean, var)` and `sync.sums(Σg, Σg·x̂) -> (Σg, Σg·x̂)`, summed
over every process.
"""
from ..autograd import Function


def forward(plan, x, w, b, eps, sync=None):
    """(y, count, mean, var) with batch statistics."""
    kernels = plan.kernels
    if sync is None and kernels.forward is not None:
        y, mean, var = kernels.forward(plan, x, w, b, eps)
        return y, plan.count, mean, var
    count, (mean, var) = plan.count, kernels.statistics(plan, x)
    if sync is not None:
        count, mean, var = sync.moments(count, mean, var)
    return kernels.normalize(plan, x, mean, var, w, b, eps), count, mean, var


def backward(plan, x, dy, mean, var, w, eps, count, sync=None, fixed=False):
    """(dx, dw, db); `fixed`: the statistics were constants (eval), so dx = r·dy·γ."""
    kernels = plan.kernels
    if not fixed and sync is None and kernels.backward is not None:
        return kernels.backward(plan, x, dy, mean, var, w, eps)
    sum_g, sum_gx, dw, db = kernels.grad_sums(plan, x, dy, mean, var, w, eps)
    if fixed:
        sum_g = sum_gx = None
    elif sync is not None:
        sum_g, sum_gx = sync.sums(sum_g, sum_gx)
    return kernels.input_grad(plan, x, dy, mean, var, w, eps, sum_g, sum_gx, count), dw, db


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
        if self.stats is None:
            y, count, mean, var = forward(self.plan, x, weight, bias, self.eps, self.sync)
            self.batch_stats = (count, mean, var)
        else:
            (mean, var), count, self.batch_stats = self.stats, self.plan.count, None
            y = self.plan.kernels.normalize(self.plan, x, mean, var, weight, bias, self.eps)
        self.x, self.weight, self.mean, self.var, self.count = x, weight, mean, var, count
        return y

    def backward(self, dy):
        dx, dw, db = backward(self.plan, self.x, dy, self.mean, self.var, self.weight, self.eps, self.count,
                              self.sync, fixed=self.stats is not None)
        return (dx, dw, db)[:len(self.needs_grad)]


def normalize(x, params, plan, eps, stats=None, sync=None, **labels):
    """Normalize the Tensor x by `plan` with γ, β in `params` (a list, possibly empty).

    Returns (y, batch statistics (count, mean, var) in the plan's statistics shape, or None when `stats`
    fixed them)."""
    op = Normalize(plan=plan, eps=eps, stats=stats, sync=sync, **labels)
    return op(x, *params), op.batch_stats
