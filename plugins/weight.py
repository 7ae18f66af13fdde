"""Weight normalization (Salimans & Kingma, 2016): normalizes a layer's weights rather than its activations,
w = g · v / ‖v‖, with the norm over every axis but `dim` (each output unit by default)."""
from tinygrad_norm.nn import Linear, Parameter


class WeightNorm:
    """w = g · v / ‖v‖ for a module's weight, with ‖v‖ over every axis but `dim`.

    `WeightNorm.apply(module)` (or `nn.weight_norm(module)`) replaces the `weight` parameter by `weight_g` (shape
    (out, 1, ...)) and `weight_v` (the weight's shape), PyTorch's names; the weight is recomputed from them
    before every forward."""
    acts_on = "weights"

    @staticmethod
    def example():
        """The module to reparametrize, and its input: a fresh Linear for each check."""
        return (Linear(5, 4),), {}, (3, 5)

    def __init__(self, name="weight", dim=0):
        self.param, self.dim = name, dim

    def norm(self, v):
        """‖v‖ over every axis but `dim`, kept for broadcasting; works on arrays and on Tensors alike."""
        return (v * v).sum(axis=tuple(i for i in range(v.ndim) if i != self.dim % v.ndim), keepdims=True) ** 0.5

    def compute_weight(self, module):
        g, v = getattr(module, self.param + "_g"), getattr(module, self.param + "_v")
        return v * (g / self.norm(v))

    def __call__(self, module, args):
        object.__setattr__(module, self.param, self.compute_weight(module))

    @classmethod
    def apply(cls, module, name="weight", dim=0):
        weight = getattr(module, name, None)
        if not isinstance(weight, Parameter):
            raise TypeError(f"weight norm: {type(module).__name__} has no parameter {name!r} to normalize")
        hook = cls(name, dim)
        delattr(module, name)
        setattr(module, name + "_g", Parameter(hook.norm(weight.data)))
        setattr(module, name + "_v", Parameter(weight.data.copy()))
        module.register_forward_pre_hook(hook)
        hook(module, ())
        return module
