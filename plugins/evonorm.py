"""EvoNorms (Liu, Brock, Simonyan & Le, 2020, "Evolving Normalization-Activation Layers", Table 1): a
normalization and its activation found together by search, each a few statistics of declared patterns:

    B0:  y = x / max(√(s²_{N,H,W}(x) + eps), v·x + √(s²_{H,W}(x) + eps)) · γ + β     (batch-dependent)
    S0:  y = x·σ(v·x) / √(s²_{H,W,C/G}(x) + eps) · γ + β                             (per sample, G groups)

with s² the variance over the axes named, σ the logistic sigmoid and v a learned per-channel vector. B0's
batch variance is the main pattern: running average in eval mode, every process's batch under sync=True."""
import numpy as np

from tinygrad_norm.nn import Parameter
from tinygrad_norm.norms import NormLayer


class EvoNormB0(NormLayer):
    """(N, C, ...) -> same shape; v, γ, β of shape (C,)."""
    pattern = "n c ... -> c"
    statistics = {"instance": "n c ... -> n c"}
    param_axes = "c"
    running_stats = True
    refuses_single_values = True
    example = ((4,), {}, (4, 4, 3, 2))

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats)
        self.v = Parameter(np.ones(num_features, np.float32))

    def forward(self, x):
        (_, batch_var), (_, instance_var) = self.moments(x), self.moments(x, "instance")
        v = self.v.reshape((1, -1) + (1,) * (x.ndim - 2))
        return self.affine_transform(x / (batch_var + self.eps).sqrt().maximum(v * x + (instance_var + self.eps).sqrt()))

    def reference(self, x):
        """B0 in NumPy, float64; the batch variance from the running average in eval mode."""
        shape, spatial = (1, -1) + (1,) * (x.ndim - 2), tuple(range(2, x.ndim))
        running = not self.training and self.track_running_stats
        var_b = self.running_var.numpy().reshape(shape) if running else x.var(axis=(0,) + spatial, keepdims=True)
        v, g, b = (p.numpy().reshape(shape) for p in (self.v, self.weight, self.bias))
        return x / np.maximum(np.sqrt(var_b + self.eps), v * x + np.sqrt(x.var(axis=spatial, keepdims=True) + self.eps)) * g + b


class EvoNormS0(NormLayer):
    """(N, C, ...) -> same shape, C a multiple of groups; v, γ, β of shape (C,)."""
    pattern = "n (g c) ... -> n g"
    param_axes = "(g c)"
    example = ((4,), {"groups": 2}, (4, 4, 3, 2))

    def __init__(self, num_features, groups=32, eps=1e-5, affine=True):
        super().__init__(num_features, eps=eps, affine=affine, g=groups)
        self.groups, self.v = groups, Parameter(np.ones(num_features, np.float32))

    for_input = classmethod(lambda cls, shape: cls(shape[1], groups=shape[1] // 2 if shape[1] % 2 == 0 else 1))

    def forward(self, x):
        _, var = self.moments(x)
        v = self.v.reshape((1, -1) + (1,) * (x.ndim - 2))
        return self.affine_transform(x * (v * x).sigmoid() / (var + self.eps).sqrt())

    def reference(self, x):
        """S0 in NumPy, float64."""
        shape, (n, c) = (1, -1) + (1,) * (x.ndim - 2), x.shape[:2]
        var = x.reshape(n, self.groups, -1).var(axis=2)[:, :, None].repeat(c // self.groups, axis=2)
        v, g, b = (p.numpy().reshape(shape) for p in (self.v, self.weight, self.bias))
        return x / (1 + np.exp(-v * x)) / np.sqrt(var.reshape((n, c) + (1,) * (x.ndim - 2)) + self.eps) * g + b
