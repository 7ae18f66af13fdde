"""The examples and the demo: each runs in quick mode (the demo runs them all once, here), writes its table and
plot, and the measured claims hold with the fixed seed."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tinygrad_norm.demo import EXAMPLES, STEPS

TABLES = [name for name, _ in STEPS if name != "graph"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`tinygrad-norm demo` itself, run once: every example in quick mode."""
    out = tmp_path_factory.mktemp("report")
    result = subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", "demo", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, out / "README.md", result.stdout.splitlines()


def rows(out, name):
    with open(out / f"{name}.json") as f:
        return json.load(f)["rows"]


def test_demo_writes_the_report_with_every_table_and_plot(report):
    out, path, lines = report
    text = open(path).read()
    for name in TABLES:
        assert (out / f"{name}.md").read_text().startswith("| ")
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"![{name}]({name}.png)" in text
    assert "## Summary" in text and "norm_axes.svg" in text
    ET.parse(out / "norm_axes.svg")
    assert (out / "lenet_bn_graph.svg").exists() or (out / "lenet_bn_graph.dot").exists()
    assert any("[7/7]" in line for line in lines) and any("epoch" in line for line in lines)  # progress shown
    assert f"Report: {path}" in lines and any(line.startswith("contrast shift, accuracy kept:") for line in lines)
    mlp = [line for line in lines if line.startswith("MLP ")]
    assert len(mlp) == 2 and not any("at none" in line or "[" in line for line in mlp)  # sentences, not Python lists
    report_lines = lines[lines.index(next(l for l in lines if "conformance of norm plugin 'frn'" in l)):]
    assert report_lines[1].startswith("      [ok]")  # the checker's lines sit under its heading, not beside the step


def test_the_report_links_the_graph_source_when_dot_is_missing(tmp_path):
    from tinygrad_norm.demo import graph_section
    (tmp_path / "lenet_bn_graph.dot").write_text("digraph {}")
    text = graph_section(str(tmp_path))
    assert "![LeNet-BN graph]" not in text and "[lenet_bn_graph.dot](lenet_bn_graph.dot)" in text
    assert "apt-get install graphviz" in text and "dot -Tsvg lenet_bn_graph.dot -o lenet_bn_graph.svg" in text
    (tmp_path / "lenet_bn_graph.svg").write_text("<svg/>")
    assert "![LeNet-BN graph](lenet_bn_graph.svg)" in graph_section(str(tmp_path))


def test_results_have_the_documented_structure(report):
    out = report[0]
    assert {r["model"] for r in rows(out, "lenet_bn")} == {"LeNet with BN", "LeNet without BN"}
    sweep = rows(out, "batch_size_sweep")
    assert [r["norm"] for r in sweep] == ["batch", "group", "layer", "instance", "none"]
    assert all(0 <= v <= 1 for r in sweep for k, v in r.items() if k.startswith("batch "))
    assert len(rows(out, "rnn_norms")) == 3
    assert all(r["BN"] in ("converged", "slow", "diverged") for r in rows(out, "learning_rate"))
    assert rows(out, "custom_plugin")[0]["conformance"] == "PASS"
    with open(out / "lenet_bn.json") as f:
        bn = json.load(f)["bn1"]
    assert bn["after recalibration: mean error"] < bn["running mean error"]  # running stats converge to the data's


def test_bn_beats_no_norm_at_a_large_learning_rate(report):
    largest = max(rows(report[0], "learning_rate"), key=lambda r: r["learning rate"])
    # measured with seed 0, batch 64, lr 3.0 (quick): BN 0.387, no norm diverged (0.0)
    assert largest["no norm"] == "diverged"
    assert largest["BN accuracy"] > largest["no norm accuracy"] + 0.2


def test_instance_norm_keeps_more_accuracy_under_contrast_shift(report):
    by_norm = {r["norm"]: r for r in rows(report[0], "contrast_shift")}
    # measured with seed 0 (quick): IN 0.819 shifted (87% kept), no norm 0.493 (68% kept)
    assert by_norm["instance"]["shifted test accuracy"] > by_norm["none"]["shifted test accuracy"] + 0.15
    assert by_norm["instance"]["kept"] > by_norm["none"]["kept"] + 0.1


def test_an_example_runs_as_a_script(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, "lenet_bn.py"), "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "| LeNet with BN |" in result.stdout and (tmp_path / "lenet_bn.png").exists()
