"""An MLP with and without BatchNorm across learning rates (SGD with momentum, batch 64, cosine decay), on the
digits: at which rates every seed trains and at which the runs diverge. Here the learning rate is the variable,
so none is chosen on the validation part.

    python -m tinygrad_norm.experiments.learning_rate [--quick] [--seeds N] [--device cuda]
"""
from .models import mlp
from .protocol import accuracy, and_recalibrated, compare, digits
from .report import errorbars, figure, main, pm, save, save_figure

WORKS = 0.8  # a rate "works" for a model when every seed ends at or above this test accuracy without diverging
METRICS = ["test accuracy", "test accuracy, recalibrated", "diverged"]


def settings(quick):
    if quick:
        return dict(train=640, epochs=4, rates=(0.03, 0.3, 3.0), seeds=3)
    return dict(train=None, epochs=10, rates=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0), seeds=5)


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    s = settings(quick)
    seeds = list(range(seeds or s["seeds"]))
    data = digits(s["train"])
    xt, yt = data.x_test, data.y_test
    def measure(model, run):
        if run.diverged:
            return {"test accuracy": 0.0, "diverged": 1}
        test = lambda: {"test accuracy": accuracy(model, xt, yt, device)}
        return and_recalibrated(model, {**test(), "diverged": 0}, test, data.x, batch_size=64, device=device)
    results = {}
    for lr in s["rates"]:
        by_lr = compare({"BN": lambda: mlp(True), "no norm": lambda: mlp(False)}, data, (lr,),
                        dict(epochs=s["epochs"], batch_size=64, log=None), seeds, measure, device,
                        log=lambda m, lr=lr: log(f"lr {lr:g}, {m}"))
        results.update({f"{label}, lr {lr:g}": r for label, r in by_lr.items()})
    works = {label: [lr for lr in s["rates"] if min(results[f"{label}, lr {lr:g}"]["per_seed"]["test accuracy"]) >= WORKS]
             for label in ("BN", "no norm")}
    top = {label: max(rates) if rates else None for label, rates in works.items()}
    said = lambda label: f"up to lr {top[label]:g}" if top[label] else "at no rate tried"
    held = top["BN"] is not None and (top["no norm"] is None or top["BN"] > top["no norm"])
    verdict = (("held" if held else "did not hold") + f": with BN every seed trains {said('BN')}, without BN "
               f"{said('no norm')} (rates that work: BN {', '.join(map(str, works['BN'])) or 'none'}; no norm "
               f"{', '.join(map(str, works['no norm'])) or 'none'}).")
    result = {"experiment": "learning_rate", "title": "MLP with and without BN across learning rates",
              "data": f"digits: {len(data.x)} train, {len(xt)} test", "seeds": seeds,
              "settings": {**s, "seeds": len(seeds), "optimizer": "SGD momentum 0.9, batch 64, cosine decay"},
              "methods": results,
              "claim": "BN lets a network train at learning rates that break it without BN.",
              "test": f"a rate works for a model when every seed ends at ≥ {WORKS:.0%} test accuracy without "
                      "diverging (loss NaN or above 1e4); held if BN's largest working rate is larger.",
              "verdict": verdict}
    text = save(out, result, METRICS)
    plot(out, result, s["rates"])
    return result, text


def plot(out, result, rates):
    fig, ax = figure(figsize=(6.2, 3.6))
    for i, label in enumerate(("BN", "no norm")):
        per_seed = [result["methods"][f"{label}, lr {lr:g}"]["per_seed"]["test accuracy"] for lr in rates]
        errorbars(ax, rates, per_seed, label, offset=0.08 * (i - 0.5))
    ax.axhline(WORKS, color="0.5", linestyle=":", linewidth=1)
    ax.set(xlabel="learning rate (diverged runs score 0)", ylabel="test accuracy", ylim=(-0.02, 1),
           title=f"MLP on digits, mean ± std of {len(result['seeds'])} seeds")
    ax.legend(fontsize=8)
    save_figure(fig, out, "learning_rate")


def headline(result):
    rates = result["settings"]["rates"]
    line = lambda label: ", ".join(
        f"{lr:g}: {pm(result['methods'][f'{label}, lr {lr:g}']['per_seed']['test accuracy'], 2)}"
        + (f" ({sum(d)} diverged)" if sum(d := result['methods'][f'{label}, lr {lr:g}']['per_seed']['diverged']) else "")
        for lr in rates)
    return f"test accuracy by learning rate, with BN: {line('BN')}; without: {line('no norm')}"


if __name__ == "__main__":
    main(run, __doc__, full_seeds=5)
