"""The protocol every experiment follows, so that a difference it reports is more than the seed:

    split    the training set gives up a fixed validation part (10 %); the test set is scored once per run
    choose   each method's learning rate is the grid value with the best validation accuracy (seed 0)
    repeat   with that rate every seed trains afresh; results are per seed, summarized as mean ± std
    decay    the learning rate follows a cosine to zero, so final weights and running statistics settle
"""
import math
import time
from dataclasses import dataclass, field

import numpy as np

import tinygrad_norm as tg
from .. import optim
from ..data import DataLoader, TensorDataset, load_digits
from ..nn import functional as F


@dataclass
class Data:
    """A training part, the validation part cut from it, and the untouched test set (arrays)."""
    name: str
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def description(self):
        return f"{self.name}: {len(self.x)} train, {len(self.x_val)} validation, {len(self.x_test)} test"


def split(name, x, y, x_test, y_test, val_fraction=0.1, seed=0):
    """Data with `val_fraction` of (x, y) held out for validation, by a fixed permutation."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return Data(name, x[train], y[train], x[val], y[val], x_test, y_test)


def digits(limit=None, name="digits"):
    """The digits split: the first `limit` training images (all for None), 10 % of them for validation."""
    x, y, x_test, y_test = load_digits()
    return split(name, x[:limit], y[:limit], x_test, y_test)


def seeded(seed):
    """Seed parameter initialisation (the framework's generator) and NumPy's global one."""
    tg.manual_seed(seed)
    np.random.seed(seed)


@dataclass
class Run:
    """One training run: mean train loss per epoch, validation accuracy after each evaluation (at `val_steps`
    optimizer steps), whether the loss diverged (NaN or above 1e4, which ends the run), and the seconds taken."""
    losses: list = field(default_factory=list)
    val_steps: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    diverged: bool = False
    seconds: float = 0.0

    def steps_to(self, target):
        """Optimizer steps until validation accuracy first reached `target`; None if it never did."""
        return next((s for s, a in zip(self.val_steps, self.val_accuracy) if a >= target), None)


OPTIMIZERS = {"sgd": lambda params, lr: optim.SGD(params, lr=lr, momentum=0.9),
              "adam": lambda params, lr: optim.Adam(params, lr=lr)}


def fit(model, data, lr, epochs, batch_size=32, seed=0, optimizer="sgd", evals_per_epoch=1, batches=None,
        device="cpu", log=None, label=""):
    """Train `model` on data.x with cross entropy, the learning rate decaying from `lr` to 0 by a cosine over
    every step. `batches(rng)` may replace the shuffled mini-batches (an iterable of (x, y) arrays per epoch)."""
    opt = OPTIMIZERS[optimizer](model.parameters(), lr)
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=batch_size, shuffle=True, drop_last=True, seed=seed)
    rng = np.random.default_rng(seed)
    per_epoch = len(loader) if batches is None else sum(1 for _ in batches(np.random.default_rng(seed)))
    # the cosine in closed form, lr·(1 + cos(π·step/T))/2 (PyTorch's CosineAnnealingLR multiplies step by step,
    # which differs in the last bits); the committed results were made with this one
    cosine_steps = max(epochs * per_epoch, 1)  # no steps at all: the rate at step 0 is lr
    schedule = optim.lr_scheduler.LambdaLR(opt, lambda step: (1 + math.cos(math.pi * step / cosine_steps)) / 2)
    eval_every = max(per_epoch // evals_per_epoch, 1)
    run, step, start = Run(), 0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for xb, yb in (loader if batches is None else ((tg.Tensor(a), tg.Tensor(b)) for a, b in batches(rng))):
            loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
            value = loss.item()
            if not math.isfinite(value) or value > 1e4:
                run.diverged = True
                run.losses += [float("nan")] * (epochs - epoch)
                if log:
                    log(f"{label} epoch {epoch + 1}/{epochs}: the loss diverged; the run stops")
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total, count, step = total + value, count + 1, step + 1
            if step % eval_every == 0:
                run.val_steps.append(step)
                run.val_accuracy.append(accuracy(model, data.x_val, data.y_val, device))
                model.train()
        if run.diverged:
            break
        run.losses.append(total / max(count, 1))
        if log:
            val = f", validation accuracy {run.val_accuracy[-1]:.3f}" if run.val_accuracy else ""
            log(f"{label} epoch {epoch + 1}/{epochs}: train loss {run.losses[-1]:.4f}{val}")
    run.seconds = time.perf_counter() - start
    return run


def evaluate(model, x, y, device="cpu", batch_size=500):
    """(accuracy, mean cross-entropy) of `model` on (x, y), in eval mode (running statistics)."""
    model.eval()
    correct, loss = 0, 0.0
    with tg.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(tg.Tensor(x[i:i + batch_size], device=device))
            labels = y[i:i + batch_size]
            loss += F.cross_entropy(logits, tg.Tensor(labels, device=device)).item() * len(labels)
            correct += int((np.nan_to_num(logits.numpy()).argmax(1) == labels).sum())
    return correct / len(x), loss / len(x)


def accuracy(model, x, y, device="cpu"):
    """Fraction of `x` classified as `y`, in eval mode (running statistics)."""
    return evaluate(model, x, y, device)[0]


def running_stat_layers(model):
    return [m for m in model.modules() if getattr(m, "track_running_stats", False)]


def recalibrate(model, x, batch_size=32, device="cpu"):
    """Replace every running statistic by its average over one pass of `x` with the final weights (momentum
    None: a cumulative average), in the batches training used; momentum is restored afterwards."""
    layers = running_stat_layers(model)
    saved = [m.momentum for m in layers]
    for m in layers:
        m.momentum = None
        m.num_batches_tracked.data = np.zeros((), np.int64)
    model.train()
    with tg.no_grad():
        for i in range(0, len(x) - batch_size + 1, batch_size):
            model(tg.Tensor(x[i:i + batch_size], device=device))
    for m, momentum in zip(layers, saved):
        m.momentum = momentum


def and_recalibrated(model, scores, score, x, batch_size=32, device="cpu"):
    """For a model with running statistics, `score()`'s metrics again after recalibrating them on x, each named
    "<metric>, recalibrated", added to `scores` (returned)."""
    if running_stat_layers(model):
        recalibrate(model, x, batch_size, device)
        scores.update({f"{metric}, recalibrated": value for metric, value in score().items()})
    return scores


def choose_lr(make_model, data, grid, train, seed=0, device="cpu", log=None, label=""):
    """The grid value whose run (seed 0, trained on data.x) ends with the best validation accuracy, ties going
    to the lower validation loss (a small validation set ties often); a diverged run scores 0. Returns (lr,
    {lr: validation accuracy}, {lr: validation loss})."""
    scores, losses = {}, {}
    for lr in grid:
        seeded(seed)
        model = make_model().to(device)
        run = fit(model, data, lr, seed=seed, device=device, **train)
        scores[lr], losses[lr] = (0.0, math.inf) if run.diverged else evaluate(model, data.x_val, data.y_val, device)
        if log:
            log(f"{label}: lr {lr:g} gives validation accuracy {scores[lr]:.3f}, loss {losses[lr]:.4f}")
    best = max(grid, key=lambda lr: (scores[lr], -losses[lr] if math.isfinite(losses[lr]) else -math.inf))
    return best, scores, losses


def summary(values):
    """(mean, sample standard deviation) of per-seed values, NaN-free; std 0 for a single value."""
    v = np.asarray([x for x in values if x is not None], float)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def differs(a, b, at_least=0.0):
    """Whether per-seed samples a and b differ in mean by more than `at_least` and by more than twice the
    standard error of the difference (Welch's): the test each experiment states before it runs."""
    a, b = [v for v in a if v is not None], [v for v in b if v is not None]
    if not a or not b:
        return False
    (ma, sa), (mb, sb) = summary(a), summary(b)
    se = math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b))
    return abs(ma - mb) > max(at_least, 2 * se)


