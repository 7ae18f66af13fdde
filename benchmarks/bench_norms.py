"""Forward and forward+backward of every norm plugin, ours beside PyTorch's (same process, interleaved runs).

    python benchmarks/bench_norms.py [--device cuda] [--dtype float16] [--repeat 15] [--only TEXT] [--json out.json]

On a GPU every run ends with a device synchronization, the large shapes are added, and each row shows the
achieved bandwidth: bytes moved / time, counting forward as 2 passes over the input (read x, write y) and
forward+backward as 6, the convention of issue 10's H100 table (the minimum is 5: read x, write y; read x
and dy, write dx), beside the measured device-to-device copy bandwidth.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import copy_gbps, default_json, median_ms, report, synchronizer, try_torch  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn  # noqa: E402

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
]
# the shapes of issue 10's H100 table, run on the GPU only (each input is 0.4-0.8 GB in float32)
LARGE = [
    ("BatchNorm2d (128,256,56,56)", lambda m: m.BatchNorm2d(256), (128, 256, 56, 56)),
    ("LayerNorm last dim (64,512,1024)", lambda m: m.LayerNorm(1024), (64, 512, 1024)),
    ("GroupNorm 32 groups (64,256,56,56)", lambda m: m.GroupNorm(32, 256), (64, 256, 56, 56)),
    ("InstanceNorm2d (64,256,56,56)", lambda m: m.InstanceNorm2d(256, affine=True), (64, 256, 56, 56)),
    ("RMSNorm last dim (64,512,1024)", lambda m: m.RMSNorm(1024), (64, 512, 1024)),
    ("LocalResponseNorm(5) (64,256,56,56)", lambda m: m.LocalResponseNorm(5), (64, 256, 56, 56)),
]
PASSES = {"fwd": 2, "fwd+bwd": 6}


def timed_fns(layer, x, g, no_grad, sync):
    """(forward, forward+backward) closures for one layer and input, in any framework."""
    def fwd():
        with no_grad():
            layer(x)
        sync()

    def fwd_bwd():
        layer(x).backward(g)
        sync()
    return fwd, fwd_bwd


def inputs(shape, dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def ours_fns(make, shape, device, dtype):
    """Our layer keeps float32 parameters for float16 input (statistics in float32, output float16)."""
    x, g = inputs(shape, dtype)
    x = tg.Tensor(x, device=device, requires_grad=True)
    return timed_fns(make(nn).to(device), x, tg.Tensor(g, device=device), tg.no_grad, synchronizer(device))


def torch_fns(torch, make, shape, device, dtype):
    """PyTorch's layer with float32 parameters where it accepts a float16 input beside them, else in half;
    returns the closures and which it was."""
    x, g = inputs(shape, dtype)
    x = torch.tensor(x, device=device, requires_grad=True)
    g = torch.tensor(g, device=device)
    layer = make(torch.nn).to(device)
    kind = "float32 parameters"
    if dtype == np.float16:
        try:
            layer(x)
        except RuntimeError:  # some layers insist on one dtype for input and parameters
            layer, kind = layer.half(), "converted to half"
    return timed_fns(layer, x, g, torch.no_grad, synchronizer(device, torch)), kind


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", default="", help="substring filter on case names")
    ap.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/"
                                                 "bench_norms[_cuda][_float16].json)")
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype)
    torch = try_torch(threads=os.cpu_count() if args.device == "cpu" else None)
    gpu = args.device == "cuda"
    ceiling = copy_gbps() if gpu else None
    device_name = None
    if gpu:
        import cupy
        device_name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode() + f", copy {ceiling:.0f} GB/s"
    rows = []
    for label, make, shape in CASES + (LARGE if gpu else []):
        if args.only not in label:
            continue
        ours = ours_fns(make, shape, args.device, dtype)
        theirs, kind = torch_fns(torch, make, shape, args.device, dtype) if torch else ((None, None), None)
        for phase, i in (("fwd", 0), ("fwd+bwd", 1)):
            fns = [ours[i]] + ([theirs[i]] if torch else [])
            ms = median_ms(fns, repeat=args.repeat)
            row = {"name": f"{label} {phase}", "ours_ms": ms[0], "torch_ms": ms[1] if torch else None}
            if gpu:
                row.update(bytes=PASSES[phase] * int(np.prod(shape)) * dtype.itemsize, copy_gbps=ceiling,
                           torch_layer=kind)
            rows.append(row)
    title = f"norm plugins, {args.device}, {args.dtype}, median of {args.repeat}"
    report(title, rows, args.json or default_json(__file__, "bench_norms", args.device, args.dtype), device_name)
    return rows


if __name__ == "__main__":
    main()
