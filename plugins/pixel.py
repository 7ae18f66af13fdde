"""Pixelwise feature normalization (Karras, Aila, Laine & Lehtinen, 2018, "Progressive Growing of GANs for
Improved Quality, Stability, and Variation", §4.2, eq. in the text): each pixel's feature vector divided by
its root mean square over the channels,

    b_{x,y} = a_{x,y} / √(1/C · Σ_c (a^c_{x,y})² + eps),   eps = 1e-8

Wholly declared (no centering, no parameters): the core derives everything."""
from tinygrad_norm.norms import NormLayer


class PixelNorm(NormLayer):
    """(N, C, ...) -> same shape; root mean square over C at every (n, position); no parameters."""
    pattern = "n c ... -> n ..."
    center = False
    example = ((), {}, (4, 8, 3, 3))

    def __init__(self, eps=1e-8):
        super().__init__(eps=eps)
