"""LeNet with BatchNorm (seed 001): BN after each conv/linear and before the activation, against the same net
without BN, on the 8x8 digits, each with its own learning rate chosen on the validation part. Reports the test
accuracy (BN's with running and with recalibrated statistics), the best validation accuracy, the optimizer steps
to a validation target, and how far bn1's running statistics are from the data's.

    python -m tinygrad_norm.experiments.lenet_bn [--quick] [--seeds N] [--device cuda]
"""
import numpy as np

import tinygrad_norm as tg
from .models import LeNet
from .protocol import accuracy, compare, differs, digits, recalibrate, summary
from .report import figure, main, pm, save, save_figure

TARGET, THRESHOLD = 0.95, 0.01
METRICS = ["test accuracy", "test accuracy, recalibrated", "best validation accuracy", f"steps to {TARGET:.0%} validation",
           "bn1 running-mean error", "bn1 error, recalibrated"]


def build_model():
    """For `tinygrad-norm graph tinygrad_norm.experiments.lenet_bn:build_model --shape 2,1,8,8`."""
    return LeNet(bn=True)


def running_stats_error(model, x, device="cpu"):
    """max over bn1's channels of |running mean − mean of bn1's input over x|, the input being conv1's output."""
    model.eval()
    with tg.no_grad():
        acts = model.conv1(tg.Tensor(x, device=device)).numpy()
    return float(np.abs(model.bn1.running_mean.numpy() - acts.mean(axis=(0, 2, 3))).max())


def settings(quick):
    if quick:
        return dict(train=400, epochs=3, grid=(0.05,), seeds=3)
    return dict(train=None, epochs=15, grid=(0.003, 0.01, 0.03, 0.1, 0.3), seeds=5)


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    s = settings(quick)
    seeds = list(range(seeds or s["seeds"]))
    data = digits(s["train"])
    xt, yt = data.x_test, data.y_test

    def measure(model, run):
        scores = {"test accuracy": accuracy(model, xt, yt, device), "best validation accuracy": max(run.val_accuracy),
                  f"steps to {TARGET:.0%} validation": run.steps_to(TARGET)}
        if isinstance(model.bn1, tg.nn.BatchNorm2d):
            scores["bn1 running-mean error"] = running_stats_error(model, data.x, device)
            recalibrate(model, data.x, device=device)
            scores["bn1 error, recalibrated"] = running_stats_error(model, data.x, device)
            scores["test accuracy, recalibrated"] = accuracy(model, xt, yt, device)
        scores["validation curve"] = run.val_accuracy
        return scores

    methods = {"LeNet with BN": lambda: LeNet(bn=True), "LeNet without BN": lambda: LeNet(bn=False)}
    train = dict(epochs=s["epochs"], batch_size=32, evals_per_epoch=4, log=None)
    results = compare(methods, data, s["grid"], train, seeds, measure, device, log)
    results["steps per evaluation"] = len(data.x) // 32 // 4
    bn, plain = results["LeNet with BN"]["per_seed"], results["LeNet without BN"]["per_seed"]
    steps = f"steps to {TARGET:.0%} validation"
    acc_gap = summary(bn["test accuracy"])[0] - summary(plain["test accuracy"])[0]
    step_gap = summary(plain[steps])[0] - summary(bn[steps])[0]
    never = sum(v is None for v in plain[steps] + bn[steps])
    faster = differs(bn[steps], plain[steps]) and step_gap > 0 and not never
    better = differs(bn["test accuracy"], plain["test accuracy"], THRESHOLD) and acc_gap > 0
    reached = {label: sum(v is not None for v in m[steps]) for label, m in (("BN", bn), ("no BN", plain))}
    speed = (f"BN reaches {TARGET:.0%} validation accuracy {step_gap:.0f} steps sooner on average" if not never else
             f"{TARGET:.0%} validation accuracy was reached by {reached['BN']} of {len(seeds)} runs with BN and "
             f"{reached['no BN']} without")
    verdict = (("faster" if faster else "not faster by the test") + f" ({speed}), and "
               + ("better" if better else "not better by the test") + f" (test accuracy {acc_gap:+.3f} with BN).")
    result = {"experiment": "lenet_bn", "title": "LeNet with and without BN, each at its own learning rate",
              "data": data.description,
              "seeds": seeds, "settings": {**s, "seeds": len(seeds), "optimizer": "SGD momentum 0.9, cosine decay",
                                           "evaluations": "validation accuracy 4 times per epoch"},
              "methods": {k: v for k, v in results.items() if isinstance(v, dict)},
              "claim": "BN after conv/linear and before the activation helps LeNet train (seed 001).",
              "test": f"faster if BN needs fewer steps to {TARGET:.0%} validation accuracy by twice the standard "
                      f"error; better if its test accuracy is higher by more than {THRESHOLD:.2f} and twice the "
                      "standard error.",
              "verdict": verdict}
    text = save(out, result, METRICS)
    plot(out, result, results["steps per evaluation"])
    return result, text


def plot(out, result, every):
    fig, ax = figure(figsize=(6.2, 3.6))
    for label, method in result["methods"].items():
        curves = method["per_seed"]["validation curve"]
        steps = [every * (i + 1) for i in range(len(curves[0]))]
        mean, std = np.mean(curves, axis=0), np.std(curves, axis=0, ddof=1) if len(curves) > 1 else 0
        line, = ax.plot(steps, mean, label=f"{label} (lr {method['lr']:g})")
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.axhline(TARGET, color="0.5", linestyle=":", linewidth=1, label=f"target {TARGET:.0%}")
    ax.set(xlabel="optimizer steps", ylabel="validation accuracy", ylim=(0, 1),
           title=f"LeNet on digits, mean ± std of {len(result['seeds'])} seeds")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, out, "lenet_bn")


def headline(result):
    """The measured numbers behind the verdict, for the README's table."""
    bn, plain = (result["methods"][k]["per_seed"] for k in ("LeNet with BN", "LeNet without BN"))
    steps = f"steps to {TARGET:.0%} validation"
    reach = lambda m: (f"{pm([v for v in m[steps] if v is not None], 0)}" if any(v is not None for v in m[steps])
                       else "never") + ("" if None not in m[steps] else f" ({m[steps].count(None)} never)")
    return (f"test accuracy with BN {pm(bn['test accuracy'])} (recalibrated {pm(bn['test accuracy, recalibrated'])}), "
            f"without {pm(plain['test accuracy'])}; steps to {TARGET:.0%} validation accuracy: with BN {reach(bn)}, "
            f"without {reach(plain)}; bn1's running mean is {pm(bn['bn1 running-mean error'])} off the data's, "
            f"{pm(bn['bn1 error, recalibrated'], 4)} after recalibration")


if __name__ == "__main__":
    main(run, __doc__, full_seeds=5)
