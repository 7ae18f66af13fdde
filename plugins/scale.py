"""ScaleNorm (Nguyen & Salazar, 2019, "Transformers without Tears: Improving the Normalization of
Self-Attention", eq. 9): one learned scalar g for the whole layer,

    ScaleNorm(x) = g · x / ‖x‖    over the last axis (d features), g initialized to √d

Written as the declared root-mean-square pattern, since x/‖x‖ = x/(√d · rms(x)): y = (g/√d)·x/√(mean x² +
eps/d) = g·x/√(‖x‖² + eps). eps guards a zero vector inside the root (the paper's code clamps ‖x‖ at eps
instead; the two differ only where ‖x‖² is near eps)."""
import math

import numpy as np

from tinygrad_norm.nn import Parameter
from tinygrad_norm.norms import NormLayer


class ScaleNorm(NormLayer):
    """(..., d) -> same shape; one parameter g of shape ()."""
    pattern = "... d -> ..."
    center = False
    example = ((5,), {}, (4, 3, 5))

    def __init__(self, dim, eps=1e-5):
        super().__init__(eps=eps / dim, d=dim)
        self.dim, self.scale_eps = dim, eps
        self.g = Parameter(np.array(math.sqrt(dim), np.float32))

    for_input = classmethod(lambda cls, shape: cls(shape[-1]))

    def forward(self, x):
        return self.normalize(x) * (self.g / math.sqrt(self.dim))

    def reference(self, x):
        """Eq. 9 in NumPy, float64, with eps inside the root."""
        return self.g.numpy() * x / np.sqrt((x ** 2).sum(axis=-1, keepdims=True) + self.scale_eps)

    def extra_repr(self):
        return f"{self.dim}, eps={self.scale_eps}"
