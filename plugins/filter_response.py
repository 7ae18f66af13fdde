"""Filter response normalization with a thresholded linear unit (Singh & Krishnan, 2020, "Filter Response
Normalization Layer: Eliminating Batch Dependence in the Training of Deep Neural Networks", eqs. 1-3):

    ν² = mean of x² over the spatial axes of each (sample, channel)      no centering, no batch
    y  = max(γ · x / √(ν² + eps) + β, τ)                                 τ a learned per-channel threshold

The normalization is the declared pattern (fused); only the threshold is an op on top."""
import numpy as np

from tinygrad_norm.nn import Parameter
from tinygrad_norm.norms import NormLayer


class FilterResponseNorm(NormLayer):
    """(N, C, ...) -> same shape; γ, β, τ of shape (C,)."""
    pattern = "n c ... -> n c"
    param_axes = "c"
    center = False
    example = ((4,), {}, (3, 4, 3, 3))

    def __init__(self, num_features, eps=1e-6):
        super().__init__(num_features, eps=eps)
        self.tau = Parameter(np.zeros(num_features, np.float32))

    def forward(self, x):
        return super().forward(x).maximum(self.tau.reshape((1, -1) + (1,) * (x.ndim - 2)))

    def reference(self, x):
        """Eqs. 1-3 in NumPy, float64."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        gamma, beta, tau = (p.numpy().reshape(shape) for p in (self.weight, self.bias, self.tau))
        nu2 = (x ** 2).mean(axis=tuple(range(2, x.ndim)), keepdims=True)
        return np.maximum(gamma * x / np.sqrt(nu2 + self.eps) + beta, tau)
