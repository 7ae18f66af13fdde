"""Positional normalization (Li, Wu, Lim, Belongie & Weinberger, 2019, "Positional Normalization", eq. 1,
PONO): each position of each sample is standardized over its channels,

    μ_{n,h,w} = mean over C of x,   σ_{n,h,w} = √(var over C of x + eps),   y = (x − μ)/σ

without parameters: the paper feeds μ and σ on to later layers (its moment shortcut), which a model does with
`layer.moments(x)`. Wholly declared: the core derives everything."""
from tinygrad_norm.norms import NormLayer


class PositionalNorm(NormLayer):
    """(N, C, ...) -> same shape; statistics over C at every (n, position); no parameters."""
    pattern = "n c ... -> n ..."
    example = ((), {}, (4, 6, 3, 3))

    def __init__(self, eps=1e-5):
        super().__init__(eps=eps)
