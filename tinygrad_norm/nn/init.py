"""Parameter initialisers: the layers' default schemes, and torch.nn.init's in-place functions, drawn from
tinygrad_norm.random (or a NumPy Generator passed as `generator`).

    >>> import tinygrad_norm as tg
    >>> w = tg.nn.Parameter(tg.zeros(64, 32).data)
    >>> _ = tg.nn.init.kaiming_uniform_(w, nonlinearity="relu")    # U(-b, b), b = √2·√(3 / fan_in)
    >>> float(abs(w.numpy()).max()) <= (2 ** 0.5) * (3 / 32) ** 0.5
    True
"""
import math

import numpy as np

from ..backend import to_device
from ..random import rng


def uniform(shape, bound, dtype=np.float32):
    return rng().uniform(-bound, bound, shape).astype(dtype)


def normal(shape, std=1.0, dtype=np.float32):
    return (rng().standard_normal(shape) * std).astype(dtype)


def fan_in_uniform(shape, fan_in):
    """U(-1/√fan_in, 1/√fan_in): PyTorch's default for Linear/Conv weights (kaiming_uniform, a=√5) and biases."""
    return uniform(shape, 1 / math.sqrt(fan_in) if fan_in else 0.0)


# ---- torch.nn.init: each fills `tensor` in place (its .data, on its device, in its dtype) and returns it --------
GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "conv_transpose1d": 1.0,
         "conv_transpose2d": 1.0, "conv_transpose3d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0),
         "selu": 3.0 / 4}


def calculate_gain(nonlinearity, param=None):
    """The gain that keeps activations' variance through `nonlinearity`: tanh 5/3, relu √2,
    leaky_relu √(2 / (1 + slope²)) (slope `param`, default 0.01), selu 3/4, 1 for the linear ones."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in GAINS:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity} (expected one of "
                         f"{', '.join(sorted(GAINS) + ['leaky_relu'])})")
    return GAINS[nonlinearity]


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight (out, in, *kernel): in·∏kernel and out·∏kernel."""
    if tensor.ndim < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
                         f"(got shape {tensor.shape})")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    tensor.data[...] = to_device(np.asarray(values, dtype=tensor.dtype), tensor.device)
    return tensor


def _draw(generator):
    return rng() if generator is None else generator


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    return _fill(tensor, _draw(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return _fill(tensor, _draw(generator).normal(mean, std, tensor.shape))


def constant_(tensor, val):
    return _fill(tensor, np.full(tensor.shape, val))


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def eye_(tensor):
    """The identity matrix, for a 2-D tensor."""
    if tensor.ndim != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported (got shape {tensor.shape})")
    return _fill(tensor, np.eye(*tensor.shape))


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a), a = gain·√(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std²), std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-b, b), b = gain·√(3 / fan) with gain = calculate_gain(nonlinearity, a) (He et al., 2015)."""
    if 0 in tensor.shape:
        return tensor  # PyTorch warns and leaves an empty tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std²), std = gain / √fan."""
    if 0 in tensor.shape:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)), generator)


def orthogonal_(tensor, gain=1, generator=None):
    """A (semi-)orthogonal matrix times gain, from the QR decomposition of a Gaussian one (Saxe et al., 2013);
    the trailing axes are flattened: W reshaped to (rows, cols) has W Wᵀ = gain²·I when rows <= cols."""
    if tensor.ndim < 2:
        raise ValueError(f"Only tensors with 2 or more dimensions are supported (got shape {tensor.shape})")
    if tensor.data.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.data.size // rows
    flat = _draw(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # a uniform draw over the orthogonal matrices, not QR's convention
    if rows < cols:
        q = q.T
    return _fill(tensor, (q * gain).reshape(tensor.shape))
