"""Which norms make a CNN indifferent to an image's contrast and brightness: train on the digits, then test on
the same test images with every pixel x -> a·x (contrast, a = 1/4 ... 4) or x -> x + b (brightness, b = -1 ... 1),
one strength at a time. InstanceNorm after the first convolution is exactly invariant to a (the convolution is
linear and IN divides the scale out) and would be to b but for the zero padding at the borders, where a shifted
image meets unshifted zeros; the padding-free control drops the padding. The baseline standardizes each input
image (zero mean, unit variance) and uses no norm in the net.

    python -m tinygrad_norm.experiments.contrast_shift [--quick] [--seeds N] [--device cuda]
"""
import numpy as np

from .. import nn
from .models import digits_cnn
from .protocol import accuracy, and_recalibrated, compare, differs, digits, summary
from .report import errorbars, figure, main, pm, save, save_figure

CONTRASTS, BRIGHTNESSES = (0.25, 0.5, 2.0, 4.0), (-1.0, -0.5, 0.5, 1.0)
THRESHOLD = 0.01
METRICS = ["clean test accuracy", "clean test accuracy, recalibrated", "kept, contrast 0.25", "kept, contrast 4",
           "kept, brightness -1", "kept, brightness 1"]


class Standardize(nn.Module):
    """Each input image to zero mean and unit variance over its pixels: (x - mean) / (std + 1e-5)."""

    def forward(self, x):
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        centred = x - mean
        return centred / ((centred * centred).mean(axis=(1, 2, 3), keepdims=True).sqrt() + 1e-5)


METHODS = {"BN": lambda: digits_cnn("batch"), "GN": lambda: digits_cnn("group"), "LN": lambda: digits_cnn("layer"),
           "IN": lambda: digits_cnn("instance"), "none": lambda: digits_cnn("none"),
           "IN, no padding": lambda: digits_cnn("instance", padding=0),
           "none, no padding": lambda: digits_cnn("none", padding=0),
           "standardized input, none": lambda: nn.Sequential(Standardize(), digits_cnn("none"))}
SHIFTS = [("contrast", a, lambda x, a=a: a * x) for a in CONTRASTS] + \
         [("brightness", b, lambda x, b=b: x + b) for b in BRIGHTNESSES]


def settings(quick):
    if quick:
        return dict(train=500, epochs=3, grid=(0.05,), seeds=3)
    return dict(train=None, epochs=10, grid=(0.01, 0.03, 0.1, 0.3), seeds=5)


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    s = settings(quick)
    seeds = list(range(seeds or s["seeds"]))
    data = digits(s["train"])
    xt, yt = data.x_test, data.y_test

    def measure(model, run):
        clean = accuracy(model, xt, yt, device)
        scores = {"clean test accuracy": clean}
        for kind, strength, shift in SHIFTS:
            scores[f"kept, {kind} {strength:g}"] = accuracy(model, shift(xt).astype(np.float32), yt, device) / clean
        return and_recalibrated(model, scores, lambda: {"clean test accuracy": accuracy(model, xt, yt, device)},
                                data.x, device=device)

    results = compare(METHODS, data, s["grid"], dict(epochs=s["epochs"], batch_size=32, log=None), seeds, measure,
                      device, log)
    kept = lambda label, kind, values: [np.mean(v) for v in zip(*(results[label]["per_seed"][f"kept, {kind} {s:g}"]
                                                                   for s in values))]
    worst = lambda label, kind, values: min(summary(results[label]["per_seed"][f"kept, {kind} {v:g}"])[0] for v in values)
    in_contrast = worst("IN", "contrast", CONTRASTS)
    padded, unpadded = kept("IN", "brightness", (-1.0, 1.0)), kept("IN, no padding", "brightness", (-1.0, 1.0))
    padding_costs = differs(padded, unpadded, THRESHOLD) and summary(unpadded)[0] > summary(padded)[0]
    verdict = (f"IN is {'' if in_contrast >= 0.99 else 'not '}invariant to contrast by the test (it keeps at least "
               f"{in_contrast:.1%} at every strength; of the pooling norms, BN keeps at least "
               f"{worst('BN', 'contrast', CONTRASTS):.1%}, GN {worst('GN', 'contrast', CONTRASTS):.1%}, LN "
               f"{worst('LN', 'contrast', CONTRASTS):.1%}). At "
               f"brightness ±1 it keeps {summary(padded)[0]:.1%} with zero padding and {summary(unpadded)[0]:.1%} "
               f"without, " + ("so the padding is what breaks its invariance to brightness." if padding_costs else
                               "a difference within the threshold or the seeds' spread.")
               + f" Standardizing the input keeps {summary(kept('standardized input, none', 'brightness', (-1.0, 1.0)))[0]:.1%}"
               " at brightness ±1 with no norm in the net.")
    result = {"experiment": "contrast_shift", "title": "Accuracy kept under contrast and brightness shifts",
              "data": data.description,
              "seeds": seeds, "settings": {**s, "seeds": len(seeds), "optimizer": "SGD momentum 0.9, cosine decay"},
              "methods": results,
              "claim": "IN removes per-image contrast (style); the norms that pool over other images or channels "
                       "do not.",
              "test": "IN is called invariant to a shift if it keeps ≥ 99 % of its clean accuracy at every strength; "
                      f"the padding is said to matter if IN without it keeps more at brightness ±1 by more than "
                      f"{THRESHOLD:.2f} and twice the standard error.",
              "verdict": verdict}
    text = save(out, result, METRICS)
    plot(out, result)
    return result, text


def plot(out, result):
    fig, axes = figure(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, (kind, values) in zip(axes, (("contrast", CONTRASTS), ("brightness", BRIGHTNESSES))):
        for i, label in enumerate(METHODS):
            per_seed = result["methods"][label]["per_seed"]
            errorbars(ax, values, [per_seed[f"kept, {kind} {v:g}"] for v in values], label, offset=0.05 * (i - 3.5))
        ax.set(xlabel=f"{kind}: x -> {'a·x' if kind == 'contrast' else 'x + b'}", ylim=(0, 1.05),
               title=f"{kind}, mean ± std of {len(result['seeds'])} seeds")
    axes[0].set_ylabel("test accuracy kept (shifted / clean)")
    axes[1].legend(fontsize=6, loc="lower left")
    save_figure(fig, out, "contrast_shift")


def headline(result):
    kept = lambda label, what: pm(result["methods"][label]["per_seed"][f"kept, {what}"], 2)
    return ("accuracy kept at contrast ×4: " + ", ".join(f"{m} {kept(m, 'contrast 4')}" for m in ("IN", "BN", "GN", "LN", "none"))
            + "; at brightness +1: " + ", ".join(f"{m} {kept(m, 'brightness 1')}" for m in
                                                  ("IN", "IN, no padding", "standardized input, none", "BN", "GN", "none")))


if __name__ == "__main__":
    main(run, __doc__, full_seeds=5)
