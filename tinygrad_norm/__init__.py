"""tinygrad_norm: a small autograd framework on NumPy/CuPy whose centrepiece is normalization plugins."""
from .threads import get_num_threads, set_num_threads  # first: it tunes NumPy's BLAS threads (threads.py)
from .engine import Function, enable_grad, grad, is_grad_enabled, no_grad
from .backend import DeviceError, get_array_module, gpu_available
from .gradcheck import GradcheckError, gradcheck, gradcheck_module, gradgradcheck, gradgradcheck_module
from . import autograd, data, distributed, nn, optim
from .random import manual_seed
from .serialization import load, save
from .tensor import (Tensor, as_tensor, cat, concatenate, from_numpy, maximum, minimum, ones, rand, randn, stack, tensor,
                     where, zeros)

# PyTorch's dtype names, as NumPy dtypes, so that a ported script's torch.float32 is tg.float32
from numpy import (bool_ as bool, float16, float32, float64, int8, int16, int32, int64,  # noqa: E402, F401, A004
                   uint8)
half, float, double, long, int, short = float16, float32, float64, int64, int32, int16  # noqa: A001

__version__ = "0.1.0"
