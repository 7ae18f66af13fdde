"""Test accuracy of one CNN vs batch size with BN, GN, LN, IN and no norm: the analogue of figure 1 of the
Group Normalization paper (BN degrades at small batches; GN, which never pools over the batch, does not).
Same number of epochs at every batch size; learning rate scaled linearly with the batch (0.1 at 32).

    python examples/batch_size_sweep.py [--quick]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import NORMS, accuracy, digits, parser, plot_curves, save, seeded, small_cnn, train  # noqa: E402


def run(quick=False, seed=0, out="results", log=print):
    x, y, xt, yt = digits(480 if quick else None)
    sizes = (2, 8, 32) if quick else (2, 4, 8, 16, 32, 64)
    epochs = 2 if quick else 6
    acc = {}
    start = time.perf_counter()
    for kind in NORMS:
        for b in sizes:
            seeded(seed)
            model = small_cnn(kind)
            train(model, x, y, epochs, lr=0.1 * b / 32, batch_size=b, seed=seed)
            acc[kind, b] = accuracy(model, xt, yt)
            log(f"  {kind:9s} batch {b:3d}: test accuracy {acc[kind, b]:.3f}  ({time.perf_counter() - start:.0f} s)")
    rows = [{"norm": kind, **{f"batch {b}": acc[kind, b] for b in sizes}} for kind in NORMS]
    text = save(out, "batch_size_sweep", rows, ["norm"] + [f"batch {b}" for b in sizes],
                {"epochs": epochs, "seed": seed, "train images": len(x), "lr": "0.1 * batch / 32, SGD momentum 0.9"})
    plot_curves(out, "batch_size_sweep", {kind: (sizes, [acc[kind, b] for b in sizes]) for kind in NORMS},
                f"CNN on digits, {epochs} epochs", xlabel="batch size", ylabel="test accuracy", xscale="log",
                xticks=sizes, xticklabels=[str(b) for b in sizes])
    return rows, text


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    run(args.quick, args.seed, args.out)
