"""The CUDA backend on the CPU: its kernel source and launch code unchanged, its RawModule a stand-in.

`RawModule(code)` compiles the CUDA C with g++ against cuda_emulation.h (CUDA's execution model: a fiber
per thread, true barriers, warp shuffles by PTX's rules, poisoned shared memory); `get_function(name)`
gives a launcher that takes CuPy's `(grid, block, args)` with NumPy arrays where CuPy takes device arrays.
Each launch
  - checks every argument against the kernel's C signature (count, pointer dtypes, scalar widths);
  - copies each array into its own buffer between guard pages and NaN canaries; a pointer the signature
    does not mark const is an output and starts as NaN bytes;
  - runs once per schedule in `schedules` (ascending, descending, shuffled thread and block orders) and
    requires bit-identical outputs, untouched canaries and every output element written;
and raises EmulationError naming the kernel, the argument and the element otherwise. The only change to
the source: float16's two PTX `cvt` lines become software round-to-nearest-even (each must match exactly).

>>> import numpy as np
>>> twice = RawModule('typedef float F; extern "C" __global__ void twice(const F* x, F* y) {'
...                   '    y[threadIdx.x] = 2 * x[threadIdx.x]; }').get_function("twice")
>>> y = np.empty(4, np.float32)
>>> twice((1,), (4,), (np.arange(4, dtype=np.float32), y))
>>> y
array([0., 2., 4., 6.], dtype=float32)
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import cuda

HEADER = Path(__file__).with_name("cuda_emulation.h")
COMPILER = os.environ.get("CXX", "g++")
FLAGS = ("-std=c++14", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-strict-aliasing")
SWAPS = {cuda.HALF_LOAD: "f = emu::half_to_float(p[i]);", cuda.HALF_STORE: "h = emu::float_to_half(v);"}
STORAGE = {"float": np.float32, "double": np.float64, "unsigned short": np.float16}  # a half is stored as bits
SCALARS = {"long long": (np.int64, ctypes.c_int64), "int": (np.int32, ctypes.c_int32),
           "double": (np.float64, ctypes.c_double), "float": (np.float32, ctypes.c_float)}
PAGE, FRONT = 4096, 256  # a buffer's data starts FRONT bytes into its first page after the guard


class EmulationError(RuntimeError):
    """A kernel did something CUDA does not allow, or gave results that depend on the schedule."""


class _Launch(ctypes.Structure):
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3), ("schedule", ctypes.c_int),
                ("timeout_s", ctypes.c_double), ("n_regions", ctypes.c_int),
                ("regions", ctypes.POINTER(ctypes.c_uint64)), ("error", ctypes.c_char * 2048)]


def signatures(code):
    """{kernel: [(C type, parameter name), ...]} of every `extern "C" __global__` function in `code`."""
    found = re.finditer(r'extern "C" __global__ void (\w+)\(([^)]*)\)', code)
    return {m.group(1): [tuple(p.strip().rsplit(" ", 1)) for p in m.group(2).split(",")] for m in found}


def emulated_source(code):
    """The kernel source as g++ compiles it: the float16 conversions swapped, one entry point per kernel."""
    for ptx, software in SWAPS.items():
        if ptx in code:
            if code.count(ptx) != 1:
                raise EmulationError(f"the float16 conversion {ptx!r} appears {code.count(ptx)} times; expected once")
            code = code.replace(ptx, software)
    if "asm(" in code:
        raise EmulationError("the source has inline PTX the emulation cannot run: " +
                             code[code.index("asm("):].split("\n")[0])
    entries = [f'extern "C" int emu_launch_{name}(emu::Launch* l, void** a) {{\n'
               f'    return emu::launch(l, [a] {{ {name}(' +
               ", ".join(f"*({ctype}*)a[{i}]" for i, (ctype, _) in enumerate(params)) +
               "); });\n}\n" for name, params in signatures(code).items()]
    return f'#include "{HEADER}"\n#line 1 "kernels.cu"\n' + code + '\n#line 1 "launchers.cpp"\n' + "".join(entries)


def compiler():
    """The C++ compiler's path, or None."""
    return shutil.which(COMPILER)


