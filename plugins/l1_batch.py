"""L1-norm batch normalization (Wu, Li, Deng, Liu, Wu, Xie & Shi, 2018, "L1-Norm Batch Normalization for
Efficient Training of Deep Neural Networks", eqs. 8-9): BatchNorm with the mean absolute deviation, scaled by
√(π/2) (for a Gaussian, the standard deviation), in place of the standard deviation:

    μ = mean over (N, ...) of x,   σ₁ = √(π/2) · mean over (N, ...) of |x − μ|,   y = γ·(x − μ)/(σ₁ + eps) + β

A statistic that is not a variance: two pooled means of the declared pattern. Running averages of μ and σ₁
(its own buffers) serve eval mode; every process's batch is pooled under sync=True."""
import math

import numpy as np

from tinygrad_norm import Tensor
from tinygrad_norm.engine import no_grad
from tinygrad_norm.norms import NormLayer

C_L1 = math.sqrt(math.pi / 2)


class L1BatchNorm(NormLayer):
    """(N, C, ...) -> same shape; γ, β, running_mean and running_sigma of shape (C,)."""
    pattern = "n c ... -> c"
    param_axes = "c"
    refuses_single_values = True
    example = ((4,), {}, (6, 4, 3, 2))

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, np.float32)))
        self.register_buffer("running_sigma", Tensor(np.ones(num_features, np.float32)))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if not self.training:
            mean, sigma = (b.detach().astype(x.dtype).reshape(shape) for b in (self.running_mean, self.running_sigma))
        else:
            mean = self.pool(x)
            sigma = self.pool((x - mean).abs()) * C_L1
            with no_grad():
                self.update_average(self.running_mean, mean.data)
                self.update_average(self.running_sigma, sigma.data)
        return self.affine_transform((x - mean) / (sigma + self.eps))

    def reference(self, x):
        """Eqs. 8-9 in NumPy, float64; the running averages in eval mode."""
        shape, axes = (1, -1) + (1,) * (x.ndim - 2), (0,) + tuple(range(2, x.ndim))
        if self.training:
            mean = x.mean(axis=axes, keepdims=True)
            sigma = C_L1 * np.abs(x - mean).mean(axis=axes, keepdims=True)
        else:
            mean, sigma = self.running_mean.numpy().reshape(shape), self.running_sigma.numpy().reshape(shape)
        g, b = (p.numpy().reshape(shape) if p is not None else v for p, v in ((self.weight, 1), (self.bias, 0)))
        return (x - mean) / (sigma + self.eps) * g + b
