"""Ghost batch normalization (Hoffer et al., 2017): the batch is cut into ghost batches of k samples and each
is batch-normalized on its own, so training sees the statistics of k samples whatever the gradient's batch.
It is BatchNorm at batch k inside a larger step: the way to study small-batch BN with the step held fixed."""
from tinygrad_norm.norms import NormLayer


class GhostBatchNorm(NormLayer):
    """(N, C, ...) -> same shape, N a multiple of k; statistics over (k, ...) for each ghost batch and channel;
    γ, β of shape (C,). The running averages average the ghost batches' statistics, so eval mode is BatchNorm's."""
    pattern = "(n k) c ... -> n c"
    param_axes = "c"
    running_stats = True
    refuses_single_values = True  # BatchNorm over each ghost batch
    positive_eps = True
    example = ((6,), {"k": 2}, (8, 6, 5, 4))

    def __init__(self, num_features, k=2, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         shift=bias, k=k)
        self.k = k

    def axis_sizes(self):
        # eval mode normalizes every sample with the running statistics, so ghost batches of one fit any batch
        return self.sizes if self.training else {**self.sizes, "k": 1}

    @classmethod
    def for_input(cls, shape):
        """For pictures: ghost batches of two samples where the batch splits evenly, else of one."""
        return cls(shape[1], k=2 if shape[0] % 2 == 0 else 1)
