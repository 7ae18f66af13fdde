"""`tinygrad-norm demo`: run every example (quick by default, `--full` for the real experiments), write a report
folder (a Markdown summary with the tables, the plots, the graph and the norm pictures) and print a summary.

The examples are the scripts in the source checkout's examples/ folder (`pip install -e .` keeps them there).
"""
import importlib
import json
import os
import pathlib
import sys
import time

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
STEPS = [  # (module in examples/, what it measures)
    ("lenet_bn", "LeNet with BatchNorm (seed 001): BN after conv/linear, before the activation"),
    ("batch_size_sweep", "Test accuracy vs batch size for BN, GN, LN, IN, none (GN paper, figure 1)"),
    ("rnn_norms", "LSTM over digit rows: layer norm in the cell, batch norm per step, none"),
    ("learning_rate", "MLP with and without BN across learning rates"),
    ("contrast_shift", "Per-image contrast and brightness shift at test time: IN vs the rest"),
    ("custom_plugin", "A third-party plugin (Filter Response Norm) installed, found by entry point, trained"),
    ("graph", "The computation graph of LeNet-BN and the norm-pooling pictures"),
]


def _load(out, name):
    with open(os.path.join(out, f"{name}.json")) as f:
        return json.load(f)


def summary(out):
    """The one-screen summary: the measured answer to each claim."""
    lines = []
    lenet = {r["model"]: r["test accuracy"] for r in _load(out, "lenet_bn")["rows"]}
    lines.append("LeNet on digits: " + ", ".join(f"{k} {v:.3f}" for k, v in lenet.items()))
    sweep = _load(out, "batch_size_sweep")
    cols = sweep["columns"][1:]
    for r in sweep["rows"]:
        if r["norm"] in ("batch", "group"):
            lines.append(f"{r['norm']:>5s} norm vs batch size: " + ", ".join(f"{c.split()[1]}: {r[c]:.3f}" for c in cols))
    rnn = _load(out, "rnn_norms")["rows"]
    lines.append("LSTM over rows: " + ", ".join(f"{r['model'].split(', ')[1]} {r['test accuracy']:.3f}" for r in rnn))
    lr = _load(out, "learning_rate")["rows"]
    for label in ("BN", "no norm"):
        ok = [r["learning rate"] for r in lr if r[label] == "converged"]
        bad = [r["learning rate"] for r in lr if r[label] == "diverged"]
        lines.append(f"MLP {label}: converged at lr {ok or 'none'}; diverged at {bad or 'none'}")
    shift = _load(out, "contrast_shift")["rows"]
    lines.append("contrast shift, accuracy kept: " + ", ".join(f"{r['norm']} {r['kept']:.0%}" for r in shift))
    custom = _load(out, "custom_plugin")["rows"][0]
    lines.append(f"plugin 'frn' ({custom['from']}): conformance {custom['conformance']}, test accuracy "
                 f"{custom['test accuracy']:.3f}")
    return lines


def write_report(out, timings, full):
    parts = [f"# tinygrad_norm demo report\n\n{'Full' if full else 'Quick'} run, seed 0, "
             f"{sum(timings.values()):.0f} s in all. Each section: what was measured, the table, the plot.\n",
             "## Summary\n\n" + "\n".join(f"- {line}" for line in summary(out)) + "\n"]
    for name, title in STEPS:
        parts.append(f"## {title}\n\n`examples/{name}.py` ({timings[name]:.1f} s)\n")
        if name == "graph":
            graph = "lenet_bn_graph.svg" if os.path.exists(os.path.join(out, "lenet_bn_graph.svg")) else "lenet_bn_graph.dot"
            parts.append(f"![which elements each norm pools](norm_axes.svg)\n\n![LeNet-BN graph]({graph})\n")
            continue
        with open(os.path.join(out, f"{name}.md")) as f:
            parts.append(f.read() + f"\n![{name}]({name}.png)\n")
    path = os.path.join(out, "README.md")
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return path


def run_demo(out="report", full=False, log=print):
    """Run every example into `out`; returns the path of the report's README.md."""
    if not EXAMPLES.is_dir():
        raise SystemExit(f"the demo runs the scripts in examples/ of a source checkout, and {EXAMPLES} is missing: "
                         "clone the repository and `pip install -e .` there")
    sys.path.insert(0, str(EXAMPLES))
    os.makedirs(out, exist_ok=True)
    timings, start = {}, time.perf_counter()
    for i, (name, title) in enumerate(STEPS, 1):
        log(f"[{i}/{len(STEPS)}] {title}")
        t = time.perf_counter()
        importlib.import_module(name).run(quick=not full, seed=0, out=out, log=lambda m: log("    " + m.strip()))
        timings[name] = time.perf_counter() - t
        log(f"    done in {timings[name]:.1f} s ({time.perf_counter() - start:.0f} s so far)")
    return write_report(out, timings, full)
