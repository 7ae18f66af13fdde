"""The `tinygrad-norm` command."""
import argparse
import os
import sys

from .backend import DeviceError


def cmd_demo(args):
    from .demo import run_demo
    print(f"Running the {'full' if args.full else 'quick'} experiments; the report goes to {args.out}/", flush=True)
    report, lines = run_demo(args.out, args.full, log=lambda m: print(m, flush=True), device=args.device,
                             only=args.only)
    print(f"\nReport: {report}\n")
    print("\n".join(lines))


class CommandError(Exception):
    """A mistake on the command line: main prints its message as one line on stderr and exits with 1."""


# What a user's mistake raises, here or in the library: one line, no traceback. Anything else is a bug and keeps it.
MISTAKES = (CommandError, ValueError, TypeError, LookupError, OSError, ImportError, DeviceError)


def load_target(target, what="FUNCTION"):
    """'path/to/file.py:NAME' or 'package.module:NAME' -> that object; CommandError naming what is wrong."""
    import importlib
    import importlib.util
    import pathlib
    where, _, name = target.rpartition(":")
    if not where or not name:
        raise CommandError(f"expected FILE.py:{what} or MODULE:{what}; got {target!r}")
    if where.endswith(".py") and not pathlib.Path(where).is_file():
        raise CommandError(f"{target}: no file {where!r}")
    try:
        if where.endswith(".py"):
            spec = importlib.util.spec_from_file_location(pathlib.Path(where).stem, where)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # as `python -m` would: MODULE may be a file in the current folder
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(where)
    except ModuleNotFoundError as e:
        raise CommandError(f"{target}: no module named {e.name!r} (is it on PYTHONPATH, or did you mean a FILE.py?)") from None
    except Exception as e:
        raise CommandError(f"{target}: importing {where} failed: {type(e).__name__}: {e}") from None
    if not hasattr(module, name):
        raise CommandError(f"{target}: {where} has no {name!r}")
    return getattr(module, name)


def plugin_arg(text):
    """A registered plugin name, or FILE.py:Class / MODULE:Class for a plugin not registered (yet)."""
    from . import norms
    return norms.resolve(load_target(text, "Class") if ":" in text else text)


def cmd_check(args):
    """The checker on the named plugins, or on every plugin; with no names a plugin that failed to load is a
    FAIL too. Exit status 1 when anything failed."""
    from . import norms
    failed = 0
    for plugin in [plugin_arg(n) for n in args.names] or norms.available():
        report = norms.check(plugin)
        print(report)
        failed += not report.ok
    if not args.names:
        for name, why in norms.failures().items():
            print(f"conformance of norm plugin {name!r}: FAIL\n  [FAIL] load the plugin: {why}")
            failed += 1
    return 1 if failed else 0


def describe(cls):
    """(pattern, parameters) of a plugin class, for listings."""
    from . import norms
    acts_on = norms.acts_on
    pattern = getattr(cls, "pattern", None)
    if pattern is None or acts_on(cls) == "weights":  # own forward or a weight reparametrization: the first
        doc = (cls.__doc__ or "").strip().splitlines()  # line of its docstring says what
        kind = "reparametrizes weights" + (f" by {pattern!r}" if pattern else "") if acts_on(cls) == "weights" \
            else "own forward"
        return kind + (f": {doc[0]}" if doc else ""), "see its docstring"
    params = f"γ{', β' if cls.shift else ''} over {cls.param_axes}" if cls.param_axes else "none"
    if cls.running_stats:
        params += "; running mean/var"
    if cls.forward is not norms.NormLayer.forward:  # a forward of its own may add parameters and buffers
        params += "; own forward (see its docstring)"
    more = "".join(f"; {name}: {text}" for name, text in cls.statistics.items())
    return pattern + ("" if cls.center else " (no centering)") + more, params


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
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(n < 1 for n in shape):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 2,3,8,8; got {text!r}")
    return shape


