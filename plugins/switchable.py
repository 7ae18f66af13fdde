"""Switchable normalization (Luo, Ren, Peng, Zhang & Li, 2019, "Differentiable Learning-to-Normalize via
Switchable Normalization", eq. 3): the statistics are a learned mix of instance, layer and batch norm's,

    y = γ·(x − Σ_k w_k μ_k) / √(Σ_k w'_k σ²_k + eps) + β,   k ∈ {IN, LN, BN},   w = softmax(λ), w' = softmax(λ')

Each statistic is a declared pattern; BN's is the main one, so it keeps running averages for eval mode and
pools every process's batch under sync=True (IN's and LN's belong to one sample)."""
import numpy as np

from tinygrad_norm.nn import Parameter, functional as F
from tinygrad_norm.norms import NormLayer

WHICH = ("instance", "layer", None)  # None: the main pattern, BN's


class SwitchableNorm(NormLayer):
    """(N, C, ...) -> same shape; λ (mean_weight) and λ' (var_weight) of shape (3,), γ, β of shape (C,)."""
    pattern = "n c ... -> c"
    statistics = {"instance": "n c ... -> n c", "layer": "n ... -> n"}
    param_axes = "c"
    running_stats = True
    example = ((4,), {}, (4, 4, 3, 2))

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats)
        self.mean_weight, self.var_weight = Parameter(np.ones(3, np.float32)), Parameter(np.ones(3, np.float32))

    def forward(self, x):
        stats = [self.moments(x, which) for which in WHICH]
        wm, wv = (F.softmax(w.astype(x.dtype), dim=0) for w in (self.mean_weight, self.var_weight))
        mean = sum(wm[k] * m for k, (m, _) in enumerate(stats))
        var = sum(wv[k] * v for k, (_, v) in enumerate(stats))
        return self.affine_transform((x - mean) / (var + self.eps).sqrt())

    def reference(self, x):
        """Eq. 3 in NumPy, float64; BN's statistics from the running averages in eval mode."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        pools = [tuple(range(2, x.ndim)), tuple(range(1, x.ndim)), (0,) + tuple(range(2, x.ndim))]
        moments = [(x.mean(axis=a, keepdims=True), x.var(axis=a, keepdims=True)) for a in pools]
        if not self.training and self.track_running_stats:
            moments[2] = self.running_mean.numpy().reshape(shape), self.running_var.numpy().reshape(shape)
        wm, wv = (np.exp(w.numpy()) / np.exp(w.numpy()).sum() for w in (self.mean_weight, self.var_weight))
        mean, var = sum(w * m for w, (m, _) in zip(wm, moments)), sum(w * v for w, (_, v) in zip(wv, moments))
        g, b = (p.numpy().reshape(shape) if p is not None else v for p, v in ((self.weight, 1), (self.bias, 0)))
        return (x - mean) / np.sqrt(var + self.eps) * g + b
