"""The experiments and the demo: the quick demo runs once here and writes every table, plot and result JSON;
each JSON records its seeds and a value per seed; and the numbers are the committed ones (examples/results/quick),
so a change that moves them is seen."""
import json
import math
import os
import re
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tinygrad_norm.demo import STEPS, claims_table
from tinygrad_norm.world import find_mpiexec

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "examples" / "results"
TABLES = [name for name, _ in STEPS if name != "graph"]
# Tolerance for the committed quick numbers: every per-seed value within 0.02 + 2 % of the committed one (a test
# image or two of accuracy where another CPU's BLAS rounds differently), every chosen learning rate equal. The
# validation accuracies of the learning-rate grid come from 20 to 64 images, where one image is 0.016 to 0.05
# (seen: an AMD EPYC machine scored one of 40 validation images otherwise), so they may move by two images more.
ABS, REL = 0.02, 0.02
VALIDATION_IMAGES = 2


def validation_size(result):
    """How many images the validation accuracies of a result were measured on (its data description says), or
    None for an experiment without a validation split (learning_rate trains at every rate of its grid)."""
    found = re.search(r"(\d+) validation", result["data"])
    return int(found.group(1)) if found else None


# The committed quick numbers were computed with these set, which make x86-64 machines whose SIMD differs compute
# alike: OpenBLAS's Haswell kernels, numba compiling for Haswell, NumPy without its AVX-512 loops. On the AMD EPYC
# (AVX2) machine that wrote them they change nothing (the demo's JSON is byte-identical with and without them);
# on an AVX-512 machine they have not been tried.
SAME_ARITHMETIC = {"OPENBLAS_CORETYPE": "Haswell", "NUMBA_CPU_NAME": "haswell",
                   "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}


def same_arithmetic():
    """SAME_ARITHMETIC where this is an x86-64 machine with AVX2 and FMA (what the pins ask for), else nothing."""
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        return {}
    return SAME_ARITHMETIC if os.uname().machine == "x86_64" and {"avx2", "fma"} <= flags else {}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`tinygrad-norm demo` itself, run once: every experiment in quick mode."""
    out = tmp_path_factory.mktemp("report")
    result = subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", "demo", "--out", str(out)],
                            capture_output=True, text=True, env={**os.environ, **same_arithmetic()})
    assert result.returncode == 0, result.stderr[-3000:]
    return out, out / "README.md", result.stdout.splitlines()


def load(out, name):
    with open(out / f"{name}.json") as f:
        return json.load(f)


def ran(out):
    return [name for name in TABLES if (out / f"{name}.json").exists()]


def test_demo_writes_the_report_with_every_table_plot_and_verdict(report):
    out, path, lines = report
    text = path.read_text()
    expected = [n for n in TABLES if n != "sync_batchnorm" or find_mpiexec()]
    assert ran(out) == expected
    for name in expected:
        assert (out / f"{name}.md").read_text().startswith("| method | lr |")
        assert "**Verdict:**" in (out / f"{name}.md").read_text()
        if name != "custom_plugin":
            assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG" and f"![{name}]({name}.png)" in text
    assert "## Summary" in text and "norm_axes.svg" in text
    ET.parse(out / "norm_axes.svg")
    assert (out / "lenet_bn_graph.svg").exists() or (out / "lenet_bn_graph.dot").exists()
    assert any("[8/8]" in line for line in lines) and any("gives validation accuracy" in line for line in lines)
    assert f"Report: {path}" in lines and sum("seeds):" in line for line in lines) == len(expected)
    assert (out / "claims.md").read_text() == claims_table(str(out))
    report_lines = lines[lines.index(next(l for l in lines if "conformance of norm plugin 'bgn'" in l)):]
    assert report_lines[1].startswith("      [ok]")  # the checker's lines sit under its heading, not beside the step


def test_the_demo_ran_the_sync_batchnorm_experiment_on_four_processes(report):
    """The demo's step under `mpiexec -n 4` (where MPI starts; else the step says why it did not run)."""
    out, _, lines = report
    if not (out / "sync_batchnorm.json").exists():
        pytest.skip(next(line for line in lines if "not run" in line))
    assert sum("4 processes x 8 samples per step = 32 per step" in line for line in lines) == 1  # rank 0 alone
    result = load(out, "sync_batchnorm")
    assert list(result["methods"]) == ["BN local (k=8)", "SyncBatchNorm (k=32)", "GN"]
    assert result["settings"]["processes"] == 4 and result["seeds"] == [0, 1]
    assert all(len(m["per_seed"]["test accuracy"]) == 2 for m in result["methods"].values())
    assert (out / "sync_batchnorm.png").read_bytes()[:4] == b"\x89PNG"


def test_the_example_plugin_package_the_demo_installed_is_found_by_entry_point(report):
    """The example plugin package (tinygrad_norm/experiments/bgn_plugin), pip-installed into a folder by the
    demo's custom_plugin step: listed with its distribution, checked, used by name, and left out by the switch."""
    target = report[0] / "bgn_site"
    env = {**os.environ, "PYTHONPATH": str(target)}
    cli = lambda *args, **more: subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", *args], capture_output=True,
                                               text=True, env={**env, **more})
    result = cli("plugins")
    assert "bgn " in result.stdout and "from tinygrad-norm-bgn" in result.stdout
    check = cli("check", "bgn")
    assert check.returncode == 0, check.stdout + check.stderr
    code = ("import numpy as np, tinygrad_norm as tg\nfrom tinygrad_norm import nn\n"
            "m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Norm('bgn', 4))\nprint(m(tg.randn(2, 1, 6, 6)).shape)")
    used = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert used.stdout.strip() == "(2, 4, 4, 4)", used.stderr
    assert "bgn " not in cli("plugins", TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD="1").stdout


