"""Layer normalization (Ba et al., 2016): each sample over its trailing feature axes, independent of the batch;
the normalization that works inside RNNs."""
from tinygrad_norm.norms import NormLayer


def trailing(normalized_shape):
    """normalized_shape -> (its tuple, "... d0 d1 -> ...", "d0 d1")."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    names = " ".join(f"d{i}" for i in range(len(shape)))
    return shape, f"... {names} -> ...", names


class LayerNorm(NormLayer):
    """(..., *normalized_shape) -> same shape; statistics over the trailing normalized_shape; γ, β elementwise."""
    pattern = "... d -> ..."
    param_axes = "d"
    example = (((5, 3),), {}, (4, 6, 5, 3))

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        shape, pattern, names = trailing(normalized_shape)
        super().__init__(shape, eps=eps, affine=elementwise_affine, shift=bias, pattern=pattern, param_axes=names)
        self.normalized_shape = shape

    @classmethod
    def for_input(cls, shape):
        """For pictures: each sample over all its other axes, as in Ba et al. (LayerNorm((C, H, W)) on NCHW)."""
        return cls(tuple(shape[1:]))
