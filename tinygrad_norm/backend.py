"""The array backend: NumPy on the CPU, CuPy on the GPU, chosen per array.

CuPy is imported only when a "cuda" device is asked for, so the CPU path never pays for it.
"""
import sys

import numpy as np

DEVICES = ("cpu", "cuda")


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide, or one op got inputs on two devices."""


def cupy_or_raise():
    """Return the cupy module, or raise a DeviceError that says whether CuPy or the GPU is missing."""
    try:
        import cupy
    except ImportError as e:
        raise DeviceError("device 'cuda' needs CuPy, which is not installed "
                          f"(pip install 'tinygrad-norm[gpu]'); import said: {e}") from None
    try:
        ok = cupy.cuda.is_available()
    except Exception as e:  # a driver that is present but broken raises here
        ok, why = False, f"{type(e).__name__}: {e}"
    else:
        why = "cupy.cuda.is_available() is False"
    if not ok:
        raise DeviceError(f"device 'cuda' needs a CUDA GPU: CuPy is installed but no usable GPU was found ({why})")
    return cupy


def gpu_available():
    """(True, "") when CuPy and a GPU are both usable, else (False, the reason)."""
    try:
        cupy_or_raise()
        return True, ""
    except DeviceError as e:
        return False, str(e)


def is_cupy_array(x):
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def is_array(x):
    """A NumPy or CuPy array."""
    return isinstance(x, np.ndarray) or is_cupy_array(x)


def get_array_module(*xs):
    """The array module (numpy or cupy) of the given arrays or tensors, as in DeZero and Chainer."""
    for x in xs:  # a Tensor's array is its .data (an ndarray's own .data is a buffer, never a cupy array)
        if is_cupy_array(x) or is_cupy_array(getattr(x, "data", None)):
            return sys.modules["cupy"]
    return np


def check_device(device):
    """"cpu" or "cuda" for a device name; "cuda:0" is "cuda" (one GPU is driven: device 0)."""
    device = str(device)
    if device.startswith("cuda:") and device[5:].isdigit():
        if int(device[5:]) != 0:
            raise DeviceError(f"device {device!r}: only one GPU is driven here, 'cuda' (which is 'cuda:0')")
        device = "cuda"
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: expected one of {DEVICES}")
    return device


def device_of(array):
    return "cuda" if is_cupy_array(array) else "cpu"


def module_for(device):
    return cupy_or_raise() if check_device(device) == "cuda" else np


def to_device(array, device):
    """Move an array to "cpu" (NumPy) or "cuda" (CuPy); a no-op when it is already there."""
    if check_device(device) == device_of(array):
        return array
    if device == "cpu":
        return array.get()
    return cupy_or_raise().asarray(array)


def as_numpy(array):
    return array.get() if is_cupy_array(array) else np.asarray(array)


def check_same_device(op, arrays):
    """Raise DeviceError naming `op` and the devices when the arrays are not all on one device."""
    devices = sorted({device_of(a) for a in arrays})
    if len(devices) > 1:
        raise DeviceError(f"{op}: inputs are on different devices ({' and '.join(devices)}); move them to one "
                          f"device with .to(device) first")


def as_strided(x, shape, strides):
    """A view of x with the given shape and byte strides, read-only where the backend allows it (NumPy's
    takes `writeable`, CuPy's does not)."""
    if is_cupy_array(x):
        return sys.modules["cupy"].lib.stride_tricks.as_strided(x, shape, strides)
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


def check_dtype(dtype):
    """`dtype` as a NumPy dtype; bfloat16, which NumPy (and so this framework) lacks, is a clear TypeError."""
    if "bfloat16" in str(dtype):
        raise TypeError("bfloat16 is not supported: NumPy and CuPy have no bfloat16 dtype; use float16 (half "
                        "precision) or float32")
    return np.dtype(dtype)
