"""The ops a CPU training step spends its time in, ours beside PyTorch's (same process, interleaved runs, float32,
median ms): the convolutions and max pools of the benchmarked models, forward and forward+backward, with the
achieved GFLOP/s beside the machine's measured matmul peak; and the engine's own cost per op, on a chain of
tiny ops.

    python benchmarks/bench_ops.py [--threads N] [--repeat 15] [--only TEXT] [--json out.json]

A convolution's FLOPs are 2·N·O·OH·OW·(C/groups)·kh·kw forward, three times that forward+backward (dx and
dw each cost a forward); each conv row's note gives both frameworks' GFLOP/s and which of our
implementations ran (ops/conv.py: direct, columns or windows). The peak row is one 1024³ float32 matmul
of each framework's BLAS. --threads N sets both frameworks' threads (tg.set_num_threads, torch.set_num_threads);
by default each keeps its own.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_norms import timed_fns  # noqa: E402
from common import default_json, median_ms_or_error, report, try_torch  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn  # noqa: E402

CONVS = [  # (label, input shape, out channels, kernel, padding): LeNet's two, the digits CNN's two, a VGG block's
    ("LeNet conv1 3->6 k5", (64, 3, 32, 32), 6, 5, 0),
    ("LeNet conv2 6->16 k5", (64, 6, 14, 14), 16, 5, 0),
    ("digits conv1 1->16 k3 p1", (32, 1, 8, 8), 16, 3, 1),
    ("digits conv2 16->32 k3 p1", (32, 16, 4, 4), 32, 3, 1),
    ("VGG conv 64->64 k3 p1", (32, 64, 16, 16), 64, 3, 1),
]
POOLS = [("LeNet pool1", (64, 6, 28, 28)), ("LeNet pool2", (64, 16, 10, 10)), ("digits pool", (32, 16, 8, 8))]
CHAIN = 300  # tiny ops in the engine-cost chain


def conv_flops(shape, out, k, pad):
    n, c, h, w = shape
    return 2 * n * out * (h + 2 * pad - k + 1) * (w + 2 * pad - k + 1) * c * k * k


def layer_fns(torch, make, shape):
    """(ours, torch's) (forward, forward+backward, result) closures on one input, as bench_norms times norms."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    tg.manual_seed(0)
    layer = make(nn)
    y = layer(tg.Tensor(x))
    g = rng.standard_normal(y.shape).astype(np.float32)
    ours = timed_fns(layer, tg.Tensor(x, requires_grad=True), tg.Tensor(g), tg.no_grad, lambda: None, False)
    if torch is None:
        return ours, None
    theirs = timed_fns(make(torch.nn), torch.tensor(x, requires_grad=True), torch.tensor(g), torch.no_grad,
                       lambda: None, False)
    return ours, theirs


def which_conv(layer, shape):
    """The name of the implementation our conv layer runs on this input: the op at the output's node keeps it."""
    return layer(tg.Tensor(np.zeros(shape, np.float32), requires_grad=True))._ctx.method.name


def timed_rows(torch, label, make, shape, repeat, flops=None):
    ours, theirs = layer_fns(torch, make, shape)
    rows = []
    for k, what in enumerate(("fwd", "fwd+bwd")):
        ms, errors = median_ms_or_error([ours[k], theirs[k] if theirs else None], repeat=repeat)
        row = {"name": f"{label} {what}", "ours_ms": ms[0], "torch_ms": ms[1]}
        if flops:
            total = flops * (1 if what == "fwd" else 3)
            rate = lambda t: f"{total / (t * 1e-3) / 1e9:.1f}" if t else "-"
            row["gflops"] = [total / (t * 1e-3) / 1e9 if t else None for t in ms]
            row["note"] = f"GFLOP/s ours {rate(ms[0])}, torch {rate(ms[1])}"
        if any(e for e in errors if e != "not run"):
            row["note"] = (row.get("note", "") + " FAILED " + "; ".join(e for e in errors if e)).strip()
        rows.append(row)
    return rows


def matmul_peak_row(torch, repeat):
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    ta = torch.tensor(a) if torch else None
    ms, _ = median_ms_or_error([lambda: a @ a, (lambda: ta @ ta) if torch else None], repeat=repeat)
    rate = lambda t: f"{2 * 1024 ** 3 / (t * 1e-3) / 1e9:.0f}" if t else "-"
    return {"name": "matmul 1024^3 (the peak)", "ours_ms": ms[0], "torch_ms": ms[1],
            "note": f"GFLOP/s ours (NumPy's BLAS) {rate(ms[0])}, torch {rate(ms[1])}",
            "gflops": [2 * 1024 ** 3 / (t * 1e-3) / 1e9 if t else None for t in ms]}


def chain_row(torch, repeat):
    """The engine's cost per op: CHAIN tiny multiply-adds on 16 floats, forward and backward, µs per op."""
    def chain(x):
        for _ in range(CHAIN // 2):
            x = x * 1.0001 + 0.5
        return x.sum()

    x = tg.Tensor(np.ones(16, np.float32), requires_grad=True)
    tx = torch.ones(16, requires_grad=True) if torch else None
    ms, _ = median_ms_or_error([lambda: chain(x).backward(), (lambda: chain(tx).backward()) if torch else None],
                               repeat=repeat)
    per_op = [t * 1e3 / (CHAIN + 1) if t else None for t in ms]
    return {"name": f"engine: chain of {CHAIN} tiny ops fwd+bwd", "ours_ms": ms[0], "torch_ms": ms[1],
            "us_per_op": per_op, "note": "µs per op ours " + (f"{per_op[0]:.1f}" if per_op[0] else "-") +
            ", torch " + (f"{per_op[1]:.1f}" if per_op[1] else "-")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="threads for both frameworks (default: their own)")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", default="", help="substring filter on case names")
    ap.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/"
                                                 "bench_ops[_threadsN].json)")
    args = ap.parse_args(argv)
    torch = try_torch(threads=args.threads)
    if args.threads:
        tg.set_num_threads(args.threads)
    rows = [matmul_peak_row(torch, args.repeat)] if args.only in "matmul 1024^3 (the peak)" else []
    for label, shape, out, k, pad in CONVS:
        if args.only in label:
            make = lambda m, c=shape[1], o=out, k=k, p=pad: m.Conv2d(c, o, k, padding=p)
            new = timed_rows(torch, label, make, shape, args.repeat, conv_flops(shape, out, k, pad))
            for row in new:
                row["method"] = which_conv(make(nn), shape)
                row["note"] += f"; ours: {row['method']}"
            rows += new
    for label, shape in POOLS:
        if args.only in label:
            rows += timed_rows(torch, f"{label} max 2x2 {shape}", lambda m: m.MaxPool2d(2), shape, args.repeat)
    if args.only in "engine: chain":
        rows.append(chain_row(torch, args.repeat))
    threads = f"{args.threads} thread(s) each" if args.threads else \
        f"default threads (ours {tg.get_num_threads()}, torch {torch.get_num_threads() if torch else '-'})"
    report(f"ops, cpu, float32, median of {args.repeat}, {threads}", rows,
           args.json or default_json(__file__, "bench_ops" + (f"_threads{args.threads}" if args.threads else ""),
                                     "cpu"))
    return rows


if __name__ == "__main__":
    main()
