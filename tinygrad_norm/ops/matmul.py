"""Matrix product with NumPy's rules: batched, broadcast, and the 1-D cases."""
from ..engine import Function


class MatMul(Function):
    """out = a @ b. Backward: da = g @ bᵀ, db = aᵀ @ g, with 1-D operands promoted and squeezed back."""
    def forward(self, a, b): return a @ b

    def backward(self, g, y, a, b):
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


class Linear(Function):
    """out = x @ wᵀ (+ b) for x (..., in), w (out, in), b (out,): one op instead of transpose, matmul and add.

    Backward: dx = g @ w, dw = gᵀ @ x and db = Σ g over the leading axes (flattened to one)."""
    def forward(self, x, w, b=None):
        out = x @ w.T
        if b is not None:
            out += b
        return out

    def backward(self, g, y, x, w, b=None):
        x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        gx = g @ w if self.needs_grad[0] else None
        gw = g2.T @ x2 if self.needs_grad[1] else None
        gb = g2.sum(axis=0) if len(self.needs_grad) > 2 and self.needs_grad[2] else None
        return gx, gw, gb
