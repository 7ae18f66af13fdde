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


def report(title, rows, path=None):
    """rows: dicts with name, ours_ms, torch_ms (or None). Prints a table with ratios; writes JSON if path."""
    print(f"\n{title}\n{machine()}")
    print(f"{'case':44s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>6s}")
    for r in rows:
        ratio = r["ours_ms"] / r["torch_ms"] if r.get("torch_ms") else None
        r["ratio"] = ratio
        torch_ms = f"{r['torch_ms']:9.3f}" if r.get("torch_ms") else f"{'-':>9s}"
        print(f"{r['name']:44s} {r['ours_ms']:9.3f} {torch_ms} {ratio:6.2f}" if ratio else
              f"{r['name']:44s} {r['ours_ms']:9.3f} {torch_ms} {'-':>6s}")
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"title": title, "machine": machine(), "rows": rows}, f, indent=2)
