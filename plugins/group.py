"""Group normalization (Wu & He, 2018): channels split into groups; each sample and group is normalized over
its channels and spatial axes. Independent of the batch size. G = 1 is LayerNorm over (C, H, W); G = C is
InstanceNorm."""
from tinygrad_norm.norms import NormLayer


class GroupNorm(NormLayer):
    """(N, C, ...) -> same shape; statistics over (C/G, ...) for each (n, group); γ, β per channel (C,)."""
    pattern = "n (g c) ... -> n g"
    param_axes = "(g c)"
    example = ((3, 6), {}, (4, 6, 5, 3))

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, bias=True):
        """PyTorch's order: GroupNorm(num_groups, num_channels)."""
        super().__init__(num_channels, eps=eps, affine=affine, shift=bias, g=num_groups)
        self.num_groups, self.num_channels = num_groups, num_channels

    @classmethod
    def for_input(cls, shape):
        """For pictures: groups of two channels where the channels split evenly, else one group."""
        return cls(shape[1] // 2 if shape[1] % 2 == 0 else 1, shape[1])