def test_the_report_links_the_graph_source_when_dot_is_missing(tmp_path):
    from tinygrad_norm.demo import graph_section
    (tmp_path / "lenet_bn_graph.dot").write_text("digraph {}")
    text = graph_section(str(tmp_path))
    assert "![LeNet-BN graph]" not in text and "[lenet_bn_graph.dot](lenet_bn_graph.dot)" in text
    assert "apt-get install graphviz" in text and "dot -Tsvg lenet_bn_graph.dot -o lenet_bn_graph.svg" in text
    (tmp_path / "lenet_bn_graph.svg").write_text("<svg/>")
    assert "![LeNet-BN graph](lenet_bn_graph.svg)" in graph_section(str(tmp_path))


def test_every_result_records_its_seeds_a_value_per_seed_and_a_chosen_rate(report):
    out = report[0]
    for name in ran(out):
        result = load(out, name)
        seeds = result["seeds"]
        assert len(seeds) >= 2 and seeds == sorted(set(seeds)), name
        assert {"claim", "test", "verdict", "settings", "data"} <= set(result), name
        for label, method in result["methods"].items():
            assert all(len(values) == len(seeds) for values in method["per_seed"].values()), (name, label)
            if method["lr_grid"]:  # chosen on validation: the best of the grid
                best = max(method["lr_grid"].values())
                assert method["lr_grid"][f"{method['lr']:g}"] == best, (name, label)


def compare(path, got, want, slack=None, extra=0.0):
    """Where got differs from want beyond the tolerance: a list of 'path: got vs want'. `slack` maps a key to an
    absolute tolerance added below it (the learning-rate grid's validation images)."""
    slack = slack or {}
    if isinstance(want, dict):
        if set(got) != set(want):
            return [f"{path}: keys {sorted(got)} vs {sorted(want)}"]
        return [d for k in want for d in compare(f"{path}/{k}", got[k], want[k], slack, slack.get(k, extra))]
    if isinstance(want, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} values vs {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in compare(f"{path}[{i}]", g, w, slack, extra)]
    if isinstance(want, (int, float)) and not isinstance(want, bool) and isinstance(got, (int, float)):
        same = (math.isnan(want) and math.isnan(got)) or abs(got - want) <= ABS + extra + REL * abs(want)
        return [] if same else [f"{path}: {got} vs {want}"]
    return [] if got == want else [f"{path}: {got!r} vs {want!r}"]


