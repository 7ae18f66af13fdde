"""Conditional batch normalization (de Vries, Strub, Mary, Larochelle, Pietquin & Courville, 2017,
"Modulating early visual processing by language", eqs. 2-3): BatchNorm whose γ and β are shifted per sample
by a prediction from a second input, an embedding e of shape (N, E):

    β̂ = β + Δβ(e),   γ̂ = γ + Δγ(e),   y = γ̂ · x̂_BN + β̂

Δβ and Δγ are linear maps of e (the paper's MLP without a hidden layer), initialized to zero, so training
starts from BatchNorm; one-hot class labels as e give the class-conditional BN of GANs. The normalization is
the fused op of the declared pattern, with running statistics and sync=True as BatchNorm's."""
import numpy as np

from tinygrad_norm.nn import Parameter
from tinygrad_norm.norms import NormLayer


class ConditionalBatchNorm(NormLayer):
    """(N, C, ...) input and (N, E) embedding -> the input's shape; γ, β of shape (C,); the maps (E, C)."""
    pattern = "n c ... -> c"
    param_axes = "c"
    running_stats = True
    refuses_single_values = positive_eps = True
    example = ((4, 3), {}, ((6, 4, 3, 2), (6, 3)))

    def __init__(self, num_features, embedding_dim, eps=1e-5, momentum=0.1, track_running_stats=True):
        super().__init__(num_features, eps=eps, momentum=momentum, track_running_stats=track_running_stats)
        self.delta_weight = Parameter(np.zeros((embedding_dim, num_features), np.float32))
        self.delta_bias = Parameter(np.zeros((embedding_dim, num_features), np.float32))

    for_input = classmethod(lambda cls, shape: cls(shape[1], 1))

    def forward(self, x, embedding):
        shape = (len(x), -1) + (1,) * (x.ndim - 2)
        gamma, beta = self.weight + embedding @ self.delta_weight, self.bias + embedding @ self.delta_bias
        return self.normalize(x) * gamma.reshape(shape) + beta.reshape(shape)

    def reference(self, x, e):
        """Eqs. 2-3 in NumPy, float64; the running statistics in eval mode."""
        axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
        if self.training or not self.track_running_stats:
            mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
        else:
            mean, var = self.running_mean.numpy().reshape(shape), self.running_var.numpy().reshape(shape)
        per_sample = (len(x), -1) + (1,) * (x.ndim - 2)
        gamma = (self.weight.numpy() + e @ self.delta_weight.numpy()).reshape(per_sample)
        beta = (self.bias.numpy() + e @ self.delta_bias.numpy()).reshape(per_sample)
        return (x - mean) / np.sqrt(var + self.eps) * gamma + beta
