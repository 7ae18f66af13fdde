"""Iterative normalization (Huang, Zhou, Zhu, Liu & Shao, 2019, "Iterative Normalization: Beyond
Standardization towards Efficient Whitening", Algorithm 1): each group of c = C/G channels is whitened, not
only standardized, by Newton-Schulz iterations towards the inverse square root of its covariance:

    X_g = x − μ as a (c, m) matrix (m = N·H·W),   Σ = X Xᵀ/m + eps·I,   Σ_N = Σ / tr(Σ)
    P_0 = I,   P_k = (3·P_{k−1} − P_{k−1}³·Σ_N) / 2  (k = 1..T),   x̂ = P_T / √tr(Σ) · X,   y = γ·x̂ + β

A matrix statistic no pattern declares: the mean is the declared pattern's pooled mean, the covariance a
product of autograd ops (summed over every process under sync=True). Running averages of μ and of the
whitening matrix P_T/√tr(Σ) (its own buffers) serve eval mode. The iteration is not self-correcting in floating
point: on an ill-conditioned covariance (eigenvalues 100x apart), T = 15-20 lets rounding errors grow without
bound where T = 10 had converged; the paper's T = 5 is the default."""
import numpy as np

from tinygrad_norm import Tensor
from tinygrad_norm.engine import no_grad
from tinygrad_norm.norms import NormLayer


class IterNorm(NormLayer):
    """(N, C, ...) -> same shape; γ, β, running_mean of shape (C,), running_wm of shape (G, C/G, C/G)."""
    pattern = "n c ... -> c"
    param_axes = "c"
    refuses_single_values = True
    example = ((4,), {"num_groups": 2}, (6, 4, 3))

    def __init__(self, num_features, num_groups=1, T=5, eps=1e-5, momentum=0.1, affine=True):
        if num_features % num_groups:
            raise ValueError(f"IterNorm: num_groups={num_groups} must divide num_features={num_features}")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)
        self.num_groups, self.T, c = num_groups, T, num_features // num_groups
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, np.float32)))
        self.register_buffer("running_wm", Tensor(np.tile(np.eye(c, dtype=np.float32), (num_groups, 1, 1))))

    def forward(self, x):
        (n, channels), g = x.shape[:2], self.num_groups
        mean = self.pool(x) if self.training else self.running_mean.detach().astype(x.dtype).reshape((1, -1) + (1,) * (x.ndim - 2))
        xc = (x - mean).reshape(n, g, channels // g, -1).permute(1, 2, 0, 3).reshape(g, channels // g, -1)
        if self.training:
            cov, m = self.sum_over_processes(xc @ xc.swapaxes(1, 2), xc.shape[2])
            eye = Tensor(np.eye(channels // g, dtype=x.dtype), device=x.device)
            sigma = cov / m + eye * self.eps
            trace = (sigma * eye).sum(axis=(1, 2), keepdims=True)
            p, sigma_n = eye, sigma / trace
            for _ in range(self.T):
                p = p * 1.5 - (p @ p @ p @ sigma_n) * 0.5
            wm = p / trace.sqrt()
            with no_grad():
                self.update_average(self.running_mean, mean.data)
                self.update_average(self.running_wm, wm.data)
        else:
            wm = self.running_wm.detach().astype(x.dtype)
        xhat = (wm @ xc).reshape(g, channels // g, n, -1).permute(2, 0, 1, 3).reshape(x.shape)
        return self.affine_transform(xhat)

    def reference(self, x):
        """Algorithm 1 in NumPy, float64, group by group; the running averages in eval mode."""
        n, channels = x.shape[:2]
        c, out = channels // self.num_groups, np.empty_like(x)
        for k in range(self.num_groups):
            xg = np.moveaxis(x[:, k * c:(k + 1) * c], 1, 0).reshape(c, -1)
            if self.training:
                mu = xg.mean(axis=1, keepdims=True)
                sigma = (xg - mu) @ (xg - mu).T / xg.shape[1] + self.eps * np.eye(c)
                p = np.eye(c)
                for _ in range(self.T):
                    p = (3 * p - np.linalg.matrix_power(p, 3) @ (sigma / np.trace(sigma))) / 2
                wm = p / np.sqrt(np.trace(sigma))
            else:
                mu, wm = self.running_mean.numpy()[k * c:(k + 1) * c, None], self.running_wm.numpy()[k]
            out[:, k * c:(k + 1) * c] = np.moveaxis((wm @ (xg - mu)).reshape((c, n) + x.shape[2:]), 0, 1)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return out * self.weight.numpy().reshape(shape) + self.bias.numpy().reshape(shape)
