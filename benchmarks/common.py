"""Timing helpers shared by the benchmarks: interleaved runs, medians, a table, JSON output."""
import json
import os
import platform
import statistics
import time

import numpy as np


def try_torch(threads=None):
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    return torch


def synchronizer(device, torch=None):
    """A callable that waits for the device to finish (a no-op on the CPU): GPU timings need it after each run."""
    if device != "cuda":
        return lambda: None
    if torch is not None:
        return torch.cuda.synchronize
    import cupy
    return cupy.cuda.Device().synchronize


def copy_gbps(repeat=10, nbytes=1 << 30):
    """The GPU's device-to-device copy bandwidth, (read + written bytes) / time, median of `repeat` copies of a
    1 GiB array: the ceiling a memory-bound kernel is measured against."""
    import cupy
    a, b = cupy.ones(nbytes // 4, cupy.float32), cupy.empty(nbytes // 4, cupy.float32)
    sync = synchronizer("cuda")
    ms = median_ms([lambda: (cupy.copyto(b, a), sync())], repeat=repeat)[0]
    return 2 * nbytes / (ms * 1e-3) / 1e9


def median_ms(fns, repeat=15, warmup=3):
    """Time each callable `repeat` times, interleaved (a, b, a, b, ...) so machine noise hits all alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, bucket in zip(fns, times):
            t = time.perf_counter()
            fn()
            bucket.append((time.perf_counter() - t) * 1e3)
    return [statistics.median(t) for t in times]


def machine():
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def report(title, rows, path=None, device_name=None):
    """rows: dicts with name, ours_ms, torch_ms (or None), and optionally bytes (memory traffic of one run) and
    copy_gbps. Prints a table with ratios, and achieved GB/s (and % of the copy bandwidth) where bytes are
    given; writes JSON if path."""
    where = machine() + (f"; {device_name}" if device_name else "")
    print(f"\n{title}\n{where}")
    wide = any("bytes" in r for r in rows)
    print(f"{'case':48s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>6s}" +
          (f" {'ours GB/s':>10s} {'torch GB/s':>10s} {'ours %copy':>10s}" if wide else ""))
    cell = lambda v, fmt, width: format(v, fmt).rjust(width) if v is not None else "-".rjust(width)
    for r in rows:
        r["ratio"] = r["ours_ms"] / r["torch_ms"] if r.get("torch_ms") else None
        line = f"{r['name']:48s} {cell(r['ours_ms'], '.3f', 9)} {cell(r.get('torch_ms'), '.3f', 9)} {cell(r['ratio'], '.2f', 6)}"
        if "bytes" in r:
            r["ours_gbps"] = r["bytes"] / (r["ours_ms"] * 1e-3) / 1e9
            r["torch_gbps"] = r["bytes"] / (r["torch_ms"] * 1e-3) / 1e9 if r.get("torch_ms") else None
            r["ours_pct_copy"] = 100 * r["ours_gbps"] / r["copy_gbps"] if r.get("copy_gbps") else None
            line += f" {cell(r['ours_gbps'], '.0f', 10)} {cell(r['torch_gbps'], '.0f', 10)} {cell(r['ours_pct_copy'], '.0f', 10)}"
        print(line)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"title": title, "machine": where, "rows": rows}, f, indent=2)


def default_json(script, name, device, dtype="float32"):
    """benchmarks/results/NAME.json for the CPU in float32 (the README's tables); a suffix for anything else."""
    suffix = "" if device == "cpu" else f"_{device}"
    suffix += "" if dtype == "float32" else f"_{dtype}"
    return os.path.join(os.path.dirname(os.path.abspath(script)), "results", f"{name}{suffix}.json")
