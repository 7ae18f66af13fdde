"""The README's performance tables are benchmarks/tables.py's output from the committed runs, those runs hold every
case the benchmarks define today, and the benchmarks that feed them run end to end (tiny, one repeat: a check
that they work, not a measurement; timings are never asserted)."""
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_norms  # noqa: E402
import bench_ops  # noqa: E402
import bench_training  # noqa: E402
import tables  # noqa: E402


def committed(name):
    with open(ROOT / "benchmarks" / "results" / f"{name}.json") as f:
        return [row["name"] for row in json.load(f)["rows"]]


def test_the_readme_tables_are_the_committed_runs():
    readme = (ROOT / "README.md").read_text()
    begin, end = readme.index(tables.BEGIN) + len(tables.BEGIN), readme.index(tables.END)
    assert readme[begin:end] == tables.tables(), "rerun `python benchmarks/tables.py --write`"


@pytest.mark.parametrize("suffix", ["", "_threads1"])
def test_the_committed_runs_hold_every_case_defined_today(suffix):
    training = [f"train step: {label}" for label, _, _ in bench_training.CPU_CASES] + \
        ["digits CNN + BN, 5 epochs end to end"]
    assert committed("bench_training" + suffix) == training
    norms = [f"{label} {phase}" for label, _, _ in bench_norms.CASES for phase in ("fwd", "fwd+bwd")]
    assert committed("bench_norms" + suffix) == norms
    ops = committed("bench_ops" + suffix)
    for label, *_ in bench_ops.CONVS:
        assert f"{label} fwd" in ops and f"{label} fwd+bwd" in ops
    assert ops[0] == "matmul 1024^3 (the peak)" and ops[-1].startswith("engine: chain")


def test_bench_ops_runs_end_to_end(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed: the benchmark then times ours alone")
    rows = bench_ops.main(["--only", "digits", "--repeat", "1", "--json", str(tmp_path / "ops.json")])
    names = [r["name"] for r in rows]
    assert "digits conv2 16->32 k3 p1 fwd+bwd" in names and "digits pool max 2x2 (32, 16, 8, 8) fwd" in names
    assert all(r["ours_ms"] and r["torch_ms"] for r in rows)
    assert all(r["method"] in ("direct", "columns", "windows") for r in rows if "conv" in r["name"])


def test_bench_training_times_our_lstm_against_nn_lstm_on_one_thread(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the benchmark then times ours alone")
    import tinygrad_norm as tg
    ours, theirs = tg.get_num_threads(), torch.get_num_threads()
    try:
        rows = bench_training.main(["--only", "nn.LSTM", "--repeat", "1", "--threads", "1",
                                    "--json", str(tmp_path / "training.json")])
        assert tg.get_num_threads() == 1 and torch.get_num_threads() == 1
    finally:
        tg.set_num_threads(ours)
        torch.set_num_threads(theirs)
    assert [r["name"] for r in rows] == ["train step: LSTM(28->128), 28 steps, batch 64, vs nn.LSTM"]
    assert rows[0]["ours_ms"] and rows[0]["torch_ms"] and "errors" not in rows[0]
