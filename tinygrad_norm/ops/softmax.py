"""Fused log-softmax and negative log-likelihood: stable, and one array pass each way."""
from ..engine import Function
from ..backend import get_array_module
from .namespace import namespace_of


class LogSoftmax(Function):
    """out = x - max - log Σ exp(x - max) along `axis`; backward: g - softmax · Σ g."""
    def forward(self, x):
        xp = get_array_module(x)
        if x.size == 0:  # an empty axis or batch: nothing to normalize (NumPy's max would refuse)
            return x.copy()
        shifted = x - x.max(axis=self.axis, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))

    def backward(self, g, y, x):
        return g - namespace_of(g).exp(y) * g.sum(axis=self.axis, keepdims=True)


class NLLLoss(Function):
    """Per-sample -logp[i, target[i]] for logp (N, C) and integer targets (N,)."""
    def forward(self, logp):
        xp = get_array_module(logp)
        self.shape, self.rows = logp.shape, xp.arange(logp.shape[0])
        return -logp[self.rows, self.target]

    def backward(self, g, y, logp):
        return namespace_of(g).scatter(-g, (self.rows, self.target), self.shape, unique=True)  # one per row
