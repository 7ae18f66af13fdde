"""The `tinygrad-norm` command."""
import argparse
import sys


def cmd_demo(args):
    import contextlib
    import io

    from .demo import run_demo, summary
    print(f"Running the {'full' if args.full else 'quick'} experiments; the report goes to {args.out}/")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet) if not args.verbose else contextlib.nullcontext():
        report = run_demo(args.out, args.full, log=lambda m: print(m, file=sys.__stdout__, flush=True))
    print(f"\nReport: {report}\n")
    print("\n".join(summary(args.out)))


def cmd_check(args):
    from . import norms
    failed = 0
    for name in args.names or norms.available():
        report = norms.check(name)
        print(report)
        failed += not report.ok
    return 1 if failed else 0


def describe(cls):
    """(pattern, parameters) of a plugin class, for listings."""
    pattern = getattr(cls, "pattern", None)
    if getattr(cls, "kind", "activation") == "weight":
        return "weights: w = g·v/‖v‖", "g, v (replace the layer's weight)"
    if pattern is None:
        return "own forward (autograd ops)", "none"
    params = f"γ{', β' if cls.shift else ''} over {cls.param_axes}" if cls.param_axes else "none"
    if cls.running_stats:
        params += "; running mean/var"
    return pattern + ("" if cls.center else " (no centering)"), params


def cmd_plugins(args):
    from . import norms
    rows = [("name", "pattern", "parameters", "from")]
    for name in norms.available():
        rows.append((name, *describe(norms.get(name)), norms.origin(name)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for name, why in norms.failures().items():
        print(f"unavailable: {name}: {why}")


def _shape(text):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 2,3,8,8; got {text!r}") from None


def cmd_axes(args):
    from .viz import axes_svg, drawable
    names = args.names or drawable()
    axes_svg(names, args.shape, args.output)
    print(f"wrote {args.output}: which elements of an {args.shape} input share statistics, for {', '.join(names)}")


def load_builder(target):
    """'path/to/script.py:function' or 'package.module:function' -> the function."""
    import importlib
    import importlib.util
    where, _, func = target.rpartition(":")
    if not where or not func:
        raise SystemExit(f"expected SCRIPT.py:FUNCTION or MODULE:FUNCTION; got {target!r}")
    if where.endswith(".py"):
        spec = importlib.util.spec_from_file_location("_tinygrad_norm_graph_target", where)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, func)


def cmd_graph(args):
    import warnings

    from .tensor import randn
    from .viz import draw_graph, render
    model = load_builder(args.target)()
    out = model(randn(*args.shape))
    dot = draw_graph(out, model, collapse=args.collapse.split(",") if args.collapse else ())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = render(dot, args.output)
    for w in caught:
        print(w.message)
    print(f"wrote {written}: the graph of {type(model).__name__} on an input of shape {args.shape}")


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygrad-norm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the example models, measure where each norm applies, write a report")
    demo.add_argument("--full", action="store_true", help="the full experiments (minutes) instead of quick ones")
    demo.add_argument("--out", default="report", help="report folder (default: report)")
    demo.add_argument("--verbose", action="store_true", help="also print each example's tables as they finish")
    demo.set_defaults(run=cmd_demo)
    check = sub.add_parser("check", help="run the conformance checker on norm plugins (all when none is named)")
    check.add_argument("names", nargs="*", metavar="NAME")
    check.set_defaults(run=cmd_check)
    sub.add_parser("plugins", help="list the norm plugins: pattern, parameters, origin").set_defaults(run=cmd_plugins)
    axes = sub.add_parser("axes", help="draw which elements each norm pools (SVG); all plugins when none is named")
    axes.add_argument("names", nargs="*", metavar="NAME")
    axes.add_argument("--shape", type=_shape, default=(4, 6, 3, 3), help="N,C,H,W (default 4,6,3,3)")
    axes.add_argument("-o", "--output", default="norm_axes.svg")
    axes.set_defaults(run=cmd_axes)
    graph = sub.add_parser("graph", help="draw the computation graph of a model built by SCRIPT.py:FUNC or MODULE:FUNC")
    graph.add_argument("target", metavar="SCRIPT.py:FUNC|MODULE:FUNC")
    graph.add_argument("--shape", type=_shape, required=True, help="input shape, e.g. 2,1,8,8")
    graph.add_argument("--collapse", default="", help="comma-separated module names to draw as one box")
    graph.add_argument("-o", "--output", default="graph.svg", help=".svg, .png or .pdf")
    graph.set_defaults(run=cmd_graph)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
