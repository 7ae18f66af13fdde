"""Fused log-softmax and negative log-likelihood: stable, and one array pass each way."""
from ..autograd import Function
from ..backend import get_array_module


class LogSoftmax(Function):
    """out = x - max - log Σ exp(x - max) along `axis`; backward: g - softmax · Σ g."""
    def forward(self, x):
        xp = get_array_module(x)
        if x.size == 0:  # an empty axis or batch: nothing to normalize (NumPy's max would refuse)
            self.out = x.copy()
            return self.out
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.out

    def backward(self, g):
        return g - get_array_module(g).exp(self.out) * g.sum(axis=self.axis, keepdims=True)


class NLLLoss(Function):
    """Per-sample -logp[i, target[i]] for logp (N, C) and integer targets (N,)."""
    def forward(self, logp):
        xp = get_array_module(logp)
        self.shape, self.rows = logp.shape, xp.arange(logp.shape[0])
        return -logp[self.rows, self.target]

    def backward(self, g):
        gx = get_array_module(g).zeros(self.shape, dtype=g.dtype)
        gx[self.rows, self.target] = -g  # one entry per row: plain assignment is exact
        return gx
