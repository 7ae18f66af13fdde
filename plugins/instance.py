"""Instance normalization (Ulyanov et al., 2016): each sample and channel over its own spatial axes,
which removes per-image contrast and brightness (style)."""
from tinygrad_norm.norms import NormLayer


class InstanceNorm(NormLayer):
    """(N, C, ...) -> same shape; statistics over (...) for each (n, c). PyTorch's defaults: no affine, no running stats."""
    pattern = "n c ... -> n c"
    param_axes = "c"
    affine_default = False
    counts_batches = False  # as PyTorch: num_batches_tracked stays 0
    refuses_single_values = True  # PyTorch: "expected more than 1 spatial element"
    example = ((6,), {"affine": True}, (4, 6, 5, 3))

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, *, bias=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         shift=bias)
