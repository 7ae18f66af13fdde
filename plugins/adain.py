"""Adaptive instance normalization (Huang & Belongie, 2017, "Arbitrary Style Transfer in Real-time with
Adaptive Instance Normalization", eq. 8): the content x is instance-normalized and given the style's
statistics, so γ and β come from a second input:

    AdaIN(x, y) = σ(y) · (x − μ(x)) / σ(x) + μ(y),   μ, σ² over the spatial axes of each (sample, channel)

with σ = √(var + eps) for both. x's normalization is the fused op of the declared pattern; y's statistics are
the same pattern's moments, differentiable (the style gets a gradient). Call it as `layer(content, style)`;
the style's spatial size may differ from the content's."""
import numpy as np

from tinygrad_norm.norms import NormLayer


class AdaptiveInstanceNorm(NormLayer):
    """(N, C, ...) content and (N, C, ...) style -> the content's shape; no parameters."""
    pattern = "n c ... -> n c"
    refuses_single_values = True
    example = ((), {}, ((4, 4, 3, 2), (4, 4, 2, 2)))

    def __init__(self, eps=1e-5):
        super().__init__(eps=eps)

    def forward(self, x, style):
        mean, var = self.moments(style)
        return self.normalize(x) * (var + self.eps).sqrt() + mean

    def reference(self, x, style):
        """Eq. 8 in NumPy, float64."""
        axes = tuple(range(2, x.ndim))
        sigma = lambda a: np.sqrt(a.var(axis=axes, keepdims=True) + self.eps)
        return sigma(style) * (x - x.mean(axis=axes, keepdims=True)) / sigma(x) + style.mean(axis=axes, keepdims=True)
