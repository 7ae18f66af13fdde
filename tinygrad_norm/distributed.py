"""Data-parallel training over MPI: one process per worker, each on its own slice of every batch.

    import tinygrad_norm as tg
    from tinygrad_norm import distributed as dist
    dist.init()                                     # mpiexec's world; a world of one under plain python
    model = dist.DataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(model))
    loader = DataLoader(data, batch_size=32, sampler=dist.DistributedSampler(data, seed=0))
    ...  loss.backward()  -> gradients averaged over the processes;  optimizer.step() is the same everywhere

Run with `mpiexec -n 4 python train.py`. The collectives (init, rank, all_reduce, ...) are world.py's.
"""
import contextlib

from .engine import Function, is_grad_enabled
from .backend import get_array_module
from .data import DistributedSampler
from .module import Module
from .tensor import Tensor
from .world import (World, all_reduce, barrier, broadcast, from_host_buffer, init, is_main, rank, to_host_buffer,
                    world, world_size)

__all__ = ["init", "rank", "world_size", "is_main", "all_reduce", "broadcast", "barrier", "world", "World",
           "DataParallel", "DistributedSampler"]


class GradientSync(Function):
    """The identity, marking where a DataParallel model's output enters the graph: its `after_backward`
    averages the gradients once the backward pass has finished."""

    def forward(self, x):
        return x

    def backward(self, g, y, x):
        return g


def buckets(tensors, limit_bytes):
    """Consecutive runs of tensors of one dtype and device, each run at most `limit_bytes` (or one tensor)."""
    run, size = [], 0
    for t in tensors:
        nbytes = t.data.nbytes
        if run and (size + nbytes > limit_bytes or (t.dtype, t.device) != (run[0].dtype, run[0].device)):
            yield run
            run, size = [], 0
        run.append(t)
        size += nbytes
    if run:
        yield run


def describe(module):
    """What must agree across processes: each parameter's and buffer's name, shape and dtype."""
    return ([("parameter", n, tuple(t.shape), str(t.dtype)) for n, t in module.named_parameters()] +
            [("buffer", n, tuple(t.shape), str(t.dtype)) for n, t in module.named_buffers()])


def differences(mine, reference):
    """How one process's description differs from rank 0's, as phrases ([] when they agree)."""
    ours, theirs = ({(k, n): (s, d) for k, n, s, d in desc} for desc in (mine, reference))
    found = [f"{k} {n!r} is {s} {d} here but {theirs[k, n][0]} {theirs[k, n][1]} on rank 0"
             for (k, n), (s, d) in ours.items() if (k, n) in theirs and theirs[k, n] != (s, d)]
    found += [f"{k} {n!r} is missing here" for (k, n) in theirs if (k, n) not in ours]
    found += [f"{k} {n!r} is not on rank 0" for (k, n) in ours if (k, n) not in theirs]
    return found


class DataParallel(Module):
    """Wrap `module` for data-parallel training (PyTorch's DistributedDataParallel, over MPI).

    When wrapped: the processes' models are compared (names, shapes, dtypes; a mismatch is the same error
    on every process), then rank 0's parameters and buffers are copied to every process. In training,
    forward first copies rank 0's buffers again (broadcast_buffers, as PyTorch does: BatchNorm's running
    statistics stay those of rank 0; SyncBatchNorm's agree anyway). Each backward() ends by averaging
    every parameter's gradient over the processes, `bucket_mb` megabytes per MPI call, so that the
    optimizer steps identically everywhere. In a world of one it adds nothing.
    """

    def __init__(self, module, bucket_mb=4.0, broadcast_buffers=True):
        super().__init__()
        self.module, self.world = module, init()
        self.bucket_bytes, self.broadcast_buffers, self.sync_gradients = int(bucket_mb * 2**20), broadcast_buffers, True
        if self.world.size > 1:
            seen = self.world.gather_objects(describe(module))
            problems = {r: differences(d, seen[0]) for r, d in enumerate(seen)}
            problems = {r: p for r, p in problems.items() if p}
            if problems:
                raise ValueError("DataParallel: every process must wrap the same model, but " + "; ".join(
                    f"on rank {r}: " + ", ".join(p) for r, p in problems.items()))
            self._broadcast(list(module.parameters()) + list(module.buffers()))

    def forward(self, *args, **kwargs):
        if self.world.size == 1:
            return self.module(*args, **kwargs)
        if self.training and self.broadcast_buffers:
            self._broadcast(list(self.module.buffers()))
        out = self.module(*args, **kwargs)
        return self._mark(out) if self.sync_gradients and is_grad_enabled() else out

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside keep their gradients local (to accumulate micro-batches); the first one
        after averages everything accumulated."""
        previous, self.sync_gradients = self.sync_gradients, False
        try:
            yield
        finally:
            self.sync_gradients = previous

    def save(self, path):
        """Rank 0 writes the wrapped model's checkpoint (loadable into the bare model); the others wait."""
        if self.world.rank == 0:
            self.module.save(path)
        self.world.barrier()

    def load_state_dict(self, state, strict=True):
        """This wrapper's own state_dict (keys with PyTorch's `module.` prefix) or the bare model's, which is what
        `save` writes; every process loads the same state."""
        prefix = "module."
        if state and not any(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {prefix + k if isinstance(k, str) else k: v for k, v in state.items()}
        return super().load_state_dict(state, strict)

    def _mark(self, out):
        if isinstance(out, (tuple, list)):
            return type(out)(self._mark(o) for o in out)
        if isinstance(out, Tensor) and out.requires_grad:
            return GradientSync.apply(out, after_backward=self._average_gradients)
        return out

    def _average_gradients(self):
        """grad = (Σ over processes of grad) / world size; a process without a grad for a parameter counts
        zero, and the parameter gets a grad when any process has one."""
        params = [p for p in self.module.parameters() if p.requires_grad]
        for bucket in buckets(params, self.bucket_bytes):
            xp, dtype = get_array_module(bucket[0].data), bucket[0].dtype
            grads = [p.grad.data if p.grad is not None else xp.zeros(p.shape, dtype) for p in bucket]
            flags = xp.array([p.grad is not None for p in bucket], dtype)
            total = self.world.all_reduce(to_host_buffer(grads + [flags])) / dtype.type(self.world.size)
            present = total[-len(bucket):] > 0
            for p, grad, has in zip(bucket, from_host_buffer(total[:-len(bucket)], grads), present):
                p.grad = Tensor._from_array(grad) if has else None

    def _broadcast(self, tensors):
        """Overwrite each tensor's array with rank 0's."""
        for bucket in buckets(tensors, self.bucket_bytes):
            arrays = [t.data for t in bucket]
            for t, array in zip(bucket, from_host_buffer(self.world.broadcast(to_host_buffer(arrays), root=0), arrays)):
                t.data = array
