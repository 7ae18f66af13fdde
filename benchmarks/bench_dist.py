"""Data-parallel training over MPI at 1, 2 and 4 processes: one SGD-momentum step of LeNet (3x32x32, float32)
per process, ours (DataParallel) beside PyTorch's DistributedDataParallel over gloo, timed in the same
processes, every variant interleaved; median ms of rank 0 (every step ends in collectives, so the ranks move together).

    python benchmarks/bench_dist.py [--ranks 1 2 4] [--batch 32] [--repeat 15] [--json out.json]

The driver launches `mpiexec -n K python bench_dist.py --worker` for each K. Variants: BatchNorm with local
statistics, BatchNorm synchronized over the processes (ours: SyncBatchNorm; PyTorch's SyncBatchNorm runs on
GPUs only, so that cell is empty), and GroupNorm. Then one BatchNorm layer alone, fused and local vs split into
halves with the statistics combined across the processes: where a synchronized norm's cost comes from. Every process runs one thread (OMP, numba, torch), so K
processes ask for K cores: beyond the machine's cores the numbers measure oversubscription, and say so.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_training import BN2, lenet, step_fns  # noqa: E402
from common import default_json, median_ms, report, try_torch  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import distributed as dist  # noqa: E402
from tinygrad_norm import nn  # noqa: E402
from tinygrad_norm.norms.normalize import normalize  # noqa: E402
from tinygrad_norm.norms.sync import BatchSync  # noqa: E402

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
GN = lambda m, c: m.GroupNorm(2, c)
VARIANTS = {"BN local": (BN2, False), "BN synchronized": (BN2, True), "GN": (GN, False)}


def worker(batch, repeat, port, out):
    dist.init()
    torch = try_torch(threads=1)
    if torch is not None:
        import torch.distributed as tdist
        tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=dist.rank(),
                                 world_size=dist.world_size())
    rng = np.random.default_rng(dist.rank())
    x, y = rng.normal(size=(batch, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, batch)
    steps = {}  # every variant's steps, timed interleaved, so that drift over the run hits all alike
    for name, (norm, sync) in VARIANTS.items():
        ours = lenet(nn, norm)
        ours = dist.DataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(ours) if sync else ours)
        theirs = None
        if torch is not None and not sync:
            theirs = torch.nn.parallel.DistributedDataParallel(lenet(torch.nn, norm))
        steps[name] = step_fns(torch if theirs is not None else None, ours, theirs)
    fns = [(name, i, s) for name, pair in steps.items() for i, s in enumerate(pair)]
    ms = median_ms([lambda s=s: s(x, y) for _, _, s in fns], repeat=repeat)
    rows = {name: {"ours_ms": None, "torch_ms": None} for name in steps}
    for (name, i, _), t in zip(fns, ms):
        rows[name]["torch_ms" if i else "ours_ms"] = t
    rows.update(norm_layer(torch, repeat))
    if dist.is_main():
        with open(out, "w") as f:
            json.dump(rows, f)


def norm_layer(torch, repeat, shape=(32, 16, 10, 10)):
    """Forward + backward of LeNet's second BatchNorm alone: fused and local, then split into its halves with
    the statistics and gradient sums combined over the world between them (in a world of one the combining is
    a no-op, so that row is the price of splitting alone), beside PyTorch's local BatchNorm2d."""
    layer = nn.BatchNorm2d(shape[1])
    plan, eps = layer.plan(shape), layer.eps
    rng = np.random.default_rng(dist.rank())
    x, dy = rng.normal(size=shape).astype(np.float32), rng.normal(size=shape).astype(np.float32)

    def ours(sync):
        t = tg.Tensor(x, requires_grad=True)
        normalize(t, [layer.weight, layer.bias], plan, eps, sync=sync)[0].backward(tg.Tensor(dy))

    combiner = BatchSync(dist.world(), "bench")
    fns = [lambda: ours(None), lambda: ours(combiner)]
    if torch is not None:
        theirs, tx, tdy = torch.nn.BatchNorm2d(shape[1]), torch.tensor(x, requires_grad=True), torch.tensor(dy)
        fns.append(lambda: theirs(tx).backward(tdy))
    ms = median_ms(fns, repeat=4 * repeat)
    return {"BN2d (32,16,10,10) fused, local": {"ours_ms": ms[0], "torch_ms": ms[2] if torch else None},
            "BN2d (32,16,10,10) halves + combine": {"ours_ms": ms[1], "torch_ms": None}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(ranks, batch, repeat):
    """Run the workers under mpiexec; returns rank 0's {variant: {ours_ms, torch_ms}}."""
    launcher = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "rows.json")
        command = [launcher if os.path.exists(launcher) else "mpiexec", "-n", str(ranks), sys.executable,
                   os.path.abspath(__file__), "--worker", "--batch", str(batch), "--repeat", str(repeat),
                   "--port", str(free_port()), "--out", out]
        done = subprocess.run(command, env={**os.environ, **SINGLE_THREAD}, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench_dist: {' '.join(command[:3])} failed:\n{done.stderr[-3000:]}")
        with open(out) as f:
            return json.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--batch", type=int, default=32, help="images per process per step")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.batch, args.repeat, args.port, args.out)
    rows = []
    for k in args.ranks:
        measured = launch(k, args.batch, args.repeat)
        local = measured["BN local"]["ours_ms"]
        for name, r in measured.items():
            if name not in VARIANTS:  # the norm layer alone
                fused = next(v["ours_ms"] for n, v in measured.items() if n.endswith("fused, local"))
                note = "" if "fused" in name else f"{r['ours_ms'] - fused:+.3f} ms ({r['ours_ms'] / fused:.2f}x fused)"
                rows.append({"name": f"{k} proc{'s' if k > 1 else ''}: {name}", "processes": k, "variant": name, "note": note, **r})
                continue
            images_per_s = k * args.batch / (r["ours_ms"] * 1e-3)
            note = f"{images_per_s:.0f} img/s ours"
            if r["torch_ms"]:
                note += f", {k * args.batch / (r['torch_ms'] * 1e-3):.0f} torch"
            if name == "BN synchronized":
                note += f"; sync costs {r['ours_ms'] - local:+.2f} ms ({r['ours_ms'] / local:.2f}x local BN)"
            rows.append({"name": f"{k} process{'es' if k > 1 else ''}, {name}", "processes": k, "variant": name,
                         "images_per_s": images_per_s, "note": note, **r})
    cores = os.cpu_count()
    notes = [f"LeNet, {args.batch} images per process per step, one thread per process, {cores} cores here"
             + ("; more processes than cores: those rows measure oversubscription" if max(args.ranks) > cores else ""),
             "PyTorch: DistributedDataParallel over gloo; its SyncBatchNorm needs a GPU, so that row has no torch time"]
    report(f"Data-parallel training step (median ms of rank 0, {args.repeat} interleaved runs)", rows,
           args.json or default_json(__file__, "bench_dist", "cpu"), notes=notes)


if __name__ == "__main__":
    main()
