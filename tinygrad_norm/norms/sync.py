"""Statistics synchronized across processes, for norms that pool the batch axis (SyncBatchNorm and kin).

Each process computes its local statistics; `BatchSync` combines them between the halves of the
normalize op (see normalize.py), so every process normalizes with the statistics of the whole batch:

    forward:  every process's (count, mean, M2 = count·var) -> the exact statistics of the union
    backward: Σg and Σg·x̂ summed over every process (dx needs them; dγ and dβ stay local, and their sum
              over processes is the whole batch's, which is what data-parallel gradient averaging expects);
              the second derivative's sums likewise
    pooled:   a plugin's own statistics (NormLayer.pool): the local sums and counts summed over every
              process by `SumOverProcesses`, an op whose adjoint is itself

Merging (count, mean, M2) rather than summing x and x² keeps the precision of the two-pass statistics.
"""
import numpy as np

from ..engine import Function, is_tensor
from ..world import from_host_buffer, to_host_buffer


def merge_moments(counts, means, variances):
    """Chan, Golub & LeVeque's merge of per-part statistics into those of the union, for P parts at once.

    counts (P,), means and variances (P, K), variances biased (M2/count) -> (count, mean (K,), var (K,)):

        n = Σ n_p      μ = Σ n_p μ_p / n      M2 = Σ (M2_p + n_p (μ_p - μ)²)      var = M2 / n

    A part with n_p = 0 contributes nothing, whatever its mean and variance hold. `means` None: statistics
    without centering (var is the mean square), merged as the count-weighted mean.
    """
    counts = np.asarray(counts, np.float64)
    n = counts.sum()
    weights = (counts / max(n, 1.0))[:, None]
    variances = np.where(weights > 0, variances, 0.0)
    if means is None:
        return n, None, (weights * variances).sum(axis=0)
    means = np.where(weights > 0, means, 0.0)
    mean = (weights * means).sum(axis=0)
    return n, mean, (weights * (variances + (means - mean) ** 2)).sum(axis=0)


class BatchSync:
    """The combiner the normalize op calls between its halves; `owner` names the layer in errors."""

    def __init__(self, world, owner):
        self.world, self.owner = world, owner

    def moments(self, count, mean, var):
        """Local (count, mean, var) -> the whole batch's, identical on every process (one gather)."""
        stats = [s for s in (mean, var) if s is not None]
        rows = self.world.gather(np.concatenate([[count], to_host_buffer(stats, np.float64)]))
        k = var.size
        means = rows[:, 1:1 + k] if mean is not None else None
        n, mean, var = merge_moments(rows[:, 0], means, rows[:, -k:])
        if n <= 1:
            raise ValueError(f"{self.owner}: training needs more than one value per statistic over all "
                             f"{self.world.size} processes, but their inputs hold {int(n)} in all (per process: "
                             f"{[int(c) for c in rows[:, 0]]})")
        *merged_mean, merged_var = from_host_buffer(np.concatenate([s for s in (mean, var) if s is not None]), stats)
        return int(n), (merged_mean[0] if merged_mean else None), merged_var

    def sums(self, *sums):
        """Each of the local sums (Σg, Σg·x̂ in backward; those of the second derivative in its backward)
        summed over every process, in one all-reduce; None stays None."""
        parts = [s for s in sums if s is not None]
        totals = iter(from_host_buffer(self.world.all_reduce(to_host_buffer(parts, np.float64)), parts))
        return tuple(None if s is None else next(totals) for s in sums)

    def total(self, t):
        """t summed over every process: an array, or a Tensor through SumOverProcesses (differentiable, the
        gradient summed over them too)."""
        return SumOverProcesses.apply(t, sync=self) if is_tensor(t) else self.sums(t)[0]

    def count(self, n):
        """A local count of values -> the count over every process."""
        return int(self.world.all_reduce(np.array([n], np.float64))[0])


class SumOverProcesses(Function):
    """y = Σ_p a_p over the processes. Each process's loss reaches every y_p, so ∂L/∂a_p = Σ_p ∂L_p/∂y_p: the
    gradient is summed over the processes as well. Attribute: sync (the BatchSync that sums)."""

    def forward(self, a):
        return self.sync.total(a)

    def backward(self, g, y, a):
        return self.sync.total(g)
