"""BatchNorm's statistics from few samples, with the gradient batch held fixed (the Group Normalization paper's
figure 1, redesigned): a 1-D conv net with six norm layers on MNIST-1D-like data, every step a batch of 32,
BN's statistics over ghost batches of k = 2, 4, 8 or 32 of its samples, against GN, LN, IN and no norm (which
never see k). BN over all 32 is what SyncBatchNorm computes over 32/k processes of k samples each (the remedy;
tests/test_distributed.py checks that equality; the MPI run is `sync_batchnorm`).

    python -m tinygrad_norm.experiments.ghost_batches [--quick] [--seeds N] [--device cuda]
"""

from ..data import make_mnist1d
from .models import conv1d_net
from .protocol import accuracy, and_recalibrated, compare, differs, split, summary
from .report import errorbars, figure, main, pm, save, save_figure

GHOSTS = (2, 4, 8, 32)
OTHERS = ("group", "layer", "instance", "none")
THRESHOLD = 0.01  # the smallest drop in test accuracy that counts as the effect, fixed before running
METRICS = ["test accuracy", "test accuracy, recalibrated", "final train loss"]


def settings(quick):
    if quick:
        return dict(train=400, test=500, depth=6, width=16, epochs=2, grid=(0.05, 0.2), seeds=3)
    return dict(train=4000, test=1000, depth=6, width=32, epochs=10, grid=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2), seeds=5)


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    s = settings(quick)
    seeds = list(range(seeds or s["seeds"]))
    data = split("MNIST-1D-like", *make_mnist1d(s["train"], s["test"]))
    net = lambda kind: (lambda: conv1d_net(kind, s["depth"], s["width"]))
    methods = {f"BN, k={k}": net(f"ghost {k}") for k in GHOSTS}
    methods.update({kind: net(kind) for kind in OTHERS})

    def measure(model, run):
        test = lambda: {"test accuracy": accuracy(model, data.x_test, data.y_test, device)}
        return and_recalibrated(model, {**test(), "final train loss": run.losses[-1]}, test, data.x, device=device)

    train = dict(epochs=s["epochs"], batch_size=32, log=None)
    results = compare(methods, data, s["grid"], train, seeds, measure, device, log)
    bn2, bn32, gn = (results[k]["per_seed"]["test accuracy"] for k in ("BN, k=2", "BN, k=32", "group"))
    drop, gn_gain = summary(bn32)[0] - summary(bn2)[0], summary(gn)[0] - summary(bn2)[0]
    if differs(bn2, bn32, THRESHOLD) and drop > 0:
        verdict = (f"the effect is there: BN over 2 samples loses {drop:.3f} against BN over 32; GN "
                   + (f"beats BN at k=2 by {gn_gain:.3f}" if differs(gn, bn2, THRESHOLD) and gn_gain > 0 else
                      f"does not beat BN at k=2 by the same test ({gn_gain:+.3f})") + ".")
    else:
        verdict = (f"no effect by the stated test: BN at k=2 vs k=32 differ by {drop:+.3f}, within the threshold "
                   "or the seeds' spread.")
    result = {"experiment": "ghost_batches", "title": "BN's statistics over k samples, the gradient batch fixed at 32",
              "data": data.description,
              "seeds": seeds, "settings": {**s, "seeds": len(seeds), "optimizer": "SGD momentum 0.9, cosine decay"},
              "methods": results,
              "claim": "BN degrades when its statistics come from few samples; GN, which never pools over the batch, "
                       "does not (Wu & He, 2018, fig. 1).",
              "test": f"the effect counts if BN at k=2 is below BN at k=32 by more than {THRESHOLD:.2f} and by more "
                      "than twice the standard error of the difference (test accuracy, running statistics).",
              "verdict": verdict}
    text = save(out, result, METRICS)
    plot(out, result)
    return result, text


def plot(out, result):
    fig, ax = figure(figsize=(6.2, 3.6))
    bn = [result["methods"][f"BN, k={k}"]["per_seed"] for k in GHOSTS]
    errorbars(ax, GHOSTS, [p["test accuracy"] for p in bn], "BN, running statistics")
    errorbars(ax, GHOSTS, [p["test accuracy, recalibrated"] for p in bn], "BN, recalibrated", offset=0.08,
              linestyle="--")
    for kind, color in zip(OTHERS, ("C2", "C3", "C4", "C7")):
        mean, std = summary(result["methods"][kind]["per_seed"]["test accuracy"])
        ax.axhspan(mean - std, mean + std, color=color, alpha=0.15)
        ax.axhline(mean, color=color, linewidth=1, label=f"{kind} (never sees k): {mean:.3f} ± {std:.3f}")
    n = len(result["seeds"])
    ax.set(xlabel="samples per BN statistic k (gradient batch 32)", ylabel="test accuracy", ylim=(0, 1),
           title=f"Ghost-batch BN vs batch-free norms, mean ± std of {n} seeds")
    ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, out, "ghost_batches")


def headline(result):
    acc = lambda label, metric="test accuracy": pm(result["methods"][label]["per_seed"][metric])
    return ("test accuracy, BN with running statistics at k = " + ", ".join(f"{k}: {acc(f'BN, k={k}')}" for k in GHOSTS)
            + "; recalibrated at k = 2: " + acc("BN, k=2", "test accuracy, recalibrated") + "; "
            + ", ".join(f"{kind} {acc(kind)}" for kind in OTHERS))


if __name__ == "__main__":
    main(run, __doc__, full_seeds=5)
