"""`tinygrad-norm demo`: run every experiment (quick by default, `--full` for the real ones), write a report
folder (a Markdown summary with each claim's verdict, the tables, the plots, the graph and the norm pictures)
and print the summary. The experiments are modules of the installed package (tinygrad_norm.experiments), so
the demo runs from a wheel; the one that needs several processes runs under `mpiexec -n 4` where it is found."""
import importlib
import os
import subprocess
import sys
import textwrap
import time

from .experiments.report import load
from .world import find_mpiexec

STEPS = [  # (module in tinygrad_norm.experiments, what it measures)
    ("lenet_bn", "LeNet with and without BatchNorm, each at its own learning rate (seed 001)"),
    ("ghost_batches", "BN's statistics over k samples with the gradient batch fixed, against GN, LN, IN, none"),
    ("sync_batchnorm", "4 processes x 8 samples: local BN, SyncBatchNorm, GN (under mpiexec)"),
    ("rnn_lengths", "LSTM with LN, BN shared across time, BN per time step, none, at unseen sequence lengths"),
    ("learning_rate", "MLP with and without BN across learning rates"),
    ("contrast_shift", "Contrast and brightness shifts at test time: IN, the other norms, a padding-free control"),
    ("custom_plugin", "A third-party plugin (Batch Group Norm) installed, found by entry point, trained"),
    ("graph", "The computation graph of LeNet-BN and the norm-pooling pictures"),
]
PROCESSES = {"sync_batchnorm": 4}


def run_step(name, full, out, device, log):
    """One experiment, in this process or, for one that needs several, under mpiexec; returns None or why it
    could not run."""
    if name not in PROCESSES:
        importlib.import_module(f"tinygrad_norm.experiments.{name}").run(quick=not full, out=out, device=device, log=log)
        return None
    launcher = find_mpiexec()
    if launcher is None:
        return "no mpiexec found next to Python or on PATH (pip install 'tinygrad-norm[dist]')"
    command = [launcher, "-n", str(PROCESSES[name]), sys.executable, "-m", f"tinygrad_norm.experiments.{name}",
               "--out", out, "--device", device] + ([] if full else ["--quick"])
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        log(line)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return None


def results(out):
    """{name: result} for every experiment whose result JSON is in `out`, in the demo's order."""
    return {name: load(out, name) for name, _ in STEPS if os.path.exists(os.path.join(out, f"{name}.json"))}


def summary(out, skipped=()):
    """The one-screen summary: each experiment's verdict, measured against the test it stated in advance."""
    found = results(out)
    return [f"{name}: not run ({skipped[name]})" if name in skipped else
            f"{found[name]['title']} ({len(found[name]['seeds'])} seeds): {found[name]['verdict']}"
            for name, _ in STEPS if name in skipped or name in found]


def claims_table(out, links=""):
    """The README's "where each normalization applies" table, from the result JSON in `out`: per experiment the
    claim, the numbers behind it (mean ± std over seeds) and the verdict its stated test gave. `links` prefixes
    the links to each experiment's table (the README's point into examples/results/full/)."""
    lines = ["| claim | measured (mean ± std over seeds) | verdict by the test stated in advance |", "|---|---|---|"]
    for name, result in results(out).items():
        measured = importlib.import_module(f"tinygrad_norm.experiments.{name}").headline(result)
        lines.append(f"| {result['claim']} ([{name}]({links}{name}.md), {len(result['seeds'])} seeds) | {measured} | "
                     f"{result['verdict']} |")
    return "\n".join(lines) + "\n"


def graph_section(out):
    """The pictures: the graph as an image, or, where Graphviz's `dot` was missing, a link to its DOT source."""
    from .viz.render import INSTALL_HINT
    text = "![which elements each norm pools](norm_axes.svg)\n\n"
    if os.path.exists(os.path.join(out, "lenet_bn_graph.svg")):
        return text + "![LeNet-BN graph](lenet_bn_graph.svg)\n"
    return text + ("Graphviz's `dot` program was not found, so the LeNet-BN graph was not drawn; its source is "
                   f"[lenet_bn_graph.dot](lenet_bn_graph.dot). To see it, {INSTALL_HINT}, then run "
                   "`dot -Tsvg lenet_bn_graph.dot -o lenet_bn_graph.svg` in this folder.\n")


def write_report(out, timings, full, skipped=()):
    """<out>/README.md (the summary, then each experiment's table and plot) and <out>/claims.md; returns (the
    README's path, the summary's lines)."""
    lines = summary(out, skipped)
    took = f", {sum(timings.values()):.0f} s in all" if timings else ""
    parts = [f"# tinygrad_norm demo report\n\n{'Full' if full else 'Quick'} run{took}. Each section: what was "
             "measured, the table (mean ± std over seeds, each seed in brackets), "
             "the claim, the test stated before running, the verdict, the plot.\n",
             "## Summary\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"]
    for name, title in STEPS:
        result = os.path.join(out, "norm_axes.svg" if name == "graph" else f"{name}.json")
        if name not in timings and name not in skipped and not os.path.exists(result):
            continue
        took = f"{timings[name]:.1f} s" if name in timings else "an earlier run"
        parts.append(f"## {title}\n\n`python -m tinygrad_norm.experiments.{name}` ({took})\n")
        if name == "graph":
            parts.append(graph_section(out))
        elif name in skipped:
            parts.append(f"Not run: {skipped[name]}.\n")
        else:
            with open(os.path.join(out, f"{name}.md")) as f:
                parts.append(f.read())
            if os.path.exists(os.path.join(out, f"{name}.png")):
                parts.append(f"\n![{name}]({name}.png)\n")
    with open(os.path.join(out, "claims.md"), "w") as f:
        f.write(claims_table(out))
    path = os.path.join(out, "README.md")
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return path, lines


def _indent(message):
    """An experiment's message, every line of it, under the step's heading (a checker report spans lines)."""
    return textwrap.indent(textwrap.dedent(message).strip("\n"), "    ")


def run_demo(out="report", full=False, log=print, device="cpu", only=None):
    """Run every experiment (or those named in `only`) into `out`; returns (the path of the report's README.md,
    the summary's lines). The report covers every experiment whose results are in `out`, earlier ones too."""
    unknown = set(only or ()) - {name for name, _ in STEPS}
    if unknown:
        raise ValueError(f"demo: no experiment named {', '.join(sorted(unknown))}; the experiments are "
                         f"{', '.join(name for name, _ in STEPS)}")
    steps = [(name, title) for name, title in STEPS if not only or name in only]
    os.makedirs(out, exist_ok=True)
    timings, skipped, start = {}, {}, time.perf_counter()
    for i, (name, title) in enumerate(steps, 1):
        log(f"[{i}/{len(steps)}] {title}")
        t = time.perf_counter()
        why = run_step(name, full, out, device, lambda m: log(_indent(m)))
        if why:
            skipped[name] = why
            log(_indent(f"not run: {why}"))
        timings[name] = time.perf_counter() - t
        log(f"    done in {timings[name]:.1f} s ({time.perf_counter() - start:.0f} s so far)")
    return write_report(out, timings, full, skipped)
