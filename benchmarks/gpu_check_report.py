"""The Python half of benchmarks/gpu_check.sh (which has no jq to lean on): the environment probe, the check of
a benchmark's JSON, and the assembly of the one JSON report.

    python benchmarks/gpu_check_report.py probe --env-json PARTS/env.json [--cpu]
    python benchmarks/gpu_check_report.py rows BENCH.json
    python benchmarks/gpu_check_report.py report --parts PARTS --mode gpu|smoke --out OUT/gpu_check.json

probe   prints the versions (Python, NumPy, CuPy, PyTorch, numba, ...), CuPy's device count, the GPU's name,
        the driver and CUDA runtime versions, and runs a tiny CuPy op and a tiny tinygrad_norm op on "cuda", so
        that a broken GPU shows up first. Exit 1 when any of that fails; with --cpu (the smoke run) CuPy and a
        GPU are optional: it reports whether CuPy imports and why there is no GPU, and exits 0.
rows    prints a benchmark JSON's rows in brief and exits 1 when there are none or when one of ours failed
        (its "errors" name "ours:" or "build:"); PyTorch's own failures are reported, not counted.
report  reads what gpu_check.sh left in PARTS (steps.tsv, env.json, pytest.xml, the steps' output, the
        benchmarks' JSON) and writes the report: environment, steps (command, status, wall time), the pytest
        counts and slowest tests, the benchmark results. Prints the one-line verdict.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the packages whose versions the report records (distribution names), besides Python itself
PACKAGES = ["tinygrad-norm", "numpy", "cupy-cuda13x", "cupy-cuda12x", "cupy", "torch", "numba", "numba-cuda",
            "pytest", "hypothesis", "mpi4py", "mpich", "graphviz", "expecttest", "import-linter", "grimp",
            "scikit-learn", "scipy", "matplotlib", "setuptools", "wheel", "pip"]
# the benchmarks' JSON files gpu_check.sh asks for (PARTS/<step>.json), in step order
BENCH_STEPS = ["bench_norms_float32", "bench_norms_float16", "bench_training", "bench_double_backward"]


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def versions():
    from importlib import metadata
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def nvidia_smi():
    """The driver's view of the GPUs (name, driver version, memory), when nvidia-smi is on PATH."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    return {"returncode": out.returncode, "gpus": [line.strip() for line in out.stdout.splitlines() if line.strip()],
            **({"stderr": out.stderr.strip()[-500:]} if out.returncode else {})}


def cuda_version(v):
    """CUDA's integer version (12080) as text ("12.8")."""
    return f"{v // 1000}.{v % 1000 // 10}"


def probe_gpu(env):
    """Fill env["cupy"] and env["gpu"]; returns the list of problems (empty when the GPU works)."""
    problems = []
    try:
        import cupy
    except Exception as e:  # ImportError, or a CuPy that fails to load its CUDA libraries
        env["cupy"] = {"importable": False, "error": f"{type(e).__name__}: {e}"[:500]}
        return [f"CuPy does not import: {e}"]
    env["cupy"] = {"importable": True, "version": cupy.__version__}
    gpu = env["gpu"] = {}
    try:
        driver = cupy.cuda.runtime.driverGetVersion()  # 0: no driver
        gpu["driver_cuda"] = cuda_version(driver) if driver else None
    except Exception as e:
        gpu["driver_cuda_error"] = f"{type(e).__name__}: {e}"[:300]
    try:
        gpu["runtime_cuda"] = cuda_version(cupy.cuda.runtime.runtimeGetVersion())
    except Exception as e:
        gpu["runtime_cuda_error"] = f"{type(e).__name__}: {e}"[:300]
    try:
        count = gpu["device_count"] = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, or no device
        gpu["device_count"] = 0
        gpu["error"] = f"{type(e).__name__}: {e}"[:500]
        return problems + [f"no GPU: {gpu['error']}"]
    if count < 1:
        return problems + ["no GPU: getDeviceCount() is 0"]
    try:
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        gpu["name"] = name.decode() if isinstance(name, bytes) else name
        gpu["compute_capability"] = f"{props['major']}.{props['minor']}"
        gpu["memory_gib"] = round(props["totalGlobalMem"] / 2 ** 30, 1)
        x = cupy.arange(1024, dtype=cupy.float32)
        total = float((x * 2).sum())  # an elementwise kernel (NVRTC-compiled) and a reduction
        gpu["cupy_op"] = "ok" if total == 1023 * 1024 else f"wrong: sum(2 * arange(1024)) = {total}"
        if gpu["cupy_op"] != "ok":
            problems.append(f"CuPy op: {gpu['cupy_op']}")
    except Exception as e:
        gpu["cupy_op"] = f"{type(e).__name__}: {e}"[:500]
        problems.append(f"CuPy op failed: {gpu['cupy_op']}")
    return problems


