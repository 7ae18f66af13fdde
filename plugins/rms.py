"""RMS normalization (Zhang & Sennrich, 2019): LayerNorm without centering, y = x / √(mean(x²) + eps) · γ."""
from tinygrad_norm.norms import NormLayer

from .layer import trailing


class RMSNorm(NormLayer):
    """(..., *normalized_shape) -> same shape; root mean square over the trailing axes; γ elementwise, no β.

    eps=None uses the machine epsilon of the input's dtype, as PyTorch does."""
    pattern = "... d -> ..."
    param_axes = "d"
    center = False
    shift = False
    example = ((5,), {}, (4, 6, 5))

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True):
        shape, pattern, names = trailing(normalized_shape)
        super().__init__(shape, eps=eps, affine=elementwise_affine, pattern=pattern, param_axes=names)
        self.normalized_shape = shape

    for_input = classmethod(lambda cls, shape: cls(tuple(shape[1:])))
