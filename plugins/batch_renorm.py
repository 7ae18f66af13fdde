"""Batch renormalization (Ioffe, 2017, "Batch Renormalization: Towards Reducing Minibatch Dependence in
Batch-Normalized Models", Algorithm 1). In training, with σ = √(running_var + eps), σ_B = √(var_B + eps):

    r = clip(σ_B / σ, 1/r_max, r_max),   d = clip((μ_B − μ) / σ, −d_max, d_max)     no gradient through r, d
    y = γ·((x − μ_B)/σ_B · r + d) + β  =  (γ·r)·x̂_B + (β + γ·d)

so the fused normalize op runs with γ' = γ·r and β' = β + γ·d, on the batch statistics computed once for r and
d. Eval mode is BatchNorm's with the running statistics; r_max = 1, d_max = 0 is BatchNorm. The paper raises
r_max from 1 to 3 and d_max from 0 to 5 during training: set the attributes between steps."""
import numpy as np

from tinygrad_norm import Tensor
from tinygrad_norm.norms import NormLayer, held


class BatchRenorm(NormLayer):
    """(N, C, ...) -> same shape; BatchNorm's statistics per channel, corrected towards the running ones."""
    pattern = "n c ... -> c"
    param_axes = "c"
    running_stats = True
    refuses_single_values = positive_eps = True
    example = ((4,), {"r_max": 1.5, "d_max": 0.5}, (6, 4, 3, 2))

    def __init__(self, num_features, r_max=3.0, d_max=5.0, eps=1e-5, momentum=0.1, affine=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=True)
        self.r_max, self.d_max = r_max, d_max

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        _, mean, var = statistics = self.batch_statistics(x)
        r, d = held(self, "r, d", lambda: self.corrections(mean, var, x.dtype if self.weight is None else self.weight.dtype))
        r, d = (Tensor(a, device=x.device) for a in (r, d))
        weight, bias = (r, d) if self.weight is None else (self.weight * r, self.bias + self.weight * d)
        return self.normalize(x, weight=weight, bias=bias, statistics=statistics)

    def corrections(self, mean, var, dtype):
        """(r, d) of shape (C,) from the batch statistics (the plan's shape) and the running ones."""
        shape, sigma = self.running_var.shape, (self.running_var.data + self.eps) ** 0.5
        r = ((var.reshape(shape) + self.eps) ** 0.5 / sigma).clip(1 / self.r_max, self.r_max)
        d = ((mean.reshape(shape) - self.running_mean.data) / sigma).clip(-self.d_max, self.d_max)
        return r.astype(dtype), d.astype(dtype)

    def reference(self, x):
        """Algorithm 1 in NumPy, float64, reading the running statistics (eval: BatchNorm with them)."""
        axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
        rm, rv = self.running_mean.numpy().reshape(shape), self.running_var.numpy().reshape(shape)
        g, b = self.weight.numpy().reshape(shape), self.bias.numpy().reshape(shape)
        if not self.training:
            return (x - rm) / np.sqrt(rv + self.eps) * g + b
        mu, sb, s = x.mean(axis=axes, keepdims=True), np.sqrt(x.var(axis=axes, keepdims=True) + self.eps), np.sqrt(rv + self.eps)
        r, d = np.clip(sb / s, 1 / self.r_max, self.r_max), np.clip((mu - rm) / s, -self.d_max, self.d_max)
        return ((x - mu) / sb * r + d) * g + b