def compare(methods, data, grid, train, seeds, measure, device="cpu", log=print):
    """The protocol for each method (label -> a function making a fresh model): choose its learning rate on the
    validation part (skipped for a grid of one), then train once per seed and score with `measure(model, run)`
    (a dict of metric -> number; the test set is touched there, once). Returns {label: {"lr", "lr_grid" (the
    validation accuracy of each rate), "lr_grid_loss", "per_seed": {metric: [value per seed]}}}."""
    results = {}
    for label, make in methods.items():
        if len(grid) > 1:
            lr, scores, losses = choose_lr(make, data, grid, train, device=device, log=log, label=label)
        else:
            lr, scores, losses = grid[0], {}, {}
        per_seed = {}
        for seed in seeds:
            seeded(seed)
            model = make().to(device)
            run = fit(model, data, lr, seed=seed, device=device, **train)
            for metric, value in measure(model, run).items():
                per_seed.setdefault(metric, []).append(value)
        results[label] = {"lr": lr, "lr_grid": {f"{k:g}": v for k, v in scores.items()},
                          "lr_grid_loss": {f"{k:g}": v if math.isfinite(v) else None for k, v in losses.items()},
                          "per_seed": per_seed}
        shown = next(iter(per_seed))
        log(f"{label}: lr {lr:g}, {shown} " + " ".join("n/r" if v is None else f"{v:.3f}" for v in per_seed[shown]))
    return results
