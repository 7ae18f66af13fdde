"""benchmarks/gpu_check.sh, the one command for a GPU machine, in its --smoke mode on the CPU: every step runs and
is recorded in the one JSON and the one log; a failing step is recorded, the run goes on, and the exit status
says so. The script's GPU budget (its per-step timeouts) fits the 8 minutes it promises."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
STEPS = ["install", "probe", "tests", "bench_norms_float32", "bench_norms_float16", "bench_training",
         "bench_double_backward"]

missing = [tool for tool in ("bash", "timeout") if shutil.which(tool) is None]
needs_tools = pytest.mark.skipif(bool(missing), reason=f"gpu_check.sh needs {' and '.join(missing)} (coreutils, bash)")


def gpu_check(out, *args, timeout=240):
    """Run the script with this interpreter's environment first on PATH (as CI's venv is) and as PYTHON."""
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
           "PYTHON": sys.executable}
    env.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), "--smoke", "--out", str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def load(out):
    return json.loads((out / "gpu_check.json").read_text())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    return gpu_check(out), out


@needs_tools
def test_smoke_runs_every_step_and_exits_0(smoke):
    result, out = smoke
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = load(out)
    assert report["mode"] == "smoke" and report["ok"] and report["failed_steps"] == []
    assert [s["name"] for s in report["steps"]] == STEPS
    for step in report["steps"]:
        assert step["status"] == 0, step
        assert step["command"] and step["wall_s"] >= 0 and step["timeout_s"] > 0
    env = report["environment"]
    assert env["python"] and env["packages"]["numpy"]
    assert "cupy" in env  # importable or not, and why there is no GPU: reported, not a failure, on the CPU


@needs_tools
def test_smoke_report_has_the_pytest_counts(smoke):
    _, out = smoke
    counts = load(out)["pytest"]
    assert counts["source"] == "junitxml"
    assert counts["failed"] == 0 and counts["errors"] == 0
    assert counts["passed"] >= 1 and counts["skipped"] >= 1  # test_gpu.py and the cuda halves skip on the CPU
    assert counts["passed"] + counts["skipped"] == counts["total"]
    assert next(s for s in load(out)["steps"] if s["name"] == "tests")["pytest"]["passed"] == counts["passed"]


@needs_tools
def test_smoke_report_has_both_norm_dtypes_and_the_training_rows(smoke):
    _, out = smoke
    bench = load(out)["benchmarks"]
    for name, dtype in (("bench_norms_float32", "float32"), ("bench_norms_float16", "float16")):
        assert dtype in bench[name]["title"]
        rows = bench[name]["rows"]
        assert rows and all(r["ours_ms"] is not None for r in rows), rows
        assert any("ours_gbps" in r for r in rows)  # the GB/s columns of the large cases
    rows = bench["bench_training"]["rows"]
    assert rows and all(r["name"].startswith("train step") and r["ours_ms"] is not None for r in rows)


@needs_tools
def test_smoke_log_names_every_step_with_its_status_and_wall_time(smoke):
    _, out = smoke
    log = (out / "gpu_check.log").read_text()
    for name in STEPS:
        assert re.search(rf"=== step {name}: start \(timeout \d+s\): ", log), name
        assert re.search(rf"=== step {name}: ok, status 0, wall [\d.]+s", log), name
    assert re.search(r"^\d\d:\d\d:\d\d ", log, re.M)  # the steps' own output, timestamped
    assert "every step ok" in log


@needs_tools
def test_a_failing_step_is_recorded_the_run_goes_on_and_the_exit_status_is_1(tmp_path):
    result = gpu_check(tmp_path, "--only", "tests,bench_norms_float32", "--tests", "tests/no_such_test_file.py")
    assert result.returncode == 1, result.stdout[-3000:]
    report = load(tmp_path)
    assert not report["ok"] and report["failed_steps"] == ["tests"]
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["tests", "bench_norms_float32"]
    assert steps["tests"]["status"] not in (0, 124) and "no_such_test_file.py" in steps["tests"]["command"]
    assert steps["bench_norms_float32"]["status"] == 0  # the step after the failure still ran
    log = (tmp_path / "gpu_check.log").read_text()
    assert re.search(r"=== step tests: FAILED, status \d+", log)
    assert "FAILED steps: tests" in log


def gpu_timeouts():
    """The GPU mode's per-step timeouts, T_NAME=seconds, from the script."""
    text = SCRIPT.read_text()
    gpu = text[text.index("MODE=gpu"):]
    line = next(line for line in gpu.splitlines() if line.strip().startswith("T_INSTALL="))
    return {k: int(v) for k, v in re.findall(r"(T_\w+)=(\d+)", line)}


def test_the_gpu_budget_fits_8_minutes():
    t = gpu_timeouts()
    # the two norm runs share T_NORMS; the report step has its own 60 s cap but takes a second
    total = t["T_INSTALL"] + t["T_PROBE"] + t["T_TESTS"] + 2 * t["T_NORMS"] + t["T_TRAIN"]
    assert total <= 480 - 5, t


def test_the_wheels_folder_is_ignored_by_git():
    assert "wheels/" in (ROOT / ".gitignore").read_text().split()
