"""LeNet with BatchNorm (seed 001): BN after each conv/linear and before the activation, against the same net
without BN, trained on the 8x8 digits. Measures test accuracy, loss curves, and that BN's running statistics
converge to the statistics of the activations they normalize.

    python examples/lenet_bn.py [--quick]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import accuracy, digits, parser, plot_curves, save, seeded, train  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402


class LeNetBN(nn.Module):
    """conv(1→6) → BN → relu → pool → conv(6→16) → BN → relu → pool → fc(64→120) → BN → relu → fc(120→84) → relu
    → fc(84→10): seed 001's LeNet_bn with 3x3 padded convolutions for 8x8 inputs. bn=False drops the BN layers."""

    def __init__(self, classes=10, bn=True):
        super().__init__()
        norm2d = nn.BatchNorm2d if bn else (lambda c: nn.Identity())
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 3, padding=1), norm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, 3, padding=1), norm2d(16)
        self.fc1, self.bn3 = nn.Linear(16 * 2 * 2, 120), (nn.BatchNorm1d(120) if bn else nn.Identity())
        self.fc2, self.fc3 = nn.Linear(120, 84), nn.Linear(84, classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        out = F.max_pool2d(F.relu(self.bn2(self.conv2(out))), 2)
        out = F.relu(self.bn3(self.fc1(out.flatten(1))))
        return self.fc3(F.relu(self.fc2(out)))


def build_model():
    """For `tinygrad-norm graph examples/lenet_bn.py:build_model --shape 2,1,8,8`."""
    return LeNetBN(bn=True)


def running_stats_error(model, x):
    """(|running mean − data mean|, |running var − data var| / data var), max over bn1's channels, where the data
    statistics are those of bn1's input over the whole training set."""
    model.eval()
    with tg.no_grad():
        acts = model.conv1(tg.Tensor(x)).numpy()
    mean, var = acts.mean(axis=(0, 2, 3)), acts.var(axis=(0, 2, 3), ddof=1)
    return (float(np.abs(model.bn1.running_mean.numpy() - mean).max()),
            float((np.abs(model.bn1.running_var.numpy() - var) / var).max()))


def recalibrate(model, x, batch_size=32):
    """One pass over the data in train mode with momentum=None: running statistics become batch averages."""
    for m in model.modules():
        if getattr(m, "track_running_stats", False):
            m.momentum, m.num_batches_tracked.data = None, np.zeros((), np.int64)
    model.train()
    with tg.no_grad():
        for i in range(0, len(x) - batch_size + 1, batch_size):
            model(tg.Tensor(x[i:i + batch_size]))


def bn_checks(model, x, xt):
    """BN's train and eval outputs on one test batch, and how close its running statistics are to the data's."""
    model.eval()
    with tg.no_grad():
        xb = model.conv1(tg.Tensor(xt[:64]))
        eval_out = model.bn1(xb).numpy()
        model.bn1.train()
        train_out = model.bn1(xb).numpy()
    lag = running_stats_error(model, x)
    recalibrate(model, x)
    after = running_stats_error(model, x)
    return {"train vs eval max |diff|": float(np.abs(eval_out - train_out).max()),
            "running mean error": lag[0], "running var rel. error": lag[1],
            "after recalibration: mean error": after[0], "after recalibration: var rel. error": after[1]}


def run(quick=False, seed=0, out="results", log=print):
    x, y, xt, yt = digits(400 if quick else None)
    epochs = 3 if quick else 15
    rows, curves = [], {}
    for bn in (True, False):
        label = "with BN" if bn else "without BN"
        seeded(seed)
        model = LeNetBN(bn=bn)
        log(f"LeNet {label}: {epochs} epochs on {len(x)} images")
        start = time.perf_counter()
        curves[label] = train(model, x, y, epochs, lr=0.05, batch_size=32, seed=seed, log=log, label=label)
        rows.append({"model": f"LeNet {label}", "test accuracy": accuracy(model, xt, yt),
                     "final train loss": curves[label][-1], "seconds": time.perf_counter() - start})
        if bn:
            checks = bn_checks(model, x, xt)
    save(out, "lenet_bn", rows, ["model", "test accuracy", "final train loss", "seconds"],
                {"epochs": epochs, "seed": seed, "train images": len(x), "bn1": checks})
    print("bn1 after training: " + ", ".join(f"{k} {v:.3g}" for k, v in checks.items()))
    plot_curves(out, "lenet_bn", {f"{label} (test acc {row['test accuracy']:.3f})": c
                                  for (label, c), row in zip(curves.items(), rows)}, "LeNet on digits, SGD lr 0.05")
    return rows, checks


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    run(args.quick, args.seed, args.out)
