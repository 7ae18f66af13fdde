"""Matrix product with NumPy's rules: batched, broadcast, and the 1-D cases."""
from ..autograd import Function


class MatMul(Function):
    """out = a @ b. Backward: da = g @ bᵀ, db = aᵀ @ g, with 1-D operands promoted and squeezed back."""
    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g[..., None, :] if a.ndim == 1 else g
        g2 = g2[..., None] if b.ndim == 1 else g2
        ga = gb = None
        if self.needs_grad[0]:
            ga = g2 @ b2.swapaxes(-1, -2)
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if self.needs_grad[1]:
            gb = a2.swapaxes(-1, -2) @ g2
            gb = gb[..., 0] if b.ndim == 1 else gb
        return ga, gb
