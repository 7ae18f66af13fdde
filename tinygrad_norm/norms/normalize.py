"""The one normalize op behind every declared plugin; its arithmetic is the plan's kernel backend's (kernels/).

    forward:  statistics -> [sync.moments] -> normalize        (one fused call where the kernels have one)
    backward: grad_sums  -> [sync.sums]    -> input_grad       (likewise)

In eval mode the statistics are fixed (running averages) and dx = r·dy·γ. `sync`, when given, combines
what each process computed locally between the halves, so the halves always run apart then:
`sync.moments(count, mean, var) -> (count, mean, var)` and `sync.sums(*sums) -> sums`, each summed over
every process.

The gradient of the gradient (create_graph=True) is split the same way: dx is the op NormalizeGrad, whose
backward is the closed form of the second derivative (the kernels' double_grad_sums, [sync.sums],
double_grad); dγ = Σ dy·x̂ and dβ = Σ dy are ops on Tensors, with x̂ this op again without parameters.
"""
from ..engine import Function, is_tensor
from .kernels import reference


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
    statistics, or fixed (mean, var)), given (None, or batch statistics (count, mean, var) computed already,
    synchronized where sync is on, and differentiated as the ones computed here), sync (None or a combiner).
    After forward, `batch_stats` is (count, mean, var) of the batch, or None with fixed statistics."""
    stats = sync = given = None
    plugin = pattern = None  # for labels: the plugin's name and its Pattern

    def label(self):
        if self.pattern is None:
            return self.name
        reduced = ", ".join(self.pattern.reduced_names())
        return f"{self.name} [{self.plugin}]\n{self.pattern.text}\nreduces {reduced}" + ("" if self.stats is None else " (running stats)")

    def forward(self, x, weight=None, bias=None):
        if self.given is not None:
            count, mean, var = self.batch_stats = self.given
            y = self.plan.kernels.normalize(self.plan, x, mean, var, weight, bias, self.eps)
        elif self.stats is None:
            y, count, mean, var = forward(self.plan, x, weight, bias, self.eps, self.sync)
            self.batch_stats = (count, mean, var)
        else:
            (mean, var), count, self.batch_stats = self.stats, self.plan.count, None
            y = self.plan.kernels.normalize(self.plan, x, mean, var, weight, bias, self.eps)
        self.mean, self.var, self.count = mean, var, count
        return y

    def backward(self, dy, y, x, weight=None, bias=None):
        if not is_tensor(dy):
            dx, dw, db = backward(self.plan, x, dy, self.mean, self.var, weight, self.eps, self.count, self.sync,
                                  fixed=self.stats is not None)
            return (dx, dw, db)[:len(self.needs_grad)]
        return self._graph_backward(dy, x, weight)

    def _graph_backward(self, dy, x, w):
        """dx, dγ, dβ as Tensors with a graph (create_graph=True)."""
        plan, needs = self.plan, self.needs_grad
        dx = dw = db = None
        if needs[0]:
            dx = NormalizeGrad.apply(x, dy, *([] if w is None else [w]), plan=plan, eps=self.eps, mean=self.mean,
                                     var=self.var, count=self.count, sync=self.sync, fixed=self.stats is not None)
        if w is not None and any(needs[1:]):
            dyv = dy.astype(reference.stats_dtype(dy.dtype)).reshape(plan.view)
            if needs[1]:
                xhat = Normalize.apply(x, plan=plan, eps=self.eps, stats=self.stats, given=self.given, sync=self.sync)
                dw = reference.param_sum(plan, dyv * xhat.astype(dyv.dtype).reshape(plan.view), w)
            db = reference.param_sum(plan, dyv, w) if len(needs) > 2 and needs[2] else None
        return (dx, dw, db)[:len(needs)]


class NormalizeGrad(Function):
    """dx of the normalize op as an op of (x, dy, γ): forward is the kernels' backward; backward is the
    second derivative in closed form, by the kernels' double_grad_sums and double_grad (the reference's where
    a backend has none). Attributes: plan, eps, mean, var, count (the forward's statistics), sync, fixed."""
    once_differentiable = True  # a third derivative through a norm is not built

    def forward(self, x, dy, w=None):
        return backward(self.plan, x, dy, self.mean, self.var, w, self.eps, self.count, self.sync, self.fixed)[0]

    def backward(self, v, dx, x, dy, w=None):
        kernels = self.plan.kernels if self.plan.kernels.double_grad is not None else reference.BACKEND
        args = (self.plan, x, dy, v, self.mean, self.var, w, self.eps)
        sums = None if self.fixed else kernels.double_grad_sums(*args)
        if sums is not None and self.sync is not None:
            sums = self.sync.sums(*sums)
        gx, gdy, gw = kernels.double_grad(*args, sums, self.count)
        return (gx, gdy, gw)[:len(self.needs_grad)]


def normalize(x, params, plan, eps, stats=None, given=None, sync=None, **labels):
    """Normalize the Tensor x by `plan` with γ, β in `params` (a list, possibly empty).

    Returns (y, batch statistics (count, mean, var) in the plan's statistics shape, or None when `stats`
    fixed them)."""
    op = Normalize(plan=plan, eps=eps, stats=stats, given=given, sync=sync, **labels)
    return op(x, *params), op.batch_stats