def probe_framework(env, cuda):
    """A tiny tinygrad_norm op, on "cuda" too when asked; returns the problems."""
    problems = []
    try:
        import numpy as np

        import tinygrad_norm as tg
        from tinygrad_norm import backend
        env["tinygrad_norm"] = {"file": tg.__file__}
        ok, why = backend.gpu_available()
        env["tinygrad_norm"]["gpu_available"] = ok if ok else f"no: {why}"
        for device in ["cpu"] + (["cuda"] if cuda else []):
            x = tg.Tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True)
            y = (x * x).sum()
            y.backward()
            grad = x.grad.numpy()
            right = float(y.item()) == 55.0 and np.array_equal(grad, 2 * np.arange(6.0).reshape(2, 3))
            env["tinygrad_norm"][f"op_{device}"] = "ok" if right else f"wrong: {y.item()}, {grad.tolist()}"
            if not right:
                problems.append(f"tinygrad_norm op on {device} is wrong")
    except Exception as e:
        env.setdefault("tinygrad_norm", {})["error"] = f"{type(e).__name__}: {e}"[:500]
        problems.append(f"tinygrad_norm: {type(e).__name__}: {e}")
    return problems


def probe(args):
    env = {"when": now(), "python": sys.version.split()[0], "executable": sys.executable,
           "platform": platform.platform(), "cpus": os.cpu_count(), "packages": versions(),
           "nvidia_smi": nvidia_smi(),
           "thread_settings": {k: os.environ[k] for k in ("BENCH_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                          "MKL_NUM_THREADS", "NUMBA_NUM_THREADS") if k in os.environ}}
    try:
        env["git_commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True,
                                           timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        env["git_commit"] = None
    if args.cpu:  # the smoke run: the version from the metadata, without the seconds an import of torch takes
        env["torch"] = {"version": env["packages"].get("torch"), "note": "not imported by a --cpu probe"}
    else:
        try:
            import torch
            env["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available()}
            if torch.cuda.is_available():
                env["torch"]["device"] = torch.cuda.get_device_name(0)
        except Exception as e:
            env["torch"] = {"version": env["packages"].get("torch"), "error": f"{type(e).__name__}: {e}"[:300]}
    gpu_problems = probe_gpu(env)
    problems = probe_framework(env, cuda=not gpu_problems)
    if not args.cpu:
        problems = gpu_problems + problems
    elif gpu_problems:
        env["gpu_note"] = "smoke run on the CPU: " + "; ".join(gpu_problems)
    if not args.cpu and env.get("torch", {}).get("cuda_available") is False:
        problems.append("PyTorch sees no GPU (torch.cuda.is_available() is False): its benchmark columns will fail")
    env["problems"] = problems
    print(json.dumps(env, indent=2))
    if args.env_json:
        with open(args.env_json, "w") as f:
            json.dump(env, f, indent=2)
    if problems:
        print("PROBE FAILED: " + "; ".join(problems), file=sys.stderr)
    return 1 if problems else 0


def ours_failures(row):
    return [e for e in row.get("errors", []) if e.startswith(("ours:", "build:"))]


def rows(args):
    try:
        with open(args.json) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"no benchmark results in {args.json}: {e}")
        return 1
    found = data.get("rows", [])
    bad = [r for r in found if ours_failures(r)]
    theirs = [r for r in found if r.get("errors") and not ours_failures(r)]
    print(f"{args.json}: {len(found)} rows, {len(bad)} where ours failed, {len(theirs)} where only PyTorch failed")
    for r in bad:
        print(f"  OURS FAILED  {r['name']}: {'; '.join(ours_failures(r))}")
    for r in theirs:
        print(f"  torch failed {r['name']}: {'; '.join(r['errors'])}")
    errs = [r["max_abs_err"] for r in found if r.get("max_abs_err") is not None]
    if errs:
        print(f"  largest |ours - torch| over the rows: {max(errs):.2e}")
    return 1 if bad or not found else 0


def pytest_counts(parts):
    """passed/failed/skipped/errors from pytest's --junitxml file, else from the summary line of its output."""
    xml = os.path.join(parts, "pytest.xml")
    if os.path.exists(xml):
        try:
            root = ET.parse(xml).getroot()
            suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
            total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
            cases = [c for s in suites for c in s.iter("testcase")]
            slowest = sorted(cases, key=lambda c: -float(c.get("time", 0)))[:15]
            return {"source": "junitxml", "total": total["tests"],
                    "passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
                    "failed": total["failures"], "errors": total["errors"], "skipped": total["skipped"],
                    "time_s": round(sum(float(s.get("time", 0)) for s in suites), 1),
                    # tests skipped for want of a GPU (the "cuda" halves): 0 in a run on a working GPU
                    "skipped_needs_gpu": sum(1 for c in cases for k in c.iter("skipped")
                                             if "needs a GPU" in (k.get("message") or "")),
                    "failed_tests": [f"{c.get('classname')}::{c.get('name')}" for c in cases
                                     if c.find("failure") is not None or c.find("error") is not None][:100],
                    "slowest": [{"test": f"{c.get('classname')}::{c.get('name')}",
                                 "time_s": round(float(c.get("time", 0)), 2)} for c in slowest]}
        except (ET.ParseError, ValueError) as e:
            note = f"unreadable {xml}: {e}"
        else:
            note = None
    else:
        note = f"no {xml}"
    out = os.path.join(parts, "tests.out")
    text = open(out, errors="replace").read() if os.path.exists(out) else ""
    summary = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|errors?)\b", line)
               or re.search(r"no tests ran", line)]
    counts = {"source": "output", "note": note, "passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    if summary:
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)\b",
                                  summary[-1]):
            counts["errors" if what.startswith("error") else what] = int(n)
        counts["summary_line"] = summary[-1].strip()
    else:
        counts["note"] = (note + "; " if note else "") + "no summary line in the output"
    return counts


def read_steps(parts):
    steps = []
    path = os.path.join(parts, "steps.tsv")
    if not os.path.exists(path):
        return steps
    for line in open(path):
        name, status, wall, started, limit, check, command = line.rstrip("\n").split("\t", 6)
        status = int(status)
        step = {"name": name, "command": command, "status": status, "ok": status == 0,
                "timed_out": status in (124, 137), "wall_s": round(int(wall) / 1000, 1), "timeout_s": int(limit),
                "started": started, "output": os.path.join("parts", f"{name}.out")}
        if check != "-":
            step["check"] = check
        steps.append(step)
    return steps


def report(args):
    parts = args.parts
    env_path = os.path.join(parts, "env.json")
    if os.path.exists(env_path):
        with open(env_path) as f:
            env = json.load(f)
    else:  # the probe did not run or died: what this interpreter can tell
        env = {"python": sys.version.split()[0], "executable": sys.executable, "packages": versions(),
               "note": "no env.json: the probe step did not write one"}
    steps = read_steps(parts)
    result = {"mode": args.mode, "finished": now(), "environment": env, "steps": steps}
    result["failed_steps"] = [s["name"] for s in steps if s["status"]]
    result["ok"] = bool(steps) and not result["failed_steps"]
    result["wall_s"] = round(sum(s["wall_s"] for s in steps), 1)
    if any(s["name"] == "tests" for s in steps):
        result["pytest"] = pytest_counts(parts)
        for s in steps:
            if s["name"] == "tests":
                s["pytest"] = {k: result["pytest"].get(k) for k in ("passed", "failed", "skipped", "errors")}
        if args.mode == "gpu" and result["pytest"].get("skipped_needs_gpu"):
            result["warnings"] = [f"{result['pytest']['skipped_needs_gpu']} tests skipped for want of a GPU: the "
                                  f"cuda halves did not run (see the probe)"]
    result["benchmarks"] = {}
    for name in BENCH_STEPS:
        path = os.path.join(parts, f"{name}.json")
        if any(s["name"] == name for s in steps):
            try:
                with open(path) as f:
                    result["benchmarks"][name] = json.load(f)
            except (OSError, ValueError) as e:
                result["benchmarks"][name] = {"error": f"no results: {type(e).__name__}: {e}"}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    counts = result.get("pytest", {})
    print(f"gpu_check ({args.mode}): {'OK' if result['ok'] else 'FAILED: ' + ', '.join(result['failed_steps'])}; "
          + ", ".join(f"{s['name']} {s['status']} in {s['wall_s']}s" for s in steps)
          + "".join(f"; WARNING: {w}" for w in result.get("warnings", []))
          + (f"; pytest {counts.get('passed')} passed, {counts.get('failed')} failed, {counts.get('skipped')} "
             f"skipped, {counts.get('errors')} errors" if counts else "") + f"; report {args.out}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--env-json")
    p.add_argument("--cpu", action="store_true", help="CuPy and a GPU optional (the smoke run)")
    p = sub.add_parser("rows")
    p.add_argument("json")
    p = sub.add_parser("report")
    p.add_argument("--parts", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    return {"probe": probe, "rows": rows, "report": report}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
