"""Weight standardization (Qiao, Wang, Liu, Shen & Yuille, 2019, "Micro-Batch Training with Batch-Channel
Normalization and Weight Standardization", eqs. 5-7): a convolution's weights standardized over each output
channel's fan-in before every forward,

    Ŵ_{o,·} = (W_{o,·} − μ_o) / √(σ²_o + eps),   μ_o, σ²_o the mean and variance of W over (in, kh, kw)

A weight plugin whose normalization is a declared pattern over the weight's axes ("o ... -> o"), so the fused
normalize op computes it and its gradient. `apply(conv)` keeps the raw weight as `weight_orig`."""
from tinygrad_norm.nn import Conv2d, Parameter
from tinygrad_norm.norms import WeightPlugin, normalize_by


class WeightStandardization(WeightPlugin):
    """Ŵ = (W − mean)/√(var + eps) over every axis of the weight but the first (each output unit)."""
    pattern = "o ... -> o"

    @staticmethod
    def example():
        return (Conv2d(3, 4, 3),), {}, (2, 3, 6, 6)

    def __init__(self, name="weight", eps=1e-5):
        super().__init__(name)
        self.eps = eps

    def setup(self, weight):
        return {"orig": Parameter(weight.copy())}

    def compute(self, module, orig):
        return normalize_by(orig, self.pattern, eps=self.eps, owner="WeightStandardization")
