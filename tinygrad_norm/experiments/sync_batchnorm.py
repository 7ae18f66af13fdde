"""The remedy for BN's small batches: statistics synchronized across processes. Four processes each take 8 of
every step's 32 MNIST-1D-like samples (data-parallel, gradients averaged) through ghost_batches.py's six-norm
conv net:

    BN local         each process normalizes with the statistics of its own 8 samples (BN at k = 8)
    SyncBatchNorm    the statistics of all 32 (convert_sync_batchnorm), what one process over 32 computes
    GN               never pools over the batch, so it needs no synchronization

Each learning rate is chosen on the validation part; every process scores the same test set with its model
(rank 0's is reported; SyncBatchNorm's running statistics agree on every rank, local BN's are rank 0's own).

    mpiexec -n 4 python -m tinygrad_norm.experiments.sync_batchnorm [--quick] [--seeds N]
"""

from .. import distributed as dist
from .. import nn
from ..data import make_mnist1d
from .models import conv1d_net
from .protocol import accuracy, and_recalibrated, compare, differs, split, summary
from .report import errorbars, figure, main, pm, save, save_figure

STEP = 32  # samples per optimizer step, over all processes
METRICS = ["test accuracy", "test accuracy, recalibrated"]


def settings(quick):
    if quick:
        return dict(train=400, test=300, width=16, epochs=1, grid=(0.1,), seeds=2)
    return dict(train=4000, test=1000, width=32, epochs=10, grid=(0.01, 0.02, 0.05, 0.1, 0.2), seeds=3)


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    s = settings(quick)
    seeds = list(range(seeds or s["seeds"]))
    log = log if dist.is_main() else (lambda *a: None)
    size, rank = dist.world_size(), dist.rank()
    if STEP % size:
        raise SystemExit(f"sync_batchnorm: {STEP} samples per step must split evenly over the processes; got {size}")
    share = STEP // size
    data = split("MNIST-1D-like", *make_mnist1d(s["train"], s["test"]))
    log(f"{size} processes x {share} samples per step = {STEP} per step")

    def batches(rng):
        """This process's share of each step: one order for all processes (same seed), cut into steps of 32."""
        order = rng.permutation(len(data.x))
        for i in range(0, len(order) - STEP + 1, STEP):
            idx = order[i + rank * share:i + (rank + 1) * share]
            yield data.x[idx], data.y[idx]

    net = lambda kind: conv1d_net(kind, 6, s["width"])
    methods = {f"BN local (k={share})": lambda: dist.DataParallel(net("batch")),
               "SyncBatchNorm (k=32)": lambda: dist.DataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(net("batch"))),
               "GN": lambda: dist.DataParallel(net("group"))}
    def measure(model, run):
        """Rank 0's model on the test set; recalibrated as it trained: each process its own share, 8 at a time."""
        test = lambda: {"test accuracy": accuracy(model, data.x_test, data.y_test, device)}
        return and_recalibrated(model, test(), test, data.x[rank::size], batch_size=share, device=device)
    results = compare(methods, data, s["grid"], dict(epochs=s["epochs"], batches=batches, log=None), seeds, measure,
                      device, log)
    if not dist.is_main():
        return None, ""
    local, synced = (results[k]["per_seed"]["test accuracy"] for k in methods if k != "GN")
    gain = summary(synced)[0] - summary(local)[0]
    verdict = ((f"synchronizing recovers {gain:.3f} of test accuracy" if differs(synced, local, 0.01) and gain > 0
                else f"no difference by the test ({gain:+.3f})") + f" at {share} samples per process.")
    result = {"experiment": "sync_batchnorm", "title": f"{size} processes x {share} samples: local BN, synced BN, GN",
              "data": data.description,
              "seeds": seeds, "settings": {**s, "seeds": len(seeds), "processes": size, "per process": share},
              "methods": results,
              "claim": "SyncBatchNorm, statistics over every process's samples, is the remedy for BN's small "
                       "per-process batches.",
              "test": "held if SyncBatchNorm's test accuracy beats local BN's by more than 0.01 and twice the "
                      "standard error of the difference.",
              "verdict": verdict}
    text = save(out, result, METRICS)
    fig, ax = figure(figsize=(5.5, 3.4))
    for i, label in enumerate(methods):
        errorbars(ax, [label], [results[label]["per_seed"]["test accuracy"]], label, offset=i)
    ax.set_xticks(range(len(methods)), list(methods), fontsize=8)
    ax.set(ylabel="test accuracy", ylim=(0, 1), title=f"{size} processes x {share} samples, mean ± std of "
                                                       f"{len(seeds)} seeds")
    save_figure(fig, out, "sync_batchnorm")
    return result, text


def headline(result):
    return "test accuracy: " + ", ".join(f"{label} {pm(m['per_seed']['test accuracy'])}"
                                         for label, m in result["methods"].items())


if __name__ == "__main__":
    main(run, __doc__, full_seeds=3, before=dist.init)
