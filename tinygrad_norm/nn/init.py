"""Parameter initialisers with PyTorch's default schemes, drawn from tinygrad_norm.random."""
import math

import numpy as np

from ..random import rng


def uniform(shape, bound, dtype=np.float32):
    return rng().uniform(-bound, bound, shape).astype(dtype)


def normal(shape, std=1.0, dtype=np.float32):
    return (rng().standard_normal(shape) * std).astype(dtype)


def fan_in_uniform(shape, fan_in):
    """U(-1/√fan_in, 1/√fan_in): PyTorch's default for Linear/Conv weights (kaiming_uniform, a=√5) and biases."""
    return uniform(shape, 1 / math.sqrt(fan_in) if fan_in else 0.0)
