"""The CPU's two thread pools, NumPy's BLAS (OpenBLAS: the matmuls) and numba's (the kernels), made to share
the cores, and one call that sets both, as torch.set_num_threads does. Also the one switch every numba
kernel obeys: `numba` is the module, or None where it is not installed or TINYGRAD_NORM_NUMBA=0 turns it off.

OpenBLAS's idle workers spin for 2^28 cycles (about 0.1 s) after each product before they sleep; on a
machine with few cores they hold the core that the next numba kernel's threads need, and the other way
round. On a 2-core machine a numba convolution (1.1 ms) alternated with a GEMM (0.4 ms) took 8.0 ms a
pair, and 1.7 ms with OpenBLAS's spin cut to its minimum, 2^4 cycles, which this module does when it is
imported (a PyTorch model trained in the same process got 2 to 4 times faster too). It sets
OPENBLAS_THREAD_TIMEOUT=4, unless the environment sets it already, and restarts OpenBLAS's pool so that the
pool reads it. Where NumPy's BLAS is not an OpenBLAS with those entry points (MKL, Accelerate), nothing
changes and `blas()` is None.

>>> import tinygrad_norm as tg
>>> tg.set_num_threads(1); tg.get_num_threads()
1
"""
import ctypes
import os

import numpy  # noqa: F401  (loads NumPy's BLAS, which this module then finds among the loaded libraries)

try:
    if os.environ.get("TINYGRAD_NORM_NUMBA", "1") == "0":
        raise ImportError("switched off by TINYGRAD_NORM_NUMBA=0")
    import numba
except ImportError:
    numba = None

FAST_MATH = {"reassoc", "contract"}  # numba's fastmath for the kernels' reductions: they vectorise; NaN and inf kept
SPIN_EXPONENT = "4"  # OpenBLAS's minimum: its idle workers sleep at once
_SET_THREADS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")


def _loaded_openblas():
    """The OpenBLAS library this process has loaded (NumPy's), as a ctypes handle, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if any(hasattr(lib, name) for name in _SET_THREADS):
            return lib
    return None


_BLAS = _loaded_openblas()


def blas():
    """NumPy's OpenBLAS as a ctypes handle, or None where it is another BLAS."""
    return _BLAS


def shorten_blas_spin():
    """Cut OpenBLAS's idle spin to its minimum (see the module's docstring); a no-op without OpenBLAS."""
    if _BLAS is None or not all(hasattr(_BLAS, f) for f in ("openblas_read_env", "blas_thread_shutdown_")):
        return False
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", SPIN_EXPONENT)
    _BLAS.openblas_read_env()
    _BLAS.blas_thread_shutdown_()  # the next product starts the pool again, which reads the timeout
    return True


def set_num_threads(n):
    """Use n threads in numba's kernels and in OpenBLAS's products (torch.set_num_threads)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int; got {n!r}")
    if numba is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    setter = next((getattr(_BLAS, f) for f in _SET_THREADS if _BLAS is not None and hasattr(_BLAS, f)), None)
    if setter is not None:
        setter(ctypes.c_int(n))


def get_num_threads():
    """The threads numba's kernels use (OpenBLAS's are set alike by set_num_threads)."""
    return numba.get_num_threads() if numba is not None else 1


shorten_blas_spin()
