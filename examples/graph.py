"""Draw the computation graph of the LeNet-BN model (examples/lenet_bn.py) and the norm-pooling pictures.

    python examples/graph.py [--out results]

Writes lenet_bn_graph.svg (or its .dot source, with how to install Graphviz, when `dot` is missing) and
norm_axes.svg.
"""
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import parser  # noqa: E402
from lenet_bn import LeNetBN  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import viz  # noqa: E402
from tinygrad_norm.nn import functional as F  # noqa: E402


def run(quick=False, seed=0, out="results", log=print):
    os.makedirs(out, exist_ok=True)
    tg.manual_seed(seed)
    model = LeNetBN(bn=True)
    loss = F.cross_entropy(model(tg.randn(4, 1, 8, 8)), np.arange(4))
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
    return {"graph": str(graph), "axes": axes, "ops": ops}


if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    run(args.quick, args.seed, args.out)
