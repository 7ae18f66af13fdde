"""Kernel backends of the normalize op, and the one policy that picks one for a plan.

    reference      NumPy or CuPy array expressions: any plan, any device; the oracle the others are tested against
    numba_cpu      fused CPU kernels compiled by numba (the `fast` extra), for plans with a layout
    cuda           CUDA C kernels compiled by CuPy through NVRTC, for plans with a layout
    cuda_emulated  the same CUDA C and launch code on the CPU, under an emulation of CUDA's execution model
                   (g++): never chosen by itself; the test tier that checks the CUDA kernels without a GPU

A backend is a `Kernels` subclass (interface.py, which lists the functions) in a file of its own and one
registration (the loop below, or `register(backend)` from outside). `choose` is the policy: TINYGRAD_NORM_KERNELS=name puts a backend first wherever it
runs and covers the plan; otherwise the automatic backends that run on the device, are available and cover
the plan's layout are candidates, and the highest priority wins (the reference covers every plan).

>>> from tinygrad_norm.norms import kernels
>>> kernels.choose("cuda", None).name, kernels.choose("cuda", ("columns", (1, 8, 6, 20), (1, 2))).name
('reference', 'cuda')
"""
import os

from .interface import Kernels, fold_param_grad, param_block, stats_dtype  # noqa: F401  (the shared helpers)
from . import cuda, cuda_emulated, numba_cpu, reference

BACKENDS = {}


def register(backend):
    """Add a backend (a Kernels instance) under its name; a second backend of one name is an error."""
    if not isinstance(backend, Kernels):
        raise TypeError(f"a kernel backend is a Kernels instance (see kernels/interface.py); got {backend!r}")
    if not isinstance(backend.name, str) or not backend.name:
        raise ValueError(f"kernel backend {type(backend).__name__} needs a name")
    if backend.name in BACKENDS:
        raise ValueError(f"a kernel backend named {backend.name!r} is already registered ({BACKENDS[backend.name]!r})")
    BACKENDS[backend.name] = backend
    return backend


for _backend in (reference.BACKEND, numba_cpu.BACKEND, cuda.BACKEND, cuda_emulated.BACKEND):
    register(_backend)


def get(name):
    """The backend registered under `name`; a KeyError naming the registered ones otherwise."""
    if name not in BACKENDS:
        raise KeyError(f"no kernel backend {name!r}; registered: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def choose(device, layout):
    """The backend for a plan of `layout` (None: no layout) on `device`."""
    forced = os.environ.get("TINYGRAD_NORM_KERNELS")
    if forced:
        backend = get(forced)
        ok, why = backend.available()
        if not ok:
            raise RuntimeError(f"TINYGRAD_NORM_KERNELS={forced}: that backend cannot run here: {why}")
        if device in backend.devices and backend.covers(layout):
            return backend
    candidates = [b for b in BACKENDS.values()
                  if b.automatic and device in b.devices and b.covers(layout) and b.available()[0]]
    return max(candidates, key=lambda b: b.priority)
