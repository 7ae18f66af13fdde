"""Norms inside an LSTM, tested on sequence lengths it never trained on. The digits are read row by row, each
image first resampled to T rows of 8 pixels (a taller or shorter copy of the same digit); training draws T from
{6, 8, 10} per batch of 8 (a small batch), testing reads T = 4, 8, 12 and 16. The norm sits on the input and
hidden projections and on the cell state:

    LN                      statistics per sample and step (Ba et al., 2016)
    BN shared across time   batch statistics at each step in training, one running average for all steps
    BN per time step        its own statistics for each step t, shared γ, β; steps past the last trained one
                            use that one's statistics (Cooijmans et al., 2017)
    none

    python -m tinygrad_norm.experiments.rnn_lengths [--quick] [--seeds N] [--device cuda]
"""
import numpy as np

from .. import nn
from ..module import Parameter
from .protocol import accuracy, and_recalibrated, compare, differs, digits, summary
from .report import errorbars, figure, main, pm, save, save_figure

TRAIN_LENGTHS, TEST_LENGTHS, LONGEST, UNSEEN = (6, 8, 10), (4, 8, 12, 16), 10, (12, 16)
THRESHOLD = 0.01
METRICS = [f"test accuracy, T={t}{how}" for how in ("", ", recalibrated") for t in TEST_LENGTHS]


def as_sequence(x, steps):
    """(N, 1, H, W) images -> (N, steps, W): the rows resampled by linear interpolation to `steps` rows."""
    rows = x.shape[2]
    pos = np.linspace(0, rows - 1, steps)
    lo = np.floor(pos).astype(int)
    hi, w = np.minimum(lo + 1, rows - 1), (pos - lo).astype(np.float32)[:, None]
    return x[:, 0, lo] * (1 - w) + x[:, 0, hi] * w


class PerStepBatchNorm(nn.Module):
    """BatchNorm1d with its own statistics at each time step `t` (set by the model before each step), one γ, β for
    all steps; a step beyond the last trained one uses the last one's statistics."""

    def __init__(self, features, steps=LONGEST):
        super().__init__()
        self.per_step = nn.ModuleList([nn.BatchNorm1d(features, affine=False) for _ in range(steps)])
        self.weight, self.bias = Parameter(np.ones(features, np.float32)), Parameter(np.zeros(features, np.float32))
        self.t = 0

    def forward(self, x):
        return self.per_step[min(self.t, len(self.per_step) - 1)](x) * self.weight + self.bias


class SequenceClassifier(nn.Module):
    """(N, T, 8) -> an LSTMCell with `norm` over T steps -> the last hidden state -> 10 logits."""

    def __init__(self, norm, hidden=48):
        super().__init__()
        self.cell, self.head = nn.LSTMCell(8, hidden, norm=norm), nn.Linear(hidden, 10)

    def forward(self, x):
        clocks = [m for m in self.modules() if isinstance(m, PerStepBatchNorm)]
        state = None
        for t in range(x.shape[1]):
            for m in clocks:
                m.t = t
            state = self.cell(x[:, t], state)
        return self.head(state[0])


VARIANTS = {"LN": "layer", "BN shared across time": lambda n: nn.BatchNorm1d(n),
            "BN per time step": PerStepBatchNorm, "none": None}


def settings(quick):
    if quick:
        return dict(train=200, hidden=24, epochs=2, batch=8, grid=(1e-2,), seeds=3)
    return dict(train=None, hidden=48, epochs=10, batch=8, grid=(1e-3, 3e-3, 1e-2, 3e-2), seeds=3)


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    s = settings(quick)
    seeds = list(range(seeds or s["seeds"]))
    data = digits(s["train"], "digits read row by row")
    xt, yt = data.x_test, data.y_test
    data.x_val = as_sequence(data.x_val, 8)  # validation reads T = 8, a length trained on

    def batches(rng):
        order = rng.permutation(len(data.x))
        for i in range(0, len(order) - s["batch"] + 1, s["batch"]):
            idx = order[i:i + s["batch"]]
            yield as_sequence(data.x[idx], int(rng.choice(TRAIN_LENGTHS))), data.y[idx]

    def measure(model, run):
        test = lambda: {f"test accuracy, T={t}": accuracy(model, as_sequence(xt, t), yt, device) for t in TEST_LENGTHS}
        return and_recalibrated(model, test(), test, as_sequence(data.x, LONGEST), batch_size=s["batch"], device=device)

    methods = {label: (lambda norm=norm: SequenceClassifier(norm, s["hidden"])) for label, norm in VARIANTS.items()}
    train = dict(epochs=s["epochs"], optimizer="adam", batches=batches, log=None)
    results = compare(methods, data, s["grid"], train, seeds, measure, device, log)
    unseen = lambda label: [np.mean(v) for v in zip(*(results[label]["per_seed"][f"test accuracy, T={t}"]
                                                       for t in UNSEEN))]
    ln, per_step = unseen("LN"), unseen("BN per time step")
    gap = summary(ln)[0] - summary(per_step)[0]
    lengths = " and ".join(map(str, UNSEEN))
    verdict = (f"held: at the unseen lengths {lengths}, LN beats BN per time step by {gap:.3f}."
               if differs(ln, per_step, THRESHOLD) and gap > 0 else
               f"not shown: at the unseen lengths {lengths}, LN − BN per time step = {gap:+.3f}, within the "
               "threshold or the seeds' spread, or the other way round.")
    result = {"experiment": "rnn_lengths", "title": "LSTM with LN, BN shared across time, BN per step, none",
              "data": f"{data.name}: {len(data.x)} train (T drawn from {TRAIN_LENGTHS}), {len(data.x_val)} "
                      f"validation (T=8), {len(xt)} test at T in {TEST_LENGTHS}",
              "seeds": seeds, "settings": {**s, "seeds": len(seeds), "optimizer": "Adam, cosine decay"},
              "methods": results,
              "claim": "BN's per-time-step statistics do not carry over to sequence lengths not seen in training; "
                       "LN, per sample and step, does (Ba et al., 2016; Cooijmans et al., 2017).",
              "test": f"held if LN's mean test accuracy over T = {lengths} beats BN per time step's by more than "
                      f"{THRESHOLD:.2f} and by twice the standard error of the difference.",
              "verdict": verdict}
    text = save(out, result, METRICS)
    plot(out, result)
    return result, text


def plot(out, result):
    fig, ax = figure(figsize=(6.2, 3.6))
    for i, label in enumerate(VARIANTS):
        per_seed = result["methods"][label]["per_seed"]
        errorbars(ax, TEST_LENGTHS, [per_seed[f"test accuracy, T={t}"] for t in TEST_LENGTHS], label,
                  offset=0.06 * (i - 1.5))
    ax.axvspan(0.6, 1.4, color="0.9", zorder=0)
    ax.set(xlabel="test sequence length T (shaded: a length trained on)", ylabel="test accuracy", ylim=(0, 1),
           title=f"LSTM trained on T ∈ {{6, 8, 10}}, mean ± std of {len(result['seeds'])} seeds")
    ax.legend(fontsize=7, loc="lower left")
    save_figure(fig, out, "rnn_lengths")


def headline(result):
    at = lambda label, t: pm(result["methods"][label]["per_seed"][f"test accuracy, T={t}"])
    return "; ".join(f"test accuracy at T = {t}{' (seen)' if t in TRAIN_LENGTHS else ''}: "
                     + ", ".join(f"{label} {at(label, t)}" for label in VARIANTS) for t in (8, 16))


if __name__ == "__main__":
    main(run, __doc__, full_seeds=3)
