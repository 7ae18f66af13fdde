"""An MLP with and without BatchNorm across learning rates (SGD, batch 64): which ones converge and which diverge.
The seeds' claim: BN lets a network train at learning rates that break it without BN.

    python examples/learning_rate.py [--quick]
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import accuracy, digits, figure, parser, save, save_figure, seeded, train  # noqa: E402

from tinygrad_norm import nn  # noqa: E402


def mlp(bn, hidden=128):
    """784 -> ... for 8x8 digits: 64 -> 128 -> 128 -> 10, BN after each hidden linear layer, before its ReLU."""
    norm = (lambda: nn.BatchNorm1d(hidden)) if bn else nn.Identity
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), norm(), nn.ReLU(),
                         nn.Linear(hidden, hidden), norm(), nn.ReLU(), nn.Linear(hidden, 10))


def run(quick=False, seed=0, out="results", log=print):
    x, y, xt, yt = digits(640 if quick else None)
    rates = (0.03, 0.3, 3.0) if quick else (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    epochs = 4 if quick else 10
    rows, curves = [], {}
    for lr in rates:
        row = {"learning rate": lr}
        for bn in (True, False):
            label = "BN" if bn else "no norm"
            seeded(seed)
            model = mlp(bn)
            losses = train(model, x, y, epochs, lr=lr, batch_size=64, seed=seed)
            curves[label, lr] = losses
            diverged = any(math.isnan(v) for v in losses)
            row[f"{label} accuracy"] = accuracy(model, xt, yt) if not diverged else 0.0
            row[f"{label} final loss"] = losses[-1]
            row[f"{label}"] = "diverged" if diverged else ("converged" if losses[-1] < 0.5 else "slow")
            log(f"  lr {lr:5}: {label:7s} {row[label]:9s} loss {losses[-1]:.4f}, test accuracy {row[f'{label} accuracy']:.3f}")
        rows.append(row)
    columns = ["learning rate", "BN", "BN accuracy", "no norm", "no norm accuracy"]
    text = save(out, "learning_rate", rows, columns,
                {"epochs": epochs, "seed": seed, "batch size": 64, "optimizer": "SGD momentum 0.9",
                 "converged": "final train loss < 0.5; diverged: loss became NaN or > 1e4"})
    fig, axes = figure(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, label in zip(axes, ("BN", "no norm")):
        for lr in rates:
            ax.plot(range(1, epochs + 1), curves[label, lr], marker=".", label=f"lr {lr}")
        ax.set(title=f"MLP, {label}", xlabel="epoch", yscale="log")
    axes[0].set_ylabel("train loss (gaps: diverged)")
    axes[1].legend(fontsize=8)
    save_figure(fig, out, "learning_rate")
    return rows, text


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    run(args.quick, args.seed, args.out)
