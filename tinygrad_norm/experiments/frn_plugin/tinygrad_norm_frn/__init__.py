"""Filter Response Normalization (Singh & Krishnan, 2020), a third-party tinygrad_norm plugin.

    ν² = mean of x² over the spatial axes of each (sample, channel)      (no centering, no batch)
    y  = max(γ · x / √(ν² + eps) + β, τ)                                 (TLU: a learned threshold τ)

The normalization is declared; the core does the statistics and the gradient. Only the threshold is
written by hand, from autograd ops. Since its forward adds to the declared normalization, it states a
reference for the conformance checker to hold its output to.
"""
import numpy as np

from tinygrad_norm.nn import Parameter
from tinygrad_norm.norms import NormLayer


class FilterResponseNorm(NormLayer):
    """(N, C, ...) -> same shape; root mean square over (...) per (n, c); γ, β, τ per channel."""
    pattern = "n c ... -> n c"
    param_axes = "c"
    center = False
    example = ((6,), {}, (3, 6, 4, 4))

    def __init__(self, num_features, eps=1e-6):
        super().__init__(num_features, eps=eps)
        self.tau = Parameter(np.zeros(num_features, np.float32))

    def forward(self, x):
        tau = self.tau.reshape((1, -1) + (1,) * (x.ndim - 2))
        return super().forward(x).maximum(tau)

    def reference(self, x):
        """The definition in NumPy (float64), which the conformance checker holds forward to."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        gamma, beta, tau = (p.numpy().reshape(shape) for p in (self.weight, self.bias, self.tau))
        nu2 = (x ** 2).mean(axis=tuple(range(2, x.ndim)), keepdims=True)
        return np.maximum(gamma * x / np.sqrt(nu2 + self.eps) + beta, tau)
