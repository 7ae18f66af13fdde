"""The process world: every process of one run, and the collectives that combine their arrays.

Under an MPI launcher (`mpiexec -n 4 python train.py`) the world is MPI's COMM_WORLD, through mpi4py (the
`dist` extra). Launched plainly (`python train.py`) it is a world of one, which never imports mpi4py and
whose collectives return their input unchanged, so one script serves both.

    all_reduce(x, op)   every process gets the elementwise sum (or mean) of everyone's x
    broadcast(x, root)  every process gets root's x
    gather(x)           every process gets everyone's x, stacked in rank order: shape (world_size, *x.shape)

Arrays on the GPU go through host memory. The public collectives first compare every process's shape
and dtype, so a mismatch is the same clear error on every process instead of a hang or a crash inside
MPI; the internal ones (`World.all_reduce`, ...), used on the hot path where the shapes are known to agree,
do not.
"""
import os
import shutil
import sys

import numpy as np

from .backend import as_numpy, device_of, get_array_module, is_array, to_device
from .tensor import Tensor

# Set by the launchers: MPICH and Intel MPI (Hydra), Open MPI, PMIx (Slurm's srun), MVAPICH.
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
OPS = ("sum", "mean")


class World:
    """The processes of a run: an mpi4py communicator, or None for a world of one."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1

    def __repr__(self):
        return f"World(rank={self.rank}, size={self.size}, {'MPI' if self.comm is not None else 'single process'})"

    # The collectives on host arrays; a world of one returns its input.
    def all_reduce(self, a):
        """The elementwise sum over processes of a NumPy array (float16, which MPI lacks, travels as float32)."""
        if self.size == 1:
            return a
        wire = np.ascontiguousarray(a, np.float32 if a.dtype == np.float16 else a.dtype)
        out = np.empty_like(wire)
        self.comm.Allreduce(wire, out)
        return out.astype(a.dtype, copy=False)

    def broadcast(self, a, root=0):
        if self.size == 1:
            return a
        a = np.ascontiguousarray(a)
        self.comm.Bcast(a, root=root)
        return a

    def gather(self, a):
        if self.size == 1:
            return a[None]
        out = np.empty((self.size,) + a.shape, a.dtype)
        self.comm.Allgather(np.ascontiguousarray(a), out)
        return out

    def gather_objects(self, obj):
        """Small Python objects (descriptions, never data) from every process, in rank order."""
        return [obj] if self.size == 1 else self.comm.allgather(obj)

    def barrier(self):
        if self.size > 1:
            self.comm.Barrier()


def to_host_buffer(arrays, dtype=None):
    """The arrays (all on one device) flattened into one NumPy buffer, cast to `dtype` if given: joined on
    their device first, so a GPU's arrays cost one copy to the host."""
    flat = get_array_module(*arrays).concatenate([a.ravel() for a in arrays])
    return as_numpy(flat if dtype is None else flat.astype(dtype, copy=False))


def from_host_buffer(flat, likes):
    """to_host_buffer's inverse: `flat` cut into arrays of the shapes, dtypes and devices of `likes`."""
    pieces = np.split(flat, np.cumsum([a.size for a in likes])[:-1])
    return [to_device(piece.reshape(a.shape).astype(a.dtype, copy=False), device_of(a)) for piece, a in zip(pieces, likes)]


_world = None


def launched_by_mpi():
    """The launcher variable that says this process was started by an MPI launcher, or None."""
    return next((v for v in LAUNCHER_VARIABLES if v in os.environ), None)


def find_mpiexec():
    """The MPI launcher next to this Python (the mpich wheel puts one there) or on PATH, or None."""
    return shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def init():
    """Join the world the launcher made (a world of one without a launcher); idempotent. Returns the World."""
    global _world
    if _world is None:
        variable = launched_by_mpi()
        if variable is None:
            _world = World()
        else:
            try:
                from mpi4py import MPI
            except ImportError as e:
                raise ImportError(f"this process was started by an MPI launcher ({variable}={os.environ[variable]}) "
                                  f"but mpi4py cannot be imported ({e}); install it with "
                                  f"pip install 'tinygrad-norm[dist]'") from None
            _world = World(MPI.COMM_WORLD)
    return _world


def world():
    """The current World, joining it on first use."""
    return _world or init()


def rank():
    return world().rank


def world_size():
    return world().size


def is_main():
    """True on rank 0: the process that prints progress and writes checkpoints."""
    return world().rank == 0


def barrier():
    world().barrier()


def _input_problem(x, what):
    """Why x cannot go through a collective, or None: it must be a Tensor or an array of numbers."""
    if not (isinstance(x, Tensor) or is_array(x)):
        hint = " (stack a list of arrays into one with np.stack first)" if isinstance(x, (list, tuple)) else ""
        return f"{what} takes a Tensor, a NumPy array or a CuPy array; got {type(x).__name__}{hint}"
    if x.dtype.kind not in "biuf":
        return f"{what} takes numbers (bool, integer or floating-point arrays); got dtype {x.dtype}"
    return None


def _on_host(x, what, root=None):
    """(a NumPy copy of x to send, a function that turns a NumPy result back into x's kind and device), once
    every process's x is known to be alike: a Tensor or array of numbers of one shape and dtype everywhere, else
    the same TypeError or ValueError on every process (never a hang). A copy, so that a result never aliases the
    caller's array (a world of one hands its input back)."""
    problem = _input_problem(x, what)
    mine = ("problem", problem) if problem else (tuple(x.shape), str(x.dtype))
    seen = world().gather_objects(mine)
    problems = [(r, p) for r, (kind, p) in enumerate(seen) if kind == "problem"]
    if problems:
        raise TypeError("; ".join(f"on rank {r}: {p}" for r, p in problems) if len(seen) > 1 else problems[0][1])
    if len(set(seen)) > 1:
        each = ", ".join(f"rank {r}: {s} {d}" for r, (s, d) in enumerate(seen))
        raise ValueError(f"{what} needs the same shape and dtype on every process; got {each}")
    if root is not None and not 0 <= root < len(seen):
        raise ValueError(f"{what}: root {root} is not a rank of this world of {len(seen)} processes")
    if isinstance(x, Tensor):
        device = x.device
        return np.array(as_numpy(x.data)), lambda a: Tensor(to_device(a, device))
    if device_of(x) == "cuda":
        return as_numpy(x), lambda a: to_device(a, "cuda")
    return np.array(x), lambda a: a


def all_reduce(x, op="sum"):
    """The elementwise sum (op="sum") or mean (op="mean") of x over every process, as x's kind: a Tensor (no
    grad) for a Tensor, a CuPy array for a CuPy array, else a NumPy array."""
    if op not in OPS:
        raise ValueError(f"all_reduce: op must be one of {OPS}; got {op!r}")
    host, back = _on_host(x, "all_reduce")
    total = world().all_reduce(host)
    if op == "mean":
        total = total / world().size
    return back(total)


def broadcast(x, root=0):
    """Rank `root`'s x on every process, as x's kind (every process passes an x of the same shape and dtype)."""
    host, back = _on_host(x, "broadcast", root)
    return back(world().broadcast(host, root))
