"""Local response normalization (Krizhevsky et al., 2012, AlexNet): each activation divided by a power of the
sum of squares of its neighbours across channels. Not a mean/variance pattern: its forward is written
from autograd ops, and its gradient comes for free."""
import numpy as np

from tinygrad_norm.nn import Module


class LocalResponseNorm(Module):
    """b_c = a_c / (k + α/n · Σ_{c' = c - n//2}^{c + (n-1)//2} a_c'²)^β over (N, C, ...); no parameters.

    The window is a box filter along the channels (one slice-add per neighbour)."""
    pattern = None  # not a mean/variance pattern: the forward below is the whole plugin
    example = ((5,), {}, (2, 7, 4, 3))

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    @classmethod
    def for_input(cls, shape):
        """For pictures: a window of three channels."""
        return cls(3)

    def forward(self, x):
        if x.ndim < 3:
            raise ValueError(f"LocalResponseNorm expects input of shape (N, C, ...) with at least 3 axes; got {x.shape}")
        n = self.size
        window = (x ** 2).window_sum(axis=1, before=n // 2, after=(n - 1) // 2)
        return x * (window * (self.alpha / n) + self.k) ** -self.beta

    def reference(self, x):
        """The definition in NumPy, channel by channel: what the conformance checker holds forward to."""
        n, channels = self.size, x.shape[1]
        out = np.empty_like(x)
        for c in range(channels):
            window = x[:, max(0, c - n // 2):min(channels, c + (n - 1) // 2 + 1)]
            out[:, c] = x[:, c] / (self.k + self.alpha / n * (window ** 2).sum(axis=1)) ** self.beta
        return out

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
