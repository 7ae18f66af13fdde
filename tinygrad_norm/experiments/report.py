"""What an experiment leaves behind: its result JSON (seeds, per-seed values, the chosen learning rates, the
verdict), a Markdown table of mean ± std with every seed shown, and plots with error bars."""
import argparse
import json
import math
import os

import numpy as np

from .protocol import summary


def parser(description, quick_seeds=3, full_seeds=5):
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small run (seconds), as CI and the demo use")
    ap.add_argument("--seeds", type=int, default=None,
                    help=f"how many seeds (0, 1, ...); default {quick_seeds} quick, {full_seeds} full")
    ap.add_argument("--out", default="results", help="folder for the result JSON, the table and the plot")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to train (cuda needs CuPy)")
    return ap


def main(run, doc, quick_seeds=3, full_seeds=5, before=None):
    """The command line of an experiment module: parse, run; a device or input mistake ends in one line."""
    from ..backend import DeviceError
    args = parser(doc, quick_seeds, full_seeds).parse_args()
    try:
        if before:
            before()
        run(args.quick, args.seeds, args.out, args.device)
    except (DeviceError, ValueError) as e:
        raise SystemExit(f"{doc.split(chr(10))[0]}\nerror: {e}") from None


def number(v):
    """A per-seed number as the tables show it: integers whole, accuracies and losses to three decimals, small
    errors to two significant digits, large values to one decimal."""
    if isinstance(v, int):
        return str(v)
    if v != 0 and abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"


def cell(values):
    """'mean ± std (seed values)' for per-seed numbers; 'n/r' marks a seed that never reached its target."""
    if not values:
        return ""
    mean, std = summary(values)
    show = " ".join("n/r" if v is None else number(v) for v in values)
    return f"never ({show})" if math.isnan(mean) else f"{number(mean)} ± {number(std)} ({show})"


def pm(values, digits=3):
    """'mean ± std' of per-seed values, to `digits` decimals."""
    mean, std = summary(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table(result, metrics):
    """A Markdown table: one row per method, its learning rate, then each metric as mean ± std (seeds)."""
    methods = result["methods"]
    head = ["method", "lr"] + list(metrics)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, m in methods.items():
        grid = [float(v) for v in m.get("lr_grid", {})]
        edge = " (grid's edge)" if grid and m["lr"] in (min(grid), max(grid)) else ""
        lr = f"{m['lr']:g}{edge}" if m.get("lr") is not None else "–"
        lines.append("| " + " | ".join([label, lr] + [cell(m["per_seed"].get(k, [])) for k in metrics]) + " |")
    return "\n".join(lines)


def save(out, result, metrics):
    """Write <out>/<name>.json and the Markdown of it (write_table); returns the Markdown."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{result['experiment']}.json"), "w") as f:
        json.dump(result, f, indent=1, default=_plain)
    return write_table(out, result, metrics)


def write_table(out, result, metrics):
    """<out>/<name>.md: the table of `metrics`, the seeds, the claim, the test stated in advance, the verdict."""
    text = (f"{table(result, metrics)}\n\n{len(result['seeds'])} seeds ({', '.join(map(str, result['seeds']))}); "
            f"mean ± sample std, each seed in brackets.\n\n**Claim:** {result['claim']}  \n"
            f"**Test, fixed before running:** {result['test']}  \n**Verdict:** {result['verdict']}\n")
    with open(os.path.join(out, f"{result['experiment']}.md"), "w") as f:
        f.write(text)
    return text


def _plain(v):
    return v.item() if isinstance(v, np.generic) else str(v)


def load(out, name):
    with open(os.path.join(out, f"{name}.json")) as f:
        return json.load(f)


def figure(*args, **kwargs):
    """A matplotlib (fig, axes), drawn off-screen."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(*args, **kwargs)


def errorbars(ax, xs, per_seed, label, offset=0.0, **style):
    """Mean ± std over seeds at each x (a line with error bars), each seed's value a small dot beside it.
    per_seed[i] holds the seeds' values at xs[i] (None where a seed has none)."""
    pos = np.arange(len(xs)) + offset
    stats = [summary(v) for v in per_seed]
    line = ax.errorbar(pos, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3, label=label, **style)
    for p, values in zip(pos, per_seed):
        vals = [v for v in values if v is not None]
        ax.plot([p] * len(vals), vals, ".", color=line[0].get_color(), alpha=0.45, markersize=4)
    ax.set_xticks(np.arange(len(xs)), [str(x) for x in xs])
    return line


def save_figure(fig, out, name):
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{name}.png"), dpi=110)
    plt.close(fig)