def test_the_quick_numbers_are_the_committed_ones(report):
    """Every seed's every number, and every learning rate chosen, against examples/results/quick."""
    out = report[0]
    for name in ran(out):
        got, want = load(out, name), load(COMMITTED / "quick", name)
        assert got["seeds"] == want["seeds"]
        images = validation_size(want)
        slack = {"lr_grid": VALIDATION_IMAGES / images} if images else {}
        differences = compare(name, got["methods"], want["methods"], slack)
        rerun = " ".join(f"{k}={v!r}" for k, v in same_arithmetic().items())
        assert not differences, (f"the quick numbers moved; if that was meant, rerun `{rerun} tinygrad-norm demo "
                                 "--out examples/results/quick` and commit:\n" + "\n".join(differences[:20]))


def test_the_comparison_sees_a_moved_number():
    want = {"BN": {"lr": 0.1, "per_seed": {"test accuracy": [0.9, 0.8, None]}}}
    assert compare("x", json.loads(json.dumps(want)), want) == []
    moved = json.loads(json.dumps(want))
    moved["BN"]["per_seed"]["test accuracy"][1] = 0.85
    moved["BN"]["lr"] = 0.2
    assert len(compare("x", moved, want)) == 2


def test_the_grid_may_move_by_two_validation_images_and_no_more():
    want = {"BN": {"lr_grid": {"0.1": 0.5}, "per_seed": {"test accuracy": [0.5]}}}
    slack = {"lr_grid": VALIDATION_IMAGES / validation_size({"data": "digits: 360 train, 40 validation, 359 test"})}
    assert slack == {"lr_grid": 0.05} and validation_size({"data": "digits: 576 train, 359 test"}) is None
    two_images = {"BN": {"lr_grid": {"0.1": 0.55}, "per_seed": {"test accuracy": [0.5]}}}
    assert compare("x", two_images, want, slack) == []
    four_images = {"BN": {"lr_grid": {"0.1": 0.6}, "per_seed": {"test accuracy": [0.5]}}}
    assert compare("x", four_images, want, slack) == ["x/BN/lr_grid/0.1: 0.6 vs 0.5"]
    test_moved = {"BN": {"lr_grid": {"0.1": 0.5}, "per_seed": {"test accuracy": [0.55]}}}
    assert len(compare("x", test_moved, want, slack)) == 1  # the slack is the grid's alone


def test_the_readme_table_is_generated_from_the_committed_full_results():
    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- claims: generated from examples/results/full -->\n", "<!-- end of claims -->"
    assert begin in readme and end in readme
    table = readme[readme.index(begin) + len(begin):readme.index(end)]
    assert table == claims_table(str(COMMITTED / "full"), links="examples/results/full/"), \
        "README's claims table is not the one the committed full results give (tinygrad_norm.demo.claims_table)"


def test_an_experiment_runs_as_a_module_and_refuses_a_missing_gpu_in_one_line(tmp_path):
    command = [sys.executable, "-m", "tinygrad_norm.experiments.learning_rate", "--quick", "--seeds", "2", "--out",
               str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert load(tmp_path, "learning_rate")["seeds"] == [0, 1] and (tmp_path / "learning_rate.png").exists()
    from tinygrad_norm import gpu_available
    if gpu_available()[0]:
        pytest.skip("a GPU is here: --device cuda runs (tests/test_gpu.py trains on it)")
    result = subprocess.run(command + ["--device", "cuda"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "device 'cuda' needs" in result.stderr


def test_the_demo_runs_from_an_installed_wheel_without_the_checkout(tmp_path):
    """Build the wheel, install it into a fresh folder, and run one experiment from there, far from the checkout:
    nothing may be read from examples/ or the source tree."""
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    if wheel.returncode:
        pytest.skip(f"could not build a wheel here: {wheel.stderr[-300:]}")
    site = tmp_path / "site"
    wheel_file = next((tmp_path / "dist").glob("tinygrad_norm-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel_file)],
                   check=True, capture_output=True)
    assert (site / "tinygrad_norm" / "experiments" / "bgn_plugin" / "tinygrad_norm_bgn" / "__init__.py").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import tinygrad_norm, sys; assert tinygrad_norm.__file__.startswith(sys.argv[1]), tinygrad_norm.__file__; "
            "from tinygrad_norm.experiments import learning_rate; learning_rate.run(True, 2, sys.argv[2], log=print)")
    result = subprocess.run([sys.executable, "-c", code, str(site), str(tmp_path / "out")], capture_output=True,
                            text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "learning_rate.json").exists()
