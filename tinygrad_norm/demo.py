"""`tinygrad-norm demo`: run every example (quick by default, `--full` for the real experiments), write a report
folder (a Markdown summary with the tables, the plots, the graph and the norm pictures) and print a summary.

The examples are the scripts in the source checkout's examples/ folder (`pip install -e .` keeps them there).
"""
import importlib
import json
import os
import pathlib
import sys
import textwrap
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
    at = lambda what, lrs: f"{what} at lr {', '.join(map(str, lrs))}" if lrs else f"{what} at no learning rate tried"
    for label in ("BN", "no norm"):
        ok = [r["learning rate"] for r in lr if r[label] == "converged"]
        bad = [r["learning rate"] for r in lr if r[label] == "diverged"]
        lines.append(f"MLP {label}: {at('converged', ok)}; {at('diverged', bad)}")
    shift = _load(out, "contrast_shift")["rows"]
    lines.append("contrast shift, accuracy kept: " + ", ".join(f"{r['norm']} {r['kept']:.0%}" for r in shift))
    custom = _load(out, "custom_plugin")["rows"][0]
    lines.append(f"plugin 'frn' ({custom['from']}): conformance {custom['conformance']}, test accuracy "
                 f"{custom['test accuracy']:.3f}")
    return lines


def graph_section(out):
    """The pictures: the graph as an image, or, where Graphviz's `dot` was missing, a link to its DOT source."""
    from .viz.render import INSTALL_HINT
    text = "![which elements each norm pools](norm_axes.svg)\n\n"
    if os.path.exists(os.path.join(out, "lenet_bn_graph.svg")):
        return text + "![LeNet-BN graph](lenet_bn_graph.svg)\n"
    return text + ("Graphviz's `dot` program was not found, so the LeNet-BN graph was not drawn; its source is "
                   f"[lenet_bn_graph.dot](lenet_bn_graph.dot). To see it, {INSTALL_HINT}, then run "
                   "`dot -Tsvg lenet_bn_graph.dot -o lenet_bn_graph.svg` in this folder.\n")


def write_report(out, timings, full):
    parts = [f"# tinygrad_norm demo report\n\n{'Full' if full else 'Quick'} run, seed 0, "
             f"{sum(timings.values()):.0f} s in all. Each section: what was measured, the table, the plot.\n",
             "## Summary\n\n" + "\n".join(f"- {line}" for line in summary(out)) + "\n"]
    for name, title in STEPS:
        parts.append(f"## {title}\n\n`examples/{name}.py` ({timings[name]:.1f} s)\n")
        if name == "graph":
            parts.append(graph_section(out))
            continue
        with open(os.path.join(out, f"{name}.md")) as f:
            parts.append(f.read() + f"\n![{name}]({name}.png)\n")
    path = os.path.join(out, "README.md")
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return path


def _indent(message):
    """An example's message, every line of it, under the step's heading (a checker report spans lines)."""
    return textwrap.indent(textwrap.dedent(message).strip("\n"), "    ")


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
        importlib.import_module(name).run(quick=not full, seed=0, out=out, log=lambda m: log(_indent(m)))
        timings[name] = time.perf_counter() - t
        log(f"    done in {timings[name]:.1f} s ({time.perf_counter() - start:.0f} s so far)")
    return write_report(out, timings, full)
