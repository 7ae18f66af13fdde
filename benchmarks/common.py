"""Timing helpers shared by the benchmarks: interleaved runs, medians, a table, JSON output."""
import json
import os
import platform
import statistics
import time

import numpy as np


def try_torch(threads=None):
    """PyTorch (None where it is not installed) on `threads` threads, or on $BENCH_THREADS where that is set:
    gpu_check.sh --smoke sets 1, since a smoke run measures nothing and PyTorch's threads, on a 2-core machine
    that is busy with anything else, make it three times slower."""
    try:
        import torch
    except ImportError:
        return None
    threads = int(os.environ.get("BENCH_THREADS") or 0) or threads
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


def copy_gbps(device="cuda", nbytes=1 << 30, repeat=10):
    """The device-to-device copy bandwidth, (read + written bytes) / time, median of `repeat` copies of a
    float32 array of `nbytes` (1 GiB): the ceiling a memory-bound kernel is measured against. CuPy on "cuda",
    NumPy on the CPU (there only to smoke-test this path)."""
    if device == "cuda":
        import cupy as xp
    else:
        xp = np
    a = xp.ones(nbytes // 4, xp.float32)
    b = xp.empty_like(a)
    sync = synchronizer(device)
    ms = median_ms([lambda: (xp.copyto(b, a), sync())], repeat=repeat)[0]
    del a, b
    free_device_memory(device)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def device_name(device, torch=None):
    """The GPU's name and the library versions, for the report header (None on the CPU)."""
    if device != "cuda":
        return None
    import cupy
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    cuda = cupy.cuda.runtime.runtimeGetVersion()
    return f"{name}, CUDA runtime {cuda // 1000}.{cuda % 1000 // 10}, CuPy {cupy.__version__}" + \
        (f", PyTorch {torch.__version__}" if torch else "")


def free_device_memory(device, torch=None):
    """Hand both frameworks' cached GPU blocks back between cases, so that neither memory pool starves the other
    when the large shapes come (a no-op on the CPU)."""
    if device != "cuda":
        return
    import gc

    import cupy
    gc.collect()
    cupy.get_default_memory_pool().free_all_blocks()
    if torch is not None:
        torch.cuda.empty_cache()


SETTLE = 1  # untimed runs before each timed one (see median_ms); set_device makes it 0 on a GPU


def set_device(device):
    """The timing for `device`: on a GPU no settle runs (no CPU thread pools contend there, and the GPU check's
    time budget counts every run); on the CPU one."""
    global SETTLE
    SETTLE = 0 if device == "cuda" else 1


def median_ms(fns, repeat=15, warmup=3, settle=None):
    """Time each callable `repeat` times, interleaved (a, b, a, b, ...) so machine noise hits all alike. Each timed
    run follows `settle` untimed runs of the same callable: the other framework's threads, which spin for a while
    after its call (PyTorch's OpenMP pool), would otherwise take the cores at the start of this one's timed run
    (on 2 cores LeNet's second convolution, a 2 ms forward, was timed at 10.6 ms right after PyTorch's)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, bucket in zip(fns, times):
            for _ in range(SETTLE if settle is None else settle):
                fn()
            t = time.perf_counter()
            fn()
            bucket.append((time.perf_counter() - t) * 1e3)
    return [statistics.median(t) for t in times]


def median_ms_or_error(fns, repeat=15, warmup=3):
    """median_ms over the callables that run: each (None allowed) is tried once alone first, and one that raises
    gets None for its time and its error message instead of ending the whole benchmark. Returns (ms, errors),
    two lists aligned with fns."""
    errors = [None if fn else "not run" for fn in fns]
    for i, fn in enumerate(fns):
        if fn:
            try:
                fn()
            except Exception as e:  # e.g. out of memory, or a dtype one framework refuses
                errors[i] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    live = [fn for fn, err in zip(fns, errors) if err is None]
    ms = iter(median_ms(live, repeat=repeat, warmup=max(warmup - 1, 0)) if live else [])
    return [next(ms) if err is None else None for err in errors], errors


def machine():
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def report(title, rows, path=None, device_name=None, notes=()):
    """rows: dicts with name, ours_ms (or None), torch_ms (or None), and optionally bytes (memory traffic of one
    run), copy_gbps and note (text shown at the end of the line). Prints a table with ratios, and achieved GB/s
    (and % of the copy bandwidth) where bytes are given, then `notes` (lines); writes JSON if path."""
    where = machine() + (f"; {device_name}" if device_name else "")
    print(f"\n{title}\n{where}")
    wide = any("bytes" in r for r in rows)
    noted = any(r.get("note") for r in rows)
    print(f"{'case':48s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>6s}" +
          (f" {'ours GB/s':>10s} {'torch GB/s':>10s} {'ours %copy':>10s} {'torch %copy':>11s}" if wide else "") +
          ("  note" if noted else ""))
    cell = lambda v, fmt, width: format(v, fmt).rjust(width) if v is not None else "-".rjust(width)
    gbps = lambda r, ms: r["bytes"] / (ms * 1e-3) / 1e9 if ms else None
    pct = lambda r, v: 100 * v / r["copy_gbps"] if v and r.get("copy_gbps") else None
    for r in rows:
        r["ratio"] = r["ours_ms"] / r["torch_ms"] if r.get("ours_ms") and r.get("torch_ms") else None
        line = f"{r['name']:48s} {cell(r.get('ours_ms'), '.3f', 9)} {cell(r.get('torch_ms'), '.3f', 9)} " \
               f"{cell(r['ratio'], '.2f', 6)}"
        if "bytes" in r:
            r["ours_gbps"], r["torch_gbps"] = gbps(r, r.get("ours_ms")), gbps(r, r.get("torch_ms"))
            r["ours_pct_copy"], r["torch_pct_copy"] = pct(r, r["ours_gbps"]), pct(r, r["torch_gbps"])
            line += f" {cell(r['ours_gbps'], '.3g', 10)} {cell(r['torch_gbps'], '.3g', 10)} " \
                    f"{cell(r['ours_pct_copy'], '.0f', 10)} {cell(r['torch_pct_copy'], '.0f', 11)}"
        if r.get("note"):
            line += f"  {r['note']}"
        print(line)
    for note in notes:
        print(note)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"title": title, "machine": where, **({"notes": list(notes)} if notes else {}), "rows": rows},
                      f, indent=2)


def default_json(script, name, device, dtype="float32"):
    """benchmarks/results/NAME.json for the CPU in float32 (the README's tables); a suffix for anything else."""
    suffix = "" if device == "cpu" else f"_{device}"
    suffix += "" if dtype == "float32" else f"_{dtype}"
    return os.path.join(os.path.dirname(os.path.abspath(script)), "results", f"{name}{suffix}.json")
