"""tinygrad_norm: a small autograd framework on NumPy/CuPy whose centrepiece is normalization plugins."""
from .autograd import Function, is_grad_enabled, no_grad
from .backend import DeviceError, get_array_module, gpu_available
from .gradcheck import GradcheckError, gradcheck, gradcheck_module
from . import data, distributed, nn, optim
from .random import manual_seed
from .serialization import load, save
from .tensor import (Tensor, as_tensor, cat, concatenate, from_numpy, maximum, minimum, ones, rand, randn, stack, tensor,
                     where, zeros)

__version__ = "0.1.0"
