"""Batch normalization (Ioffe & Szegedy, 2015): one mean and variance per channel, pooled over the batch
and every spatial axis; running averages of them replace the batch statistics in eval mode."""
from tinygrad_norm.norms import NormLayer


class BatchNorm(NormLayer):
    """(N, C, ...) -> same shape; statistics over (N, ...) for each channel; γ, β of shape (C,).

    One plugin serves BatchNorm1d (N, C) or (N, C, L), 2d (N, C, H, W) and 3d (N, C, D, H, W)."""
    pattern = "n c ... -> c"
    param_axes = "c"
    running_stats = True
    refuses_single_values = True  # PyTorch: "expected more than 1 value per channel"
    positive_eps = True
    example = ((6,), {}, (8, 6, 5, 4))

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         shift=bias)
