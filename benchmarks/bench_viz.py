"""How long drawing takes: building the DOT graph of a LeNet-BN and of a 10,000-op chain, and rendering them.

    python benchmarks/bench_viz.py [--render-large]
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import tinygrad_norm as tg
from tinygrad_norm import viz
from tinygrad_norm.experiments.models import LeNet


def chain(n):
    x = tg.Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0001
    return y


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--render-large", action="store_true", help="also lay out the 10,000-op graph with dot")
    args = ap.parse_args(argv)
    model = LeNet(bn=True)
    out = model(tg.randn(2, 1, 8, 8))
    small, t_small = timed(lambda: viz.draw_graph(out, model))
    y = chain(10_000)
    large, t_large = timed(lambda: viz.draw_graph(y))
    print(f"build DOT: LeNet-BN {t_small * 1e3:.1f} ms ({small.source.count('label=')} nodes); "
          f"10,000-op chain {t_large:.2f} s ({large.source.count('label=')} nodes)")
    if shutil.which("dot"):
        with tempfile.TemporaryDirectory() as d:
            _, t = timed(lambda: viz.render(small, os.path.join(d, "small.svg")))
            print(f"render LeNet-BN to SVG with dot: {t:.2f} s")
            if args.render_large:
                _, t = timed(lambda: viz.render(large, os.path.join(d, "large.svg")))
                print(f"render 10,000-op chain to SVG with dot: {t:.1f} s")


if __name__ == "__main__":
    main()
