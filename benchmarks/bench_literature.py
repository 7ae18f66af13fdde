"""The literature plugins' forward + backward beside BatchNorm's on the same input, float32, median ms over
interleaved runs: each row times one plugin (ours) and PyTorch's BatchNorm2d (torch) on (N, C, H, W), so the
ratio is to PyTorch's BatchNorm; the note gives the ratio to our own BatchNorm and, where a public
implementation of the same method exists (timm's EvoNorm and FRN layers, loaded from timm's files as the tests
do; PyTorch's spectral_norm), its time and our ratio to it.

    python benchmarks/bench_literature.py [--shape 32,64,16,16] [--repeat 15] [--only NAME] [--json out.json]

The weight plugins are timed on a Conv2d(C, C, 3) with that plugin, beside the plain convolution; torch there is
the same layer in PyTorch (its spectral_norm parametrization, timm's StdConv2d for weight standardization).
"""
import argparse
import ast
import importlib
import inspect
import json
import importlib.util
import os
import pathlib
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import default_json, median_ms_or_error, report, try_torch  # noqa: E402

import tinygrad_norm as tg  # noqa: E402
from tinygrad_norm import nn, norms  # noqa: E402

# name -> (the layer for an (N, C, H, W) input, what else its forward takes: None, "style" or "embedding")
ACTIVATIONS = {
    "batch": (lambda c, w: nn.Norm("batch", c), None),
    "batch_renorm": (lambda c, w: nn.Norm("batch_renorm", c), None),
    "switchable": (lambda c, w: nn.Norm("switchable", c), None),
    "batch_instance": (lambda c, w: nn.Norm("batch_instance", c), None),
    "evonorm_b0": (lambda c, w: nn.Norm("evonorm_b0", c), None),
    "evonorm_s0": (lambda c, w: nn.Norm("evonorm_s0", c, groups=32 if c % 32 == 0 else 1), None),
    "filter_response": (lambda c, w: nn.Norm("filter_response", c), None),
    "positional": (lambda c, w: nn.Norm("positional"), None),
    "pixel": (lambda c, w: nn.Norm("pixel"), None),
    "scale": (lambda c, w: nn.Norm("scale", w), None),  # over the last axis, as a transformer's features
    "mean_only_batch": (lambda c, w: nn.Norm("mean_only_batch", c), None),
    "l1_batch": (lambda c, w: nn.Norm("l1_batch", c), None),
    "adain": (lambda c, w: nn.Norm("adain"), "style"),
    "conditional_batch": (lambda c, w: nn.Norm("conditional_batch", c, 16), "embedding"),
    "iter_norm": (lambda c, w: nn.Norm("iter_norm", c, num_groups=max(c // 16, 1)), None),
}
WEIGHTS = ["weight_standardization", "spectral"]
PAPERS = {  # plugin -> (method, paper)
    "batch_renorm": ("Batch Renormalization", "Ioffe, 2017"),
    "switchable": ("Switchable Normalization", "Luo et al., 2019"),
    "batch_instance": ("Batch-Instance Normalization", "Nam & Kim, 2018"),
    "evonorm_b0": ("EvoNorm-B0", "Liu et al., 2020"),
    "evonorm_s0": ("EvoNorm-S0", "Liu et al., 2020"),
    "filter_response": ("Filter Response Normalization + TLU", "Singh & Krishnan, 2020"),
    "positional": ("Positional Normalization", "Li et al., 2019"),
    "pixel": ("Pixel Normalization", "Karras et al., 2018"),
    "scale": ("ScaleNorm", "Nguyen & Salazar, 2019"),
    "mean_only_batch": ("Mean-only BatchNorm", "Salimans & Kingma, 2016"),
    "l1_batch": ("L1 BatchNorm", "Wu et al., 2018"),
    "adain": ("AdaIN", "Huang & Belongie, 2017"),
    "conditional_batch": ("Conditional BatchNorm", "de Vries et al., 2017"),
    "iter_norm": ("IterNorm", "Huang et al., 2019"),
    "weight_standardization": ("Weight Standardization", "Qiao et al., 2019"),
    "spectral": ("Spectral Normalization", "Miyato et al., 2018"),
}


def code_lines(cls):
    """(lines of the plugin's class without docstrings, comments and blank lines, not counting its reference;
    the reference's lines): what the plugin costs to write, read off its source."""
    source = inspect.getsource(cls)
    tree = ast.parse(source)
    skipped, reference = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            skipped |= set(range(node.body[0].lineno, node.body[0].end_lineno + 1))
        if isinstance(node, ast.FunctionDef) and node.name == "reference":
            reference |= set(range(node.lineno, node.end_lineno + 1))
    code = [i for i, line in enumerate(source.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#") and i not in skipped]
    return sum(i not in reference for i in code), sum(i in reference for i in code)


def fused_parts(cls):
    """What of the plugin runs as the core's fused kernels, read off its forward's source."""
    if getattr(cls, "acts_on", "activations") == "weights":
        return "normalize op on the weight" if "normalize_by(" in inspect.getsource(cls) else "none (autograd ops)"
    if cls.forward is norms.NormLayer.forward:
        return "all (declared)"
    body = inspect.getsource(cls.forward)
    parts = [what for call, what in (("self.normalize(", "normalize op"), ("super().forward(", "normalize op"),
                                     ("self.batch_statistics(", "statistics kernel"),
                                     ("self.moments(", "statistics kernel"),
                                     ("self.pool(", "pooled means (ops)")) if call in body]
    return " + ".join(dict.fromkeys(parts)) or "none (autograd ops)"


def describe(name):
    """The conformance checks the plugin passes (run here)."""
    report_ = norms.check(name)
    return {"checks_ok": report_.ok, "checks": [check for check, _, _ in report_.results]}


def timm_layers():
    """timm's EvoNorm and FRN modules, from its files without its __init__ (which needs torchvision), or None."""
    spec = importlib.util.find_spec("timm")
    if spec is None:
        return None
    if "_timm_layers" not in sys.modules:
        package = types.ModuleType("_timm_layers")
        package.__path__ = [str(pathlib.Path(spec.origin).parent / "layers")]
        sys.modules["_timm_layers"] = package
    return types.SimpleNamespace(**{n: importlib.import_module(f"_timm_layers.{n}")
                                    for n in ("evo_norm", "filter_response_norm", "std_conv")})


def public(torch, timm, name, c):
    """The same method in a public PyTorch implementation, or None."""
    if torch is None or timm is None:
        return None
    return {"evonorm_b0": lambda: timm.evo_norm.EvoNorm2dB0(c, eps=1e-5),
            "evonorm_s0": lambda: timm.evo_norm.EvoNorm2dS0(c, groups=32 if c % 32 == 0 else 1, eps=1e-5),
            "filter_response": lambda: timm.filter_response_norm.FilterResponseNormTlu2d(c, eps=1e-6)}.get(name, lambda: None)()


def fwd_bwd(layer, inputs, dy):
    """A step: forward, backward of <dy, y> into the input and the parameters (ours and PyTorch's alike)."""
    def step():
        for t in inputs:
            t.grad = None
        layer(*inputs).backward(dy)
    return step


def activation_row(torch, timm, name, shape, repeat):
    make, extra = ACTIVATIONS[name]
    rng = np.random.default_rng(0)
    n, c = shape[:2]
    x = rng.standard_normal(shape).astype(np.float32)
    more = {None: [], "style": [rng.standard_normal(shape).astype(np.float32)],
            "embedding": [rng.standard_normal((n, 16)).astype(np.float32)]}[extra]
    dy = rng.standard_normal(shape).astype(np.float32)
    tg.manual_seed(0)
    ours = fwd_bwd(make(c, shape[-1]), [tg.Tensor(a, requires_grad=True) for a in [x] + more], tg.Tensor(dy))
    fns = [ours]
    if torch is not None:
        tx, tdy = torch.tensor(x, requires_grad=True), torch.tensor(dy)
        fns.append(fwd_bwd(torch.nn.BatchNorm2d(c), [tx], tdy))
        theirs = public(torch, timm, name, c)
        if theirs is not None:
            fns.append(fwd_bwd(theirs, [torch.tensor(x, requires_grad=True)], tdy))
    ms, errors = median_ms_or_error(fns, repeat=repeat)
    return {"name": f"{name} {shape}", "plugin": name, "ours_ms": ms[0], "torch_ms": ms[1] if torch else None,
            "public_ms": ms[2] if len(ms) > 2 else None, **({"errors": errors} if any(errors) else {})}


def weight_row(torch, timm, name, shape, repeat):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    tg.manual_seed(0)
    conv = nn.Conv2d(c, c, 3, padding=1)
    if name != "conv":
        norms.get(name).apply(conv)
    y = conv(tg.Tensor(x))
    ours = fwd_bwd(conv, [tg.Tensor(x, requires_grad=True)], tg.Tensor(np.ones(y.shape, np.float32)))
    fns = [ours]
    if torch is not None:  # the same: a plain convolution, PyTorch's spectral_norm, timm's StdConv2d
        tconv = {"conv": lambda: torch.nn.Conv2d(c, c, 3, padding=1),
                 "spectral": lambda: torch.nn.utils.parametrizations.spectral_norm(torch.nn.Conv2d(c, c, 3, padding=1)),
                 "weight_standardization": lambda: timm and timm.std_conv.StdConv2d(c, c, 3, padding=1, bias=True,
                                                                                    eps=1e-5)}[name]()
        if tconv:
            fns.append(fwd_bwd(tconv, [torch.tensor(x, requires_grad=True)], torch.ones(y.shape)))
    ms, errors = median_ms_or_error(fns, repeat=repeat)
    what = "Conv2d" if name == "conv" else f"Conv2d + {name}"
    return {"name": f"{what} {shape}", "plugin": name, "ours_ms": ms[0], "torch_ms": ms[1] if len(ms) > 1 else None,
            **({"errors": errors} if any(errors) else {})}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="32,64,16,16", help="N,C,H,W (default 32,64,16,16)")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", default="", help="substring filter on plugin names")
    ap.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/"
                                                 "bench_literature.json)")
    ap.add_argument("--table", action="store_true", help="print the README's table from the committed run, and stop")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.json))
        return None
    shape = tuple(int(v) for v in args.shape.split(","))
    torch, timm = try_torch(threads=os.cpu_count()), None
    try:
        timm = timm_layers() if torch is not None else None
    except Exception:  # a timm whose layer files import what is missing here: no public comparison
        timm = None
    rows = [activation_row(torch, timm, name, shape, args.repeat) for name in ACTIVATIONS if args.only in name]
    bn = next((r for r in rows if r["plugin"] == "batch"), None)
    for r in rows:
        notes = []
        if bn and r is not bn and r["ours_ms"] and bn["ours_ms"]:
            r["over_our_batch"] = r["ours_ms"] / bn["ours_ms"]
            notes.append(f"/ our BN {r['over_our_batch']:.2f}")
        if r.get("public_ms"):
            r["over_public"] = r["ours_ms"] / r["public_ms"]
            notes.append(f"timm {r['public_ms']:.2f} ms, ours/timm {r['over_public']:.2f}")
        r["note"] = "; ".join(notes)
    convs = [weight_row(torch, timm, name, shape, args.repeat) for name in ["conv"] + WEIGHTS if args.only in name]
    plain = next((r for r in convs if r["plugin"] == "conv"), None)
    for r in convs:
        if plain and r is not plain and r["ours_ms"] and plain["ours_ms"]:
            r["over_plain_conv"] = r["ours_ms"] / plain["ours_ms"]
            r["note"] = f"/ our plain conv {r['over_plain_conv']:.2f} (torch: " + \
                        ("its spectral_norm parametrization)" if r["plugin"] == "spectral" else "timm's StdConv2d)")
    for r in rows + convs:
        if r["plugin"] in PAPERS:
            r.update(describe(r["plugin"]))
    report(f"literature plugins, forward + backward, float32, median of {args.repeat} (torch: BatchNorm2d, "
           f"or the convolution)", rows + convs, args.json or default_json(__file__, "bench_literature", "cpu"))
    return rows + convs


SHORT = {"gradient check": "grad", "second-derivative check": "2nd derivative", "output shape and dtype": "shape & dtype",
         "matches its stated reference": "reference", "running statistics and eval mode": "running stats & eval",
         "eval mode matches its reference": "eval vs reference", "the weight follows the plugin's parameters":
         "weight follows its parameters", "zero mean, unit variance over the reduced axes": "mean 0 & variance 1",
         "unit mean square (no centering) over the reduced axes": "mean square 1",
         "the declared normalization γ·x̂ + β, elementwise": "declared γ·x̂ + β"}


def table(path=None):
    """The README's table of the literature plugins: times and checks from a committed run of this benchmark,
    lines and fused parts read off the plugins' source now."""
    with open(path or default_json(__file__, "bench_literature", "cpu")) as f:
        rows = {r["plugin"]: r for r in json.load(f)["rows"]}
    out = ["| method (paper) | plugin | lines (+ reference) | fused | the checker verifies | fwd+bwd ms | / our BN |",
           "|---|---|---|---|---|---|---|"]
    for name, (method, paper) in PAPERS.items():
        r, cls = rows[name], norms.get(name)
        lines, reference = code_lines(cls)
        checks = "; ".join(SHORT.get(c, "independence" if c.startswith("independent") else c) for c in r["checks"])
        ratio = r.get("over_our_batch") or r.get("over_plain_conv")
        base = "" if "over_our_batch" in r else " (/ conv)"
        out.append(f"| {method} ({paper}) | `{name}` | {lines} (+{reference}) | {fused_parts(cls)} | {checks} | "
                   f"{r['ours_ms']:.2f} | {ratio:.2f}{base} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
