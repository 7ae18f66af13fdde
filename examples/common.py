"""What the examples share: the digits data, a training loop that shows progress, evaluation, result tables
and plots. Each example is a script with `--quick` (for CI and the demo), a full mode, and a fixed seed."""
import argparse
import json
import os
import time

import numpy as np

import tinygrad_norm as tg
from tinygrad_norm import optim
from tinygrad_norm.data import DataLoader, TensorDataset, load_digits
from tinygrad_norm.nn import functional as F


def parser(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="a small run (seconds), as CI and the demo use")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results", help="folder for the table (JSON, Markdown) and the plot")
    return ap


def digits(limit=None):
    """(x_train, y_train, x_test, y_test); `limit` keeps the first `limit` training images (quick runs)."""
    x, y, xt, yt = load_digits()
    return (x[:limit], y[:limit], xt, yt) if limit else (x, y, xt, yt)


def train(model, x, y, epochs, lr, batch_size, seed=0, opt="sgd", log=None, label=""):
    """Train with cross entropy; returns per-epoch mean losses (NaN once the loss diverges)."""
    make = {"sgd": lambda p: optim.SGD(p, lr=lr, momentum=0.9), "adam": lambda p: optim.Adam(p, lr=lr)}[opt]
    optimizer = make(model.parameters())
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True, seed=seed)
    losses = []
    for epoch in range(epochs):
        model.train()
        total, count, start = 0.0, 0, time.perf_counter()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            value = loss.item()
            if not np.isfinite(value) or value > 1e4:  # diverged: stop this run, keep the record
                losses += [float("nan")] * (epochs - epoch)
                if log:
                    log(f"  {label} epoch {epoch + 1}/{epochs}: loss diverged")
                return losses
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + value, count + 1
        losses.append(total / max(count, 1))
        if log:
            log(f"  {label} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} ({time.perf_counter() - start:.1f} s)")
    return losses


def accuracy(model, x, y, batch_size=512):
    model.eval()
    correct = 0
    with tg.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(tg.Tensor(x[i:i + batch_size])).numpy()
            correct += int((np.nan_to_num(logits).argmax(1) == y[i:i + batch_size]).sum())
    return correct / len(x)


def table(rows, columns):
    """A Markdown table of dict rows."""
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def save(out, name, rows, columns, meta):
    """Write results/<name>.json and .md; print the table."""
    os.makedirs(out, exist_ok=True)
    text = table(rows, columns)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump({"rows": rows, "columns": columns, **meta}, f, indent=2, default=float)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return text


def figure(*args, **kwargs):
    """A matplotlib (fig, axes) drawn off-screen."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(*args, **kwargs)


def save_figure(fig, out, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{name}.png"), dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)


def plot_curves(out, name, curves, title, xlabel="epoch", ylabel="train loss", **axes):
    """One line per label: curves maps label -> y values (x = 1, 2, ...) or -> (xs, ys)."""
    fig, ax = figure(figsize=(5.5, 3.4))
    for label, ys in curves.items():
        xs, ys = ys if isinstance(ys, tuple) else (range(1, len(ys) + 1), ys)
        ax.plot(xs, ys, marker="o", label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, **axes)
    if "xticks" in axes:
        ax.minorticks_off()  # on a log axis the minor labels would crowd the chosen ticks
    ax.legend(fontsize=8)
    save_figure(fig, out, name)


def seeded(seed):
    tg.manual_seed(seed)
    np.random.seed(seed)


NORMS = ("batch", "group", "layer", "instance", "none")


def norm2d(kind, channels):
    """A 2-D norm layer by plugin name, configured as in the GN paper's comparison; "none" is the identity."""
    from tinygrad_norm import nn
    return {"batch": lambda: nn.BatchNorm2d(channels), "group": lambda: nn.GroupNorm(4, channels),
            "instance": lambda: nn.InstanceNorm2d(channels, affine=True),
            "none": lambda: nn.Identity()}.get(kind, lambda: nn.Norm(kind, channels))()


def small_cnn(kind, channels=(16, 32), classes=10):
    """conv → norm → relu → pool, twice, then a linear classifier; for (N, 1, 8, 8) digits. LayerNorm pools each
    sample over (C, H, W), the usual choice for CNNs (LayerNorm over the last axis alone would pool only W)."""
    from tinygrad_norm import nn
    c1, c2 = channels
    layer = lambda c, hw: nn.LayerNorm((c, hw, hw)) if kind == "layer" else norm2d(kind, c)
    return nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), layer(c1, 8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(c1, c2, 3, padding=1), layer(c2, 4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(c2 * 4, classes))
