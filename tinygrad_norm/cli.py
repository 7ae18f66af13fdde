"""The `tinygrad-norm` command."""
import argparse
import sys


def cmd_demo(args):
    from .demo import fit_sine
    print("Fitting y = sin(3x) with a 1-32-1 tanh net by gradient descent:")
    losses = fit_sine()
    print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")


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


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygrad-norm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the demo").set_defaults(run=cmd_demo)
    check = sub.add_parser("check", help="run the conformance checker on norm plugins (all when none is named)")
    check.add_argument("names", nargs="*", metavar="NAME")
    check.set_defaults(run=cmd_check)
    sub.add_parser("plugins", help="list the norm plugins: pattern, parameters, origin").set_defaults(run=cmd_plugins)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
