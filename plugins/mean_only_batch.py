"""Mean-only batch normalization (Salimans & Kingma, 2016, "Weight Normalization: A Simple
Reparameterization to Accelerate Training of Deep Neural Networks", §3, eq. 5), meant to follow a weight-
normalized layer: the batch mean is subtracted, nothing is divided,

    y = x − μ_B + β,    μ_B the mean over (N, ...) of each channel

A statistic that is not mean and variance: the pooled mean of the declared pattern, with its running
average (its own buffer) in eval mode, and every process's batch under sync=True."""
import numpy as np

from tinygrad_norm import Tensor
from tinygrad_norm.engine import no_grad
from tinygrad_norm.norms import NormLayer


class MeanOnlyBatchNorm(NormLayer):
    """(N, C, ...) -> same shape; β of shape (C,), running_mean of shape (C,)."""
    pattern = "n c ... -> c"
    param_axes = "c"
    example = ((4,), {}, (6, 4, 3, 2))

    def __init__(self, num_features, momentum=0.1, bias=True):
        super().__init__(num_features, eps=None, momentum=momentum, affine=bias)
        self.register_parameter("weight", None)
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, np.float32)))

    def forward(self, x):
        if not self.training:
            mean = self.running_mean.detach().astype(x.dtype).reshape((1, -1) + (1,) * (x.ndim - 2))
        else:
            mean = self.pool(x)
            with no_grad():
                self.update_average(self.running_mean, mean.data)
        return self.affine_transform(x - mean, bias=self.bias)

    def reference(self, x):
        """Eq. 5 in NumPy, float64; the running mean in eval mode."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = x.mean(axis=(0,) + tuple(range(2, x.ndim)), keepdims=True) if self.training else \
            self.running_mean.numpy().reshape(shape)
        return x - mean + (0 if self.bias is None else self.bias.numpy().reshape(shape))