def cmd_axes(args):
    from .norms import display_name
    from .viz import axes_svg, drawable
    if len(args.shape) != 4:
        raise CommandError(f"--shape is N,C,H,W: four sizes; got {len(args.shape)}: {args.shape}")
    if not args.output.endswith(".svg"):
        raise CommandError(f"the picture is SVG, so the output must end in .svg; got {args.output!r}")
    plugins = [plugin_arg(n) for n in args.names] or drawable()
    axes_svg(plugins, args.shape, args.output)
    names = [p if isinstance(p, str) else display_name(p) for p in plugins]
    print(f"wrote {args.output}: which elements of an {args.shape} input share statistics, for {', '.join(names)}")


def cmd_graph(args):
    import warnings

    from .tensor import randn
    from .viz import draw_graph, render
    from .module import Module
    build = load_target(args.target)
    if not callable(build):
        raise CommandError(f"{args.target} is not a function that builds a model; it is {build!r}")
    model = _run_user_code(build, f"{args.target}() raised")
    if not isinstance(model, Module):
        raise CommandError(f"{args.target}() must return a model (an nn.Module); it returned {type(model).__name__}"
                           f"{'' if model is None else f' {model!r}'[:80]}")
    out = _run_user_code(lambda: model(randn(*args.shape)), f"the model from {args.target} on an input of shape {args.shape}")
    dot = draw_graph(out, model, collapse=args.collapse.split(",") if args.collapse else ())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = render(dot, args.output)
    for w in caught:
        print(w.message)
    print(f"wrote {written}: the graph of {type(model).__name__} on an input of shape {args.shape}")


def _run_user_code(fn, what):
    """fn(), where a user's code raising anything is a CommandError: one line naming what raised and why."""
    try:
        return fn()
    except Exception as e:
        raise CommandError(f"{what}: {type(e).__name__}: {e}") from None


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (and points at --help) instead of the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = Parser(prog="tinygrad-norm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the experiments: where each norm applies, over seeds; write a report")
    demo.add_argument("--full", action="store_true", help="the full experiments (minutes) instead of quick ones")
    demo.add_argument("--out", default="report", help="report folder (default: report)")
    demo.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to train (cuda needs CuPy)")
    demo.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (lenet_bn, ...)")
    demo.set_defaults(run=cmd_demo)
    check = sub.add_parser("check", help="run the conformance checker on norm plugins (all when none is named)")
    check.add_argument("names", nargs="*", metavar="PLUGIN", help="a registered name, or FILE.py:Class or MODULE:Class")
    check.set_defaults(run=cmd_check)
    sub.add_parser("plugins", help="list the norm plugins: pattern, parameters, origin").set_defaults(run=cmd_plugins)
    axes = sub.add_parser("axes", help="draw which elements each norm pools (SVG); all plugins when none is named")
    axes.add_argument("names", nargs="*", metavar="PLUGIN", help="a registered name, or FILE.py:Class or MODULE:Class")
    axes.add_argument("--shape", type=_shape, default=(4, 6, 3, 3), help="N,C,H,W (default 4,6,3,3)")
    axes.add_argument("-o", "--output", default="norm_axes.svg", help="an .svg file (default norm_axes.svg)")
    axes.set_defaults(run=cmd_axes)
    graph = sub.add_parser("graph", help="draw the computation graph of a model built by FILE.py:FUNC or MODULE:FUNC")
    graph.add_argument("target", metavar="FILE.py:FUNC|MODULE:FUNC")
    graph.add_argument("--shape", type=_shape, required=True, help="input shape, e.g. 2,1,8,8")
    graph.add_argument("--collapse", default="", help="comma-separated module names to draw as one box")
    graph.add_argument("-o", "--output", default="graph.svg", help=".svg, .png or .pdf")
    graph.set_defaults(run=cmd_graph)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except MISTAKES as e:
        print(f"tinygrad-norm {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
