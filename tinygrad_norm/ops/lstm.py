"""The LSTM cell's gate arithmetic as two fused ops: a time step is then a handful of ops instead of fifteen
(each op costs the engine its bookkeeping, which dominates at LSTM sizes: (64, 128) gates are 8k floats).

z (B, 4H) holds the gates' pre-activations i, f, g, o side by side (PyTorch's order); σ is the logistic sigmoid.

    LSTMState(z, c)    c' = σ(z_f)·c + σ(z_i)·tanh(z_g)
    LSTMOutput(z, m)   h  = σ(z_o)·tanh(m)        m = c', or the normalized c' of a layer-normalized LSTM

Each backward returns all of dz, zeros in the blocks its forward does not read. What forward computes for
backward (the gates) is kept on arrays and computed again, differentiably, on Tensors, by the same helper,
so both ops can be differentiated again.
"""
from ..engine import Function, is_tensor
from .namespace import namespace_of


def _sigmoid(xp, a):
    return 0.5 * (xp.tanh(0.5 * a) + 1)  # overflow-free form of 1 / (1 + exp(-a)), as ops.Sigmoid


def _blocks(z, first, count):
    """z's gate blocks first .. first + count - 1, each (B, H)."""
    h = z.shape[1] // 4
    return [z[:, k * h:(k + 1) * h] for k in range(first, first + count)]


class LSTMState(Function):
    """c' = σ(z_f)·c + σ(z_i)·tanh(z_g); dz_i = g'·tanh(z_g)·σ_i(1 - σ_i), dz_f = g'·c·σ_f(1 - σ_f),
    dz_g = g'·σ_i·(1 - tanh²z_g), dc = g'·σ_f."""
    def gates(self, z):
        xp = namespace_of(z)
        zi, zf, zg = _blocks(z, 0, 3)
        return _sigmoid(xp, zi), _sigmoid(xp, zf), xp.tanh(zg)

    def forward(self, z, c):
        self.saved = i, f, g = self.gates(z)
        return f * c + i * g

    def backward(self, gy, y, z, c):
        xp = namespace_of(gy)
        i, f, g = self.gates(z) if is_tensor(gy) else self.saved
        dz = [gy * g * i * (1 - i), gy * c * f * (1 - f), gy * i * (1 - g * g)]
        return xp.concatenate(dz + [xp.zeros_like(dz[0])], axis=1), gy * f


class LSTMOutput(Function):
    """h = σ(z_o)·tanh(m); dz_o = g'·tanh(m)·σ_o(1 - σ_o), dm = g'·σ_o·(1 - tanh²m)."""
    def values(self, z, m):
        xp = namespace_of(z)
        return _sigmoid(xp, _blocks(z, 3, 1)[0]), xp.tanh(m)

    def forward(self, z, m):
        self.saved = o, t = self.values(z, m)
        return o * t

    def backward(self, gy, y, z, m):
        xp = namespace_of(gy)
        o, t = self.values(z, m) if is_tensor(gy) else self.saved
        zero = xp.zeros_like(gy)
        return xp.concatenate([zero, zero, zero, gy * t * o * (1 - o)], axis=1), gy * o * (1 - t * t)
