"""Draw the computation graph of LeNet-BN (lenet_bn.py) and the norm-pooling pictures.

    python -m tinygrad_norm.experiments.graph [--out results]

Writes lenet_bn_graph.svg (or its .dot source, with how to install Graphviz, when `dot` is missing) and
norm_axes.svg.
"""
import os
import warnings

import numpy as np

import tinygrad_norm as tg
from .. import viz
from ..nn import functional as F
from .models import LeNet
from .report import main


def run(quick=False, seeds=None, out="results", device="cpu", log=print):
    os.makedirs(out, exist_ok=True)
    tg.manual_seed(0)
    model = LeNet(bn=True).to(device)
    loss = F.cross_entropy(model(tg.randn(4, 1, 8, 8, device=device)), tg.Tensor(np.arange(4), device=device))
    dot = viz.draw_graph(loss, model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = viz.render(dot, os.path.join(out, "lenet_bn_graph.svg"))
    for w in caught:
        log(str(w.message))
    axes = os.path.join(out, "norm_axes.svg")
    viz.axes_svg(viz.drawable(), (4, 6, 3, 3), axes)
    ops = dot.source.count("shape=box")
    log(f"wrote {graph} ({ops} ops) and {axes}")
    return {"graph": str(graph), "axes": axes, "ops": ops}, ""


if __name__ == "__main__":
    main(run, __doc__, full_seeds=5)
