"""Forward and forward+backward of every norm plugin, ours beside PyTorch's (same process, interleaved runs).

    python benchmarks/bench_norms.py [--device cuda] [--dtype float16] [--large] [--smoke] [--repeat 15]
                                     [--threads N] [--only TEXT] [--json out.json]

Every row shows the achieved bandwidth, bytes moved / median time, where the bytes are a number of passes over
the input's bytes:

    forward            2 passes  (read x, write y)
    forward+backward   6 passes  (issue 10's convention; the minimum is 5: forward reads x and writes y, backward
                                  reads x and dy and writes dx)

--threads N gives both frameworks N threads; by default ours keeps numba's (the cores) and PyTorch gets
os.cpu_count(). On a GPU (--device cuda) every timed run ends with a device synchronization
(cupy.cuda.Device().synchronize() for ours, torch.cuda.synchronize() for PyTorch's), and issue 10's large shapes
are added (--large adds them on the CPU too). With the large shapes each row also shows that bandwidth as a % of
the device's measured copy bandwidth ((read + written bytes) / time of a copy of a 1 GiB float32 array, measured
once), the gradients (x.grad and the parameters') are cleared before every forward+backward, so no
accumulation pass into an old gradient is timed, and each case prints the largest |ours - torch| of y (on the
fwd row) and of dx (on the fwd+bwd row) for one run on the same input.

--dtype float16: float16 input (and output gradient). Our layers keep float32 parameters. PyTorch's layer keeps
float32 parameters where it accepts a float16 input beside them (forward and backward), else it is converted
with .half(); the note column says which, per case.

--smoke runs the large cases at batch 2 and the copy on 64 MiB: a quick check that every path runs (on the
CPU too, where the copy is NumPy's), not a measurement.
"""
import argparse
import functools
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (copy_gbps, default_json, device_name, free_device_memory, median_ms_or_error,  # noqa: E402
                    report, synchronizer, try_torch)

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn  # noqa: E402
from tinygrad_norm.backend import as_numpy  # noqa: E402

def ghost_batch_norm(m, channels, k):
    """Ghost batches of k samples: ours is the plugin. PyTorch has none; its side is the usual way to write one,
    a reshape of (n·k, C, ...) into one BatchNorm over n·C channels (statistics per ghost batch and channel)
    and back, without running statistics (ours keeps them)."""
    if m is nn:
        return nn.Norm("ghost_batch", channels, k=k)
    torch = sys.modules["torch"]

    class GhostBatchNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = torch.nn.Parameter(torch.ones(channels)), torch.nn.Parameter(torch.zeros(channels))

        def forward(self, x):
            n = x.shape[0] // k
            v = x.reshape(n, k, channels, -1).transpose(0, 1).reshape(k, n * channels, -1)
            y = torch.nn.functional.batch_norm(v, None, None, self.weight.repeat(n), self.bias.repeat(n), True, 0.0, 1e-5)
            return y.reshape(k, n, channels, -1).transpose(0, 1).reshape(x.shape)
    return GhostBatchNorm()


# (label, constructor for a framework's nn module, input shape): the shapes issue 7 measured PyTorch on
CASES = [
    ("BatchNorm2d (32,64,32,32)", lambda m: m.BatchNorm2d(64), (32, 64, 32, 32)),
    ("BatchNorm1d (256,1024)", lambda m: m.BatchNorm1d(1024), (256, 1024)),
    ("LayerNorm last dim (64,128,512)", lambda m: m.LayerNorm(512), (64, 128, 512)),
    ("LayerNorm (C,H,W) (32,64,32,32)", lambda m: m.LayerNorm((64, 32, 32)), (32, 64, 32, 32)),
    ("InstanceNorm2d (32,64,32,32)", lambda m: m.InstanceNorm2d(64, affine=True), (32, 64, 32, 32)),
    ("GroupNorm 32 groups (32,64,32,32)", lambda m: m.GroupNorm(32, 64), (32, 64, 32, 32)),
    ("GroupNorm 8 groups (2,64,56,56)", lambda m: m.GroupNorm(8, 64), (2, 64, 56, 56)),
    ("RMSNorm last dim (64,128,512)", lambda m: m.RMSNorm(512), (64, 128, 512)),
    ("LocalResponseNorm(5) (32,64,32,32)", lambda m: m.LocalResponseNorm(5), (32, 64, 32, 32)),
    ("GhostBatchNorm k=16 (128,64,16,16)", lambda m: ghost_batch_norm(m, 64, 16), (128, 64, 16, 16)),
    ("GhostBatchNorm1d k=32 (1024,256)", lambda m: ghost_batch_norm(m, 256, 32), (1024, 256)),
    # small shapes (issue 24): about 1,000 elements, where a call's fixed cost is the time, and LayerNorm at 65k
    ("BatchNorm1d small (32,32)", lambda m: m.BatchNorm1d(32), (32, 32)),
    ("BatchNorm2d small (8,8,4,4)", lambda m: m.BatchNorm2d(8), (8, 8, 4, 4)),
    ("LayerNorm small (8,128)", lambda m: m.LayerNorm(128), (8, 128)),
    ("GroupNorm small 4 groups (4,16,4,4)", lambda m: m.GroupNorm(4, 16), (4, 16, 4, 4)),
    ("LayerNorm last dim (128,512)", lambda m: m.LayerNorm(512), (128, 512)),
]
# the shapes of issue 10's H100 table, run on the GPU or with --large (each input is 0.2-0.4 GB in float32)
LARGE = [
    ("BatchNorm2d (128,256,56,56)", lambda m: m.BatchNorm2d(256), (128, 256, 56, 56)),
    ("LayerNorm last dim (64,512,1024)", lambda m: m.LayerNorm(1024), (64, 512, 1024)),
    ("GroupNorm 32 groups (64,256,56,56)", lambda m: m.GroupNorm(32, 256), (64, 256, 56, 56)),
    ("InstanceNorm2d (64,256,56,56)", lambda m: m.InstanceNorm2d(256, affine=True), (64, 256, 56, 56)),
    ("RMSNorm last dim (64,512,1024)", lambda m: m.RMSNorm(1024), (64, 512, 1024)),
    ("LocalResponseNorm(5) (64,256,56,56)", lambda m: m.LocalResponseNorm(5), (64, 256, 56, 56)),
]
PASSES = {"fwd": 2, "fwd+bwd": 6}
SMOKE_BATCH, SMOKE_COPY_BYTES = 2, 64 << 20


