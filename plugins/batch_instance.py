"""Batch-instance normalization (Nam & Kim, 2018, "Batch-Instance Normalization for Adaptively
Style-Invariant Neural Networks", eq. 4): a learned per-channel mix of the two normalized inputs,

    y = (ρ·x̂_BN + (1 − ρ)·x̂_IN)·γ + β = BN(x; ρ·γ, β) + IN(x; (1 − ρ)·γ, 0),   ρ ∈ [0, 1]

so both halves are the fused normalize op. As in the paper, ρ is clipped to [0, 1] after every update (here,
in place before each training forward; the clip itself has no gradient). BN's statistics keep running
averages for eval mode and pool every process's batch under sync=True."""
import numpy as np

from tinygrad_norm.nn import Parameter
from tinygrad_norm.norms import NormLayer


class BatchInstanceNorm(NormLayer):
    """(N, C, ...) -> same shape; ρ (gate), γ, β of shape (C,); ρ starts at 1 (BatchNorm)."""
    pattern = "n c ... -> c"
    statistics = {"instance": "n c ... -> n c"}
    param_axes = "c"
    running_stats = True
    refuses_single_values = True
    bounded = {"gate": (0.0, 1.0)}
    example = ((4,), {}, (4, 4, 3, 2))

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats)
        self.gate = Parameter(np.ones(num_features, np.float32))

    def forward(self, x):
        self.keep_bounded()
        rho = self.gate if self.weight is None else self.gate * self.weight
        return self.normalize(x, weight=rho, bias=self.bias) + self.normalize(x, "instance", weight=(1 - self.gate) * (
            1 if self.weight is None else self.weight))

    def reference(self, x):
        """Eq. 4 in NumPy, float64; BN's statistics from the running averages in eval mode."""
        shape, spatial = (1, -1) + (1,) * (x.ndim - 2), tuple(range(2, x.ndim))
        batch = (0,) + spatial
        if self.training or not self.track_running_stats:
            bn = (x - x.mean(axis=batch, keepdims=True)) / np.sqrt(x.var(axis=batch, keepdims=True) + self.eps)
        else:
            bn = (x - self.running_mean.numpy().reshape(shape)) / np.sqrt(self.running_var.numpy().reshape(shape) + self.eps)
        inorm = (x - x.mean(axis=spatial, keepdims=True)) / np.sqrt(x.var(axis=spatial, keepdims=True) + self.eps)
        rho = np.clip(self.gate.numpy(), 0, 1).reshape(shape)
        g, b = (p.numpy().reshape(shape) if p is not None else v for p, v in ((self.weight, 1), (self.bias, 0)))
        return (rho * bn + (1 - rho) * inorm) * g + b
