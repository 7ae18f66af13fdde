"""An LSTM reading each digit row by row (8 steps of 8 pixels) with layer norm inside the cell (Ba et al., 2016),
with batch norm applied per time step, and with neither. Loss curves and final test accuracy.

Both norms act where the hook puts them: on the input and hidden projections (before the bias) and on the cell
state. BN computes its statistics over the batch at each time step; its running averages are shared by all
steps, which is what eval mode then uses.

    python examples/rnn_norms.py [--quick]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import accuracy, digits, parser, plot_curves, save, seeded, train  # noqa: E402

from tinygrad_norm import nn  # noqa: E402

VARIANTS = {"layer norm in the cell": "layer", "batch norm per time step": lambda n: nn.BatchNorm1d(n), "no norm": None}


class RowLSTM(nn.Module):
    """(N, 1, 8, 8) -> rows as a sequence of 8 steps -> LSTM(8, hidden) -> the last hidden state -> 10 classes."""

    def __init__(self, norm, hidden=48):
        super().__init__()
        self.lstm = nn.LSTM(8, hidden, batch_first=True, norm=norm)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x.reshape(x.shape[0], 8, 8))
        return self.head(h[-1])


def run(quick=False, seed=0, out="results", log=print):
    x, y, xt, yt = digits(480 if quick else None)
    epochs = 3 if quick else 12
    rows, curves = [], {}
    for label, norm in VARIANTS.items():
        seeded(seed)
        model = RowLSTM(norm)
        log(f"LSTM, {label}: {epochs} epochs on {len(x)} images")
        start = time.perf_counter()
        curves[label] = train(model, x, y, epochs, lr=3e-3, batch_size=32, seed=seed, opt="adam", log=log, label=label)
        rows.append({"model": f"LSTM, {label}", "test accuracy": accuracy(model, xt, yt),
                     "final train loss": curves[label][-1], "seconds": time.perf_counter() - start})
    text = save(out, "rnn_norms", rows, ["model", "test accuracy", "final train loss", "seconds"],
                {"epochs": epochs, "seed": seed, "train images": len(x), "optimizer": "Adam lr 3e-3, batch 32"})
    plot_curves(out, "rnn_norms", {f"{label} ({row['test accuracy']:.3f})": c for (label, c), row in zip(curves.items(), rows)},
                "LSTM over digit rows (test accuracy)")
    return rows, text


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    run(args.quick, args.seed, args.out)