def build(code):
    """Compile the emulated source to a shared library (cached by content) and load it."""
    text = emulated_source(code)
    key = hashlib.sha256((text + HEADER.read_text() + " ".join(FLAGS)).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"tinygrad_norm_emulation_{os.getuid()}"
    library = folder / f"{key}.so"
    if not library.exists():
        folder.mkdir(exist_ok=True)
        source = folder / f"{key}.cpp"
        source.write_text(text)
        partial = folder / f"{key}.{os.getpid()}.so"
        done = subprocess.run([compiler() or COMPILER, *FLAGS, "-o", str(partial), str(source)],
                              capture_output=True, text=True)
        if done.returncode:
            raise EmulationError(f"{COMPILER} rejected the emulated kernel source:\n{done.stderr[-4000:]}")
        os.replace(partial, library)  # atomic: a concurrent build never loads half a file
    lib = ctypes.CDLL(str(library))
    lib.emu_buffer.restype = ctypes.c_void_p
    lib.emu_buffer.argtypes = [ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
    lib.emu_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return lib


class _Buffer:
    """One array argument's guarded copy: [guard page][FRONT canary][data][canary to the page's end][guard]."""

    def __init__(self, lib, array, output):
        self.lib, self.array, self.output, self.nbytes = lib, array, output, array.nbytes
        data, total = ctypes.c_void_p(), ctypes.c_size_t()
        self.base = lib.emu_buffer(self.nbytes, ctypes.byref(data), ctypes.byref(total))
        if not self.base:
            raise MemoryError(f"could not map a guarded buffer of {self.nbytes} bytes")
        self.data, self.total = data.value, total.value
        if not output:
            ctypes.memmove(self.data, array.ctypes.data, self.nbytes)

    def contents(self):
        return np.frombuffer(ctypes.string_at(self.data, self.nbytes), np.uint8)

    def canaries_intact(self):
        inner = np.frombuffer(ctypes.string_at(self.base + PAGE, self.total - 2 * PAGE), np.uint8)
        return bool((inner[:FRONT] == 0xFF).all() and (inner[FRONT + self.nbytes:] == 0xFF).all())

    def free(self):
        self.lib.emu_free(self.base, self.total)


class Kernel:
    """A launcher for one emulated kernel: called as CuPy's RawKernel is, kernel(grid, block, args)."""

    def __init__(self, module, name):
        if name not in module.signatures:
            raise EmulationError(f"no kernel {name!r} in the source; it has {', '.join(module.signatures)}")
        self.module, self.name, self.params = module, name, module.signatures[name]
        self.entry = getattr(module.lib, f"emu_launch_{name}")
        self.entry.argtypes = [ctypes.POINTER(_Launch), ctypes.POINTER(ctypes.c_void_p)]

    def _where(self, i):
        return f"{self.name}: argument {i} ({' '.join(self.params[i])})"

    def _slots(self, args):
        """Check the arguments against the C signature; (ctypes values, [(index, array, is output)])."""
        if len(args) != len(self.params):
            raise EmulationError(f"{self.name}: {len(args)} arguments for the {len(self.params)} of "
                                 f"{self.name}({', '.join(' '.join(p) for p in self.params)})")
        slots, arrays = [], []
        for i, ((ctype, _), arg) in enumerate(zip(self.params, args)):
            if ctype.endswith("*"):
                base = ctype.replace("const ", "").rstrip("*").strip()
                base = self.module.typedefs.get(base, base)
                if isinstance(arg, np.uint64) and arg == 0:
                    slots.append(ctypes.c_void_p(0))
                    continue
                if not isinstance(arg, np.ndarray) or not arg.flags.c_contiguous:
                    raise EmulationError(f"{self._where(i)}: expected a C-contiguous array, got {type(arg).__name__}")
                if arg.dtype != STORAGE[base]:
                    raise EmulationError(f"{self._where(i)}: expected {np.dtype(STORAGE[base]).name} ({base}), "
                                         f"got {arg.dtype}")
                arrays.append((i, arg, not ctype.startswith("const ")))
                slots.append(ctypes.c_void_p(0))  # the buffer's address, per run
            else:
                kind, ctor = SCALARS[ctype]
                if type(arg) is not kind:
                    raise EmulationError(f"{self._where(i)}: expected {np.dtype(kind).name} ({ctype}), got "
                                         f"{type(arg).__name__}")
                slots.append(ctor(arg))
        return slots, arrays

    def __call__(self, grid, block, args):
        slots, arrays = self._slots(args)
        dims = lambda d: (tuple(d) + (1, 1))[:3]
        results = None
        for schedule in self.module.schedules:
            buffers = [_Buffer(self.module.lib, a, out) for _, a, out in arrays]
            try:
                for (i, _, _), buf in zip(arrays, buffers):
                    slots[i].value = buf.data
                regions = (ctypes.c_uint64 * (3 * len(buffers)))(
                    *[v for (i, _, _), b in zip(arrays, buffers) for v in (b.data, b.data + b.nbytes, i)])
                launch = _Launch((ctypes.c_uint * 3)(*dims(grid)), (ctypes.c_uint * 3)(*dims(block)), schedule,
                                 self.module.timeout_s, len(buffers), regions)
                argv = (ctypes.c_void_p * len(slots))(*[ctypes.addressof(s) for s in slots])
                if self.entry(ctypes.byref(launch), argv):
                    message = re.sub(r"argument (\d+)", lambda m: "argument " + " ".join(self.params[int(m[1])]),
                                     launch.error.decode())
                    raise EmulationError(f"{self.name} (grid {dims(grid)}, block {dims(block)}, schedule "
                                         f"{schedule}): {message}")
                outputs = self._check(buffers, arrays, schedule)
            finally:
                for buf in buffers:
                    buf.free()
            if results is None:
                results = outputs
            else:
                self._same(results, outputs, arrays, schedule)
        for (_, array, out), got in zip(arrays, results):
            if out:
                np.copyto(array, got.view(array.dtype).reshape(array.shape))

    def _check(self, buffers, arrays, schedule):
        """Canaries intact and every output written; returns each buffer's bytes."""
        contents = []
        for (i, array, out), buf in zip(arrays, buffers):
            if not buf.canaries_intact():
                raise EmulationError(f"{self._where(i)}, schedule {schedule}: wrote outside its {buf.nbytes}-byte "
                                     f"buffer (a canary beside it changed)")
            got = buf.contents()
            if out and array.size:
                unwritten = np.flatnonzero((got.reshape(array.size, -1) == 0xFF).all(axis=1))
                if unwritten.size:
                    raise EmulationError(f"{self._where(i)}, schedule {schedule}: {unwritten.size} of {array.size} "
                                         f"elements hold the poison (0xFF bytes): never written, or copied from "
                                         f"poisoned memory (unwritten shared memory, a read outside a buffer); "
                                         f"first at flat index {unwritten[0]}")
            contents.append(got)
        return contents

    def _same(self, first, now, arrays, schedule):
        for (i, array, out), a, b in zip(arrays, first, now):
            if out and not np.array_equal(a, b):
                index = np.flatnonzero((a != b).reshape(array.size, -1).any(axis=1))[0]
                va, vb = a.view(array.dtype).ravel()[index], b.view(array.dtype).ravel()[index]
                raise EmulationError(f"{self._where(i)}: the result depends on the schedule: element {index} is "
                                     f"{va!r} under schedule {self.module.schedules[0]} and {vb!r} under {schedule}")


class RawModule:
    """Stands in for cupy.RawModule(code=...): the kernels of `code` compiled for the emulation."""
    schedules = (0, 1)   # ascending, descending; 2 and up: seeded shuffles of the thread and block orders
    timeout_s = 60.0     # a launch running longer is reported (a loop that never ends)

    def __init__(self, code, schedules=None):
        self.code, self.lib = code, build(code)
        self.signatures = signatures(code)
        self.typedefs = dict((alias, base) for base, alias in
                             re.findall(r"typedef (float|double|unsigned short) (\w+);", code))
        if schedules is not None:
            self.schedules = tuple(schedules)

    def get_function(self, name):
        return Kernel(self, name)


class CudaEmulated(cuda.CudaKernels):
    """The CUDA backend with the emulation's RawModule: NumPy arrays, chosen only by name."""
    name = "cuda_emulated"
    devices = ("cpu",)
    automatic = False  # hundreds of times slower than numba: a checker, not a way to compute

    def __init__(self, block=cuda.BLOCK, schedules=None, source=None):
        super().__init__(raw_module=lambda code: RawModule(source(code) if source else code, schedules), block=block)

    def available(self):
        if compiler() is None:
            return False, f"needs a C++ compiler ({COMPILER} not found; set CXX or install g++)"
        return True, ""


BACKEND = CudaEmulated()
