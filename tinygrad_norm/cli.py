"""The `tinygrad-norm` command."""
import argparse
import sys


def cmd_demo(args):
    from .demo import fit_sine
    print("Fitting y = sin(3x) with a 1-32-1 tanh net by gradient descent:")
    losses = fit_sine()
    print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygrad-norm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the demo").set_defaults(run=cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
