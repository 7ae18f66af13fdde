"""Instance norm and per-image contrast: train a CNN on the digits, then test it on the digits and on the same
test images with a random contrast a ∈ [0.25, 4] and brightness b ∈ [-1, 1] per image (x -> a·x + b). The
seeds' claim: IN, which normalizes each image and channel over its own pixels, removes such per-image
"style"; the norms that pool over other images or channels do not.

    python examples/contrast_shift.py [--quick]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import NORMS, accuracy, digits, figure, parser, save, save_figure, seeded, small_cnn, train  # noqa: E402


def shift_contrast(x, seed):
    """Each image scaled by its own a ∈ [0.25, 4] (log-uniform) and offset by its own b ∈ [-1, 1]."""
    rng = np.random.default_rng(seed)
    a = np.exp(rng.uniform(np.log(0.25), np.log(4.0), (len(x), 1, 1, 1)))
    b = rng.uniform(-1, 1, (len(x), 1, 1, 1))
    return (a * x + b).astype(np.float32)


def run(quick=False, seed=0, out="results", log=print):
    x, y, xt, yt = digits(640 if quick else None)
    shifted = shift_contrast(xt, seed + 1)
    epochs = 3 if quick else 8
    rows = []
    for kind in NORMS:
        seeded(seed)
        model = small_cnn(kind)
        train(model, x, y, epochs, lr=0.05, batch_size=32, seed=seed)
        clean, moved = accuracy(model, xt, yt), accuracy(model, shifted, yt)
        rows.append({"norm": kind, "clean test accuracy": clean, "shifted test accuracy": moved,
                     "kept": moved / clean if clean else 0.0})
        log(f"  {kind:9s}: clean {clean:.3f}, contrast-shifted {moved:.3f}")
    text = save(out, "contrast_shift", rows, ["norm", "clean test accuracy", "shifted test accuracy", "kept"],
                {"epochs": epochs, "seed": seed, "train images": len(x), "shift": "x -> a x + b per image, "
                 "a log-uniform in [0.25, 4], b uniform in [-1, 1]"})
    fig, ax = figure(figsize=(5.5, 3.2))
    pos = np.arange(len(rows))
    ax.bar(pos - 0.2, [r["clean test accuracy"] for r in rows], 0.4, label="clean")
    ax.bar(pos + 0.2, [r["shifted test accuracy"] for r in rows], 0.4, label="contrast/brightness shifted")
    ax.set_xticks(pos, [r["norm"] for r in rows])
    ax.set(ylabel="test accuracy", title="Per-image contrast shift at test time")
    ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, out, "contrast_shift")
    return rows, text


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    run(args.quick, args.seed, args.out)
