"""Forward and forward+backward of every norm plugin, ours beside PyTorch's (CPU, float32, same run).

    python benchmarks/bench_norms.py [--device cuda] [--repeat 15] [--json out.json]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median_ms, report, try_torch  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn  # noqa: E402

# (label, our constructor, torch constructor, input shape): the shapes issue 7 measured PyTorch on
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


def ours_fns(make, shape, device):
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal(shape).astype(np.float32), device=device, requires_grad=True)
    g = tg.Tensor(rng.standard_normal(shape).astype(np.float32), device=device)
    sync = (lambda: __import__("cupy").cuda.Device().synchronize()) if device == "cuda" else (lambda: None)
    return timed_fns(make(nn).to(device), x, g, tg.no_grad, sync)


def torch_fns(torch, make, shape, device):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal(shape).astype(np.float32), device=device, requires_grad=True)
    g = torch.tensor(rng.standard_normal(shape).astype(np.float32), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return timed_fns(make(torch.nn).to(device), x, g, torch.no_grad, sync)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", default="", help="substring filter on case names")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bench_norms.json"),
                    help="where to write the results (default: benchmarks/results/bench_norms.json)")
    args = ap.parse_args(argv)
    torch = try_torch(threads=os.cpu_count() if args.device == "cpu" else None)
    rows = []
    for label, make, shape in CASES:
        if args.only not in label:
            continue
        ours = ours_fns(make, shape, args.device)
        theirs = torch_fns(torch, make, shape, args.device) if torch else (None, None)
        for kind, i in (("fwd", 0), ("fwd+bwd", 1)):
            fns = [ours[i]] + ([theirs[i]] if torch else [])
            ms = median_ms(fns, repeat=args.repeat)
            rows.append({"name": f"{label} {kind}", "ours_ms": ms[0], "torch_ms": ms[1] if torch else None})
    report(f"norm plugins, {args.device}, float32, median of {args.repeat}", rows, args.json)
    return rows


if __name__ == "__main__":
    main()
