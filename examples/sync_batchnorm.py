"""BatchNorm at 2 images per worker: local statistics vs statistics synchronized over the workers vs GroupNorm.

Four processes each train on 2 digits per step (a global batch of 8), data-parallel (gradients averaged):
  - BN local:        each process normalizes with the statistics of its own 2 images
  - BN synchronized: SyncBatchNorm, the statistics of all 8 images (convert_sync_batchnorm)
  - GN:              GroupNorm, which never pools over the batch, so it needs no synchronization
The learning rate of each is chosen on a validation split (seed 0); then several seeds train on the
training split and the test set is used once per run. Rank 0 prints progress and writes the results.

    mpiexec -n 4 python examples/sync_batchnorm.py [--quick]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import digits, figure, parser, save, save_figure, seeded, small_cnn  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import distributed as dist  # noqa: E402
from tinygrad_norm import nn, optim  # noqa: E402
from tinygrad_norm.data import DataLoader, TensorDataset  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402

VARIANTS = {"BN local": lambda: small_cnn("batch"),
            "BN synchronized": lambda: nn.SyncBatchNorm.convert_sync_batchnorm(small_cnn("batch")),
            "GN": lambda: small_cnn("group")}


def train(make, x, y, lr, epochs, per_worker, seed):
    """Data-parallel SGD; returns (model, median seconds per step on this process)."""
    seeded(seed)
    model = dist.DataParallel(make())
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    data = TensorDataset(x, y)
    sampler = dist.DistributedSampler(data, seed=seed, drop_last=True)
    loader = DataLoader(data, batch_size=per_worker, sampler=sampler, drop_last=True)
    times = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        for xb, yb in loader:
            start = time.perf_counter()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - start)
    return model, float(np.median(times))


def accuracy(model, x, y):
    """Test accuracy with the running statistics; each process scores a slice, the counts are summed."""
    model.eval()
    rows = np.array_split(np.arange(len(x)), dist.world_size())[dist.rank()]
    with tg.no_grad():
        correct = int((model(tg.Tensor(x[rows])).numpy().argmax(1) == y[rows]).sum()) if len(rows) else 0
    return float(dist.all_reduce(np.array([correct]))[0]) / len(x)


def run(quick=False, out="results", per_worker=2):
    log = print if dist.is_main() else (lambda *a: None)
    x, y, xt, yt = digits(640 if quick else None)
    n_val = len(x) // 5
    xv, yv, xtr, ytr = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
    epochs, rates, seeds = (1, (0.02, 0.05), (0, 1)) if quick else (6, (0.01, 0.02, 0.05, 0.1), (0, 1, 2, 3, 4))
    log(f"{dist.world_size()} processes x {per_worker} images per step = global batch {dist.world_size() * per_worker}")
    rows, start = [], time.perf_counter()
    for name, make in VARIANTS.items():
        val = {lr: accuracy(train(make, xtr, ytr, lr, epochs, per_worker, seed=0)[0], xv, yv) for lr in rates}
        lr = max(rates, key=lambda r: val[r])
        log(f"  {name}: validation accuracy " + ", ".join(f"lr {r}: {a:.3f}" for r, a in val.items()) + f" -> lr {lr}")
        tests, steps = [], []
        for seed in seeds:
            model, step = train(make, xtr, ytr, lr, epochs, per_worker, seed)
            tests.append(accuracy(model, xt, yt))
            steps.append(step)
            log(f"  {name} seed {seed}: test accuracy {tests[-1]:.3f}, {1e3 * step:.1f} ms/step "
                f"({time.perf_counter() - start:.0f} s)")
        rows.append({"norm": name, "lr": lr, "validation accuracy": val[lr], "test accuracy": float(np.mean(tests)),
                     "± std": float(np.std(tests)), "ms per step": 1e3 * float(np.median(steps)),
                     "per seed": {"test accuracy": tests, "ms per step": [1e3 * t for t in steps]}})
    if not dist.is_main():
        return rows
    meta = {"processes": dist.world_size(), "images per process per step": per_worker, "epochs": epochs,
            "seeds": list(seeds), "learning rates tried": list(rates), "train/validation/test images": [len(xtr), len(xv), len(xt)],
            "optimizer": "SGD momentum 0.9", "step time": "median over steps of rank 0, then over seeds"}
    text = save(out, "sync_batchnorm", rows, ["norm", "lr", "validation accuracy", "test accuracy", "± std", "ms per step"], meta)
    fig, axes = figure(1, 2, figsize=(8, 3.2))
    for ax, column, title in zip(axes, ("test accuracy", "ms per step"),
                                 (f"{len(seeds)} seeds: each, and mean ± std",
                                  f"{dist.world_size()} processes x {per_worker} images, median per seed")):
        for i, r in enumerate(rows):
            values = r["per seed"][column]
            ax.plot([i] * len(values), values, "o", color="#9bb7cc", markersize=4)
            ax.errorbar(i + 0.15, np.mean(values), yerr=np.std(values), fmt="s", color="#1f4e79", capsize=4)
        ax.set(xticks=range(len(rows)), xticklabels=[r["norm"] for r in rows], xlim=(-0.5, len(rows) - 0.5),
               ylabel=column, title=title)
    save_figure(fig, out, "sync_batchnorm")
    return rows, text


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    dist.init()
    run(args.quick, args.out)
