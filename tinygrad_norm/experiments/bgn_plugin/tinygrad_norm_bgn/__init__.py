"""Batch Group Normalization (Zhou, Sun, Chen, Liu & Ji, 2020, "Batch Group Normalization", eq. 2), a
third-party tinygrad_norm plugin: GroupNorm's channel groups, pooled over the batch as BatchNorm pools,

    μ_g, σ²_g = mean, variance over (N, C/G, H, W) of group g        y = γ·(x − μ_g)/√(σ²_g + eps) + β

with running averages of the G statistics for eval mode. The whole plugin is its declaration: the core
derives the reshape, the statistics, the fused backward, the running averages, sync=True and the checks.
"""
from tinygrad_norm.norms import NormLayer


class BatchGroupNorm(NormLayer):
    """(N, C, ...) -> same shape; statistics per group of C/G channels over (N, C/G, ...); γ, β per channel."""
    pattern = "n (g c) ... -> g"
    param_axes = "(g c)"
    running_stats = True
    refuses_single_values = True
    example = ((6,), {"num_groups": 3}, (4, 6, 3, 3))

    def __init__(self, num_features, num_groups=2, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats, g=num_groups)
        self.num_groups = num_groups