def timed_fns(layer, x, g, no_grad, sync, clear_grads):
    """(forward, forward+backward, result) closures for one layer and input, in any framework; result() runs
    forward+backward once more and returns (y, dx) as that framework's tensors."""
    def clear():
        x.grad = None
        for p in layer.parameters():
            p.grad = None

    def fwd():
        with no_grad():
            layer(x)
        sync()

    def fwd_bwd():
        if clear_grads:
            clear()
        layer(x).backward(g)
        sync()

    def result():
        clear()
        y = layer(x)
        y.backward(g)
        sync()
        return y, x.grad
    return fwd, fwd_bwd, result


@functools.lru_cache(maxsize=1)  # ours and PyTorch's side of one case take the same arrays: made once
def inputs(shape, dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def ours_fns(make, shape, device, dtype, clear_grads=False):
    """Our layer keeps float32 parameters for float16 input (statistics in float32, output float16)."""
    x, g = inputs(shape, dtype)
    x = tg.Tensor(x, device=device, requires_grad=True)
    return timed_fns(make(nn).to(device), x, tg.Tensor(g, device=device), tg.no_grad, synchronizer(device),
                     clear_grads)


def torch_fns(torch, make, shape, device, dtype, clear_grads=False):
    """PyTorch's layer with float32 parameters where it accepts a float16 input beside them (forward and
    backward), else converted with .half(); returns the closures and which it was."""
    x, g = inputs(shape, dtype)
    x = torch.tensor(x, device=device, requires_grad=True)
    g = torch.tensor(g, device=device)
    layer = make(torch.nn).to(device)
    kind = None
    if dtype == np.float16:
        kind = "torch: float32 params"
        try:
            with warnings.catch_warnings():  # "Mismatch dtype between input and weight": the mixed path is slower
                warnings.simplefilter("ignore")
                layer(x).backward(g)
        except RuntimeError:  # some layers insist on one dtype for input and parameters
            layer, kind = layer.half(), "torch: .half()"
        x.grad = None
    return timed_fns(layer, x, g, torch.no_grad, synchronizer(device, torch), clear_grads), kind


def max_errors(ours, theirs):
    """max |ours - torch| of y and of dx for one forward+backward of each on the same input."""
    (y, dx), (ty, tdx) = ours[2](), theirs[2]()
    ours_np = lambda t: as_numpy(t.data).astype(np.float32)
    torch_np = lambda t: t.detach().float().cpu().numpy()
    return (float(np.max(np.abs(ours_np(y) - torch_np(ty)))), float(np.max(np.abs(ours_np(dx) - torch_np(tdx)))))


def run_case(torch, label, make, shape, args, dtype, large, ceiling):
    """The fwd and fwd+bwd rows of one case. A framework whose layer fails to build or run gets no time and its
    error in the note, and the benchmark goes on. With `large`: bytes for GB/s, and the |ours - torch| check."""
    ours = theirs = kind = None
    built = [None, None]
    try:
        ours = ours_fns(make, shape, args.device, dtype, clear_grads=large)
    except Exception as e:
        built[0] = f"{type(e).__name__}: {e}"[:200]
    if torch:
        try:
            theirs, kind = torch_fns(torch, make, shape, args.device, dtype, clear_grads=large)
        except Exception as e:
            built[1] = f"{type(e).__name__}: {e}"[:200]
    rows, errs = [], None
    for phase, i in (("fwd", 0), ("fwd+bwd", 1)):
        fns = [ours[i] if ours else None] + ([theirs[i] if theirs else None] if torch else [])
        ms, failed = median_ms_or_error(fns, repeat=args.repeat)
        failed = [b or f for b, f in zip(built, failed)]
        row = {"name": f"{label} {phase}", "ours_ms": ms[0], "torch_ms": ms[1] if torch else None}
        notes = [kind] if kind else []
        if kind:
            row["torch_layer"] = kind
        row["bytes"] = PASSES[phase] * int(np.prod(shape)) * dtype.itemsize  # GB/s on every row
        if large:
            row["copy_gbps"] = ceiling
            if errs is None and ms[0] is not None and len(ms) > 1 and ms[1] is not None:
                try:
                    errs = max_errors(ours, theirs)
                except Exception as e:
                    errs = f"check failed: {type(e).__name__}: {e}"[:200]
            if isinstance(errs, tuple):
                row["max_abs_err"] = errs[i]
                notes.append(f"err {('y', 'dx')[i]} {errs[i]:.1e}")
            elif errs:
                notes.append(errs)
        failures = [f"{who}: {f}" for who, f in zip(("ours", "torch"), failed) if f and f != "not run"]
        if failures:
            row["errors"] = failures
            notes.append("FAILED " + "; ".join(failures))
        if notes:
            row["note"] = "; ".join(notes)
        rows.append(row)
    return rows


def smoke_case(label, make, shape):
    """A large case cut to batch SMOKE_BATCH, its label showing the shape it runs."""
    small = (SMOKE_BATCH,) + shape[1:]
    return label.replace(",".join(map(str, shape)), ",".join(map(str, small))) + " smoke", make, small


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument("--large", action="store_true", help="add issue 10's large shapes (always on with cuda)")
    ap.add_argument("--smoke", action="store_true", help="the large shapes at batch 2, copy of 64 MiB: a quick "
                                                         "check that everything runs, not a measurement")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None, help="threads for both frameworks (tg.set_num_threads, "
                                                                 "torch.set_num_threads); default: each its own")
    ap.add_argument("--only", default="", help="substring filter on case names")
    ap.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/"
                                                 "bench_norms[_smoke|_large][_cuda][_float16].json)")
    args = ap.parse_args(argv)
    common.set_device(args.device)
    dtype = np.dtype(args.dtype)
    torch = try_torch(threads=args.threads or (os.cpu_count() if args.device == "cpu" else None))
    if args.threads:
        tg.set_num_threads(args.threads)
    large = args.device == "cuda" or args.large or args.smoke
    cases = list(CASES)
    if large:
        cases += [smoke_case(*case) if args.smoke else case for case in LARGE]
    copy_bytes = SMOKE_COPY_BYTES if args.smoke else 1 << 30
    ceiling = copy_gbps(args.device, nbytes=copy_bytes) if large else None
    rows = []
    for label, make, shape in cases:
        if args.only not in label:
            continue
        rows += run_case(torch, label, make, shape, args, dtype, large, ceiling)
        free_device_memory(args.device, torch)
    title = f"norm plugins, {args.device}, {args.dtype}, median of {args.repeat}, " + \
        (f"{args.threads} thread(s) each" if args.threads else f"default threads (ours {tg.get_num_threads()}, "
         f"torch {torch.get_num_threads() if torch else '-'})")
    title += " (SMOKE: large shapes cut to batch 2, not a measurement)" if args.smoke else ""
    notes = [f"GB/s = passes x input bytes / median time; fwd = {PASSES['fwd']} passes (read x, write y), "
             f"fwd+bwd = {PASSES['fwd+bwd']} passes (issue 10's convention; the minimum is 5: read x, write y, "
             f"read x and dy, write dx)"]
    if large:
        notes += [f"%copy = GB/s / device copy bandwidth {ceiling:.0f} GB/s ((read + written bytes) / time, copy of a "
                 f"{copy_bytes >> 20} MiB float32 array, median of 10)",
                 "fwd+bwd clears x.grad and the parameters' grads first (no accumulation pass); err = max |ours - "
                 "torch| of y (fwd row) and dx (fwd+bwd row), one run on the same input"]
        if dtype == np.float16:
            notes.append("float16: input and dy float16; ours keeps float32 parameters; torch's per row in the note "
                         "(float32 params where it accepts them beside a half input, else .half())")
    # smoke and CPU --large runs get their own default file, so they never overwrite a real run's
    name = "bench_norms" + ("_smoke" if args.smoke else "_large" if args.device == "cpu" and args.large else "") + \
        (f"_threads{args.threads}" if args.threads else "")
    report(title, rows, args.json or default_json(__file__, name, args.device, args.dtype),
           device_name(args.device, torch), notes)
    return rows


if __name__ == "__main__":
    main()
