"""Weight normalization (Salimans & Kingma, 2016): normalizes a layer's weights rather than its activations,
w = g · v / ‖v‖, with the norm over every axis but `dim` (each output unit by default)."""
from tinygrad_norm.nn import Linear, Parameter
from tinygrad_norm.norms import WeightPlugin


class WeightNorm(WeightPlugin):
    """w = g · v / ‖v‖ for a module's weight, with ‖v‖ over every axis but `dim`.

    `WeightNorm.apply(module)` (or `nn.weight_norm(module)`) replaces the `weight` parameter by `weight_g` (shape
    (out, 1, ...)) and `weight_v` (the weight's shape), PyTorch's names; the weight is recomputed from them
    before every forward."""

    @staticmethod
    def example():
        """The module to reparametrize, and its input: a fresh Linear for each check."""
        return (Linear(5, 4),), {}, (3, 5)

    def __init__(self, name="weight", dim=0):
        super().__init__(name)
        self.dim = dim

    def norm(self, v):
        """‖v‖ over every axis but `dim`, kept for broadcasting; works on arrays and on Tensors alike."""
        return (v * v).sum(axis=tuple(i for i in range(v.ndim) if i != self.dim % v.ndim), keepdims=True) ** 0.5

    def setup(self, weight):
        return {"g": Parameter(self.norm(weight)), "v": Parameter(weight.copy())}

    def compute(self, module, g, v):
        return v * (g / self.norm(v))
