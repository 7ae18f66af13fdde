"""Spectral normalization (Miyato, Kataoka, Koyama & Yoshida, 2018, "Spectral Normalization for Generative
Adversarial Networks", Algorithm 1): a weight divided by its largest singular value, estimated by power
iteration on the weight as an (out, −1) matrix W,

    v ← Wᵀu / ‖Wᵀu‖,   u ← W v / ‖W v‖          (training only; u, v buffers, no gradient)
    σ(W) = uᵀ W v,      W_SN = W / σ(W)           (the gradient flows through W in σ)

As PyTorch's spectral_norm: u and v start normalized from a standard normal draw and 15 iterations, each
training forward runs n_power_iterations (updating u first, from v), eval mode reuses them, and ‖·‖ is
floored at eps. `apply(module)` keeps the raw weight as `weight_orig` and u, v as buffers `weight_u`,
`weight_v`: PyTorch's names."""
from tinygrad_norm import Tensor, random
from tinygrad_norm.backend import get_array_module
from tinygrad_norm.engine import no_grad
from tinygrad_norm.nn import Linear, Parameter
from tinygrad_norm.norms import WeightPlugin, held


class SpectralNorm(WeightPlugin):
    """W / σ(W), σ the largest singular value of the weight with axis `dim` first, by power iteration."""

    @staticmethod
    def example():
        return (Linear(5, 4),), {}, (3, 5)

    def __init__(self, name="weight", n_power_iterations=1, eps=1e-12, dim=0):
        super().__init__(name)
        self.n_power_iterations, self.eps, self.dim = n_power_iterations, eps, dim

    def matrix(self, w):
        """The weight as PyTorch's spectral_norm sees it: axis `dim` first, the rest flattened (arrays or Tensors)."""
        order = (self.dim,) + tuple(i for i in range(w.ndim) if i != self.dim)
        moved = w if order == tuple(range(w.ndim)) else w.permute(*order) if isinstance(w, Tensor) else w.transpose(order)
        return moved.reshape(w.shape[self.dim], -1)

    def unit(self, a):
        """a / max(‖a‖, eps), PyTorch's F.normalize."""
        return a / max(float(get_array_module(a).linalg.norm(a)), self.eps)

    def power_iteration(self, mat, u, v, steps):
        for _ in range(steps):
            u = self.unit(mat @ v)
            v = self.unit(mat.T @ u)
        return u, v

    def setup(self, weight):
        mat, xp = self.matrix(weight), get_array_module(weight)
        u, v = (xp.asarray(random.rng().standard_normal(n)).astype(weight.dtype) for n in mat.shape)
        u, v = self.power_iteration(mat, self.unit(u), self.unit(v), 15)
        return {"orig": Parameter(weight.copy()), "u": Tensor(u), "v": Tensor(v)}

    def compute(self, module, orig, u, v):
        mat = self.matrix(orig)
        if module.training:  # held: the gradient treats u and v as constants (held.py)
            with no_grad():
                u.data, v.data = held(self, "u, v", lambda: self.power_iteration(mat.data, u.data, v.data,
                                                                                self.n_power_iterations))
        sigma = (u.detach() * (mat @ v.detach())).sum()
        return orig / sigma
